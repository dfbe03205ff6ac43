"""Train LNSNet on a folder of images (thin command-line wrapper of ``train_lnsnet``).

Example (equivalent to the CLI command used for the shipped weights, see
docs/lnsnet_training.md)::

    PYTHONPATH=src python benchmarks/lnsnet_train.py \
        --images ../shared/data/bsds500/images/train --out runs/lnsnet_bsds500 --threads 2
"""

from __future__ import annotations

import argparse
import time

from clusterseg.training.lifelong import train_lnsnet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--contours", default="sobel")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crop", type=int, default=112, help="random crop size (0 = whole image)")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--iters-feature", type=int, default=40)
    ap.add_argument("--iters-seed", type=int, default=10)
    ap.add_argument("--no-gal", action="store_true")
    ap.add_argument("--no-gbl", action="store_true")
    ap.add_argument("--no-seed-layer", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--homogeneity-weight", type=float, default=1.0, help="0 = the paper's objective")
    ap.add_argument("--compactness", type=float, default=0.1)
    ap.add_argument("--seed-window", type=float, default=1.0, help="0 = one-point seed features (paper)")
    args = ap.parse_args()
    t = time.time()
    path = train_lnsnet(
        args.images,
        args.out,
        contours=args.contours,
        resume=args.resume,
        threads=args.threads,
        crop=args.crop or None,
        max_images=args.max_images,
        iters_feature=args.iters_feature,
        iters_seed=args.iters_seed,
        gal=not args.no_gal,
        gbl=not args.no_gbl,
        seed_layer=not args.no_seed_layer,
        progress=not args.no_progress,
        homogeneity_weight=args.homogeneity_weight,
        compactness=args.compactness,
        seed_window=args.seed_window,
    )
    print(f"weights: {path}  wall time: {time.time() - t:.1f} s")


if __name__ == "__main__":
    main()
