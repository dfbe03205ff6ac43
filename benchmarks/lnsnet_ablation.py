"""LNSNet ablation (paper Fig. 4a ordering) and forgetting study on BSDS500.

Three models are trained on the same short stream of BSDS500 *train* images
(the first ``--n-images``, same crops, same K, paper schedule 40 + 10):

* ``grid``      : LNS-Net1, grid seeds, no GRM (no seed layer, no GAL, no GBL)
* ``+SEL``      : LNS-Net2, trainable seed estimation layer, no GRM
* ``+SEL+GRM``  : LNS-Net3, seed layer plus GAL and GBL (full method)
* the same with the paper's objective (one-point seed features, no
  homogeneity loss), to show what the two training defaults add

Each final model is evaluated on the first ``--n-val`` *val* images (ASA, BR,
BP, UE, actual count). Forgetting: the ASA (K=``--forget-k``) of every training
image is measured right after it was learned and again after the whole stream.

Run (about 30 min on 2 busy cores)::

    PYTHONPATH=src python benchmarks/lnsnet_ablation.py --n-images 20 --n-val 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lnsnet_common import evaluate, load_samples, machine, now  # noqa: E402

from clusterseg.superpixels.lnsnet import lnsnet_superpixels  # noqa: E402
from clusterseg.models.lnsnet import load_lnsnet  # noqa: E402
from clusterseg.training.lifelong import list_images, train_lnsnet  # noqa: E402

CONFIGS = {
    "grid (LNS-Net1)": dict(seed_layer=False, gal=False, gbl=False),
    "+SEL (LNS-Net2)": dict(seed_layer=True, gal=False, gbl=False),
    "+SEL+GRM (LNS-Net3)": dict(seed_layer=True, gal=True, gbl=True),
    "+SEL+GRM, paper objective (point seeds, no homogeneity loss)": dict(
        seed_layer=True, gal=True, gbl=True, homogeneity_weight=0.0, seed_window=0.0
    ),
}
RUN_NAMES = ["grid", "sel", "sel_grm", "sel_grm_paper_objective"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-images", type=int, default=20)
    ap.add_argument("--n-val", type=int, default=20)
    ap.add_argument("--ks", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--forget-k", type=int, default=200)
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--iters-feature", type=int, default=40)
    ap.add_argument("--iters-seed", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--refine-steps", type=int, nargs="+", default=[0],
                    help="centre updates at evaluation, one set of rows per value (0: the paper's single pass, "
                         "what Fig. 4a compares; the forgetting study uses the first value)")
    ap.add_argument("--runs", default="runs/ablation")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from clusterseg.datasets import data_root

    train_dir = data_root() / "bsds500" / "images" / "train"
    gt_dir = data_root() / "bsds500" / "groundTruth" / "train"
    paths = list_images(train_dir)[: args.n_images]
    from clusterseg.datasets.bsds500 import read_bsds_ground_truth
    from clusterseg.io import read_image

    train_samples = [
        (read_image(p).astype(np.float32) / 255.0, read_bsds_ground_truth(gt_dir / f"{p.stem}.mat")[0]) for p in paths
    ]
    val = load_samples("val", limit=args.n_val)
    t_start = time.time()
    results, forgetting, timings = {}, {}, {}
    for run_name, (name, cfg) in zip(RUN_NAMES, CONFIGS.items()):
        run = Path(args.runs) / run_name
        after_learning = {}

        def callback(index, model, _cfg=cfg, _store=after_learning):
            rgb, gts = train_samples[index]
            lab = lnsnet_superpixels(rgb, args.forget_k, weights=model, seed_layer=_cfg["seed_layer"],
                                     refine_steps=args.refine_steps[0])
            from clusterseg.metrics import achievable_segmentation_accuracy

            _store[index] = achievable_segmentation_accuracy(lab, gts)

        t0 = time.time()
        if (run / "lnsnet_weights.pt").exists() and (run / "forgetting.json").exists():
            after_learning = {int(k): v for k, v in json.loads((run / "forgetting.json").read_text()).items()}
        else:
            import shutil

            shutil.rmtree(run, ignore_errors=True)
            train_lnsnet(paths, run, crop=args.crop, progress=False, callback=callback,
                         iters_feature=args.iters_feature, iters_seed=args.iters_seed, **cfg)
            (run / "forgetting.json").write_text(json.dumps(after_learning))
        timings[name] = time.time() - t0
        model = load_lnsnet(run / "lnsnet_weights.pt")
        for steps in args.refine_steps:
            suffix = "" if len(args.refine_steps) == 1 else f"; refine_steps={steps}"
            seg = lambda rgb, k, m=model, c=cfg, r=steps: lnsnet_superpixels(  # noqa: E731
                rgb, k, weights=m, seed_layer=c["seed_layer"], refine_steps=r)
            results[name + suffix] = evaluate(seg, val, args.ks)
            if cfg["seed_layer"]:
                seg_grid = lambda rgb, k, m=model, r=steps: lnsnet_superpixels(  # noqa: E731
                    rgb, k, weights=m, seed_layer=False, refine_steps=r)
                results[name + ", seeds at grid centres" + suffix] = evaluate(seg_grid, val, args.ks)
        from clusterseg.metrics import achievable_segmentation_accuracy

        at_end = {
            i: achievable_segmentation_accuracy(
                lnsnet_superpixels(rgb, args.forget_k, weights=model, seed_layer=cfg["seed_layer"],
                                   refine_steps=args.refine_steps[0]), gts
            )
            for i, (rgb, gts) in enumerate(train_samples)
        }
        forgetting[name] = (after_learning, at_end)
        # seed movement on val
        from clusterseg.features import lab_xy_features
        from clusterseg.nn.lnsnet import seed_grid

        shifts = []
        with torch.inference_mode():
            for rgb, _ in val[:5]:
                x = torch.from_numpy(lab_xy_features(rgb))[None]
                z = model.fem(x)
                g = seed_grid(x.shape[2], x.shape[3], 200)
                off = model.sel(z, g)[0]
                shifts.append(float(off.norm(dim=0).mean()))
        for key in [key for key in results if key.startswith(name) and "grid centres" not in key]:
            results[key]["_shift"] = float(np.mean(shifts)) if cfg["seed_layer"] else 0.0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "PYTHONPATH=src python benchmarks/lnsnet_ablation.py " + " ".join(sys.argv[1:])
    evaluation_mode = ", ".join(
        "0 = the paper's single pass" if r == 0 else f"{r} = that many centre updates after it" for r in args.refine_steps
    )
    head = [
        f"Command: `{cmd}`  ",
        f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end  ",
        f"Date: {now()}; total wall time {time.time() - t_start:.0f} s  ",
        f"Training stream: the first {args.n_images} BSDS500 train images (sorted by name), one random "
        f"{args.crop}x{args.crop} crop each, schedule {args.iters_feature} feature + {args.iters_seed} seed iterations "
        f"per image (paper: 40 + 10), Adam 3e-4, beta=10, "
        f"phi=1, n=9, Sobel contours, homogeneity loss (weight 1, compactness 0.1) and seed features averaged "
        f"over one grid cell (the trainer's defaults) unless the row says otherwise; K drawn log-uniformly in [100, 1000] (scaled to the crop). **This is a short "
        f"stream** (the shipped weights use all 200 images), chosen because CPU time was scarce.  ",
        f"Evaluation: first {args.n_val} BSDS500 val images, best ground truth per image, after connectivity "
        f"enforcement; BR/BP with 2 px tolerance; refine_steps {' and '.join(map(str, args.refine_steps))} "
        f"({evaluation_mode}; the forgetting study uses {args.refine_steps[0]}).",
        "",
    ]
    lines = ["# LNSNet ablation (paper Fig. 4a)", "", *head]
    lines += ["| model | K | ASA | BR | BP | UE | actual count | mean seed shift (cells) |", "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        shift = res.get("_shift", float("nan"))
        for k in args.ks:
            r = res[k]
            lines.append(
                f"| {name} | {k} | {r['asa']:.4f} | {r['br']:.4f} | {r['bp']:.4f} | {r['ue']:.4f} | {r['count']:.0f} | "
                + (f"{shift:.3f} |" if "_shift" in res else "- |")
            )
    lines += ["", "Training wall time per model: " + ", ".join(f"{n}: {t:.0f} s" for n, t in timings.items()), ""]
    (out / "lnsnet_ablation.md").write_text("\n".join(lines) + "\n")

    fl = ["# LNSNet forgetting study", "", *head]
    fl += [
        f"ASA at K={args.forget_k} on each of the {args.n_images} training images (full image), measured right after the "
        "image was learned and again after the whole stream. Positive 'forgetting' = ASA lost.",
        "",
        "| model | mean ASA right after learning | mean ASA after the stream | mean forgetting | images that got worse |",
        "|---|---|---|---|---|",
    ]
    for name, (after, end) in forgetting.items():
        idx = sorted(after)
        a = np.array([after[i] for i in idx])
        e = np.array([end[i] for i in idx])
        fl.append(f"| {name} | {a.mean():.4f} | {e.mean():.4f} | {(a - e).mean():+.4f} | {(e < a).sum()}/{len(a)} |")
    fl += ["", "Per image (ASA right after learning -> after the stream):", "", "| image | " + " | ".join(forgetting) + " |",
           "|---|" + "---|" * len(forgetting)]
    for i, p in enumerate(paths):
        cells = [f"{forgetting[n][0].get(i, float('nan')):.4f} -> {forgetting[n][1][i]:.4f}" for n in forgetting]
        fl.append(f"| {p.name} | " + " | ".join(cells) + " |")
    (out / "lnsnet_forgetting.md").write_text("\n".join(fl) + "\n")
    print("\n".join(lines))
    print("\n".join(fl))


if __name__ == "__main__":
    main()
