"""BSDS500 region benchmark (SC / PRI / VI at ODS and OIS) for unsupervised segmentation.

Compares, in one run and on the same images:

* ``dsc``     -- Deep Superpixel Cut (clusterseg.unsupervised, one optimisation
                 per image at K_max 16), its ultrametric contour map from
                 ``segment_hierarchy(..., return_ucm=True)`` cut at fixed thresholds;
* ``spwnet``  -- SP-WNet trained on the image itself (single-image mode), same UCM;
* ``dsc-ward`` / ``spwnet-ward`` -- the previous levels: Ward merging of the
                 class-map regions, K swept;
* ``felzenszwalb`` -- skimage Felzenszwalb-Huttenlocher, ``scale`` swept;
* ``kmeans``  -- k-means on Lab + xy (standardised, xy weight 0.5), K swept;
* ``ncut``    -- spectral normalised cut on an RGB SLIC superpixel graph
                 (Gaussian weights on mean-colour distance, 8-connected RAG), K swept.

Each method produces one segmentation per sweep value; ODS picks the best value
for the whole data set, OIS the best per image (BSDS500 protocol,
``clusterseg.metrics.regions``). Per-image scores are appended to a gzipped JSONL file
so that a long run can be inspected or resumed (``--resume``).

Usage::

    python benchmarks/unsupervised_bsds.py --limit 10
    python benchmarks/unsupervised_bsds.py --methods dsc spwnet felzenszwalb kmeans ncut
    python benchmarks/unsupervised_bsds.py --ablation dsc --cache runs/bsds_cache

``--ablation METHOD`` runs the method's optimisation once per image (outputs
kept in ``--cache`` to be reused) and evaluates every hierarchy lever on and
off on the same outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import header_lines, markdown_table, set_threads  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32)
#: UCM thresholds, the same for every image (both merge-cost terms are in [0, 1]).
THRESHOLDS = tuple(round(float(t), 3) for t in np.arange(0.1, 1.301, 0.025))
FH_SCALES = (50, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000)
PUBLISHED = {
    "DSC (paper, test)": (0.56, 0.60, 0.80, 0.83, 1.82, 1.62),
    "W-Net (paper, test)": (0.57, 0.62, 0.81, 0.84, 1.76, 1.60),
    "EGB (paper, test)": (0.52, 0.57, 0.80, 0.82, 2.21, 1.87),
    "NCuts (paper, test)": (0.45, 0.53, 0.78, 0.80, 2.23, 1.89),
}


# ------------------------------------------------------------------ methods
def run_ucm(rgb, method, **kw):
    from clusterseg.unsupervised import segment_hierarchy, ucm_to_labels

    _, ucm = segment_hierarchy(rgb, [2], max_segments=kw.pop("kmax", 16), method=method, return_ucm=True,
                               random_state=0, **kw)
    return [ucm_to_labels(ucm, t) for t in THRESHOLDS]


def run_ward(rgb, method, **kw):
    from clusterseg.unsupervised import segment_hierarchy

    levels = segment_hierarchy(rgb, KS, max_segments=kw.pop("kmax", 16), method=method, hierarchy="ward",
                               random_state=0, **kw)
    return [levels[k] for k in KS]


def run_felzenszwalb(rgb):
    from skimage.segmentation import felzenszwalb

    return [felzenszwalb(rgb, scale=s, sigma=0.8, min_size=max(20, s // 4)) for s in FH_SCALES]


def run_kmeans(rgb):
    from scipy.cluster.vq import kmeans2
    from skimage.color import rgb2lab

    from clusterseg.unsupervised._common import downscale, upscale_labels

    small = downscale(rgb.astype(np.float32) / 255.0, 240)
    h, w = small.shape[:2]
    lab = rgb2lab(small).reshape(-1, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    xy = np.stack([yy.ravel(), xx.ravel()], 1).astype(float)
    feats = np.concatenate([(lab - lab.mean(0)) / (lab.std(0) + 1e-6), 0.5 * (xy - xy.mean(0)) / xy.std(0)], 1)
    out = []
    for k in KS:
        _, lbl = kmeans2(feats, k, minit="++", seed=np.random.default_rng(0))
        out.append(upscale_labels(lbl.reshape(h, w).astype(np.int32), rgb.shape[:2]))
    return out


def run_ncut(rgb):
    from skimage.color import rgb2lab

    from clusterseg.graph import (affinity_matrix, edge_distances, gaussian_weights, mean_colour,
                                  region_adjacency, spectral_embedding, spectral_ncut)
    from clusterseg.unsupervised._common import compute_superpixels, downscale, upscale_labels

    small = downscale(rgb.astype(np.float32) / 255.0, 240)
    sp = compute_superpixels(small, 400, "slic", 0)
    m = int(sp.max()) + 1
    edges = region_adjacency(sp, 2)
    w = gaussian_weights(edge_distances(mean_colour(rgb2lab(small), sp, m), edges))
    a = affinity_matrix(edges, w, m, layout="scipy")
    emb = spectral_embedding(a, max(KS))
    return [upscale_labels(spectral_ncut(a, k, embedding=emb)[sp].astype(np.int32), rgb.shape[:2]) for k in KS]


METHODS = {
    "dsc": (functools.partial(run_ucm, method="dsc"), {}),
    "spwnet": (functools.partial(run_ucm, method="spwnet"), {}),
    # the K_max oracle rows of issue item 1: the same pipeline with fewer / more DSC classes (default 16)
    "dsc-kmax8": (functools.partial(run_ucm, method="dsc"), {"kmax": 8}),
    "dsc-kmax32": (functools.partial(run_ucm, method="dsc"), {"kmax": 32}),
    "dsc-ward": (functools.partial(run_ward, method="dsc"), {}),
    "spwnet-ward": (functools.partial(run_ward, method="spwnet"), {}),
    "felzenszwalb": (run_felzenszwalb, None),
    "kmeans": (run_kmeans, None),
    "ncut": (run_ncut, None),
}
DEFAULT_METHODS = ("dsc", "spwnet", "felzenszwalb", "kmeans", "ncut")


def sweep_label(name):
    if name == "felzenszwalb":
        return "scale"
    return "t" if name in ("dsc", "spwnet") or name.startswith(("ucm", "dsc-kmax")) else "K"


def sweep_values(name):
    return {"scale": FH_SCALES, "t": THRESHOLDS, "K": KS}[sweep_label(name)]


# ------------------------------------------------------------------ hierarchy ablation
class ImageContext:
    """Per-image state shared by the ablation variants: the optimisation output (cached) and the cues."""

    def __init__(self, method, rgb_uint8, iid, cache):
        self.method, self.iid, self.cache = method, iid, cache
        self.rgb = rgb_uint8.astype(np.float32) / 255.0
        self._out = self._cues = None
        self.optimisation_seconds = 0.0

    @property
    def out(self):
        if self._out is None:
            self._out = self._load_or_run()
        return self._out

    def _load_or_run(self):
        from clusterseg.unsupervised.api import _run  # exactly what segment_hierarchy runs

        path = None if self.cache is None else Path(self.cache) / f"{self.method}_val_{self.iid}.npz"
        if path is not None and path.exists():
            z = np.load(path)
            self.optimisation_seconds = float(z["seconds"])
            return {k: z[k].astype(np.float32) if z[k].dtype == np.float16 else z[k] for k in z.files}
        t0 = time.perf_counter()
        o = _run(self.rgb, 16, self.method, -1, "slic", None, None, 0, False, {})
        self.optimisation_seconds = time.perf_counter() - t0
        d = dict(embedding=o.embedding, probabilities=o.probabilities, small_labels=o.small_labels,
                 features=o.features, min_size=o.min_size, seconds=self.optimisation_seconds)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **{k: v.astype(np.float16) if isinstance(v, np.ndarray) and v.dtype == np.float32
                                        else v for k, v in d.items()})
            tmp.replace(path)
        return d

    @property
    def cues(self):
        from clusterseg.unsupervised.hierarchy import boundary_cues

        if self._cues is None:
            self._cues = boundary_cues(self.rgb, self.out["embedding"], self.out["probabilities"])
        return self._cues


def _ablate_ucm(ctx, base=None, **options):
    from clusterseg.graph.ucm import ucm_to_labels
    from clusterseg.unsupervised.hierarchy import HierarchyOptions, boundary_hierarchy

    base_labels = None if base is None else base(ctx)
    tree = boundary_hierarchy(ctx.rgb, options=HierarchyOptions(**options), cues=ctx.cues, base_labels=base_labels)
    return [ucm_to_labels(tree.ucm, t) for t in THRESHOLDS]


def _ablate_ward(ctx):
    from clusterseg.unsupervised._common import region_hierarchy

    o = ctx.out
    levels = region_hierarchy(o["small_labels"], o["features"], ctx.rgb.shape[:2], KS, int(o["min_size"]))
    return [levels[k] for k in KS]


def _class_regions(ctx):
    from skimage.measure import label

    from clusterseg.unsupervised._common import upscale_labels

    return label(upscale_labels(ctx.out["small_labels"], ctx.rgb.shape[:2]), connectivity=1, background=-1)


def _lnsnet_base(ctx):
    from clusterseg.superpixels import superpixels

    return superpixels(ctx.rgb, 1000, method="lnsnet")


HIERARCHY_ABLATION = {
    "ucm: boundary hierarchy (default)": functools.partial(_ablate_ucm),
    "ucm: no PMI boundary (previous default)": functools.partial(_ablate_ucm, pmi_weight=0.0),
    "ucm: no texture cue (learned embedding)": functools.partial(_ablate_ucm, texture=False),
    "ucm: no class-probability gradient": functools.partial(_ablate_ucm, probability_weight=0.0),
    "ucm: learning-free (neither learned cue)": functools.partial(_ablate_ucm, texture=False, probability_weight=0.0),
    "ucm: + spectral globalisation (weight 0.5)": functools.partial(_ablate_ucm, spectral_weight=0.5),
    "ucm: histogram weight 0.5": functools.partial(_ablate_ucm, histogram_weight=0.5),
    "ucm: + globalisation 0.5, histogram weight 0.5": functools.partial(_ablate_ucm, spectral_weight=0.5,
                                                                         histogram_weight=0.5),
    "ucm: no colour-histogram term": functools.partial(_ablate_ucm, histogram_weight=0.0),
    "ucm: no small-region prior": functools.partial(_ablate_ucm, area_fraction=0.0),
    "ucm: base = class-map regions": functools.partial(_ablate_ucm, base=_class_regions),
    "ucm: base = LNSNet 1000 superpixels": functools.partial(_ablate_ucm, base=_lnsnet_base),
    "Ward on class-map regions (previous levels)": _ablate_ward,
}
SPWNET_ABLATION = ("ucm: boundary hierarchy (default)", "ucm: no PMI boundary (previous default)",
                   "ucm: + globalisation 0.5, histogram weight 0.5",
                   "ucm: no texture cue (learned embedding)",
                   "ucm: no class-probability gradient", "ucm: learning-free (neither learned cue)",
                   "Ward on class-map regions (previous levels)")


# ------------------------------------------------------------------ per-image evaluation (also in worker processes)
_STATE: dict = {}


def _init_state(ablation, cache, limit, threads, variant_names, done) -> None:
    from clusterseg.datasets import bsds500

    set_threads(threads)
    _STATE.update(ablation=ablation, cache=cache, data=bsds500(split="val", limit=limit), variants=variant_names,
                  done=done)


def _segmentations(variant: str, rgb, ctx):
    """The swept segmentations of one variant: an ablation row on the shared context, or a method."""
    if ctx is not None:
        return HIERARCHY_ABLATION[variant](ctx)
    fn, kw = METHODS[variant]
    return fn(rgb, **kw) if kw is not None else fn(rgb)


def _evaluate_image(i: int):
    """Scores of every variant on image ``i``: ``(i, id, [(variant, row, fresh)], {variant: error})``."""
    from clusterseg.metrics.regions import region_scores

    iid, rgb, gts, _ = _STATE["data"][i]
    ablation = _STATE["ablation"]
    ctx = ImageContext(ablation, rgb, iid, _STATE["cache"]) if ablation else None
    results, failed = [], {}
    for v in _STATE["variants"]:
        if (v, iid) in _STATE["done"]:
            results.append((v, _STATE["done"][(v, iid)], False))
            continue
        if ctx is not None:
            ctx.cues  # shared by all variants: not part of any variant's time
        t0 = time.perf_counter()
        try:
            segs = _segmentations(v, rgb, ctx)
        except (ImportError, ValueError, NotImplementedError, OSError) as exc:
            failed[v] = f"{type(exc).__name__}: {exc}"
            continue
        r = {"variant": v, "image": iid, "seconds": time.perf_counter() - t0,
             "scores": [region_scores(seg, gts) for seg in segs]}
        results.append((v, r, True))
    return i, iid, results, failed


@contextlib.contextmanager
def _image_pool(workers: int, state: tuple):
    """``imap`` over images: in this process, or ordered over ``workers`` processes."""
    if workers <= 1:
        _init_state(*state)
        yield map
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, _init_state, state) as pool:
        yield lambda f, items: pool.imap(f, items)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHODS))
    p.add_argument("--ablation", choices=("dsc", "spwnet"), default=None,
                   help="evaluate the hierarchy levers on one method's outputs instead")
    p.add_argument("--only", nargs="+", default=None, metavar="ROW", help="ablation rows to evaluate (default all)")
    p.add_argument("--cache", default=None, help="folder for the ablation's per-image optimisation outputs")
    p.add_argument("--limit", type=int, default=None, help="first N val images (default all 100)")
    p.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads per process")
    p.add_argument("--workers", type=int, default=1, help="processes evaluating images in parallel")
    p.add_argument("--tag", default=None, help="output name suffix (default: full / limitN / ablation)")
    p.add_argument("--resume", action="store_true", help="reuse per-image scores already in the JSONL file")
    p.add_argument("--note", default=None, help="free text appended to the Markdown report")
    args = p.parse_args(argv)
    set_threads(args.threads)

    from clusterseg.datasets import bsds500
    from clusterseg.metrics.regions import aggregate_region_scores

    tag = args.tag or (f"ablation_{args.ablation}" if args.ablation else (f"limit{args.limit}" if args.limit else "full"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw_path = RESULTS / f"unsupervised_bsds_{tag}.jsonl.gz"  # 49 thresholds x 100 images: MBs as text
    md_path = RESULTS / f"unsupervised_bsds_{tag}.md"
    if args.ablation:
        names = HIERARCHY_ABLATION if args.ablation == "dsc" else SPWNET_ABLATION
        if args.only:
            unknown = [n for n in args.only if n not in names]
            if unknown:
                p.error(f"--only: unknown ablation rows {unknown}; known: {list(names)}")
            names = [n for n in names if n in args.only]
        variants = list(names)
    else:
        if args.only:
            p.error("--only selects rows of an ablation: give --ablation dsc or --ablation spwnet")
        variants = list(args.methods)
    done: dict[tuple[str, str], dict] = {}
    if args.resume and raw_path.exists():
        with gzip.open(raw_path, "rt") as fh:
            lines = fh.read().splitlines()
        for line in lines:
            r = json.loads(line)
            done[(r["variant"], r["image"])] = r
    elif raw_path.exists():
        raw_path.unlink()
    try:
        n_img = len(bsds500(split="val", limit=args.limit))
    except (FileNotFoundError, OSError) as exc:
        print(f"BSDS500 not available: {exc}; skipping.")
        return 0
    per = {v: [] for v in variants}
    secs = {v: [] for v in variants}
    skipped = {}
    state = (args.ablation, args.cache, args.limit, args.threads, variants, done)
    with _image_pool(args.workers, state) as imap:
        for i, iid, results, failed in imap(_evaluate_image, range(n_img)):
            skipped.update(failed)
            for v, r, fresh in results:
                if fresh:
                    with gzip.open(raw_path, "at") as fh:  # one gzip member per row: a killed run keeps its rows
                        fh.write(json.dumps(r) + "\n")
                per[v].append(r["scores"])
                secs[v].append(r["seconds"])
                sc = max(s["covering"] for s in r["scores"])
                print(f"[{i + 1}/{n_img}] {iid} {v:44s} {r['seconds']:6.1f}s best SC {sc:.3f}", flush=True)

    rows = []
    for v in variants:
        if not per[v]:
            continue
        agg = aggregate_region_scores(per[v])
        o, s = agg["ods"], agg["ois"]
        best = sweep_values(v)[agg["ods_index"]["sc"]]
        rows.append([v, f"{o['sc']:.3f}", f"{s['sc']:.3f}", f"{o['pri']:.3f}", f"{s['pri']:.3f}",
                     f"{o['vi']:.3f}", f"{s['vi']:.3f}", f"{sweep_label(v)}={best}",
                     f"{np.median(secs[v]):.1f}", str(len(per[v]))])
    lines = header_lines(f"BSDS500 val: unsupervised segmentation ({tag})", threads=args.threads)
    lines += [
        f"Images: {n_img} of BSDS500 val{' (first N, --limit)' if args.limit else ''}. "
        f"Sweep: DSC / SP-WNet (and `ucm:` rows): one optimisation at K_max 16, its ultrametric contour map "
        f"cut at the same {len(THRESHOLDS)} thresholds t = {THRESHOLDS[0]}..{THRESHOLDS[-1]} (step 0.025) for "
        f"every image; Ward / k-means / NCut: K in {list(KS)}; Felzenszwalb: scale in {list(FH_SCALES)}. "
        "SC pooled over images, PRI/VI averaged (BSDS500 protocol).",
        "",
    ]
    lines += markdown_table(["method", "SC ODS", "SC OIS", "PRI ODS", "PRI OIS", "VI ODS", "VI OIS",
                             "ODS param (SC)", "median s/img", "images"], rows)
    if not args.ablation:
        lines += ["", "Published figures (BSDS500 **test** split, from the DSC slides; not the same images):", ""]
        lines += markdown_table(["method", "SC ODS", "SC OIS", "PRI ODS", "PRI OIS", "VI ODS", "VI OIS"],
                                [[k, *[f"{x:.2f}" for x in v]] for k, v in PUBLISHED.items()])
    if skipped:
        lines += ["", "Skipped variants:", ""] + [f"- {k}: {v}" for k, v in skipped.items()]
    if args.note:
        lines += ["", args.note]
    md_path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
