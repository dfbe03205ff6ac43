"""Effect of ``refine_steps`` (centre updates in the embedding space) and ``adapt_steps``
(test-time adaptation on the image itself, the evaluation protocol of the LNSNet
authors' code) on LNSNet quality and time.

Compares ``superpixels(image, K, method="lnsnet", refine_steps=r, adapt_steps=a)``
for several (r, a) with ``superpixels(image, K, method="slic")`` on the first
``--n-val`` BSDS500 val images (same metrics as benchmarks/superpixels_bsds.py:
best ground truth per image, BR/BP with 2 px tolerance).

Run::

    PYTHONPATH=src python benchmarks/lnsnet_refine.py --n-val 20
    PYTHONPATH=src python benchmarks/lnsnet_refine.py --n-val 20 --refine 0 --adapt 0 10 40 \
        --out benchmarks/results/lnsnet_adapt.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lnsnet_common import evaluate, load_samples, machine, now  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-val", type=int, default=20)
    ap.add_argument("--ks", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--refine", type=int, nargs="+", default=[0, 1, 3, 5])
    ap.add_argument("--adapt", type=int, nargs="+", default=[0], help="adapt_steps values")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/lnsnet_refine.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from clusterseg.superpixels import superpixels

    samples = load_samples("val", limit=args.n_val)
    rows = []
    for a in args.adapt:
        for r in args.refine:
            res = evaluate(lambda rgb, k, r=r, a=a: superpixels(rgb, k, method="lnsnet", refine_steps=r, adapt_steps=a),
                           samples, args.ks)
            name = f"LNSNet, refine_steps={r}" + (f", adapt_steps={a}" if a else "")
            rows += [(name, k, res[k]) for k in args.ks]
    res = evaluate(lambda rgb, k: superpixels(rgb, k, method="slic"), samples, args.ks)
    rows += [("SLIC (skimage, via superpixels())", k, res[k]) for k in args.ks]
    cmd = "PYTHONPATH=src python benchmarks/lnsnet_refine.py " + " ".join(sys.argv[1:])
    lines = [
        "# LNSNet: centre updates after the single pass (and test-time adaptation)", "", f"Command: `{cmd}`  ", f"Machine: {machine()} (shared, times are noisy)  ",
        f"Date: {now()}; first {len(samples)} BSDS500 val images, shipped weights.", "",
        "| method | K | ASA | BR | BP | UE | count | ms (median) |", "|---|---|---|---|---|---|---|---|",
    ]
    for name, k, v in sorted(rows, key=lambda t: (t[1], t[0])):
        lines.append(f"| {name} | {k} | {v['asa']:.4f} | {v['br']:.4f} | {v['bp']:.4f} | {v['ue']:.4f} | {v['count']:.0f} | {v['ms']:.0f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
