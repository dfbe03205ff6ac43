"""SP-WNet video demo: train on 4 cheetah frames, segment all 402 with one model.

Writes into ``benchmarks/results/``:

* ``spwnet_cheetah.gif``       -- frame | class map, every ``--gif-step``-th frame;
* ``spwnet_cheetah_strip.png`` -- 6 frames: boundaries overlay (top) and class maps (bottom);
* ``spwnet_cheetah.md``        -- command, machine, timings, temporal consistency;
* ``spwnet_cheetah_model.pt``  -- the trained model (``SPWNetModel.load``).

Class colours come from one fixed palette indexed by class id, so the same
colour means the same class in every frame.

Usage::

    python benchmarks/spwnet_cheetah.py                 # all frames
    python benchmarks/spwnet_cheetah.py --limit 40      # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import header_lines, markdown_table, set_threads  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, default=8, help="number of classes")
    p.add_argument("--max-side", type=int, default=256, help="working resolution (longer side)")
    p.add_argument("--train-frames", type=int, nargs="+", default=[0, 130, 260, 390])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--patch-sizes", type=int, nargs="+", default=[48, 64])
    p.add_argument("--limit", type=int, default=None, help="segment only the first N frames")
    p.add_argument("--gif-step", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    set_threads(args.threads)

    from clusterseg.datasets import data_root
    from clusterseg.io import read_frames, write_gif, write_image
    from clusterseg.unsupervised import SPWNetModel
    from clusterseg.unsupervised._common import downscale
    from clusterseg.visualize import label2rgb_random, overlay_boundaries, side_by_side

    clips = data_root() / "cheetah" / "clips"
    if not clips.is_dir():
        print(f"cheetah frames not found at {clips}; skipping.")
        return 0
    frames = read_frames(clips)
    n = len(frames) if args.limit is None else min(args.limit, len(frames))
    # SP-WNet preprocessing: cut a 10-px border, downscale, unsharp mask (radius 5, amount 1)
    crop = lambda im: im[10:-10, 10:-10]  # noqa: E731
    model = SPWNetModel(args.k, ch_mul=8, n_blocks=3, max_side=args.max_side, unsharp_radius=5.0,
                        unsharp_amount=1.0, n_superpixels=1500, patch_sizes=tuple(args.patch_sizes), beta_img=0.5, beta_patch=1.0, beta_sim=0.1,
                        beta_con=0.1, tau_con=1.0, random_state=0)
    t0 = time.perf_counter()
    model.fit([crop(frames[i]) for i in args.train_frames], epochs=args.epochs,
              progress=lambda d, t: print(f"\rtrain {d}/{t}", end="", flush=True))
    t_train = time.perf_counter() - t0
    print(f"\ntrained in {t_train:.1f}s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    model.save(RESULTS / "spwnet_cheetah_model.pt")

    palette = label2rgb_random(np.arange(args.k)[None, :], seed=3)[0]
    gif, labels_all, small_all, times = [], [], [], []
    for i in range(n):
        im = crop(frames[i])
        t1 = time.perf_counter()
        lab = model.predict(im, full_resolution=False)
        times.append(time.perf_counter() - t1)
        small = (downscale(im.astype(np.float32) / 255.0, args.max_side) * 255).astype(np.uint8)
        labels_all.append(lab)
        small_all.append(small)
        if i % args.gif_step == 0:
            gif.append(side_by_side([small, palette[lab]], gap=2))
        print(f"\rframe {i + 1}/{n} {times[-1]:.2f}s", end="", flush=True)
    print()
    write_gif(RESULTS / "spwnet_cheetah.gif", gif, fps=8, overwrite=True)
    pick = np.linspace(0, n - 1, 6).round().astype(int)
    top = side_by_side([overlay_boundaries(small_all[i], labels_all[i]) for i in pick], gap=2)
    bottom = side_by_side([palette[labels_all[i]] for i in pick], gap=2)
    strip = np.concatenate([top, np.full((2, top.shape[1], 3), 255, np.uint8), bottom], 0)
    write_image(RESULTS / "spwnet_cheetah_strip.png", strip, overwrite=True)

    same = [float((labels_all[i] == labels_all[i - 1]).mean()) for i in range(1, n)]
    hist = np.bincount(np.concatenate([x.ravel() for x in labels_all]), minlength=args.k) / sum(x.size for x in labels_all)
    lines = header_lines("SP-WNet on the cheetah video (train on 4 frames, segment all)", threads=args.threads)
    lines += [
        f"Frames: {n} of {len(frames)} (1920x1080 JPEG, 10-px border cut, working size "
        f"{labels_all[0].shape[1]}x{labels_all[0].shape[0]}, unsharp mask r=5 a=1). "
        f"Training frames: {args.train_frames}; K={args.k}; WNet ch_mul=8, n_blocks=3 (CPU-sized); "
        f"{args.epochs} epochs x 8 steps, patch sides {args.patch_sizes}; SLIC ~1500 superpixels; beta img/patch/sim/con = 0.5/1/0.1/0.1, tau_con=1.",
        "",
    ]
    lines += markdown_table(["quantity", "value"], [
        ["training time (s)", f"{t_train:.1f}"],
        ["inference, median s/frame (preprocess + SLIC + forward + vote)", f"{np.median(times):.2f}"],
        ["inference, total s", f"{np.sum(times):.1f}"],
        ["temporal consistency: median fraction of pixels with the same class as the previous frame",
         f"{np.median(same):.3f}" if same else "n/a"],
        ["classes used (share of pixels > 1%)", str(int((hist > 0.01).sum()))],
    ])
    lines += ["", "Outputs: `spwnet_cheetah.gif` (frame | class map, every "
              f"{args.gif_step}th frame), `spwnet_cheetah_strip.png` (frames {pick.tolist()}: boundaries / classes), "
              "`spwnet_cheetah_model.pt` (`SPWNetModel.load`)."]
    (RESULTS / "spwnet_cheetah.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
