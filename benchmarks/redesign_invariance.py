"""Outputs that a refactoring must not change: label hashes and scores, compared with a reference checkout.

Computes, with the code on ``PYTHONPATH`` (or the checkout this script sits in):

* LNSNet superpixels (``superpixels(method="lnsnet")``) at K = 100, 400, 1000 on
  the first three BSDS500 val images;
* one DSC and one SP-WNet segmentation (``segment``) of the first val image;
* the shipped ``dsb2018-nuclei`` instances on the held-out DSB2018 images
  (label hash and mean accuracy at IoU 0.5).

Run it once on the old code (``--write``) and once on the new (``--reference``)::

    git worktree add /tmp/before 5e880cd
    (cd /tmp && PYTHONPATH=/tmp/before/src python /path/to/benchmarks/redesign_invariance.py --write before.json)
    python benchmarks/redesign_invariance.py --reference runs/before.json

The second run writes ``benchmarks/results/redesign_invariance.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header_lines, markdown_table, set_threads  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE_KEY = "checkout the package was imported from"


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.int64)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def compute() -> dict[str, str]:
    import clusterseg
    from clusterseg.datasets import bsds500, dsb2018
    from clusterseg.metrics import match_instances

    out: dict[str, str] = {}
    data = bsds500(split="val", limit=3)
    for i in range(3):
        iid, rgb, _, _ = data[i]
        for k in (100, 400, 1000):
            out[f"lnsnet K={k} {iid}"] = digest(clusterseg.superpixels(rgb, k, method="lnsnet"))
    iid, rgb, _, _ = data[0]
    for method in ("dsc", "spwnet"):
        out[f"segment {method} {iid}"] = digest(clusterseg.segment(rgb, 8, method=method))
    test = dsb2018(split="test")
    labels, accs = [], []
    for j in range(len(test)):
        sample = test[j]
        image, truth = sample[1], sample[2]
        pred, _ = clusterseg.instances(image)
        labels.append(pred)
        accs.append(match_instances(pred, truth, iou_threshold=0.5).dsb_accuracy)
    out["dsb2018-nuclei held-out labels"] = digest(*labels)
    out["dsb2018-nuclei held-out Acc@0.5"] = f"{np.mean(accs):.6f}"
    out[SOURCE_KEY] = str(Path(clusterseg.__file__).parent.parent.parent.name)  # proves which code ran
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--write", type=Path, help="write this code's values to a JSON file")
    p.add_argument("--reference", type=Path, help="compare with a JSON file written by --write")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    set_threads(args.threads)
    try:
        values = compute()
    except (FileNotFoundError, OSError) as exc:
        print(f"data not available: {exc}; skipping.")
        return 0
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps(values, indent=1))
    if not args.reference:
        print(json.dumps(values, indent=1))
        return 0
    ref = json.loads(args.reference.read_text())
    rows = [[k, ref.get(k, "-"), v, "(which code ran)" if k == SOURCE_KEY else
             "same" if ref.get(k) == v else "**changed**"] for k, v in values.items()]
    lines = header_lines("Outputs before and after the model-layer redesign", threads=args.threads)
    lines += [f"Reference: `{args.reference}`, written by the same script with the old checkout on PYTHONPATH "
              "(commit 5e880cd, before the model-layer redesign). Values are SHA-256 prefixes of the int64 label "
              "maps, and the mean DSB accuracy at IoU 0.5.", ""]
    lines += markdown_table(["output", "before", "after", ""], rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "redesign_invariance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r[3] != "**changed**" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
