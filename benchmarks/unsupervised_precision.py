"""bfloat16 autocast vs float32 for DSC and SP-WNet: time per image and BSDS500 scores, paired in one process.

For each of the first N BSDS500 val images, each method runs twice in the
same process (float32, then ``precision="bfloat16"``), one torch thread;
both results go through the same boundary hierarchy and are scored at the
same UCM thresholds as ``unsupervised_bsds.py``. bfloat16 runs natively only
on CPUs with AVX512-BF16 / AMX (this is checked and written in the table).

Usage::

    python benchmarks/unsupervised_precision.py --limit 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header_lines, markdown_table, set_threads  # noqa: E402
from unsupervised_bsds import THRESHOLDS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--methods", nargs="+", default=["dsc", "spwnet"], choices=["dsc", "spwnet"])
    args = p.parse_args(argv)
    set_threads(1)

    from clusterseg.datasets import bsds500
    from clusterseg.metrics.regions import aggregate_region_scores, region_scores
    from clusterseg.nn.precision import bf16_supported
    from clusterseg.unsupervised import segment_hierarchy, ucm_to_labels

    try:
        data = bsds500(split="val", limit=args.limit)
    except (FileNotFoundError, OSError) as exc:
        print(f"BSDS500 not available: {exc}; skipping.")
        return 0
    runs = {(m, prec): {"scores": [], "seconds": []} for m in args.methods for prec in ("float32", "bfloat16")}
    for i in range(len(data)):
        iid, rgb, gts, _ = data[i]
        for (method, prec), rec in runs.items():
            t0 = time.perf_counter()
            _, ucm = segment_hierarchy(rgb, [2], method=method, return_ucm=True, random_state=0, precision=prec)
            rec["seconds"].append(time.perf_counter() - t0)
            rec["scores"].append([region_scores(ucm_to_labels(ucm, t), gts) for t in THRESHOLDS])
            print(f"[{i + 1}/{len(data)}] {iid} {method} {prec}: {rec['seconds'][-1]:.1f}s", flush=True)
    rows = []
    for method in args.methods:
        base = np.array(runs[(method, "float32")]["seconds"])
        for prec in ("float32", "bfloat16"):
            rec = runs[(method, prec)]
            agg = aggregate_region_scores(rec["scores"])
            o, s = agg["ods"], agg["ois"]
            ratio = np.median(base / np.array(rec["seconds"]))
            rows.append([method, prec, f"{o['sc']:.3f}", f"{s['sc']:.3f}", f"{o['pri']:.3f}", f"{s['pri']:.3f}",
                         f"{o['vi']:.3f}", f"{s['vi']:.3f}", f"{np.median(rec['seconds']):.1f}", f"{ratio:.2f}"])
    lines = header_lines("DSC / SP-WNet: bfloat16 autocast vs float32 (BSDS500 val)", threads=1)
    lines += [f"Images: first {len(data)} of BSDS500 val; each method run in float32 and in bfloat16 on every image, "
              f"in one process, 1 torch thread. Native bfloat16 on this CPU: {bf16_supported('cpu')}. Scores: "
              f"UCM of `segment_hierarchy(..., return_ucm=True)` cut at the {len(THRESHOLDS)} thresholds of "
              "unsupervised_bsds.py. Speed-up: median over images of float32 time / this time.", ""]
    lines += markdown_table(["method", "precision", "SC ODS", "SC OIS", "PRI ODS", "PRI OIS", "VI ODS", "VI OIS",
                             "median s/img", "speed-up vs float32"], rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "unsupervised_precision.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
