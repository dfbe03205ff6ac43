"""LNSNet's first call in a fresh process: with an empty Numba cache (the kernels compile) and a warm one.

Each case runs in a new Python process (``--runs`` times, the median kept):
``import clusterseg.superpixels``, then ``superpixels(image, 200, method="lnsnet")``
twice on a 481x321 uint8 image. "cold": ``NUMBA_CACHE_DIR`` points at an empty
folder, so every kernel compiles; "warm": the same folder after the cold runs,
so the kernels load from it. One torch thread.

Run::

    PYTHONPATH=src python benchmarks/lnsnet_first_call.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lnsnet_common import machine, now  # noqa: E402

CHILD = """
import json, time
import numpy as np
import torch
torch.set_num_threads(1)
t0 = time.perf_counter()
from clusterseg.superpixels import superpixels
img = (np.random.default_rng(0).random((321, 481, 3)) * 255).astype(np.uint8)
t1 = time.perf_counter()
superpixels(img, n_segments=200, method="lnsnet")
t2 = time.perf_counter()
superpixels(img, n_segments=200, method="lnsnet")
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "second": t3 - t2}))
"""


def run_child(cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/lnsnet_first_call.md")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        cold = []
        for i in range(args.runs):
            cache = os.path.join(tmp, f"cold{i}")  # a new empty cache each time
            cold.append(run_child(cache))
        warm = [run_child(os.path.join(tmp, "cold0")) for _ in range(args.runs)]
    for name, runs in (("cold (kernels compile)", cold), ("warm (kernels from the cache)", warm)):
        rows[name] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    lines = [
        "# LNSNet: the first call in a fresh process", "",
        f"Command: `PYTHONPATH=src python benchmarks/lnsnet_first_call.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {machine()}  ",
        f"Date: {now()}  ",
        f"Each row: the median of {args.runs} new Python processes, one torch thread, a 481x321 uint8 image, "
        "`superpixels(image, 200, method='lnsnet')` called twice after `import clusterseg.superpixels`. "
        "'cold': `NUMBA_CACHE_DIR` is an empty folder, so the compiled kernels are built; 'warm': the "
        "folder a cold run filled.", "",
        "| Numba cache | import s | first call s | second call s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {r['import']:.2f} | {r['first']:.2f} | {r['second']:.3f} |" for name, r in rows.items()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
