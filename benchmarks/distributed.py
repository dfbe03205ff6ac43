"""clusterseg.distributed on a dask LocalCluster: a large Zarr mosaic and a volume, with 1 and 2 workers.

1. **Mosaic**: a ``--size`` x ``--size`` (default 16384) grey mosaic of
   held-out DSB2018 test images, written to Zarr tile by tile (never held
   whole), segmented by :func:`clusterseg.distributed.instances` with the
   shipped model, output written to Zarr. Reported per worker count: wall
   time, throughput, peak resident memory per worker, object count; and, on
   a crop around a chunk corner, agreement with in-process tiled inference
   (:func:`clusterseg.instances` with ``tile_size=1024``) by DSB accuracy at
   IoU 0.5 and 0.9 (objects touching the crop border excluded).
2. **Volume**: a ``--depth`` x 1024 x 1024 (default 256) synthetic
   three-phase "materials" volume, segmented slice by slice by an SP-WNet
   fitted on 4 slices (:func:`clusterseg.distributed.segment_frames`).

Each worker is a process with one thread and one torch thread. Run::

    python benchmarks/distributed.py                       # full size, about 20 min on 2 cores
    python benchmarks/distributed.py --size 4096 --depth 16 --out /tmp/d.md   # smoke test
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
from _common import REPO_ROOT, header_lines, markdown_table, set_threads, write_text_atomic  # noqa: E402

# this file is named like the `distributed` package: keep its folder off the path so dask finds the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

CHUNKS = 2048


# ------------------------------------------------------------------ data
def dsb_tiles() -> list[np.ndarray]:
    """The held-out DSB2018 test images as uint8 grey, bright-field inverted to look like fluorescence."""
    from skimage.color import rgb2gray

    from clusterseg.datasets import dsb2018
    from clusterseg.features import normalize_percentile

    tiles = []
    for sample in dsb2018(split="test"):
        image = sample.image
        grey = normalize_percentile(rgb2gray(image[..., :3]) if image.ndim == 3 else image.astype(float))
        if grey.mean() > 0.5:
            grey = 1 - grey
        tiles.append((np.clip(grey, 0, 1) * 255).astype(np.uint8))
    return tiles


def write_mosaic(path: Path, size: int) -> None:
    """Fill a (size, size) uint8 Zarr array with DSB tiles, one chunk row at a time."""
    import zarr

    tiles = dsb_tiles()
    z = zarr.open_array(str(path), mode="w", shape=(size, size), chunks=(CHUNKS, CHUNKS), dtype="uint8")
    i = 0
    for r0 in range(0, size, CHUNKS):
        band = np.zeros((min(CHUNKS, size - r0), size), np.uint8)
        r = 0
        while r < band.shape[0]:
            c, row_h = 0, 0
            while c < size:
                tile = tiles[i % len(tiles)]
                i += 1
                h, w = min(tile.shape[0], band.shape[0] - r), min(tile.shape[1], size - c)
                band[r:r + h, c:c + w] = tile[:h, :w]
                row_h, c = max(row_h, h), c + w
            r += row_h
        z[r0:r0 + band.shape[0]] = band


def write_volume(path: Path, depth: int, side: int = 1024, seed: int = 0) -> None:
    """A smooth three-phase random volume with noise, (depth, side, side) uint8, one Zarr chunk per slice."""
    import cv2
    import zarr
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    coarse = ndi.gaussian_filter(rng.standard_normal((depth // 8 + 2, side // 16, side // 16)), 1.5)
    coarse /= coarse.std()
    z = zarr.open_array(str(path), mode="w", shape=(depth, side, side), chunks=(1, side, side), dtype="uint8")
    for k in range(depth):
        t = k / 8.0
        lo = int(t)
        field = (1 - (t - lo)) * coarse[lo] + (t - lo) * coarse[lo + 1]
        field = cv2.resize(field.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
        phase = np.digitize(field, [-0.5, 0.5])
        level = np.array([40.0, 120.0, 200.0], np.float32)[phase]
        z[k] = np.clip(level + rng.normal(0, 20, level.shape), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ runs
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_cluster(workers: int, job) -> dict:
    """Run ``job(client)`` on a fresh LocalCluster of ``workers`` single-thread processes."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="10GiB") as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        info = job(client)
        seconds = time.perf_counter() - t0
        peaks = client.run(_peak_mb)
    return {"workers": workers, "seconds": seconds, "peak_mb": max(peaks.values()), **info}


def mosaic_job(image: Path, out: Path, intensity_range):
    def job(client):
        import zarr

        from clusterseg import distributed as cd

        if out.exists():
            shutil.rmtree(out)
        cd.instances(str(image), chunks=CHUNKS, channel_axis=None, client=client, out=str(out),
                     intensity_range=intensity_range)
        labels = zarr.open_array(str(out), mode="r")
        n = max(int(np.asarray(labels[r:r + CHUNKS]).max()) for r in range(0, labels.shape[0], CHUNKS))
        return {"objects": n}
    return job


def volume_job(volume: Path, model_path: Path, out: Path):
    def job(client):
        import zarr

        from clusterseg import distributed as cd

        if out.exists():
            shutil.rmtree(out)
        cd.segment_frames(str(volume), str(model_path), client=client, out=str(out))
        labels = zarr.open_array(str(out), mode="r")
        return {"classes_used": int(len(np.unique(np.asarray(labels[::16]))))}
    return job


def crop_agreement(image: Path, labels: Path, size: int, intensity_range) -> dict:
    """Chunked vs in-process tiled labels on a crop centred on a chunk corner (DSB accuracy)."""
    import zarr

    import clusterseg
    from clusterseg.metrics import dsb_score
    from skimage.segmentation import clear_border

    centre = min(size // 2, CHUNKS)  # a chunk corner when the mosaic has one
    half = min(1024, centre)
    window = (slice(centre - half, centre + half),) * 2
    crop = np.asarray(zarr.open_array(str(image), mode="r")[window])
    chunked = np.asarray(zarr.open_array(str(labels), mode="r")[window]).astype(np.int64)
    local = clusterseg.instances(crop, channel_axis=None, tile_size=1024, intensity_range=intensity_range).labels
    chunked, local = clear_border(chunked), clear_border(local.astype(np.int64))
    score = dsb_score([chunked], [local])
    return {"crop": f"{crop.shape[0]}x{crop.shape[1]} at ({centre - half}, {centre - half})",
            "acc50": score.at(0.5), "acc90": score.at(0.9), "objects_chunked": int(len(np.unique(chunked)) - 1),
            "objects_local": int(len(np.unique(local)) - 1)}


FIT_EPOCHS = 5


def fit_volume_model(volume: Path, model_path: Path) -> float:
    """Fit SP-WNet (8 classes) on 4 evenly spaced slices in this process, with 2 threads; seconds taken."""
    import torch
    import zarr

    from clusterseg.unsupervised import fit_sequence_model

    z = zarr.open_array(str(volume), mode="r")
    picks = np.linspace(0, z.shape[0] - 1, 4).round().astype(int)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        t0 = time.perf_counter()
        model = fit_sequence_model(np.stack([z[int(k)] for k in picks]), 8, train_on=4, channel_axis=None,
                                   epochs=FIT_EPOCHS)
        model.save(model_path, overwrite=True)
        return time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous)


# ------------------------------------------------------------------ report
def runs_table(rows: list[dict], rate_name: str, amount: float, last: str) -> list[str]:
    """Rows per worker count: wall time, ``amount / seconds`` as ``rate_name``, speed-up, memory, ``last``."""
    base = rows[0]["seconds"]
    return markdown_table(
        ["workers", "wall s", rate_name, "speed-up", "peak MB / worker", last.replace("_", " ")],
        [[r["workers"], f"{r['seconds']:.0f}", f"{amount / r['seconds']:.2f}", f"{base / r['seconds']:.2f}x",
          f"{r['peak_mb']:.0f}", r[last]] for r in rows])


def report(args, mosaic_rows, agreement, volume_rows, fit_seconds) -> str:
    mpx = args.size * args.size / 1e6
    lines = header_lines("clusterseg.distributed on a dask LocalCluster", threads=1) + [""]
    lines += [f"## Mosaic: {args.size} x {args.size} DSB2018 test images in Zarr ({mpx:.0f} Mpx), "
              f"`distributed.instances`, chunks {CHUNKS}, model dsb2018-nuclei", ""]
    lines += runs_table(mosaic_rows, "Mpx / s", mpx, "objects")
    lines += ["", f"Agreement with in-process tiled inference (`clusterseg.instances(tile_size=1024)`) on a "
              f"{agreement['crop']} crop around a chunk corner, objects touching the crop border excluded: "
              f"DSB accuracy {agreement['acc50']:.3f} at IoU 0.5, {agreement['acc90']:.3f} at IoU 0.9 "
              f"({agreement['objects_chunked']} vs {agreement['objects_local']} objects).", ""]
    vmpx = args.depth * 1024 * 1024 / 1e6
    lines += [f"## Volume: {args.depth} x 1024 x 1024 synthetic three-phase volume in Zarr ({vmpx:.0f} Mpx), "
              f"`distributed.segment_frames` (SP-WNet, 8 classes, fitted on 4 slices for {FIT_EPOCHS} epochs in "
              f"{fit_seconds:.0f} s with 2 threads)", ""]
    lines += runs_table(volume_rows, "slices / s", args.depth, "classes_used")
    lines += ["", "- Workers: `LocalCluster(processes=True, threads_per_worker=1)`, one torch thread per task; "
              "wall time includes starting the computation, writing the output Zarr and (instances) the "
              "global normalisation sample, border matching and relabelling, not the cluster start-up.",
              "- Peak memory: the largest `ru_maxrss` over the workers after the run (model, torch and the "
              "chunk with its halo).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=16384, help="mosaic side in pixels")
    p.add_argument("--depth", type=int, default=256, help="volume slices (1024 x 1024 each)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--work", default=None, help="folder for the Zarr data (default: a temporary folder)")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results/distributed.md"))
    args = p.parse_args(argv)
    set_threads(1)
    work = Path(args.work or tempfile.mkdtemp(prefix="clusterseg-distributed-"))
    work.mkdir(parents=True, exist_ok=True)
    image, volume = work / "mosaic.zarr", work / "volume.zarr"
    if not image.exists():
        write_mosaic(image, args.size)
    if not volume.exists():
        write_volume(volume, args.depth)
    intensity_range = (0.0, 1.0)  # the mosaic is normalised already: the same range for chunked and in-process
    mosaic_rows = [run_cluster(w, mosaic_job(image, work / f"labels_{w}.zarr", intensity_range))
                   for w in args.workers]
    print(json.dumps(mosaic_rows), flush=True)
    agreement = crop_agreement(image, work / f"labels_{args.workers[0]}.zarr", args.size, intensity_range)
    print(json.dumps(agreement), flush=True)
    fit_seconds = fit_volume_model(volume, work / "spwnet.pt")
    volume_rows = [run_cluster(w, volume_job(volume, work / "spwnet.pt", work / f"classes_{w}.zarr"))
                   for w in args.workers]
    print(json.dumps(volume_rows), flush=True)
    write_text_atomic(args.out, report(args, mosaic_rows, agreement, volume_rows, fit_seconds))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
