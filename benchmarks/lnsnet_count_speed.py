"""LNSNet count control and speed against scikit-image SLIC on BSDS500 val.

For every K the actual number of superpixels returned by
``superpixels(..., method="lnsnet")`` is compared with K (min / mean / max of
the ratio over the images), and the median time per image is measured for
LNSNet (local and, optionally, global assignment) and ``skimage.segmentation.slic``
in the same process, alternating image by image (``--threads`` torch threads; ``--bf16``
adds the default LNSNet under bfloat16 autocast).

Run::

    PYTHONPATH=src python benchmarks/lnsnet_count_speed.py --n-val 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lnsnet_common import load_samples, machine, now  # noqa: E402

KS = [50, 100, 200, 300, 400, 600, 800, 1000, 1500, 2000]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-val", type=int, default=20)
    ap.add_argument("--ks", type=int, nargs="+", default=KS)
    ap.add_argument("--weights", default=None, help="default: the shipped weights")
    ap.add_argument("--global-ks", type=int, nargs="*", default=[100, 400], help="K values also timed with assignment='global'")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="calls per image and method; the fastest is kept")
    ap.add_argument("--bf16", action="store_true", help="also time the default with precision='bfloat16'")
    ap.add_argument("--out", default="benchmarks/results/lnsnet_count_speed.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage.segmentation import slic

    from clusterseg.superpixels.lnsnet import lnsnet_superpixels, load_model

    model = load_model(args.weights)
    # users hand both methods the uint8 image as read from disk
    samples = [(np.round(rgb * 255).astype(np.uint8), gts) for rgb, gts in load_samples("val", limit=args.n_val)]
    lnsnet_superpixels(samples[0][0], 100, weights=model)  # warm-up
    rows = []
    for k in args.ks:
        ratios, t_l, t_s, t_g, t_1, t_b = [], [], [], [], [], []

        def timed(fn, rgb):
            """Fastest of ``--repeats`` calls: transient load from other processes only ever adds time."""
            best, out = float("inf"), None
            for _ in range(args.repeats):
                t = time.perf_counter()
                out = fn(rgb)
                best = min(best, time.perf_counter() - t)
            return best, out

        # untimed warm-up at this K (allocator and thread pool settle; the first K measured slow otherwise)
        lnsnet_superpixels(samples[0][0], k, weights=model)
        lnsnet_superpixels(samples[0][0], k, weights=model, refine_steps=0)
        slic(samples[0][0], n_segments=k, start_label=0)
        for rgb, _ in samples:
            secs, lab = timed(lambda im: lnsnet_superpixels(im, k, weights=model), rgb)
            t_l.append(secs)
            ratios.append((lab.max() + 1) / k)
            t_1.append(timed(lambda im: lnsnet_superpixels(im, k, weights=model, refine_steps=0), rgb)[0])
            t_s.append(timed(lambda im: slic(im, n_segments=k, start_label=0), rgb)[0])
            if args.bf16:
                t_b.append(timed(lambda im: lnsnet_superpixels(im, k, weights=model, precision="bfloat16"), rgb)[0])
            if k in args.global_ks:
                t_g.append(timed(lambda im: lnsnet_superpixels(im, k, weights=model, assignment="global"), rgb)[0])
        r = np.array(ratios)
        rows.append((k, r.min(), r.mean(), r.max(), 1000 * np.median(t_l), 1000 * np.median(t_s),
                     1000 * np.median(t_g) if t_g else float("nan"), 1000 * np.median(t_1),
                     1000 * np.median(t_b) if t_b else float("nan")))
        print(rows[-1], flush=True)
    cmd = "PYTHONPATH=src python benchmarks/lnsnet_count_speed.py " + " ".join(sys.argv[1:])
    lines = [
        "# LNSNet: count control and speed", "",
        f"Command: `{cmd}`  ", f"Machine: {machine()}, load average {os.getloadavg()[0]:.1f} at the end (other jobs on the "
        "cores make absolute times noisy; LNSNet and SLIC are timed alternately on the same images)  ", f"Date: {now()}  ",
        f"Images: first {len(samples)} BSDS500 val images (481x321 / 321x481). Weights: {args.weights or 'shipped default'}.", "",
        "LNSNet: the default (single pass + centre updates, local assignment); 'single pass': `refine_steps=0`; "
        "'global': the paper's N x K assignment. Each time is the fastest of "
        f"{args.repeats} calls on the image (methods alternate image by image), then the median over the images; "
        "ratios are LNSNet's median over SLIC's median.", "",
        "| K | actual/K min | actual/K mean | actual/K max | LNSNet ms (median) | skimage SLIC ms (median) "
        "| LNSNet / SLIC | single pass ms | single pass / SLIC | global ms (median) | bf16 ms | bf16 / SLIC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, lo, me, hi, tl, ts, tg, t1, tb in rows:
        bf = "- | -" if np.isnan(tb) else f"{tb:.0f} | {tb / ts:.2f}"
        lines.append(f"| {k} | {lo:.3f} | {me:.3f} | {hi:.3f} | {tl:.0f} | {ts:.0f} | {tl / ts:.2f} | {t1:.0f} | "
                     f"{t1 / ts:.2f} | " + ("-" if np.isnan(tg) else f"{tg:.0f}") + f" | {bf} |")
    ok = all(0.85 <= lo and hi <= 1.15 for _, lo, _, hi, *_ in rows)
    lines += ["", f"Torch threads: {args.threads}. SLIC is `skimage.segmentation.slic(image, n_segments=K, start_label=0)` "
              "called directly on the uint8 image, as users call it; LNSNet gets the same uint8 image."]
    lines += ["", f"All counts within +/-15% of K: **{'yes' if ok else 'no'}**.", ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
