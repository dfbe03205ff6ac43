"""DSB2018 nucleus instance segmentation: spatial embeddings vs a classical watershed.

Methods, evaluated on the same held-out images:

* ``watershed (defaults)`` -- :func:`clusterseg.instances.classical.watershed_nuclei`
  with its default parameters (Otsu threshold, auto polarity, distance
  transform watershed);
* ``watershed (tuned)`` -- the same, with parameters grid-searched by
  :func:`clusterseg.instances.classical.tune_watershed_nuclei` on a fixed-seed
  random subset of the *train* split (never on the test images);
* ``spatial embeddings (<model>)`` -- ``clusterseg.instances(image, model=...,
  tta=...)`` (Neven et al., CVPR 2019), one row per ``--model``; skipped with
  a message when it cannot be imported or loaded.

Data: :func:`clusterseg.datasets.dsb2018`, the stage-1 training images with
labels, split by a fixed hash of the image names (``split="train"`` /
``"test"``, 10% held out).

Metrics (``clusterseg.metrics``):

* DSB score -- for each image the mean over IoU thresholds 0.50:0.05:0.95 of
  ``TP / (TP + FP + FN)`` (optimal one-to-one matching), then the mean over
  images, as in the 2018 Data Science Bowl (Caicedo et al. 2019);
* DSB accuracy at IoU 0.5 and 0.75 -- per-image ``TP / (TP + FP + FN)``,
  averaged over images;
* F1 at IoU 0.5 -- TP/FP/FN pooled over all test images;
* COCO AP (0.50:0.95) and AP50 over the whole test set; the watershed ranks
  its objects by area (it has no confidence), the model by its ``.scores``;
* median wall-clock seconds per image (CPU, ``--threads`` threads) and the
  ratio to the tuned watershed.

Usage::

    python benchmarks/instances_dsb2018.py                      # baseline + default model
    python benchmarks/instances_dsb2018.py --model runs/se/best.pt --tta
    python benchmarks/instances_dsb2018.py --limit 10 --tune-images 20
    python benchmarks/instances_dsb2018.py --params '{"sigma": 1.0, "min_distance": 5, "min_size": 16}'
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import header_lines, markdown_table, set_threads, write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODEL = "dsb2018-nuclei"
BASELINE = "watershed (tuned)"


# ------------------------------------------------------------------ data
def load_dsb2018(split: str):
    from clusterseg.datasets import dsb2018

    return dsb2018(split=split)


# ------------------------------------------------------------------ methods
def model_runner(model: str, tta: bool, device: str, **options):
    """A function image -> (labels, scores) for the spatial-embedding model."""
    import clusterseg

    def run(image):
        result = clusterseg.instances(image, model=model, tta=tta, device=device, **options)
        return result.labels, result.scores

    return run


def watershed_runner(params: dict):
    from clusterseg.instances.classical import watershed_nuclei

    def run(image):
        return watershed_nuclei(image, **params), None  # None: AP ranks objects by area

    return run


# ------------------------------------------------------------------ metrics
def image_scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    """Per-image row of the JSON (and progress line)."""
    from clusterseg.metrics import dsb_score, match_instances

    dsb = dsb_score([pred], [gt])
    m50 = match_instances(pred, gt, iou_threshold=0.5)
    return {"dsb_score": dsb.score, "acc50": dsb.at(0.5), "acc75": dsb.at(0.75), "tp50": m50.tp, "fp50": m50.fp,
            "fn50": m50.fn, "n_pred": m50.n_pred, "n_gt": m50.n_gt}


def summarise(per_image: list[dict], preds, gts, scores) -> dict:
    from clusterseg.metrics import instance_scores

    secs = [r["seconds"] for r in per_image]
    return {**instance_scores(preds, gts, scores), "median_seconds": float(np.median(secs)),
            "mean_seconds": float(np.mean(secs))}


def modality_summaries(samples, predictions: dict[str, list], confidences: dict[str, list | None]) -> dict:
    """``{method: {modality: summary}}`` over the grey and colour subsets of the evaluated images."""
    from clusterseg.datasets import image_modality
    from clusterseg.metrics import instance_scores

    modality = [image_modality(s.image) for s in samples]
    out: dict[str, dict] = {}
    for name, preds in predictions.items():
        out[name] = {}
        for mod in ("grey", "colour"):
            idx = [i for i, m in enumerate(modality) if m == mod]
            if idx:
                conf = confidences[name]
                out[name][mod] = instance_scores([preds[i] for i in idx], [samples[i].labels for i in idx],
                                                 None if conf is None else [conf[i] for i in idx])
    return out


# ------------------------------------------------------------------ figure
def save_figure(path: Path, samples, predictions: dict[str, list], per_image: dict[str, list], n: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clusterseg.visualize import label2rgb_random

    def colour(labels):
        rgb = label2rgb_random(labels)
        rgb[labels == 0] = 0
        return rgb

    idx = np.unique(np.linspace(0, len(samples) - 1, min(n, len(samples))).round().astype(int))
    methods = list(predictions)
    cols = 2 + len(methods)
    fig, axes = plt.subplots(len(idx), cols, figsize=(2.6 * cols, 2.6 * len(idx)), squeeze=False)
    for row, i in enumerate(idx):
        s = samples[i]
        panels = [(s.image[..., :3] if s.image.ndim == 3 else s.image, "image"),
                  (colour(s.labels), f"ground truth ({int(s.labels.max())})")]
        for m in methods:
            lab = predictions[m][i]
            r = per_image[m][i]
            title = textwrap.shorten(m, 44, placeholder="...")
            panels.append((colour(lab), f"{title} ({int(lab.max())})\nAcc@0.5 {r['acc50']:.2f}, DSB {r['dsb_score']:.2f}"))
        for ax, (im, title) in zip(axes[row], panels):
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", default=None,
                   help=f"model name or checkpoint path for clusterseg.instances (repeatable; default {DEFAULT_MODEL})")
    p.add_argument("--no-model", action="store_true", help="evaluate the watershed baseline only")
    p.add_argument("--tta", action="store_true", help="also evaluate the model with test-time augmentation")
    p.add_argument("--invert", action="store_true",
                   help="also evaluate the model with invert='auto' (bright backgrounds flipped at inference)")
    p.add_argument("--float32", action="store_true",
                   help="also evaluate the model in float32 (default precision 'auto': bf16 where supported)")
    p.add_argument("--general-thresholds", action="store_true",
                   help="also evaluate the model with modality=None (its general clustering thresholds for every image)")
    p.add_argument("--device", default="cpu", help="torch device of the model (default cpu: CPU timings)")
    p.add_argument("--limit", type=int, default=None, help="first N test images (default all)")
    p.add_argument("--tune-images", type=int, default=100, help="random train images used to tune the baseline")
    p.add_argument("--seed", type=int, default=0, help="seed of the tuning subset")
    p.add_argument("--params", default=None,
                   help="JSON dict of watershed_nuclei parameters: skip tuning and use these")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None,
                   help="output path stem (default benchmarks/results/instances_dsb2018[_limitN])")
    p.add_argument("--figure-images", type=int, default=4)
    args = p.parse_args(argv)
    set_threads(args.threads)

    from clusterseg.instances.classical import DEFAULT_GRID, tune_watershed_nuclei

    out = Path(args.out) if args.out else RESULTS / ("instances_dsb2018" + (f"_limit{args.limit}" if args.limit else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        train = load_dsb2018("train")
        test = load_dsb2018("test")
    except (ImportError, FileNotFoundError, OSError) as exc:
        print(f"DSB2018 not available: {exc}; skipping.")
        return 0
    n_test_all = len(test)
    if args.limit:
        test = test[: args.limit]
    samples = list(test)
    gts = [s.labels for s in samples]
    print(f"DSB2018: {len(train)} train images, {n_test_all} test images (evaluating {len(samples)})", flush=True)

    # --- tune the baseline on a fixed random subset of the train split
    if args.params:
        tuned = json.loads(args.params)
        tuning = {"params": tuned, "source": "--params"}
    else:
        rng = np.random.default_rng(args.seed)
        n_tune = min(args.tune_images, len(train))
        pick = sorted(rng.choice(len(train), size=n_tune, replace=False).tolist())
        tune_set = [train[i] for i in pick]
        t0 = time.perf_counter()
        best = tune_watershed_nuclei([s.image for s in tune_set], [s.labels for s in tune_set], DEFAULT_GRID)
        dt = time.perf_counter() - t0
        tuned = {k: v for k, v in best.items() if k != "score"}
        tuning = {"params": tuned, "train_acc50": best["score"], "grid": {k: list(v) for k, v in DEFAULT_GRID.items()},
                  "images": n_tune, "seed": args.seed, "seconds": dt, "names": [s.name for s in tune_set]}
        print(f"tuned on {n_tune} train images in {dt:.0f}s: {tuned} (train Acc@0.5 {best['score']:.3f})", flush=True)

    methods = {"watershed (defaults)": watershed_runner({}), BASELINE: watershed_runner(tuned)}
    skipped: dict[str, str] = {}
    if not args.no_model:
        for model in args.model or [DEFAULT_MODEL]:
            for tta in (False, True) if args.tta else (False,):
                methods[f"spatial embeddings ({model}{', TTA' if tta else ''})"] = model_runner(model, tta, args.device)
            if args.invert:
                methods[f"spatial embeddings ({model}, invert auto)"] = model_runner(model, False, args.device,
                                                                                   invert="auto")
            if args.general_thresholds:
                methods[f"spatial embeddings ({model}, general thresholds)"] = model_runner(model, False, args.device,
                                                                                          modality=None)
            if args.float32:
                methods[f"spatial embeddings ({model}, float32)"] = model_runner(model, False, args.device,
                                                                               precision="float32")

    predictions: dict[str, list] = {}
    confidences: dict[str, list | None] = {}
    per_image: dict[str, list] = {}
    summary: dict[str, dict] = {}
    for name, run in methods.items():
        preds, scores, rows = [], [], []
        try:
            for i, s in enumerate(samples):
                t0 = time.perf_counter()
                lab, sc = run(s.image)
                dt = time.perf_counter() - t0
                r = {"image": s.name, "seconds": dt, **image_scores(lab, s.labels)}
                rows.append(r)
                preds.append(lab)
                scores.append(sc)
                print(f"[{i + 1}/{len(samples)}] {name:40s} {dt:6.2f}s Acc@0.5 {r['acc50']:.3f} "
                      f"DSB {r['dsb_score']:.3f}", flush=True)
        except (ImportError, FileNotFoundError, OSError, ValueError, RuntimeError, NotImplementedError) as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
            print(f"skipping {name}: {skipped[name]}", flush=True)
            continue
        predictions[name] = preds
        confidences[name] = None if scores[0] is None else scores
        per_image[name] = rows
        summary[name] = summarise(rows, preds, gts, None if scores[0] is None else scores)

    base_t = summary[BASELINE]["median_seconds"]
    rows = []
    for name, s in summary.items():
        s["time_ratio_vs_baseline"] = s["median_seconds"] / base_t if base_t > 0 else float("nan")
        rows.append([name, f"{s['dsb_score']:.3f}", f"{s['acc50']:.3f}", f"{s['acc75']:.3f}", f"{s['f1_50']:.3f}",
                     f"{s['ap']:.3f}", f"{s['ap50']:.3f}", f"{s['median_seconds']:.3f}",
                     f"{s['time_ratio_vs_baseline']:.1f}x", str(s["images"])])

    lines = header_lines("DSB2018 nuclei: instance segmentation (held-out test split)", threads=args.threads)
    lines += [
        f"Data: DSB2018 stage-1 training images with labels (`clusterseg.datasets.dsb2018`), split by a fixed "
        f"hash of the image names: {len(train)} train / {n_test_all} test images; evaluated on "
        f"{len(samples)} test images{' (first N, --limit)' if args.limit else ''}.",
        "",
        "Baseline tuning: " + (
            f"grid {tuning['grid']} searched on {tuning['images']} random train images (seed {tuning['seed']}), "
            f"maximising the mean per-image Acc@0.5; best {tuned} (train Acc@0.5 {tuning['train_acc50']:.3f}, "
            f"{tuning['seconds']:.0f} s)." if "grid" in tuning else f"parameters given with --params: {tuned}."),
        "",
    ]
    lines += markdown_table(["method", "DSB score", "Acc@0.5", "Acc@0.75", "F1@0.5", "AP", "AP50",
                             "median s/img", "time vs tuned watershed", "images"], rows)
    by_modality = modality_summaries(samples, predictions, confidences)
    lines += ["", "Per imaging modality (`clusterseg.datasets.image_modality`: grey = equal RGB channels, "
              "fluorescence and grey bright-field; colour = bright-field and H&E stains):", ""]
    lines += markdown_table(["method", "modality", "images", "DSB score", "Acc@0.5", "Acc@0.75", "F1@0.5", "AP50"],
                            [[name, mod, str(v["images"]), f"{v['dsb_score']:.3f}", f"{v['acc50']:.3f}",
                              f"{v['acc75']:.3f}", f"{v['f1_50']:.3f}", f"{v['ap50']:.3f}"]
                             for name, mods in by_modality.items() for mod, v in mods.items()])
    lines += [
        "",
        "- DSB score: per image, the mean over IoU thresholds 0.50:0.05:0.95 of TP / (TP + FP + FN) "
        "(optimal one-to-one matching), then the mean over images -- the 2018 Data Science Bowl metric "
        "(Caicedo et al., Nature Methods 2019); a match needs IoU >= t (Kaggle used IoU > t, which differs only on exact ties). Acc@0.5 / Acc@0.75: the same accuracy at one threshold, "
        "also averaged per image.",
        "- F1@0.5: TP, FP, FN pooled over all test images.",
        "- AP / AP50: COCO average precision (101-point, IoU 0.50:0.95 / 0.5) over the whole test set; "
        "the watershed has no confidence, its objects are ranked by area (largest first); the model "
        "ranks by its per-instance `.scores`.",
        "- Time: wall clock per image including pre/post-processing (model: also tiling, clustering and, on "
        f"the first image, loading), {args.threads} thread(s), model on device `{args.device}`; the ratio is "
        "to the tuned watershed's median.",
    ]
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {k}: {v}" for k, v in skipped.items()]
    write_text_atomic(out.with_suffix(".md"), "\n".join(lines) + "\n")

    payload = {
        "split": {"train": len(train), "test": n_test_all, "evaluated": len(samples), "limit": args.limit},
        "tuning": tuning,
        "summary": summary,
        "by_modality": by_modality,
        "skipped": skipped,
        "per_image": per_image,
        "threads": args.threads,
        "tta": args.tta,
        "device": args.device,
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(payload, indent=1) + "\n")
    fig_methods = {k: v for k, v in predictions.items() if k != "watershed (defaults)"}
    save_figure(out.with_suffix(".png"), samples, fig_methods, per_image, n=args.figure_images)
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.md')}, .json, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
