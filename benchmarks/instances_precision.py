"""bfloat16 autocast against float32 for the spatial-embedding network: training step and inference time.

Paired in one process, alternating the two precisions so that both see the
same machine load: one training step (forward, loss, backward, Adam) on a
batch of crops, and one inference pass over an image, for each network width.
Quality is measured separately by ``benchmarks/instances_dsb2018.py --float32``.

Usage::

    python benchmarks/instances_precision.py --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import header_lines, markdown_table, set_threads, write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def step_timer(width: float, crop: int, batch: int):
    """A function ``precision -> seconds`` of one training step of a fresh network."""
    import torch

    from clusterseg.instances.loss import SpatialEmbeddingLoss
    from clusterseg.models.spatial_embedding import SpatialEmbeddingModel
    from clusterseg.nn.precision import autocast

    torch.manual_seed(0)
    model = SpatialEmbeddingModel(width=width)
    criterion = SpatialEmbeddingLoss(2, pixel_size=model.pixel_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, crop, crop)
    y = torch.zeros(batch, crop, crop, dtype=torch.long)
    y[:, crop // 8 : crop // 3, crop // 8 : crop // 3] = 1
    y[:, crop // 2 : crop - 8, crop // 2 : crop - 8] = 2

    def run(precision: str) -> float:
        t0 = time.perf_counter()
        with autocast("cpu", precision):
            raw = model(x)
        terms = criterion(raw.float(), y)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        return time.perf_counter() - t0

    return run


def inference_timer(width: float, side: int):
    from clusterseg.models.spatial_embedding import SpatialEmbeddingModel

    model = SpatialEmbeddingModel(width=width).eval()
    image = (np.random.default_rng(0).random((side, side)) * 255).astype(np.uint8)

    def run(precision: str) -> float:
        t0 = time.perf_counter()
        model.predict_maps(image, channel_axis=None, precision=precision)
        return time.perf_counter() - t0

    return run


def paired(run, repeats: int) -> dict[str, float]:
    """Median seconds per precision over ``repeats`` alternating calls (after one untimed call each)."""
    times = {"float32": [], "bfloat16": []}
    for precision in times:
        run(precision)
    for _ in range(repeats):
        for precision in times:
            times[precision].append(run(precision))
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "instances_precision.md"))
    args = p.parse_args(argv)
    set_threads(args.threads)
    from clusterseg.nn.precision import bf16_supported

    if not bf16_supported("cpu"):
        print("this CPU has no native bfloat16: nothing to compare (float32 is used)")
        return 0
    rows = []
    for width in (0.5, 1.0):
        for what, run in (("training step, batch 4 x 192²", step_timer(width, 192, 4)),
                          ("inference, 512² image", inference_timer(width, 512))):
            t = paired(run, args.repeats)
            rows.append([what, f"{width}", f"{t['float32'] * 1000:.0f}", f"{t['bfloat16'] * 1000:.0f}",
                         f"{t['float32'] / t['bfloat16']:.2f}x"])
            print(rows[-1], flush=True)
    lines = header_lines("Spatial embeddings: bfloat16 autocast vs float32 (CPU)", threads=args.threads)
    lines += markdown_table(["what", "width", "float32 ms", "bfloat16 ms", "speed-up"], rows)
    lines += ["", f"Median of {args.repeats} alternating calls per precision after one untimed call each, "
              "one process. Quality: `benchmarks/results/instances_dsb2018_augmented.md` (float32 rows)."]
    write_text_atomic(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
