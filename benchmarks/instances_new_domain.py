"""A new domain with the trainer's defaults: touching, elongated, textured objects on clutter.

What a new user does: ``clusterseg train instances`` on about 100 annotated
images of objects unlike nuclei, with no tuning flag (crop and epochs derived
from the data by :func:`clusterseg.training.instances.suggest_config`), then
scores held-out images. The images are rendered
(:func:`clusterseg.datasets.synthetic.synthetic_rosettes`: plant-rosette-like
leaves, 8-16 per image, touching and occluding, on soil with stones and
twigs), so the benchmark needs no data download and nobody tuned the model
for it. Baseline: a classical excess-green watershed (``2G - R - B``, then
:func:`clusterseg.instances.classical.watershed_nuclei`, parameters
grid-searched on the training images).

Scores: symmetric best Dice (SBD) and |difference in count| (|DiC|), the
CVPPP leaf-segmentation scores (Scharr et al. 2016); DSB accuracy
TP/(TP+FP+FN) at IoU 0.5 and the DSB score (mean over IoU 0.50:0.95).

Usage::

    python benchmarks/instances_new_domain.py --threads 2            # train, evaluate, write the table
    python benchmarks/instances_new_domain.py --threads 2 --resume   # continue an interrupted run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import header_lines, markdown_table, set_threads, write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def excess_green(image: np.ndarray) -> np.ndarray:
    """``2G - R - B`` scaled to [0, 1]: the classical vegetation index."""
    rgb = image[..., :3].astype(np.float32) / 255.0
    index = 2 * rgb[..., 1] - rgb[..., 0] - rgb[..., 2]
    return (index - index.min()) / max(float(np.ptp(index)), 1e-6)


def training_seconds(log: Path) -> float:
    """Training time of the whole run (all epochs, also across resumptions) from its log."""
    import csv

    with open(log, newline="") as fh:
        return sum(float(row["seconds"]) for row in csv.DictReader(fh))


def scores(preds, gts) -> dict:
    from clusterseg.metrics import difference_in_count, dsb_score, symmetric_best_dice

    dsb = dsb_score(preds, gts)
    return {"sbd": float(np.mean([symmetric_best_dice(p, g) for p, g in zip(preds, gts)])),
            "abs_dic": float(np.mean([abs(difference_in_count(p, g)) for p, g in zip(preds, gts)])),
            "dic": float(np.mean([difference_in_count(p, g) for p, g in zip(preds, gts)])),
            "acc50": dsb.at(0.5), "dsb_score": dsb.score}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train-images", type=int, default=100)
    p.add_argument("--test-images", type=int, default=28)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run", default="runs/new_domain", help="training run folder")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "instances_new_domain.md"))
    args = p.parse_args(argv)
    set_threads(args.threads)

    import clusterseg
    from clusterseg.datasets import split_by_name
    from clusterseg.datasets.synthetic import synthetic_rosettes
    from clusterseg.instances.classical import tune_watershed_nuclei, watershed_nuclei
    from clusterseg.training.instances import suggest_config, train_instances

    data = synthetic_rosettes(args.train_images, seed=0)
    test = synthetic_rosettes(args.test_images, seed=1)
    kept, held = split_by_name([s.name for s in data], 0.1, salt="val")
    train, val = [data[i] for i in kept], [data[i] for i in held]
    config, reason = suggest_config(train)
    print(f"{len(train)} train, {len(val)} val, {len(test)} test images; settings: {reason}", flush=True)
    best = train_instances(train, val, args.run, config, resume=args.resume, progress=False)
    train_seconds = training_seconds(Path(args.run) / "log.csv")
    gts = [s.labels for s in test]

    rows, results = [], {}
    predictions = [clusterseg.instances(s.image, model=best).labels for s in test]
    results["spatial embeddings (trainer defaults)"] = scores(predictions, gts)
    green_train = [excess_green(s.image) for s in train]
    tuned = tune_watershed_nuclei(green_train, [s.labels for s in train], channel_axis=None)
    params = {k: v for k, v in tuned.items() if k != "score"}
    ws = [watershed_nuclei(excess_green(s.image), channel_axis=None, **params) for s in test]
    results[f"excess-green watershed (tuned: {params})"] = scores(ws, gts)
    for name, r in results.items():
        rows.append([name, f"{r['sbd']:.3f}", f"{r['abs_dic']:.2f}", f"{r['dic']:+.2f}", f"{r['acc50']:.3f}",
                     f"{r['dsb_score']:.3f}"])
    lines = header_lines("New domain with the trainer's defaults: rendered rosettes", threads=args.threads)
    lines += [f"Data: `synthetic_rosettes` seed 0 ({len(train)} train + {len(val)} validation images, 256 x 256) and "
              f"seed 1 ({len(test)} test images). Settings chosen by `suggest_config`: {reason}; "
              f"width {config.width}, precision {config.precision}, modality augmentation {config.augment}. "
              f"Training took {train_seconds / 60:.1f} min in all (the sum of the epochs in the run's log, "
              "validation included, whatever --threads the training ran with).", ""]
    lines += markdown_table(["method", "SBD", "abs DiC", "DiC", "Acc@0.5", "DSB score"], rows)
    lines += ["", "- SBD: symmetric best Dice, |DiC|: mean absolute difference in object count (CVPPP; "
              "Scharr et al. 2016). Acc@0.5: TP/(TP+FP+FN) at IoU 0.5 per image, averaged; DSB score: the same "
              "averaged over IoU 0.50:0.95."]
    write_text_atomic(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
