"""Spatial-embedding loss: the grouped (near pixels only) Lovasz hinge against the dense form.

:class:`clusterseg.instances.loss.SpatialEmbeddingLoss` scores each object's
Lovasz hinge only on the pixels near it in embedding space (and its own
pixels); the dense form (the implementation before 2026-12-04, written out
below as the reference) sorts all (objects x pixels) hinge errors. Both are
timed, alternating, in one process on the same DSB2018 training crops (batch
4 x 192², the trainer's crops with its augmentation), on the raw outputs of
the shipped model (late in training) and of a fresh network (start of
training): loss forward + backward, and one whole training step of a fresh
width-0.5 network (bfloat16 autocast where supported, Adam). The table also
gives the largest difference of the loss terms between the two.

Usage::

    python benchmarks/instances_loss_speed.py --threads 1
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


def dense_loss(raw, labels, pixel_size: float, foreground_weight: float = 10.0):
    """The loss of Neven et al. over dense (objects x pixels) tensors, one seed map: the reference."""
    import torch

    from clusterseg.nn.lovasz import lovasz_hinge
    from clusterseg.nn.spatial_embedding import coordinate_grid, decode_output, gaussian_membership

    maps = decode_output(raw, 2, pixel_size=pixel_size)
    grid = coordinate_grid(*raw.shape[-2:], pixel_size=pixel_size, dtype=raw.dtype).reshape(2, -1)
    terms = []
    for b in range(raw.shape[0]):
        emb, sig, seed = (m[b].reshape(m.shape[1], -1) for m in (maps.embedding, maps.sigma, maps.seed))
        flat = labels[b].reshape(-1)
        seed_loss = seed[0][flat == 0].square().sum()
        ids = torch.unique(flat)
        masks = flat[None] == ids[ids != 0][:, None]
        fm = masks.to(raw.dtype)
        counts = fm.sum(dim=1, keepdim=True)
        centres, sigma_k = fm @ grid.T / counts, fm @ sig.T / counts
        var = (fm @ sig.square().T - 2 * sigma_k.detach() * (fm @ sig.T) + counts * sigma_k.detach().square())
        phi = gaussian_membership(emb, centres, sigma_k)
        inst = lovasz_hinge(2 * phi - 1, masks).sum() / len(fm)
        seed_loss = seed_loss + foreground_weight * (fm * (seed[0] - phi.detach()).square()).sum()
        terms.append(torch.stack([inst, (var / counts).mean(dim=1).sum() / len(fm), seed_loss / flat.numel()]))
    inst, var, seed_term = torch.stack(terms).mean(dim=0)
    return inst + 10 * var + seed_term, inst, var, seed_term


def training_batches(n: int):
    import torch

    from clusterseg.datasets import dsb2018
    from clusterseg.training.instances import InstanceCrops, InstanceTrainingConfig, prepare_samples

    data = dsb2018(split="train")
    samples = prepare_samples([data[i] for i in range(0, len(data), max(1, len(data) // 100))])
    crops = InstanceCrops(samples, InstanceTrainingConfig(crop=192, width=0.5))
    crops.epoch = 0
    loader = iter(torch.utils.data.DataLoader(crops, batch_size=4, shuffle=False))
    return [next(loader) for _ in range(n)]


def objects_per_crop(labels) -> float:
    return float(np.mean([len(np.unique(crop.numpy())) - 1 for crop in labels]))


def loss_timer(raw, labels, loss_fn):
    def run() -> tuple[float, np.ndarray]:
        r = raw.clone().requires_grad_(True)
        t0 = time.perf_counter()
        terms = loss_fn(r, labels)
        terms[0].backward()
        return time.perf_counter() - t0, np.array([float(t.detach()) for t in terms])

    return run


def step_timer(batch, loss_fn):
    import torch

    from clusterseg.models.spatial_embedding import SpatialEmbeddingModel
    from clusterseg.nn.precision import autocast

    torch.manual_seed(0)
    model = SpatialEmbeddingModel(width=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = batch

    def run() -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        with autocast("cpu", "auto"):
            raw = model(x)
        terms = loss_fn(raw.float(), y)
        optimizer.zero_grad(set_to_none=True)
        terms[0].backward()
        optimizer.step()
        return time.perf_counter() - t0, np.zeros(4)

    return run


def paired(timers: dict, repeats: int) -> dict:
    """Median seconds of alternating calls (after one untimed call each) and the terms of the last calls."""
    for run in timers.values():
        run()
    seconds = {name: [] for name in timers}
    last = {}
    for _ in range(repeats):
        for name, run in timers.items():
            s, terms = run()
            seconds[name].append(s)
            last[name] = terms
    return {name: (float(np.median(v)), last[name]) for name, v in seconds.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "instances_loss_speed.md"))
    args = p.parse_args(argv)
    set_threads(args.threads)
    import torch

    from clusterseg.instances.loss import SpatialEmbeddingLoss
    from clusterseg.models.spatial_embedding import SpatialEmbeddingModel

    batches = training_batches(args.batches)
    rows = []
    for name, model in [("shipped dsb2018-nuclei", SpatialEmbeddingModel.from_pretrained("dsb2018-nuclei")),
                        ("fresh network", SpatialEmbeddingModel(width=0.5))]:
        grouped = SpatialEmbeddingLoss(2, pixel_size=model.pixel_size)

        def dense(raw, labels, size=model.pixel_size):
            return dense_loss(raw, labels, size)

        times, diffs = {"dense": [], "grouped": []}, []
        for x, y in batches:
            with torch.no_grad():
                raw = model(x).float()
            result = paired({"dense": loss_timer(raw, y, dense), "grouped": loss_timer(raw, y, grouped)}, args.repeats)
            for key in times:
                times[key].append(result[key][0])
            diffs.append(np.abs(result["dense"][1] - result["grouped"][1]).max())
            print(f"{name}: {objects_per_crop(y):.0f} objects/crop, dense "
                  f"{result['dense'][0] * 1e3:.0f} ms, grouped {result['grouped'][0] * 1e3:.0f} ms", flush=True)
        dense_ms, grouped_ms = (1e3 * float(np.mean(times[k])) for k in ("dense", "grouped"))
        rows.append([f"loss forward + backward, {name} outputs", f"{dense_ms:.0f}", f"{grouped_ms:.0f}",
                     f"{dense_ms / grouped_ms:.2f}x", f"{max(diffs):.1e}"])
    steps = {"dense": [], "grouped": []}
    for batch in batches:
        pixel_size = SpatialEmbeddingModel(width=0.5).pixel_size
        result = paired({"dense": step_timer(batch, lambda r, y: dense_loss(r, y, pixel_size)),
                         "grouped": step_timer(batch, SpatialEmbeddingLoss(2, pixel_size=pixel_size))}, args.repeats)
        for key in steps:
            steps[key].append(result[key][0])
    dense_ms, grouped_ms = (1e3 * float(np.mean(steps[k])) for k in ("dense", "grouped"))
    rows.append(["training step, fresh width-0.5 network", f"{dense_ms:.0f}", f"{grouped_ms:.0f}",
                 f"{dense_ms / grouped_ms:.2f}x", ""])
    objects = np.mean([objects_per_crop(y) for _, y in batches])
    lines = header_lines("Spatial-embedding loss: grouped vs dense Lovasz hinge", threads=args.threads)
    lines += ["", f"Data: {len(batches)} batches of 4 DSB2018 training crops (192², the trainer's crops and "
              f"augmentation, {objects:.0f} labelled objects per crop on average). Times: mean over the "
              f"batches of the median of {args.repeats} alternating calls, one process.", ""]
    lines += markdown_table(["what", "dense ms", "grouped ms", "speed-up", "max term difference"], rows)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
