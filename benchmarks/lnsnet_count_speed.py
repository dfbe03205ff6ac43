"""LNSNet speed per core against scikit-image SLIC, count control and quality at matched counts.

Timing: for every torch thread count of ``--threads`` and every K, LNSNet
(``lnsnet_superpixels`` with its defaults, ``precision="auto"``, and with
``precision="float32"``) and ``skimage.segmentation.slic`` called directly on
the uint8 image run alternately, image by image, in one process; each time is
the fastest of ``--repeats`` calls, then the median over the images. Ratios are
LNSNet's median over SLIC's median from the same loop.

Quality: ASA, BR and UE (best over the human ground truths, mean over the
images) and the actual counts on the first ``--quality-images`` val images,
for both precisions, beside the LNSNet rows of the committed
``lnsnet_quality_before_kernels.json`` (the LNSNet rows of ``superpixels_bsds_val.json``
before the compiled CPU kernels, same protocol) when present.

Run::

    PYTHONPATH=src python benchmarks/lnsnet_count_speed.py
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

KS = [100, 200, 400, 600, 1000]
#: Quality baseline: the LNSNet rows of superpixels_bsds_val.json before the compiled kernels (2026-12-03).
PREVIOUS = Path(__file__).resolve().parent / "results" / "lnsnet_quality_before_kernels.json"


def fastest(fn, image, repeats: int):
    """Fastest of ``repeats`` calls (transient load from other processes only ever adds time) and the output."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(image)
        best = min(best, time.perf_counter() - t)
    return best, out


def time_one_k(k: int, images, model, repeats: int) -> dict:
    """Median ms of LNSNet (auto, float32) and SLIC at one K, and the count ratios of the default."""
    from skimage.segmentation import slic

    from clusterseg.superpixels.lnsnet import lnsnet_superpixels

    methods = {
        "auto": lambda im: lnsnet_superpixels(im, k, weights=model),
        "float32": lambda im: lnsnet_superpixels(im, k, weights=model, precision="float32"),
        "slic": lambda im: slic(im, n_segments=k, start_label=0),
    }
    for fn in methods.values():  # untimed warm-up at this K: allocator and thread pool settle
        fn(images[0])
    times = {name: [] for name in methods}
    counts = []
    for image in images:
        for name, fn in methods.items():
            secs, labels = fastest(fn, image, repeats)
            times[name].append(secs)
            if name == "auto":
                counts.append((int(labels.max()) + 1) / k)
    row = {name: 1000 * float(np.median(t)) for name, t in times.items()}
    row["count_ratios"] = counts
    return row


def quality(samples, ks, model) -> dict:
    """``{precision: {k: metrics}}`` of LNSNet on uint8 images."""
    from clusterseg.superpixels.lnsnet import lnsnet_superpixels

    images = [(np.round(rgb * 255).astype(np.uint8), gts) for rgb, gts in samples]
    return {
        p: evaluate(lambda im, k, p=p: lnsnet_superpixels(im, k, weights=model, precision=p), images, ks)
        for p in ("float32", "auto")
    }


def previous_rows(ks) -> dict:
    if not PREVIOUS.is_file():
        return {}
    rows = json.loads(PREVIOUS.read_text()).get("rows", {})
    return {k: rows[f"lnsnet|{k}"] for k in ks if f"lnsnet|{k}" in rows}


def allocator_env() -> str:
    """The allocator settings of this run (glibc ``MALLOC_*`` tunables, a preloaded allocator), as a command prefix."""
    names = sorted(n for n in os.environ if n.startswith("MALLOC_") or n == "LD_PRELOAD")
    return "".join(f"{n}={os.environ[n]} " for n in names)


def speed_lines(timings: dict) -> list[str]:
    lines = [
        "| torch threads | K | actual/K min | mean | max | LNSNet ms | float32 ms | skimage SLIC ms "
        "| **LNSNet / SLIC** | float32 / SLIC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for threads, rows in timings.items():
        for k, r in rows.items():
            c = np.array(r["count_ratios"])
            lines.append(
                f"| {threads} | {k} | {c.min():.3f} | {c.mean():.3f} | {c.max():.3f} | {r['auto']:.0f} | "
                f"{r['float32']:.0f} | {r['slic']:.0f} | **{r['auto'] / r['slic']:.2f}** | {r['float32'] / r['slic']:.2f} |"
            )
    return lines


def quality_lines(scores: dict, previous: dict, n_images: int) -> list[str]:
    lines = [
        f"Quality on the first {n_images} val images (ASA, BR at 2 px, UE; best over the ground truths, mean over "
        "the images). 'previous': `lnsnet_quality_before_kernels.json`, the LNSNet rows of "
        "`superpixels_bsds_val.json` on 2026-12-03, before the compiled CPU kernels (float32 embedder, same "
        "images and protocol when all 100 are used).",
        "",
        "| K | count auto | ASA auto | ASA float32 | ASA previous | BR auto | BR float32 | BR previous "
        "| UE auto | UE float32 | UE previous | max abs diff auto vs float32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, a in scores["auto"].items():
        f, p = scores["float32"][k], previous.get(k, {})
        diff = max(abs(a[m] - f[m]) for m in ("asa", "br", "ue"))
        prev = {m: (f"{p[m]:.4f}" if m in p else "-") for m in ("asa", "br", "ue")}
        lines.append(
            f"| {k} | {a['count']:.0f} | {a['asa']:.4f} | {f['asa']:.4f} | {prev['asa']} | {a['br']:.4f} | "
            f"{f['br']:.4f} | {prev['br']} | {a['ue']:.4f} | {f['ue']:.4f} | {prev['ue']} | {diff:.4f} |"
        )
    return lines


def kernels_note() -> str:
    """Which implementation of the CPU passes ran (the compiled kernels need Numba)."""
    from clusterseg.nn import lnsnet_kernels

    if not lnsnet_kernels.available():
        return "Numba not installed: the PyTorch passes ran."
    import numba

    return (f"Compiled CPU kernels (Numba {numba.version_info.string}, serial: they run on one core whatever "
            "the torch setting) for the colour conversion, the input channels, the last norm, seed pooling "
            "and window means, the assignment with centre updates, the single-pixel islands and the border lengths of the connectivity step.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-val", type=int, default=20, help="images timed")
    ap.add_argument("--ks", type=int, nargs="+", default=KS)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts timed")
    ap.add_argument("--repeats", type=int, default=3, help="calls per image and method; the fastest is kept")
    ap.add_argument("--quality-images", type=int, default=100, help="val images for the quality table (0: skip)")
    ap.add_argument("--weights", default=None, help="default: the shipped weights")
    ap.add_argument("--out", default="benchmarks/results/lnsnet_count_speed.md")
    args = ap.parse_args()
    from clusterseg.nn.precision import resolve_precision
    from clusterseg.superpixels.lnsnet import load_model

    model = load_model(args.weights)
    # users hand both methods the uint8 image as read from disk
    images = [np.round(rgb * 255).astype(np.uint8) for rgb, _ in load_samples("val", limit=args.n_val)]
    timings = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        timings[threads] = {k: time_one_k(k, images, model, args.repeats) for k in args.ks}
        print(speed_lines({threads: timings[threads]})[2:], flush=True)
    load = os.getloadavg()[0]
    torch.set_num_threads(max(args.threads))
    lines = [
        "# LNSNet: speed per core against scikit-image SLIC, count control, quality", "",
        f"Command: `{allocator_env()}PYTHONPATH=src python benchmarks/lnsnet_count_speed.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {machine()}; load average {load:.1f} after the timing  ",
        f"Date: {now()}  ",
        f"Timed: first {len(images)} BSDS500 val images (481x321 / 321x481), uint8 as read from disk. "
        f"Weights: {args.weights or 'shipped default'}. 'auto' precision here: {resolve_precision('auto')}.", "",
        "Each time is the fastest of "
        f"{args.repeats} calls on the image, methods alternating image by image in one process, then the median "
        "over the images; ratios come from the same loop. SLIC is `skimage.segmentation.slic(image, n_segments=K, "
        "start_label=0)` (single-threaded whatever the torch setting). LNSNet: `lnsnet_superpixels(image, K)` "
        "with its defaults (single pass + 5 centre updates, precision 'auto'), and with `precision='float32'`. "
        f"{kernels_note()}", "",
        *speed_lines(timings), "",
    ]
    if args.quality_images > 0:
        samples = load_samples("val", limit=args.quality_images)
        scores = quality(samples, args.ks, model)
        lines += quality_lines(scores, previous_rows(args.ks) if len(samples) == 100 else {}, len(samples)) + [""]
    ok = all(0.85 <= min(r["count_ratios"]) and max(r["count_ratios"]) <= 1.15 for t in timings.values() for r in t.values())
    lines += [f"All counts within +/-15% of K: **{'yes' if ok else 'no'}**.", ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
