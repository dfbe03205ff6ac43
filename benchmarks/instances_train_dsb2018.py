"""Train the shipped ``dsb2018-nuclei`` spatial-embedding model on DSB2018 (CPU-friendly).

The fixed held-out test split of :func:`clusterseg.datasets.dsb2018` is never
seen; the remaining images are split again by name into training and
validation (checkpoint selection and clustering-threshold tuning).

Run (the paper's width-1.0 network under bfloat16 autocast, imaging-modality
augmentation; about 90 minutes on 1 CPU thread with AVX512-BF16)::

    python benchmarks/instances_train_dsb2018.py --out runs/dsb2018 --threads 1

then copy ``runs/dsb2018/best.pt`` to ``src/clusterseg/weights/dsb2018_nuclei.pt``.

``--exclude-modality colour`` trains without the colour (bright-field, H&E)
images: the leave-one-modality-out run, tested on the held-out colour images.
"""

from __future__ import annotations

import argparse
import time

import torch

from clusterseg.datasets import dsb2018, image_modality, split_by_name
from clusterseg.training.instances import InstanceTrainingConfig, train_instances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--val-every", type=int, default=3)
    parser.add_argument("--no-augment", action="store_true", help="no imaging-modality augmentation")
    parser.add_argument("--p-scale", type=float, default=0.5)
    parser.add_argument("--modality-balance", type=float, default=0.0,
                        help="0 uniform over images; 1 equal crop shares for grey and colour images")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--initial-weights", default=None,
                        help="fine-tune this model (name or path; same width) instead of starting afresh")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--exclude-modality", choices=("grey", "colour"), default=None,
                        help="leave these images out of training and validation")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = dsb2018(split="train")
    kept, held = split_by_name(data.names, 0.1, salt="val")
    train = [data[i] for i in kept]
    val = [data[i] for i in held]
    if args.exclude_modality:
        train = [s for s in train if image_modality(s.image) != args.exclude_modality]
        val = [s for s in val if image_modality(s.image) != args.exclude_modality]
    print(f"DSB2018: {len(train)} training, {len(val)} validation images (test split held out)", flush=True)
    config = InstanceTrainingConfig(epochs=args.epochs, crop=args.crop, batch_size=args.batch_size,
                                    width=args.width, val_every=args.val_every, augment=not args.no_augment,
                                    p_scale=args.p_scale, precision=args.precision,
                                    initial_weights=args.initial_weights, lr=args.lr,
                                    modality_balance=args.modality_balance)
    t0 = time.perf_counter()
    best = train_instances(train, val, args.out, config, resume=args.resume, progress=not args.no_progress,
                           metadata={"data": "DSB2018 stage 1 train minus the fixed 10% test split",
                                     "command": "python benchmarks/instances_train_dsb2018.py " + " ".join(
                                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                         if k not in ("out", "resume", "no_progress", "threads"))})
    print(f"best model: {best}; {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
