"""Tiled instance segmentation of a large image: time, peak memory, and agreement with untiled inference.

A mosaic of held-out DSB2018 test images (default 4096 x 4096) is segmented
with the shipped model, tiled (``tile_size`` 1024 and 512) and, for reference,
as one tile. Reported: wall time, peak resident memory of a fresh process
per setting, object count, and how well the tiled result matches the untiled
one (DSB accuracy at IoU 0.5 and 0.9, treating the untiled result as truth).

Run::

    python benchmarks/instances_large_image.py --size 4096 --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, header_lines, markdown_table, write_text_atomic  # noqa: E402


def mosaic(size: int) -> np.ndarray:
    """A ``size`` x ``size`` grey mosaic of DSB2018 test images (converted to grey, cropped/tiled)."""
    from clusterseg.datasets import dsb2018
    from clusterseg.features import normalize_percentile
    from skimage.color import rgb2gray

    test = dsb2018(split="test")
    canvas = np.zeros((size, size), np.float32)
    r = c = row_h = 0
    i = 0
    while r < size:
        image = test[i % len(test)].image
        i += 1
        grey = normalize_percentile(rgb2gray(image[..., :3]) if image.ndim == 3 else image.astype(float))
        if grey.mean() > 0.5:  # brightfield: invert so that all tiles look like fluorescence
            grey = 1 - grey
        h, w = grey.shape
        h, w = min(h, size - r), min(w, size - c)
        canvas[r : r + h, c : c + w] = grey[:h, :w]
        row_h = max(row_h, h)
        c += w
        if c >= size:
            r, c, row_h = r + row_h, 0, 0
    return (np.clip(canvas, 0, 1) * 255).astype(np.uint8)


def run_one(args: argparse.Namespace) -> None:
    """Child process: segment the mosaic once and print a JSON line."""
    import resource

    import torch

    import clusterseg

    torch.set_num_threads(args.threads)
    image = np.load(args.image)
    clusterseg.instances(image[:256, :256], channel_axis=None)  # load the model, warm up
    t0 = time.perf_counter()
    result = clusterseg.instances(image, channel_axis=None, tile_size=args.tile)
    seconds = time.perf_counter() - t0
    np.save(args.labels, result.labels)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "objects": result.n_instances}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tiles", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results/instances_large_image.md"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--labels", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args)
        return

    from clusterseg.metrics import match_instances

    work = Path(args.out).with_suffix("")
    work = work.parent / f".{work.name}_work"
    work.mkdir(parents=True, exist_ok=True)
    image_path = work / "mosaic.npy"
    np.save(image_path, mosaic(args.size))
    settings = [("untiled", args.size)] + [(f"tiles of {t}", t) for t in args.tiles]
    results = {}
    for name, tile in settings:
        labels_path = work / f"labels_{tile}.npy"
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--image", str(image_path), "--labels", str(labels_path),
             "--tile", str(tile), "--threads", str(args.threads)],
            check=True, capture_output=True, text=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1]) | {"labels": labels_path}
        print(name, {k: v for k, v in results[name].items() if k != "labels"}, flush=True)
    reference = np.load(results["untiled"]["labels"])
    rows = []
    for name, _ in settings:
        r = results[name]
        labels = np.load(r["labels"])
        agree50 = match_instances(labels, reference, iou_threshold=0.5).dsb_accuracy
        agree90 = match_instances(labels, reference, iou_threshold=0.9).dsb_accuracy
        rows.append([name, str(r["objects"]), f"{r['seconds']:.1f}", f"{r['peak_mb']:.0f}", f"{agree50:.4f}",
                     f"{agree90:.4f}"])
    lines = header_lines(f"Tiled instance segmentation of a {args.size} x {args.size} image", threads=args.threads)
    lines += [
        f"Image: a {args.size} x {args.size} grey mosaic of the held-out DSB2018 test images (brightfield ones "
        "inverted); shipped `dsb2018-nuclei` model, no TTA, default `tile_overlap` 64. Each setting runs in a fresh "
        "process; peak memory is its maximum resident set size (model, image, maps and labels included). "
        "Agreement: DSB accuracy TP/(TP+FP+FN) of each result against the untiled one at IoU 0.5 and 0.9.",
        "",
    ]
    lines += markdown_table(["setting", "objects", "seconds", "peak MB", "agreement IoU 0.5", "agreement IoU 0.9"], rows)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    for p in work.iterdir():
        p.unlink()
    work.rmdir()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
