"""Command-line interface: ``clusterseg <command> --help`` documents each command.

Heavy modules (torch, scikit-image) are imported inside the commands so that
``clusterseg --help`` answers instantly.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import textwrap
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, NoReturn, Optional, Sequence, Tuple

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from clusterseg._progress import progress_bar
from clusterseg.io.names import output_names

app = typer.Typer(
    name="clusterseg",
    help=(
        "Segment images by clustering pixels in a learned embedding space: "
        "LNSNet superpixels, Deep Superpixel Cut, SP-WNet, spatial-embedding instances."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
train_app = typer.Typer(help="Train models (lifelong LNSNet, spatial-embedding instances).", no_args_is_help=True)
app.add_typer(train_app, name="train")
evaluate_app = typer.Typer(help="Evaluate predictions or models against ground truth.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")

console = Console(stderr=True)

_LABEL_FORMATS = ("png", "tif", "npy")


#: Bad input or settings: reported as one readable line (exit status 2; in a batch, that input is
#: skipped and listed at the end). The package's own errors (e.g. CheckpointError) derive from
#: ValueError; ImportError is a missing optional package, with what to install. Anything else
#: (TypeError, ArithmeticError, RuntimeError, other OSErrors...) is a bug and keeps its traceback.
_USER_ERRORS = (
    ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError,
    ImportError,
)

#: Shared by the help of every command that takes several images.
_BATCH_NOTES = """\
Every readable image is processed; the ones that fail are listed at the end (exit status 1; 2 when
no image could be processed or the options are wrong). Images with the same file name stem in
different folders are named after their folders too (`a/x.png`, `b/x.png` give `a_x_labels.png`,
`b_x_labels.png`; `x.png`, `x.tif` in one folder give `x_png_...`, `x_tif_...`); this is settled
before anything is written. An image whose outputs (any of them) already exist is skipped, with
nothing written for it, unless `--overwrite` is given."""


def _batch_help(command: Callable) -> Callable:
    """Add :data:`_BATCH_NOTES` to a command's help, before its examples."""
    if command.__doc__:
        notes = textwrap.indent(_BATCH_NOTES, "    ")
        command.__doc__ = command.__doc__.replace("\n    Examples:", f"\n{notes}\n\n    Examples:", 1)
    return command


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the library's documented errors into one readable line and exit code 2."""
    try:
        yield
    except _USER_ERRORS as exc:
        _fail(str(exc))


def _progress() -> Progress:
    return progress_bar(console)


def _unique_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.ext``, ``stem-2.ext``... (used by ``demo`` only)."""
    candidate, i = path, 0
    while candidate.exists():
        i += 1
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
    return candidate


def _check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        _fail(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def _plan_batch(
    paths: Sequence[Path], outputs_of: Callable[[str], List[Path]], out: Path
) -> List[Tuple[Path, str]]:
    """``(input, output name)`` per distinct input; every clash is refused before anything is written."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    unique: Dict[Path, Path] = {}
    for path in paths:
        if unique.setdefault(path.resolve(), path) is not path:
            console.print(f"note: {path} given twice; processed once", markup=False, highlight=False)
    items = list(zip(unique.values(), output_names(list(unique.values()))))
    for path, name in items:
        for output in outputs_of(name):
            if output.resolve() in unique:
                raise ValueError(f"{output}, an output of {path}, is also an input; choose another --out")
    return items


def _require_free(paths: Iterable[Path], *, overwrite: bool) -> None:
    """Check every output of one input before writing any: all can be written, or none is."""
    paths = list(paths)
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise IsADirectoryError(f"{', '.join(folders)}: a folder is in the way; nothing written for this input")
    existing = [f"{p} exists" for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)}; nothing written for this input (pass --overwrite to replace)")


def _write_all(writes: Sequence[Tuple[Path, Callable[[Path], object]]]) -> List[Path]:
    """Run each ``write(path)``; if one fails, remove the files this call created, then re-raise."""
    created = []
    try:
        for path, write in writes:
            existed = path.exists()
            write(path)
            if not existed:
                created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return [path for path, _ in writes]


def _run_batch(
    items: Sequence[Tuple[Path, str]], process: Callable[[Path, str, Progress], None], *, what: str
) -> None:
    """Run ``process(input, name, progress)`` on every item under one progress bar.

    A user error fails that item only; the failures are summarised at the end (exit status 1,
    or 2 when every item failed). A missing optional package (ImportError) would fail them all:
    it stops the batch with exit status 2. Other exceptions are bugs and propagate.
    """
    failures: List[Tuple[Path, str]] = []
    with _user_errors(), _progress() as progress:
        task = progress.add_task(what, total=len(items))
        for path, name in items:
            try:
                process(path, name, progress)
            except ImportError:
                raise
            except _USER_ERRORS as exc:
                failures.append((path, str(exc)))
                progress.console.print(f"[red]failed:[/] {escape(str(path))}", highlight=False, soft_wrap=True)
            progress.advance(task)
    _report_failures(failures, len(items))


def _report_failures(failures: Sequence[Tuple[Path, str]], total: int) -> None:
    if not failures:
        return
    if total == 1:
        _fail(failures[0][1])
    console.print(f"[bold red]error:[/] {len(failures)} of {total} inputs failed:", highlight=False)
    for path, reason in failures:
        console.print(f"  {path}: {reason}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2 if len(failures) == total else 1)


def _write_scores(path: Path, labels, scores, *, overwrite: bool) -> Path:
    """``label,score,area`` rows of an instance map, written atomically."""
    import numpy as np

    from clusterseg.io.write import atomic_write

    areas = np.bincount(labels.ravel(), minlength=len(scores))
    rows = ["label,score,area"] + [f"{i},{scores[i]:.6f},{areas[i]}" for i in range(1, len(scores)) if areas[i]]

    def write(tmp: Path) -> None:
        tmp.write_text("\n".join(rows) + "\n")

    return atomic_write(path, write, overwrite=overwrite)


def _label_writes(
    outputs: Dict[str, Path], image, labels, scores, *, overwrite: bool, extra: Optional[Dict[str, object]] = None
) -> List[Tuple[Path, Callable]]:
    """``(path, write)`` for each output of one image; images are rendered before anything is written.

    ``extra`` maps further output kinds to arrays written as they are (e.g. a float UCM as TIFF)."""
    from clusterseg.io import write_image, write_labels
    from clusterseg.visualize import label2rgb_random, overlay_boundaries

    render = {"overlay": lambda: overlay_boundaries(image, labels), "colour": lambda: label2rgb_random(labels)}
    writes = []
    for kind, path in outputs.items():
        if kind == "labels":
            write = functools.partial(write_labels, labels=labels, overwrite=overwrite)
        elif kind == "scores":
            write = functools.partial(_write_scores, labels=labels, scores=scores, overwrite=overwrite)
        elif extra and kind in extra:
            write = functools.partial(write_image, image=extra[kind], overwrite=overwrite)
        else:
            write = functools.partial(write_image, image=render[kind](), overwrite=overwrite)
        writes.append((path, write))
    return writes


def _check_format(label_format: str) -> str:
    label_format = label_format.lower().lstrip(".")
    if label_format == "tiff":
        label_format = "tif"
    if label_format not in _LABEL_FORMATS:
        _fail(f"--format must be one of {', '.join(_LABEL_FORMATS)}, got {label_format!r}")
    return label_format


def _label_with_progress(progress: Progress, path: Path, image, label_image: Callable) -> tuple:
    """``(labels, scores or None, extra arrays)`` of one image, with a progress bar of its own while it runs.

    ``label_image`` returns labels, ``(labels, scores)`` or ``(labels, scores, {kind: array})``."""
    inner = progress.add_task(f"  {path.name}", total=None)

    def report(done: int, total: int) -> None:
        progress.update(inner, completed=done, total=total)

    try:
        result = label_image(image, report)
    finally:
        progress.remove_task(inner)
    result = result if isinstance(result, tuple) else (result, None)
    return result if len(result) == 3 else (*result, {})


def _label_each_image(
    images: List[Path],
    label_image: Callable[[object, Callable[[int, int], None]], object],
    *,
    what: str,
    background: bool = False,
    scores: bool = False,
    extras: Optional[Dict[str, str]] = None,
    out: Path,
    label_format: str,
    overlay: bool,
    colour: bool,
    overwrite: bool,
) -> None:
    """Read each image, label it with ``label_image(image, report)``, write all its outputs or none.

    ``report(done, total)`` drives a per-image progress bar for methods that optimise per image.
    With ``scores=True`` (instances: 0 is background, ``background=True``) ``label_image`` returns
    ``(labels, scores)`` and the scores go to ``<name>_scores.csv``. ``extras`` (kind -> file
    suffix) are further arrays ``label_image`` returns as ``(labels, scores, {kind: array})``.
    See :data:`_BATCH_NOTES`.
    """
    from clusterseg.io import read_image

    suffixes = {"labels": f"labels.{label_format}", "overlay": "overlay.png", "colour": "colour.png",
                "scores": "scores.csv"}
    wanted = {"labels": True, "overlay": overlay, "colour": colour, "scores": scores}
    kinds = {kind: suffix for kind, suffix in suffixes.items() if wanted[kind]}
    kinds.update(extras or {})

    def outputs_of(name: str) -> Dict[str, Path]:
        return {kind: out / f"{name}_{suffix}" for kind, suffix in kinds.items()}

    def process(path: Path, name: str, progress: Progress) -> None:
        outputs = outputs_of(name)
        _require_free(outputs.values(), overwrite=overwrite)
        image = read_image(path)
        labels, label_scores, extra = _label_with_progress(progress, path, image, label_image)
        written = _write_all(_label_writes(outputs, image, labels, label_scores, overwrite=overwrite, extra=extra))
        count = int(labels.max()) + (0 if background else 1)
        progress.console.print(f"{path}: {count} {what} -> {written[0]}", markup=False, highlight=False)

    with _user_errors():
        items = _plan_batch(images, lambda name: list(outputs_of(name).values()), out)
    _run_batch(items, process, what=what)


@app.command()
def demo(
    out: Path = typer.Option(Path("clusterseg-demo"), "--out", "-o", help="Output folder."),
    n_segments: int = typer.Option(200, "--n-segments", "-k", help="Number of superpixels."),
    method: str = typer.Option("lnsnet", "--method", "-m", help="Superpixel method."),
) -> None:
    """Segment scikit-image's bundled *astronaut* image into superpixels and write an overlay PNG.

    Nothing is downloaded: the image ships with scikit-image and the LNSNet
    weights ship with clusterseg. An existing output is never overwritten; a
    numbered name is chosen instead.

    Examples:

        clusterseg demo

        clusterseg demo -k 400 -m slic -o /tmp/demo
    """
    from skimage import data

    import clusterseg
    from clusterseg.io import write_image, write_labels
    from clusterseg.visualize import overlay_boundaries

    image = data.astronaut()
    with _user_errors():
        labels = clusterseg.superpixels(image, n_segments=n_segments, method=method)
        overlay_path = _unique_path(out / f"astronaut_{method}_k{n_segments}_overlay.png")
        labels_path = _unique_path(out / f"astronaut_{method}_k{n_segments}_labels.png")
        write_image(overlay_path, overlay_boundaries(image, labels))
        write_labels(labels_path, labels)
    typer.echo(f"{labels.max() + 1} superpixels ({method}, requested {n_segments})")
    typer.echo(f"overlay: {overlay_path.resolve()}")
    typer.echo(f"labels:  {labels_path.resolve()}")


@app.command()
@_batch_help
def superpixels(
    images: List[Path] = typer.Argument(..., help="Image files (PNG, JPEG, TIFF, .npy).", show_default=False),
    n_segments: int = typer.Option(200, "--n-segments", "-k", help="Requested number of superpixels."),
    method: str = typer.Option("lnsnet", "--method", "-m", help="lnsnet, slic, snic, felzenszwalb, watershed, seeds, lsc, opencv_slic."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if missing)."),
    label_format: str = typer.Option("png", "--format", "-f", help="Label map format: png (16-bit), tif or npy."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Also write boundaries over the image."),
    colour: bool = typer.Option(False, "--colour/--no-colour", help="Also write a colour label image."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="LNSNet checkpoint (default: shipped weights)."),
    refine_steps: Optional[int] = typer.Option(None, "--refine-steps", help="LNSNet: centre updates after the single pass (default 5; 0 = the paper's single non-iterative pass, about 0.7x the time)."),
    adapt_steps: int = typer.Option(0, "--adapt-steps", help="LNSNet: fine-tune a copy of the model on each image for this many iterations first (new domains; slow)."),
    segment_size: Optional[float] = typer.Option(None, "--segment-size", help="With --chunks: pixels per superpixel (instead of -k), so that chunking does not change the count.", show_default=False),
    chunks: Optional[int] = typer.Option(None, "--chunks", help="Process ONE large image (TIFF, Zarr, OME-Zarr, .npy) in chunks of this side on dask; -o must then be a .zarr path.", show_default=False),
    workers: int = typer.Option(0, "--workers", help="With --chunks or for many files: start a local dask cluster of this many one-thread workers (0: dask's local threads)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running dask scheduler (tcp://HOST:8786) to use instead.", show_default=False),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Compute superpixels for one or more images.

    Writes `<stem>_labels.<format>` (integer label map 0..n-1) and, by default,
    `<stem>_overlay.png` into the output folder.

    Examples:

        clusterseg superpixels photo.jpg -k 300 -o out/

        clusterseg superpixels frames/*.png -m slic -k 1000 --format npy --colour -o out/

        clusterseg superpixels slide.ome.zarr --chunks 2048 --segment-size 400 --workers 2 -o sp.zarr
    """
    import clusterseg
    from clusterseg.superpixels import METHODS

    label_format = _check_format(label_format)
    _check_choice("--method", method.lower(), METHODS)
    kwargs = {}
    if weights is not None:
        if method != "lnsnet":
            _fail("--weights only applies to --method lnsnet")
        from clusterseg.superpixels.lnsnet import load_model

        with _user_errors():  # a bad checkpoint is a usage error, not a failure of every image
            kwargs["weights"] = load_model(weights)
    for name, value in (("--refine-steps", refine_steps), ("--adapt-steps", adapt_steps)):
        if value is None:
            continue
        if value < 0:
            _fail(f"{name} must be >= 0, got {value}")
        if (value or name == "--refine-steps") and method != "lnsnet":
            _fail(f"{name} only applies to --method lnsnet")
    if refine_steps is not None:
        kwargs["refine_steps"] = refine_steps
    if adapt_steps:
        kwargs["adapt_steps"] = adapt_steps
    if chunks is not None or workers or scheduler:
        by_size = chunks is not None and segment_size is not None
        size = {"segment_size": segment_size} if by_size else {"n_segments": n_segments}
        _run_on_dask("superpixels", images, out, chunks, workers, scheduler, overwrite,
                     {**kwargs, "method": method, **size})
        return
    _label_each_image(
        images,
        lambda image, report: clusterseg.superpixels(image, n_segments=n_segments, method=method, **kwargs),
        what="superpixels", out=out, label_format=label_format, overlay=overlay, colour=colour,
        overwrite=overwrite,
    )


@app.command()
@_batch_help
def segment(
    images: List[Path] = typer.Argument(..., help="Image files (PNG, JPEG, TIFF, .npy).", show_default=False),
    n_segments: int = typer.Option(8, "--n-segments", "-k", help="Maximum number of regions K."),
    method: str = typer.Option("dsc", "--method", "-m", help="dsc (Deep Superpixel Cut) or spwnet (SP-WNet)."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if missing)."),
    label_format: str = typer.Option("png", "--format", "-f", help="Label map format: png (16-bit), tif or npy."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Also write boundaries over the image."),
    colour: bool = typer.Option(True, "--colour/--no-colour", help="Also write a colour label image."),
    superpixel_method: str = typer.Option("slic", "--superpixels", help="Over-segmentation the graph is built on."),
    max_iter: Optional[int] = typer.Option(None, "--max-iter", help="Optimisation budget (DSC iterations / SP-WNet steps)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the per-image optimisation."),
    ucm: bool = typer.Option(False, "--ucm/--no-ucm", help="Also write the ultrametric contour map, <name>_ucm.tif (float32, BSDS (2H+1, 2W+1) layout)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="Regions = the contour map cut at this height (one scale for all images) instead of K regions."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Unsupervised segmentation into at most K regions (per-image optimisation, no labels).

    With --ucm or --threshold the regions come from the boundary hierarchy: its
    ultrametric contour map cut at --threshold, or its level of K regions.

    Examples:

        clusterseg segment photo.jpg -k 6 -o out/

        clusterseg segment a.png b.png --method spwnet -k 8 -o out/

        clusterseg segment photos/*.jpg --threshold 1.0 --ucm -o out/
    """
    from clusterseg.superpixels import METHODS as SUPERPIXEL_METHODS
    from clusterseg.unsupervised import METHODS, segment as segment_image

    label_format = _check_format(label_format)
    _check_choice("--method", method, METHODS)
    _check_choice("--superpixels", superpixel_method.lower(), SUPERPIXEL_METHODS)
    if threshold is not None and not threshold >= 0:
        _fail(f"--threshold must be >= 0, got {threshold}")
    options = dict(method=method, superpixel_method=superpixel_method, max_iter=max_iter, random_state=seed)

    def label_image(image, report):
        if not ucm and threshold is None:
            return segment_image(image, n_segments=n_segments, progress=report, **options)
        return _hierarchy_regions(image, n_segments, threshold, ucm, progress=report, **options)

    _label_each_image(
        images, label_image, what="regions", extras={"ucm": "ucm.tif"} if ucm else None, out=out,
        label_format=label_format, overlay=overlay, colour=colour, overwrite=overwrite,
    )


def _hierarchy_regions(image, n_segments: int, threshold: Optional[float], keep_ucm: bool, **options) -> tuple:
    """``(labels, None, {"ucm": map})``: the boundary hierarchy cut at ``threshold``, or its level of K regions."""
    import numpy as np

    from clusterseg.unsupervised import segment_hierarchy, ucm_to_labels

    levels, ucm_map = segment_hierarchy(image, (n_segments,), return_ucm=True, **options)
    labels = levels[n_segments] if threshold is None else ucm_to_labels(ucm_map, threshold)
    return labels, None, ({"ucm": ucm_map.astype(np.float32)} if keep_ucm else {})


@app.command("segment-sequence")
def segment_sequence(
    source: Path = typer.Argument(..., help="Folder of frames, video file, or 3D TIFF/.npy stack.", show_default=False),
    n_segments: int = typer.Option(8, "--n-segments", "-k", help="Number of classes K."),
    train_frames: str = typer.Option("4", "--train-frames", help="How many evenly spaced frames to train on (e.g. 4), or indices '0,100,200'."),
    axis: int = typer.Option(0, "--axis", help="Slicing axis of a 3D volume."),
    epochs: int = typer.Option(10, "--epochs", help="SP-WNet training epochs."),
    model_path: Optional[Path] = typer.Option(None, "--model", help="Apply this saved SP-WNet model instead of training."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Also save the trained model here."),
    gif_side: int = typer.Option(480, "--gif-side", help="Longest side of the colour preview GIF (0: no GIF)."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if missing)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the training."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Train SP-WNet on a few frames/slices, then segment every frame of a video or slice of a volume.

    Class ids are consistent across frames. Frames are processed one at a time:
    a folder or video gives `labels/<frame>.png` per frame, a volume gives
    `labels.tif` (a label stack). A colour preview `labels_colour.gif` is
    written too.

    Examples:

        clusterseg segment-sequence clips/ -k 8 --train-frames 4 -o out/

        clusterseg segment-sequence volume.tif -k 4 --axis 0 --train-frames 0,50,100 -o out/

        clusterseg segment-sequence clips/ --model spwnet.pt -o out2/
    """
    import numpy as np
    from skimage.transform import rescale

    from clusterseg.io import write_gif, write_labels
    from clusterseg.unsupervised import SPWNetModel, fit_sequence_model, iter_segment_sequence
    from clusterseg.visualize import label2rgb_random

    is_volume = source.suffix.lower() in (".tif", ".tiff", ".npy") and not source.is_dir()
    with _user_errors():  # every output is checked before the (long) training
        if "," in train_frames:
            train_on: object = [int(t) for t in train_frames.split(",") if t.strip()]
        else:
            train_on = int(train_frames)
        names, outputs = _sequence_outputs(source, out, is_volume=is_volume, gif=bool(gif_side))
        _require_free(outputs + ([save_model] if save_model is not None else []), overwrite=overwrite)
    with _user_errors(), _progress() as progress:
        if model_path is not None:
            model = SPWNetModel.load(model_path)
        else:
            fit_task = progress.add_task("training SP-WNet", total=None)
            model = fit_sequence_model(
                source, n_segments, train_on=train_on, axis=axis, epochs=epochs, random_state=seed,
                progress=lambda done, total: progress.update(fit_task, completed=done, total=total),
            )
            if save_model is not None:
                model.save(save_model, overwrite=overwrite)
        frame_task = progress.add_task("segmenting", total=None)
        stack, previews, n_frames = [], [], 0
        for i, labels in iter_segment_sequence(
            source, model=model, axis=axis,
            progress=lambda done, total: progress.update(frame_task, completed=done, total=total),
        ):
            n_frames += 1
            if is_volume:
                stack.append(labels)
            else:
                name = names[i] if names else f"{i:05d}"
                write_labels(out / "labels" / f"{name}.png", labels, overwrite=overwrite)
            if gif_side:
                scale = min(1.0, gif_side / max(labels.shape))
                small = rescale(labels, scale, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
                previews.append(label2rgb_random(small))
        if is_volume:
            write_labels(out / "labels.tif", np.stack(stack, axis=axis), overwrite=overwrite)
        if previews:
            write_gif(out / "labels_colour.gif", previews, overwrite=overwrite)
    typer.echo(f"{n_frames} frames segmented -> {out.resolve()}")


def _sequence_outputs(
    source: Path, out: Path, *, is_volume: bool, gif: bool
) -> Tuple[Optional[List[str]], List[Path]]:
    """Frame output names (None: numbered ``00000``...) and the files ``segment-sequence`` writes.

    Frames of a folder are named by :func:`_output_names` (``x.png``, ``x.tif`` -> ``x_png``,
    ``x_tif``); the number of video frames is unknown before decoding, so existing numbered
    outputs are listed instead.
    """
    from clusterseg.io import list_frames

    names = output_names(list_frames(source)) if source.is_dir() and not is_volume else None
    if is_volume:
        paths = [out / "labels.tif"]
    elif names is not None:
        paths = [out / "labels" / f"{name}.png" for name in names]
    else:
        paths = sorted((out / "labels").glob("[0-9][0-9][0-9][0-9][0-9].png"))
    return names, paths + ([out / "labels_colour.gif"] if gif else [])


@contextlib.contextmanager
def _dask_client(workers: int, scheduler: Optional[str]) -> Iterator[object]:
    """A client for ``--scheduler``, a local cluster for ``--workers N``, else None (dask's threads)."""
    if not workers and not scheduler:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        _fail("--workers / --scheduler need dask: pip install 'clusterseg[distributed]'")
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _run_on_dask(kind: str, images: Sequence[Path], out: Path, chunks: Optional[int], workers: int,
                 scheduler: Optional[str], overwrite: bool, options: dict) -> None:
    """``--chunks``: one large image to a Zarr array; otherwise many files on the cluster."""
    try:
        from clusterseg import distributed
        from dask.diagnostics import ProgressBar
    except ImportError:
        _fail("--chunks / --workers / --scheduler need dask and zarr: pip install 'clusterseg[distributed]'")
    with _user_errors(), _dask_client(workers, scheduler) as client:
        if chunks is not None:
            if len(images) != 1 or out.suffix != ".zarr":
                raise ValueError("--chunks processes one image into a Zarr array: give one input and -o NAME.zarr")
            run = distributed.instances if kind == "instances" else distributed.superpixels
            with ProgressBar() if client is None else contextlib.nullcontext():
                labels = run(str(images[0]), chunks=chunks, client=client, out=out, overwrite=overwrite, **options)
            console.print(f"wrote {out} ({labels.shape[0]} x {labels.shape[1]}, {labels.dtype})", highlight=False)
            return
        report = distributed.process_files(list(images), kind, out, client=client, **options)
    console.print(f"{len(report.written)} written, {len(report.skipped)} already done (skipped)", highlight=False)
    _report_failures(list(report.failed.items()), len(images))  # exits non-zero if any failed


@train_app.command("lnsnet")
def train_lnsnet(
    images: Path = typer.Option(..., "--images", help="Folder of training images (one pass, one image at a time).", show_default=False),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, CSV log, final weights.", show_default=False),
    contours: str = typer.Option("sobel", "--contours", help="Contour maps for GBL: sobel, canny, or a folder of STEM.png edge maps (white = edge)."),
    iters_feature: int = typer.Option(40, "--iters-feature", help="Iterations per image with the seed layer frozen."),
    iters_seed: int = typer.Option(10, "--iters-seed", help="Iterations per image with the embedder frozen."),
    lr: float = typer.Option(3e-4, "--lr", help="Adam learning rate."),
    beta: float = typer.Option(10.0, "--beta", help="Weight of the reconstruction loss (paper Eq. 13)."),
    phi: float = typer.Option(1.0, "--phi", help="Weight of the spatial reconstruction term (Eq. 18)."),
    n_range: int = typer.Option(9, "--n-range", help="Seeds in each pixel's clustering range (Eq. 15)."),
    reg_weight: float = typer.Option(0.0, "--reg-weight", help="Weight of the out-of-range regulariser (Eq. 17)."),
    gal: bool = typer.Option(True, "--gal/--no-gal", help="Gradient-adaptive layer (GRM)."),
    gbl: bool = typer.Option(True, "--gbl/--no-gbl", help="Gradient-bi-direction layer (GRM)."),
    gal_momentum: float = typer.Option(0.5, "--gal-momentum", help="GAL memory update rate lambda (Eq. 10)."),
    gbl_eps: float = typer.Option(0.7, "--gbl-eps", help="Edge probability above which GBL flips gradients (Eq. 12)."),
    seed_layer: bool = typer.Option(True, "--seed-layer/--grid-seeds", help="Train the seed-estimation layer, or keep grid seeds (LNS-Net1)."),
    homogeneity_weight: float = typer.Option(1.0, "--homogeneity-weight", help="Weight of the soft-superpixel homogeneity loss (0 = the paper's objective)."),
    compactness: float = typer.Option(0.1, "--compactness", help="Weight of position (cell units) against colour in the homogeneity loss."),
    cluster_weight: float = typer.Option(1.0, "--cluster-weight", help="Weight of the DEC clustering loss (paper: 1)."),
    seed_window: float = typer.Option(1.0, "--seed-window", help="Seed features = mean embedding over this many grid cells around each seed (0 = one point, as in the paper)."),
    k_min: int = typer.Option(100, "--k-min", help="Smallest superpixel count drawn per image."),
    k_max: int = typer.Option(1000, "--k-max", help="Largest superpixel count drawn per image."),
    crop: int = typer.Option(112, "--crop", help="Side of the random crop trained on per image (0: whole image)."),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="Stop after this many images."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (1 is fastest on a shared machine)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out (no image is trained twice)."),
) -> None:
    """Lifelong LNSNet training: learn one image after another, without labels.

    Writes `log.csv` (losses per image), `checkpoint.pt` after every image and
    the final weights into the run folder; use them with
    `clusterseg superpixels --weights RUN/lnsnet_weights.pt`.

    Examples:

        clusterseg train lnsnet --images data/bsds500/images/train --out runs/lnsnet --threads 1

        clusterseg train lnsnet --images imgs/ --contours canny --out runs/x --resume
    """
    from clusterseg.training.lifelong import train_lnsnet as run_training

    with _user_errors():
        result = run_training(
            images,
            out,
            contours=contours,
            iters_feature=iters_feature,
            iters_seed=iters_seed,
            lr=lr,
            beta=beta,
            phi=phi,
            n_range=n_range,
            reg_weight=reg_weight,
            gal=gal,
            gbl=gbl,
            gal_momentum=gal_momentum,
            gbl_eps=gbl_eps,
            seed_layer=seed_layer,
            homogeneity_weight=homogeneity_weight,
            compactness=compactness,
            cluster_weight=cluster_weight,
            seed_window=seed_window,
            n_segments=(k_min, k_max),
            crop=crop or None,
            max_images=max_images,
            seed=seed,
            resume=resume,
            threads=threads,
            progress=True,
        )
    typer.echo(f"weights: {result}")


@app.command("models")
def models_command(
    task: Optional[str] = typer.Option(None, "--task", help="Only this task: superpixels, unsupervised or instances.", show_default=False),
) -> None:
    """List every model and method: shipped pretrained models, per-image learned methods, classical methods."""
    from rich.table import Table

    from clusterseg.models import list_models, model_info

    with _user_errors():
        names = list_models(task=task)
    table = Table("name", "task", "kind", "what / how to call it")
    for name in names:
        e = model_info(name)
        table.add_row(e.name, e.task, e.kind, e.summary)
    Console().print(table)


@app.command()
@_batch_help
def instances(
    images: List[Path] = typer.Argument(..., help="Image files (PNG, JPEG, TIFF, .npy).", show_default=False),
    model: str = typer.Option("dsb2018-nuclei", "--model", "-m", help="Shipped model name or a checkpoint (e.g. RUN/best.pt)."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if missing)."),
    label_format: str = typer.Option("png", "--format", "-f", help="Label map format: png (16-bit), tif or npy."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation: average over 8 flips/rotations (8x slower)."),
    tile_size: int = typer.Option(1024, "--tile-size", help="Tile side for large images (multiple of 8)."),
    seed_threshold: Optional[float] = typer.Option(None, "--seed-threshold", help="Override the model's seed threshold."),
    fg_threshold: Optional[float] = typer.Option(None, "--fg-threshold", help="Override the model's foreground threshold."),
    min_size: Optional[int] = typer.Option(None, "--min-size", help="Override the model's minimum object size (pixels)."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Also write object outlines over the image."),
    colour: bool = typer.Option(True, "--colour/--no-colour", help="Also write a colour label image."),
    chunks: Optional[int] = typer.Option(None, "--chunks", help="Process ONE large image (TIFF, Zarr, OME-Zarr, .npy) in chunks of this side on dask; -o must then be a .zarr path.", show_default=False),
    workers: int = typer.Option(0, "--workers", help="With --chunks or for many files: start a local dask cluster of this many one-thread workers (0: dask's local threads)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running dask scheduler (tcp://HOST:8786) to use instead.", show_default=False),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Instance segmentation with spatial embeddings and a learned clustering bandwidth.

    Writes `<stem>_labels.<format>` (0 = background, objects 1..n),
    `<stem>_scores.csv` (label, confidence, area) and, by default, an overlay
    and a colour label image.

    Examples:

        clusterseg instances cells/*.png -o out/

        clusterseg instances big.tif --model runs/nuclei/best.pt --tta -o out/

        clusterseg instances slide.ome.zarr --chunks 2048 --workers 2 -o labels.zarr
    """
    from clusterseg.instances import instances as segment_instances, load_instance_model

    label_format = _check_format(label_format)
    overrides = {k: v for k, v in (("seed_threshold", seed_threshold), ("fg_threshold", fg_threshold),
                                   ("min_size", min_size)) if v is not None}
    with _user_errors():  # a missing or unusable model is a usage error, not a failure of every image
        loaded = load_instance_model(model)
    if chunks is not None or workers or scheduler:
        _run_on_dask("instances", images, out, chunks, workers, scheduler, overwrite,
                     {"model": model, "tta": tta, **overrides})
        return
    _label_each_image(
        images,
        lambda image, report: tuple(segment_instances(image, loaded, tta=tta, tile_size=tile_size, **overrides)),
        what="objects", background=True, scores=True, out=out, label_format=label_format, overlay=overlay,
        colour=colour, overwrite=overwrite,
    )


@train_app.command("instances")
def train_instances(
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of training images.", show_default=False),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Folder of instance label images (same file stems; 0 = background).", show_default=False),
    out: Path = typer.Option(..., "--out", help="Run folder: best.pt, last.pt, log.csv.", show_default=False),
    cityscapes: Optional[Path] = typer.Option(None, "--cityscapes", help="Cityscapes root (leftImg8bit/, gtFine/) instead of --images/--labels: trains on 'train', validates on 'val'."),
    classes: str = typer.Option("car", "--classes", help="With --cityscapes: comma-separated classes, one seed map each (e.g. car or person,rider); crowd regions are ignored."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Fraction of images held out for validation (fixed by file name)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (one crop per image per epoch); default: derived from the number of images.", show_default=False),
    crop: Optional[int] = typer.Option(None, "--crop", help="Training crop side (multiple of 8); default: derived from the object size.", show_default=False),
    initial_bandwidth: Optional[float] = typer.Option(None, "--initial-bandwidth", help="Radius (px) of the untrained network's Gaussians; default: a quarter of the median object length.", show_default=False),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Imaging-modality augmentation (stains, inversion, colour, blur, noise) and zoomed crops."),
    precision: str = typer.Option("auto", "--precision", help="auto (bfloat16 where the CPU/GPU supports it), float32 or bfloat16."),
    modality_balance: float = typer.Option(0.0, "--modality-balance", help="0: draw images uniformly; 1: grey and colour images get equal shares of the crops (rare modalities drawn more often)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Crops per step."),
    lr: float = typer.Option(5e-4, "--lr", help="Adam learning rate (poly schedule)."),
    width: float = typer.Option(0.5, "--width", help="ERFNet channel multiplier (1.0 = the paper's network)."),
    n_sigma: int = typer.Option(2, "--n-sigma", help="Bandwidth channels: 1 (round) or 2 (elliptical)."),
    samples_per_epoch: Optional[int] = typer.Option(None, "--samples-per-epoch", help="Crops per epoch (default: number of training images)."),
    val_every: int = typer.Option(1, "--val-every", help="Validate every N epochs."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (1 is fastest on a shared machine)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
) -> None:
    """Train a spatial-embedding instance segmentation model on your own annotated images.

    The data are checked before training (unmatched file names, size
    mismatches, non-integer label images, no objects at all). Use the result
    with `clusterseg instances IMAGES --model RUN/best.pt`.

    Examples:

        clusterseg train instances --images data/images --labels data/masks --out runs/nuclei --threads 1

        clusterseg train instances --cityscapes /data/cityscapes --classes car --crop 512 --out runs/cars

        clusterseg train instances --images imgs --labels masks --out runs/x --epochs 100 --crop 256 --resume
    """
    import torch

    from clusterseg.datasets import CityscapesInstances, InstanceFolder, split_by_name
    from clusterseg.training.instances import suggest_config, train_instances as run_training

    with _user_errors():
        if threads is not None:
            if threads < 1:
                raise ValueError(f"--threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        if cityscapes is not None:
            if images is not None or labels is not None:
                raise ValueError("give either --cityscapes or --images/--labels, not both")
            names = tuple(c.strip() for c in classes.split(",") if c.strip())
            splits = [CityscapesInstances(cityscapes, split, classes=names) for split in ("train", "val")]
        elif images is None or labels is None:
            raise ValueError("--images and --labels are both required (or use --cityscapes)")
        else:
            data = InstanceFolder(images, labels)
            kept, held = split_by_name(data.names, val_fraction, salt="val")
            splits = [
                InstanceFolder(images, labels, names=[data.names[i] for i in idx]) if idx else []
                for idx in (kept, held)
            ]
        with _progress() as progress:
            for part in splits if cityscapes is not None else [data]:
                task = progress.add_task("checking data", total=len(part))
                part.validate(progress=lambda done, total, t=task: progress.update(t, completed=done, total=total))
        console.print(f"{len(splits[0])} training, {len(splits[1])} validation images", highlight=False)
        config, reason = suggest_config(
            splits[0], epochs=epochs, crop=crop, initial_bandwidth=initial_bandwidth, batch_size=batch_size, lr=lr,
            width=width, n_sigma=n_sigma, samples_per_epoch=samples_per_epoch, val_every=val_every, seed=seed, augment=augment,
            p_scale=None if augment else 0.0, precision=precision, modality_balance=modality_balance,
        )
        console.print(f"settings: {reason} (override with --crop / --initial-bandwidth / --epochs)", highlight=False)
        best = run_training(
            splits[0], splits[1], out, config, resume=resume, device=device,
            metadata={"images": str(images or cityscapes), "labels": str(labels or classes)},
        )
    typer.echo(f"best model: {best}")
    _echo_thresholds(best)


def _echo_thresholds(path: Path) -> None:
    """Print the clustering thresholds tuned on the validation images and saved with the model."""
    from clusterseg.models.spatial_embedding import SpatialEmbeddingModel

    if not Path(path).is_file():
        return
    model = SpatialEmbeddingModel.load(path)
    typer.echo(f"clustering thresholds: {_format_params(model.clustering)}")
    for modality, params in model.modality_clustering.items():
        typer.echo(f"  {modality} images: {_format_params(params)}")


def _format_params(params) -> str:
    import dataclasses

    return ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(params).items())


@evaluate_app.command("instances")
def evaluate_instances(
    labels: Path = typer.Option(..., "--labels", help="Folder of ground-truth instance label images.", show_default=False),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of images to segment with --model."),
    pred: Optional[Path] = typer.Option(None, "--pred", help="Folder of predicted label maps (`<stem>.*` or `<stem>_labels.*`) instead of a model."),
    model: str = typer.Option("dsb2018-nuclei", "--model", "-m", help="Model used with --images."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation with --images."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores to this JSON file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
) -> None:
    """Score instance segmentations: DSB2018 score, accuracy at IoU 0.5/0.75, COCO AP, AP50, F1.

    Either segment `--images` with `--model`, or read predictions from `--pred`.

    Examples:

        clusterseg evaluate instances --images test/images --labels test/labels --model runs/nuclei/best.pt

        clusterseg evaluate instances --pred out/ --labels test/labels
    """
    import json

    from clusterseg.datasets import InstanceFolder
    from clusterseg.io import read_labels
    from clusterseg.metrics import instance_scores

    if (images is None) == (pred is None):
        _fail("give exactly one of --images (with --model) or --pred")
    with _user_errors():
        if json_out is not None and json_out.exists() and not overwrite:
            raise FileExistsError(f"{json_out} exists; pass --overwrite to replace it")
        preds, gts, scores = [], [], []
        if images is not None:
            from clusterseg.instances import instances as segment_instances

            data = InstanceFolder(images, labels)
            with _progress() as progress:
                task = progress.add_task("segmenting", total=len(data))
                for sample in data:
                    result = segment_instances(sample.image, model, tta=tta)
                    preds.append(result.labels)
                    scores.append(result.scores)
                    gts.append(sample.labels)
                    progress.advance(task)
        else:
            pairs = _prediction_pairs(pred, labels)
            preds = [read_labels(p) for p, _ in pairs]
            gts = [read_labels(g) for _, g in pairs]
        result = instance_scores(preds, gts, scores or None)
    for key, value in result.items():
        typer.echo(f"{key:>12}: {value:.4f}" if isinstance(value, float) else f"{key:>12}: {value}")
    if json_out is not None:
        from clusterseg.io.write import atomic_write

        with _user_errors():
            atomic_write(json_out, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"), overwrite=overwrite)


def _prediction_pairs(pred: Path, labels: Path) -> List[tuple]:
    """(prediction, ground truth) files matched by stem; predictions may be named `<stem>_labels.*`."""
    from clusterseg.io.read import natural_sort_key

    def files(folder: Path) -> List[Path]:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
        return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() != ".csv"), key=natural_sort_key)

    gt_files = files(labels)
    if not gt_files:
        raise FileNotFoundError(f"no label files in {labels}")
    by_stem = {}
    for p in files(pred):
        stem = p.stem.removesuffix("_labels")
        if p.stem.endswith("_labels") or stem not in by_stem:  # `<stem>_labels.*` wins over `<stem>.*`
            by_stem[stem] = p
    missing = [g.stem for g in gt_files if g.stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(f"no prediction in {pred} for {len(missing)} label files: {', '.join(missing[:10])}{more}")
    return [(by_stem[g.stem], g) for g in gt_files]


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
