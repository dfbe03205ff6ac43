"""Superpixel benchmark on BSDS500: quality and speed of every method at several K.

For each method and each requested number of superpixels K, every image of the
split is segmented with :func:`clusterseg.superpixels.superpixels` (timed alone,
serially, with torch/OpenCV/BLAS limited to ``--threads``); then ASA, BR, BP,
UE and CO are computed with :func:`clusterseg.metrics.superpixel.superpixel_scores`
(optionally in ``--jobs`` worker processes, after the timing is done).

Conventions (see the header of the written table):

* ASA, BR, BP (tolerance 2 px, disk) and UE are computed against each human
  ground truth and the **best** one is kept per image (max for ASA/BR/BP, min
  for UE, each metric separately) -- the convention of the LNSNet/SSN
  evaluations; means over the ground truths are stored in the JSON cache too.
  Values are then averaged over the images. CO (Schick et al.) does not depend
  on the ground truth.
* "count" is the mean actual number of superpixels, which differs from K;
  compare methods at matched counts (the plot uses the count as x axis).
* "ms" is the median wall time per image of the ``superpixels()`` call
  (including input conversion and the final connectivity pass, and for
  felzenszwalb its scale search). The methods are timed in rotation on each
  image so that load from other processes hits them alike. "vs SLIC" is that
  time divided by the scikit-image SLIC time at the same K **from the same
  run**; rows taken from the cache keep the ratio of the run that produced
  them (so rerun ``--methods slic <method>`` together).

Results are cached per (method, K) in a JSON file next to the table, so that
``--methods lnsnet slic`` reruns only those rows and merges them with the
others. Examples::

    python benchmarks/superpixels_bsds.py --limit 5 --out /tmp/sp_check.md
    python benchmarks/superpixels_bsds.py            # all classical methods, full val
    python benchmarks/superpixels_bsds.py --methods slic lnsnet   # add LNSNet rows
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:  # run from a checkout without installing the package
    import clusterseg  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import (  # noqa: E402
    REPO_ROOT,
    command_line,
    header_lines,
    markdown_table,
    set_threads,
    utc_now,
    write_text_atomic,
)

DEFAULT_KS = (100, 200, 300, 400, 600, 800, 1000)
CLASSICAL = ("slic", "snic", "felzenszwalb", "watershed", "seeds", "lsc", "opencv_slic")
DISPLAY = {
    "slic": "SLIC (skimage)",
    "snic": "SNIC (pysnic)",
    "felzenszwalb": "Felzenszwalb (skimage)",
    "watershed": "compact watershed (skimage)",
    "seeds": "SEEDS (OpenCV)",
    "lsc": "LSC (OpenCV)",
    "opencv_slic": "SLIC (OpenCV)",
    "lnsnet": "LNSNet (clusterseg)",
    "lnsnet_onepass": "LNSNet single pass, paper (clusterseg)",
}
# benchmark rows that call a method with options: row name -> (method, keyword arguments)
VARIANTS = {"lnsnet_onepass": ("lnsnet", {"refine_steps": 0})}


def _call(m: str):
    """``f(image, k) -> labels`` for a benchmark row (a method or a VARIANTS entry)."""
    from clusterseg.superpixels import superpixels

    method, kwargs = VARIANTS.get(m, (m, {}))
    return lambda img, k: superpixels(img, k, method=method, **kwargs)
REFERENCE = "slic"

# filled in the parent before the worker pool forks
_GTS: list[list[np.ndarray]] = []


def _scores(args: tuple[int, np.ndarray]) -> dict:
    from clusterseg.metrics.superpixel import superpixel_scores

    index, labels = args
    s = superpixel_scores(labels, _GTS[index], tolerance=2, aggregate=None)
    out = {"count": int(s["n_segments"]), "co": float(s["compactness"])}
    for key, name, best in (
        ("asa", "asa", np.max),
        ("boundary_recall", "br", np.max),
        ("boundary_precision", "bp", np.max),
        ("undersegmentation_error", "ue", np.min),
    ):
        values = np.asarray(s[key], dtype=float)
        out[name] = float(best(values))
        out[name + "_mean_gt"] = float(values.mean())
    return out


def lnsnet_usable() -> tuple[bool, str]:
    """Whether ``method="lnsnet"`` runs here (module importable, weights load)."""
    try:
        from clusterseg.superpixels import superpixels

        superpixels(np.zeros((32, 32, 3), dtype=np.uint8) + 128, 4, method="lnsnet")
    except Exception as exc:  # noqa: BLE001 - any failure means "skip it"
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def evaluate(methods, k: int, images, jobs: int, log) -> dict[str, dict]:
    """Segment every image with every method at one K, then score the results.

    The methods are timed in rotation on each image (image 1 with every method,
    then image 2, ...), so that a varying load from other processes affects
    all methods alike and the time ratios stay meaningful on a shared machine.
    """
    calls = {m: _call(m) for m in methods}
    labels = {m: [] for m in methods}
    times = {m: [] for m in methods}
    t0 = time.perf_counter()
    for img in images:
        for m in methods:
            start = time.perf_counter()
            lab = calls[m](img, k)
            times[m].append(1000.0 * (time.perf_counter() - start))
            labels[m].append(lab)
    log(f"K={k}: segmented {len(images)} images with {len(methods)} methods in {time.perf_counter() - t0:.0f} s")
    results = {}
    for m in methods:
        work = list(enumerate(labels[m]))
        if jobs > 1:
            with mp.get_context("fork").Pool(jobs) as pool:
                per_image = pool.map(_scores, work, chunksize=4)
        else:
            per_image = [_scores(w) for w in work]
        arr = {key: np.array([p[key] for p in per_image], dtype=float) for key in per_image[0]}
        row = {key: float(v.mean()) for key, v in arr.items()}
        row.update(
            method=m,
            k=int(k),
            n_images=len(images),
            ms_median=float(np.median(times[m])),
            ms_mean=float(np.mean(times[m])),
            count_min=int(arr["count"].min()),
            count_max=int(arr["count"].max()),
            per_image={"count": arr["count"].astype(int).tolist(), "ms": [round(t, 2) for t in times[m]]},
            date=utc_now(),
        )
        results[m] = row
        log(
            f"{m:13s} K={k:5d} count={row['count']:7.1f} ASA={row['asa']:.4f} BR={row['br']:.4f} "
            f"UE={row['ue']:.4f} ms={row['ms_median']:.1f}"
        )
    return results


def add_ratios(rows: dict[str, dict], reference: dict | None) -> None:
    for row in rows.values():
        if reference is not None and reference["ms_median"] > 0:
            row["ms_vs_slic"] = row["ms_median"] / reference["ms_median"]


def load_cache(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"rows": {}}


def write_table(path: Path, cache: dict, args, command: str) -> None:
    rows = cache["rows"]
    methods = [m for m in (*CLASSICAL, "lnsnet") if any(r["method"] == m for r in rows.values())]
    methods += sorted({r["method"] for r in rows.values()} - set(methods))
    ks = sorted({r["k"] for r in rows.values()})
    n_images = sorted({r["n_images"] for r in rows.values()})
    lines = header_lines(f"Superpixels on BSDS500 {args.split}", threads=args.threads, command=command)
    lines += [
        f"Images: {', '.join(map(str, n_images))} of the {args.split} split "
        f"({'mixed runs!' if len(n_images) > 1 else 'all rows'}). Requested K: {', '.join(map(str, ks))}.",
        "",
        "- **ASA**, **BR**, **BP** (boundary tolerance 2 px, disk), **UE** (Neubert & Protzel's corrected "
        "under-segmentation error): per image the best over the human ground truths (max, min for UE), then "
        "the mean over images. **UE (GT mean)**: UE averaged over the ground truths instead (the plain BSDS "
        "convention); the JSON cache also keeps the GT-mean of ASA/BR/BP. **CO**: compactness (Schick et al.). "
        "Higher is better except UE.",
        "- **count**: mean actual number of superpixels (methods over- or undershoot K; compare at matched counts, "
        f"see the plot `{path.with_suffix('.png').name}`).",
        "- **ms**: median wall time of one `clusterseg.superpixels(image, K, method=...)` call on a 481x321 image "
        f"(single process, {args.threads} threads, methods timed in rotation image by image; the CPU may be shared "
        "with other jobs, so read times relative to each other). **vs SLIC**: ms divided by scikit-image SLIC's ms at the same K in the same run "
        "(rows from different runs keep the ratio of their own run; rerun `--methods slic <method>` together "
        "for a fair ratio).",
        "- All methods end with the same `enforce_connectivity` pass (fragments < 0.25 H W / K merged).",
        "",
    ]
    headers = ["method", "count", "ASA", "BR", "BP", "UE", "UE (GT mean)", "CO", "ms", "vs SLIC"]
    for k in ks:
        lines.append(f"### K = {k}")
        lines.append("")
        table = []
        for m in methods:
            r = rows.get(f"{m}|{k}")
            if r is None:
                continue
            ratio = r.get("ms_vs_slic")
            table.append(
                [
                    DISPLAY.get(m, m),
                    f"{r['count']:.0f}",
                    f"{r['asa']:.4f}",
                    f"{r['br']:.4f}",
                    f"{r['bp']:.4f}",
                    f"{r['ue']:.4f}",
                    f"{r['ue_mean_gt']:.4f}",
                    f"{r['co']:.3f}",
                    f"{r['ms_median']:.0f}",
                    "-" if ratio is None else f"{ratio:.2f}",
                ]
            )
        lines += markdown_table(headers, table)
        lines.append("")
    lines += matched_count_lines(rows, methods, ks)
    lines.append("Runs merged into this table (latest last):")
    lines.append("")
    for run in cache.get("runs", []):
        lines.append(f"- {run['date']}: `{run['command']}` ({', '.join(run['methods'])}; {run['n_images']} images)")
    lines.append("")
    write_text_atomic(path, "\n".join(lines))


def at_count(rows: dict, method: str, key: str, count: float) -> float | None:
    """``method``'s ``key`` linearly interpolated at a mean segment count (None outside its range)."""
    pts = sorted((r["count"], r[key]) for r in rows.values() if r["method"] == method)
    if len(pts) < 2 or not pts[0][0] <= count <= pts[-1][0]:
        return None
    x, y = zip(*pts)
    return float(np.interp(count, x, y))


def matched_count_lines(rows: dict, methods: list[str], ks: list[int]) -> list[str]:
    """LNSNet against every other method at LNSNet's actual count (the issue's reading of the bars)."""
    learned = [m for m in methods if m.startswith("lnsnet")]
    others = [m for m in methods if not m.startswith("lnsnet")]
    lines = []
    for m in learned:
        lines += [
            f"### {DISPLAY.get(m, m)} against the others at matched counts",
            "",
            "Each cell: how much better this row's method is than the column's, at the row's actual count "
            "(the column's metric interpolated linearly in its count over K), as ASA / BR / UE differences in "
            "units of 1e-4, signed so that **positive = LNSNet better** (UE: the other method's minus LNSNet's). "
            "`n/a`: the other method never reaches that count here.",
            "",
        ]
        table = []
        for k in ks:
            r = rows.get(f"{m}|{k}")
            if r is None:
                continue
            cells = [str(k), f"{r['count']:.0f}"]
            for o in others:
                ref = [at_count(rows, o, key, r["count"]) for key in ("asa", "br", "ue")]
                if any(v is None for v in ref):
                    cells.append("n/a")
                    continue
                d = (r["asa"] - ref[0], r["br"] - ref[1], ref[2] - r["ue"])
                cells.append(" / ".join(f"{1e4 * v:+.0f}" for v in d))
            table.append(cells)
        lines += markdown_table(["K", "count"] + [DISPLAY.get(o, o) for o in others], table)
        lines.append("")
    return lines


def plot(path: Path, cache: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cache["rows"]
    methods = [m for m in (*CLASSICAL, "lnsnet") if any(r["method"] == m for r in rows.values())]
    methods += sorted({r["method"] for r in rows.values()} - set(methods))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, key, title in zip(axes, ("asa", "br", "ue"), ("ASA (higher is better)", "Boundary recall (higher is better)", "Under-segmentation error (lower is better)")):
        for m in methods:
            pts = sorted((r["count"], r[key]) for r in rows.values() if r["method"] == m)
            x, y = zip(*pts)
            style = dict(lw=2.5, marker="o") if m.startswith("lnsnet") else dict(lw=1.4, marker=".")
            ax.plot(x, y, label=DISPLAY.get(m, m), **style)
        ax.set_xscale("log")
        ax.set_xlabel("actual number of superpixels (mean, log scale)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("BSDS500 val superpixels: quality against the actual segment count")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--n-segments", type=int, nargs="+", default=list(DEFAULT_KS))
    parser.add_argument("--methods", nargs="+", default=None, help="default: every installed classical method, plus lnsnet when it runs")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the metric computation (after timing)")
    parser.add_argument("--root", default=None, help="BSDS500 folder (default: clusterseg.datasets.data_root())")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results/superpixels_bsds_val.md"))
    parser.add_argument("--fresh", action="store_true", help="ignore the JSON cache of earlier runs")
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table and plot from the JSON cache")
    args = parser.parse_args(argv)
    command = command_line()
    if args.table_only:
        out = Path(args.out)
        cache = load_cache(out.with_suffix(".json"))
        if not cache["rows"]:
            parser.error(f"no cached results in {out.with_suffix('.json')}")
        last = cache.get("runs", [{}])[-1]
        write_table(out, cache, args, last.get("command", command))
        plot(out.with_suffix(".png"), cache)
        print(f"rewrote {out} and {out.with_suffix('.png')}")
        return 0

    set_threads(args.threads)
    from clusterseg.datasets import bsds500
    from clusterseg.superpixels import available_methods

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    if args.methods is None:
        methods = [m for m in CLASSICAL if m in available_methods()]
        ok, why = lnsnet_usable()
        if ok:
            methods.append("lnsnet")
        else:
            log(f"lnsnet skipped ({why})")
    else:
        methods = list(args.methods)
        unknown = set(methods) - set(available_methods(installed_only=False)) - set(VARIANTS)
        if unknown:
            parser.error(f"unknown methods {sorted(unknown)}; known: {available_methods(installed_only=False)}")

    out = Path(args.out)
    cache_path = out.with_suffix(".json")
    cache = {"rows": {}} if args.fresh else load_cache(cache_path)

    dataset = bsds500(args.root, split=args.split, limit=args.limit)
    log(f"loading {len(dataset)} {args.split} images")
    images, gts = [], []
    for sample in dataset:
        images.append(sample.image)
        gts.append(sample.segmentations)
    _GTS[:] = gts
    ks = sorted(set(args.n_segments))

    order = [m for m in (*CLASSICAL, "lnsnet") if m in methods] + [m for m in methods if m not in (*CLASSICAL, "lnsnet")]
    run_entry = {"command": command, "date": utc_now(), "methods": order, "n_images": len(images)}

    for m in order:  # warm-up (imports, weights), untimed
        _call(m)(images[0], ks[0])
    for k in ks:
        rows = evaluate(order, k, images, args.jobs, log)
        reference = rows.get(REFERENCE)
        if reference is None:  # SLIC not rerun: ratio against its cached timing (other run)
            reference = cache["rows"].get(f"{REFERENCE}|{k}")
            if reference is not None:
                log(f"K={k}: time ratios use cached SLIC timings from an earlier run")
        add_ratios(rows, reference)
        # Re-read the cache before writing: another run (other methods) may have
        # added rows since this one started.
        if not args.fresh:
            cache = load_cache(cache_path)
        cache.setdefault("rows", {})
        runs = cache.setdefault("runs", [])
        if run_entry not in runs:
            runs.append(run_entry)
        for m, row in rows.items():
            cache["rows"][f"{m}|{k}"] = row
        cache["split"] = args.split
        write_text_atomic(cache_path, json.dumps(cache, indent=1))
        write_table(out, cache, args, command)
        plot(out.with_suffix(".png"), cache)
        log(f"K={k} done -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
