"""Hostile and edge-case inputs to the library: each gives a clear error or the correct result.

A sweep of the robustness issue's items (numbered as in the issue; see the ``# --- N.`` comments):
palette and colour-coded label files, CMYK JPEGs, more segments than a method can give, images
too small or too thin, frame sequences of mixed sizes, decompression bombs, hostile checkpoints
(oversized configs, empty files, malicious pickles), bad training options, interrupted and
resumed training, labels beyond int64, and the plain corrupt / truncated / NaN / existing-output
cases. Every test builds its bad input itself in ``tmp_path``; images and networks are tiny.

The command-line side of the sweep (a corrupt file in a batch, name clashes between inputs,
existing outputs, an output that is an input, bugs versus user errors, ``segment-sequence``
checking its outputs before training) lives in ``tests/test_robustness_cli.py`` and is not
repeated here; only ``train lnsnet`` with bad options (item 14) is checked through the CLI.
"""

from __future__ import annotations

import csv
import os
import resource
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import clusterseg
from clusterseg.cli import app
from clusterseg.io import read_image, read_labels, rgb_to_labels, write_image, write_labels
from clusterseg.io.checkpoints import CheckpointError, save_checkpoint
from conftest import make_blocks_image

runner = CliRunner()

#: Palette colours of the label files of item 1: index 0 black, 1 red, 7 blue.
PALETTE = {0: (0, 0, 0), 1: (255, 0, 0), 7: (0, 0, 255)}


def _palette_labels(height: int = 32, width: int = 40) -> np.ndarray:
    labels = np.zeros((height, width), np.uint8)
    labels[4:14, 5:15] = 1
    labels[18:28, 22:34] = 7
    return labels


def _write_palette_png(path, labels: np.ndarray):
    img = Image.fromarray(labels, mode="P")
    palette = [0] * 768
    for index, colour in PALETTE.items():
        palette[3 * index : 3 * index + 3] = colour
    img.putpalette(palette)
    img.save(path)
    return path


def _read_log(path, key: str) -> list[int]:
    with open(path, newline="") as fh:
        return [int(row[key]) for row in csv.DictReader(fh)]


# --------------------------------------------------------------------------- 1. palette / RGB labels
def test_palette_label_png_reads_indices_as_labels_and_colours_as_image(tmp_path):
    labels = _palette_labels()
    path = _write_palette_png(tmp_path / "labels.png", labels)
    with Image.open(path) as img:
        assert img.mode == "P"  # the file really is a palette PNG

    read = read_labels(path)
    assert read.dtype == np.int32 and read.shape == labels.shape
    np.testing.assert_array_equal(read, labels)
    assert set(np.unique(read)) == {0, 1, 7}

    colours = read_image(path)
    assert colours.shape == (32, 40, 3) and colours.dtype == np.uint8
    for index, colour in PALETTE.items():
        assert (colours[labels == index] == colour).all()


def test_instance_folder_yields_palette_indices(tmp_path):
    from clusterseg.datasets import InstanceFolder

    labels = _palette_labels()
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    write_image(tmp_path / "images" / "cell1.png", make_blocks_image(32, 40)[0])
    _write_palette_png(tmp_path / "labels" / "cell1.png", labels)
    name, image, read = InstanceFolder(tmp_path / "images", tmp_path / "labels")[0]
    assert name == "cell1" and image.shape == (32, 40, 3)
    np.testing.assert_array_equal(read, labels)


def test_training_on_palette_labels_sees_the_indices(tmp_path):
    from clusterseg.datasets import InstanceFolder
    from clusterseg.training.instances import InstanceTrainingConfig, prepare_samples, train_instances

    labels = _palette_labels()
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for i in range(2):
        image = np.full((32, 40, 3), 20, np.uint8)
        image[labels > 0] = 200
        write_image(tmp_path / "images" / f"im{i}.png", image)
        _write_palette_png(tmp_path / "labels" / f"im{i}.png", labels)
    data = InstanceFolder(tmp_path / "images", tmp_path / "labels")
    prepared = prepare_samples(data)
    assert [len(s.centres) for s in prepared] == [2, 2]  # two objects, not three colours
    assert set(np.unique(prepared[0].labels)) == {0, 1, 7}
    best = train_instances(data, [], tmp_path / "run",
                           InstanceTrainingConfig(epochs=1, crop=32, width=0.25, batch_size=2), progress=False)
    assert best.exists()
    assert _read_log(tmp_path / "run" / "log.csv", "epoch") == [1]


def test_rgb_coded_label_png_is_refused_with_a_hint_or_numbered(tmp_path):
    rgb = np.zeros((32, 40, 3), np.uint8)
    rgb[4:14, 5:15] = (255, 0, 0)
    rgb[18:28, 22:34] = (0, 0, 255)
    rgb[0:2, 30:40] = (0, 255, 0)
    path = tmp_path / "rgb_labels.png"
    Image.fromarray(rgb).save(path)

    with pytest.raises(ValueError, match="rgb='unique'") as info:
        read_labels(path)
    assert "rgb_labels.png" in str(info.value)

    numbered = read_labels(path, rgb="unique")
    assert numbered.dtype == np.int32
    np.testing.assert_array_equal(numbered, rgb_to_labels(rgb))
    # black is the background 0; the other colours 1..3 in the order of np.unique
    assert (numbered[(rgb == 0).all(-1)] == 0).all()
    assert (numbered[(rgb == (0, 0, 255)).all(-1)] == 1).all()
    assert (numbered[(rgb == (0, 255, 0)).all(-1)] == 2).all()
    assert (numbered[(rgb == (255, 0, 0)).all(-1)] == 3).all()

    with pytest.raises(ValueError, match="rgb must be 'error' or 'unique'"):
        read_labels(path, rgb="colours")


# --------------------------------------------------------------------------- 2. CMYK JPEG
def test_cmyk_jpeg_is_read_as_rgb(tmp_path):
    rgb = make_blocks_image(32, 40)[0]
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    with Image.open(path) as img:
        assert img.mode == "CMYK"
    read = read_image(path)
    assert read.shape == (32, 40, 3) and read.dtype == np.uint8
    np.testing.assert_allclose(read.astype(float), rgb.astype(float), atol=10)


# --------------------------------------------------------------------------- 6. more segments than possible
def test_segment_dsc_refuses_more_segments_than_it_can_give():
    image = make_blocks_image(32, 40)[0]
    with pytest.raises(ValueError, match="more than method 'dsc' can give"):
        clusterseg.segment(image, n_segments=10**6, method="dsc")


def test_segment_spwnet_refuses_more_segments_than_it_can_give():
    image = make_blocks_image(32, 40)[0]
    with pytest.raises(ValueError, match="more than SP-WNet can give"):
        clusterseg.segment(image, n_segments=10**5, method="spwnet")


# --------------------------------------------------------------------------- 7. images too small
@pytest.mark.parametrize("method, side", [("dsc", 2), ("spwnet", 8)])
def test_segment_refuses_images_too_small_for_the_method(method, side):
    image = make_blocks_image(side, side)[0]
    with pytest.raises(ValueError, match=f"too small for method '{method}'"):
        clusterseg.segment(image, n_segments=2, method=method)


# --------------------------------------------------------------------------- 8. thin images
def _thin_image(shape):
    """A random-coloured strip with a few flat runs (colour edges to cut at)."""
    rng = np.random.default_rng(sum(shape))
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def _assert_connected_consecutive(labels, n=None):
    from skimage.measure import label as cc_label

    values = np.unique(labels)
    if n is not None:
        assert values.size == n
    np.testing.assert_array_equal(values, np.arange(values.size))
    # as many 4-connected components as labels: every label is one connected piece
    assert cc_label(labels, connectivity=1, background=-1).max() == values.size


@pytest.mark.parametrize("method", ["slic", "lnsnet", "watershed"])
@pytest.mark.parametrize("shape, k", [((1, 2000), 20), ((1, 2000), 200), ((2000, 1), 20), ((2000, 1), 200),
                                      ((3, 2000), 20), ((3, 20000), 200)])
def test_thin_images_get_exactly_k_connected_strips(shape, k, method):
    labels = clusterseg.superpixels(_thin_image(shape), k, method=method)
    assert labels.shape == shape and labels.dtype == np.int32
    _assert_connected_consecutive(labels, k)
    long_axis = int(np.argmax(shape))
    assert (np.diff(labels, axis=long_axis) >= 0).all()  # strips ordered along the long side
    assert (np.diff(labels, axis=1 - long_axis) == 0).all()  # each strip spans the short side


@pytest.mark.parametrize("method", ["slic", "lnsnet", "watershed"])
def test_three_rows_at_k200_are_not_thin_and_stay_valid(method):
    # 3 rows are more than half the side of a 30-pixel superpixel (5.5 px), so this is an ordinary
    # 2-D over-segmentation: the count is approximate, but the labels are still connected 0..n-1.
    labels = clusterseg.superpixels(_thin_image((3, 2000)), 200, method=method)
    assert labels.shape == (3, 2000) and labels.dtype == np.int32
    _assert_connected_consecutive(labels)


# --------------------------------------------------------------------------- 9. frames of different sizes
@pytest.fixture
def no_training(monkeypatch):
    import clusterseg.unsupervised.api as api

    def fail(*args, **kwargs):
        raise AssertionError("training started although the frames were invalid")

    monkeypatch.setattr(api, "fit_sequence_model", fail)


def test_segment_sequence_folder_with_an_odd_frame_size_fails_before_training(tmp_path, no_training):
    frames = tmp_path / "frames"
    for i in range(3):
        write_image(frames / f"f{i}.png", make_blocks_image(32, 40, seed=i)[0])
    write_image(frames / "f3.png", make_blocks_image(40, 32, seed=3)[0])
    with pytest.raises(ValueError, match=r"f3\.png") as info:
        clusterseg.segment_sequence(frames, n_segments=3, epochs=1)
    assert "one size" in str(info.value)


def test_segment_sequence_list_of_odd_shapes_fails_before_training(no_training):
    frames = [make_blocks_image(32, 40)[0], make_blocks_image(32, 40)[0], make_blocks_image(30, 40)[0]]
    with pytest.raises(ValueError, match=r"frame 2 has shape \(30, 40, 3\)"):
        clusterseg.segment_sequence(frames, n_segments=3, epochs=1)


# --------------------------------------------------------------------------- 10. a single image as a sequence
def test_segment_sequence_of_a_single_image_says_so(tmp_path, no_training):
    path = write_image(tmp_path / "x.png", make_blocks_image(32, 40)[0])
    with pytest.raises(ValueError, match="single image"):
        clusterseg.segment_sequence(path, n_segments=3, epochs=1)


# --------------------------------------------------------------------------- 11. decompression bombs
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_png_claiming_100000_squared_pixels_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + _png_chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="above the limit") as info:
        read_image(path)
    assert "CLUSTERSEG_MAX_IMAGE_PIXELS" in str(info.value) and "bomb.png" in str(info.value)


def test_image_pixel_limit_follows_the_environment(tmp_path, monkeypatch):
    path = write_image(tmp_path / "small.png", make_blocks_image(32, 40)[0])
    monkeypatch.setenv("CLUSTERSEG_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(ValueError, match="above the limit.*CLUSTERSEG_MAX_IMAGE_PIXELS"):
        read_image(path)
    monkeypatch.setenv("CLUSTERSEG_MAX_IMAGE_PIXELS", str(32 * 40))
    assert read_image(path).shape == (32, 40, 3)


# --------------------------------------------------------------------------- 12. oversized model config
def test_checkpoint_with_an_oversized_width_is_refused_without_allocating(tmp_path):
    from clusterseg.instances.model import SpatialEmbeddingModel

    state = SpatialEmbeddingModel(width=0.25).checkpoint()
    state["config"]["width"] = 60
    path = save_checkpoint(state, tmp_path / "huge.pt")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(CheckpointError, match="do not match"):
        SpatialEmbeddingModel.load(path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 500, f"peak memory grew by {grown_mib:.0f} MiB"


# --------------------------------------------------------------------------- 13. empty and malicious checkpoints
def _loaders():
    from clusterseg.instances.model import SpatialEmbeddingModel
    from clusterseg.unsupervised import SPWNetModel

    return [SPWNetModel.load, SpatialEmbeddingModel.load]


@pytest.mark.parametrize("index", [0, 1], ids=["SPWNetModel", "SpatialEmbeddingModel"])
def test_empty_checkpoint_is_refused(tmp_path, index):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        _loaders()[index](path)


def test_malicious_pickle_checkpoint_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, ("touch " + str(marker),)

    path = tmp_path / "evil.pt"
    torch.save({"format": "clusterseg.spwnet", "config": Payload(), "state_dict": {}}, path)
    for load in _loaders():
        with pytest.raises(CheckpointError, match="refused for safety"):
            load(path)
        assert not marker.exists()
    # the file really is hostile: an unsafe load runs its command
    torch.load(path, weights_only=False)
    assert marker.exists()


# --------------------------------------------------------------------------- 14. bad LNSNet training options
@pytest.fixture
def lnsnet_images(tmp_path):
    folder = tmp_path / "images"
    for i in range(2):
        write_image(folder / f"im{i}.png", make_blocks_image(64, 80, seed=i)[0])
    return folder


@pytest.mark.parametrize("options, message", [
    (dict(n_segments=(0, -1)), "need 1 <= k_min <= k_max"),
    (dict(n_segments=(500, 100)), "k_min=500, k_max=100"),
    (dict(crop=-5), "crop must be None"),
    (dict(n_segments=(100, 100000)), "k_max=100000 superpixels is too many for the image"),
    (dict(lr=0), "lr must be a finite number > 0"),
])
def test_train_lnsnet_refuses_bad_options_before_creating_the_run(lnsnet_images, tmp_path, options, message):
    from clusterseg.training.lifelong import train_lnsnet

    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        train_lnsnet(lnsnet_images, out, progress=False, iters_feature=1, iters_seed=1, **options)
    assert not out.exists()


def test_cli_train_lnsnet_refuses_a_reversed_k_range(lnsnet_images, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "lnsnet", "--images", str(lnsnet_images), "--out", str(out),
                                 "--k-min", "500", "--k-max", "100"])
    assert result.exit_code == 2, result.output
    assert "k_min=500" in result.output and "Traceback" not in result.output
    assert not out.exists()


# --------------------------------------------------------------------------- 15. interrupted, then resumed training
class _Interrupted(Exception):
    """Stands for a kill between writing a log row and saving the checkpoint."""


def _interrupt_save(monkeypatch, module, when):
    real = module.save_checkpoint

    def save(obj, path, *args, **kwargs):
        if when(obj, path):
            raise _Interrupted(str(path))
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(module, "save_checkpoint", save)


def test_train_instances_resumed_after_a_kill_logs_each_epoch_once(tmp_path, monkeypatch):
    import clusterseg.training.instances as module
    from clusterseg.training.instances import InstanceTrainingConfig, train_instances

    labels = _palette_labels().astype(np.int32)
    data = []
    for i in range(2):
        image = np.full((32, 40, 3), 20, np.uint8)
        image[labels > 0] = 200 - 20 * i
        data.append((f"im{i}", image, labels))
    config = InstanceTrainingConfig(epochs=3, crop=32, batch_size=2, width=0.25)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_save(patch, module, lambda obj, path: path.name == "last.pt" and obj["epoch"] == 2)
        with pytest.raises(_Interrupted):
            train_instances(data, [], run, config, progress=False)
    assert _read_log(run / "log.csv", "epoch") == [1, 2]  # row 2 written, its checkpoint not
    train_instances(data, [], run, config, resume=True, progress=False)
    assert _read_log(run / "log.csv", "epoch") == [1, 2, 3]

    train_instances(data, [], tmp_path / "full", config, progress=False)
    resumed = torch.load(run / "last.pt", weights_only=True)["model"]["state_dict"]
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]["state_dict"]
    assert resumed.keys() == full.keys()
    for key in full:
        assert torch.equal(resumed[key], full[key]), key


def test_train_lnsnet_resumed_after_a_kill_logs_each_image_once(tmp_path, monkeypatch):
    import clusterseg.training.lifelong as module
    from clusterseg.io.checkpoints import load_checkpoint
    from clusterseg.training.lifelong import train_lnsnet

    images = tmp_path / "images"
    for i in range(3):
        write_image(images / f"im{i}.png", make_blocks_image(24, 32, seed=i)[0])
    options = dict(iters_feature=2, iters_seed=1, crop=None, n_segments=8, progress=False)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:  # killed after the log row of image 2 (index 1)
        _interrupt_save(patch, module, lambda obj, path: path.name == "checkpoint.pt" and obj["next_index"] == 2)
        with pytest.raises(_Interrupted):
            train_lnsnet(images, run, **options)
    assert _read_log(run / "log.csv", "index") == [0, 1]
    train_lnsnet(images, run, resume=True, **options)
    assert _read_log(run / "log.csv", "index") == [0, 1, 2]

    train_lnsnet(images, tmp_path / "full", **options)
    resumed = load_checkpoint(run / "checkpoint.pt")["model"]
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    for key in full:
        assert torch.equal(resumed[key], full[key]), key


# --------------------------------------------------------------------------- 16. labels beyond int64
def test_match_instances_names_uint64_labels_beyond_int64():
    from clusterseg.metrics import match_instances

    labels = np.zeros((4, 5), np.uint64)
    labels[1:3, 1:3] = 2**63 + 5
    with pytest.raises(ValueError, match="beyond the int64 range") as info:
        match_instances(labels, labels)
    assert "negative" not in str(info.value)


# --------------------------------------------------------------------------- already-passing sweep cases
def test_corrupt_image_file_names_the_file(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"cannot read .*noise\.png"):
        read_image(path)


def test_truncated_png_is_a_value_error(tmp_path):
    whole = write_image(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 256, (32, 40, 3), np.uint8))
    path = tmp_path / "half.png"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"half\.png"):
        read_image(path)


@pytest.mark.parametrize("image, message", [
    (np.full((32, 40, 3), np.nan), "NaN or infinite"),
    (np.full((32, 40), np.inf), "NaN or infinite"),
    (np.zeros((2, 3, 4, 5, 3)), "got 5 dimensions"),
    (np.zeros((32, 40), np.complex128), "unsupported dtype complex128"),
], ids=["nan", "inf", "5d", "complex"])
def test_superpixels_refuse_bad_arrays(image, message):
    with pytest.raises(ValueError, match=message):
        clusterseg.superpixels(image, 10, method="slic")


@pytest.mark.parametrize("k, message", [(0, "n_segments must be >= 1"), (32 * 40 + 1, "exceeds the number of pixels")])
def test_superpixels_refuse_impossible_counts(k, message):
    with pytest.raises(ValueError, match=message):
        clusterseg.superpixels(make_blocks_image(32, 40)[0], k, method="slic")


def test_write_labels_refuses_an_existing_file(tmp_path):
    path = write_labels(tmp_path / "seg.png", np.zeros((4, 5), np.int32))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_labels(path, np.ones((4, 5), np.int32))
    assert path.read_bytes() == before
    write_labels(path, np.ones((4, 5), np.int32), overwrite=True)
    assert (read_labels(path) == 1).all()


def test_write_labels_into_a_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user (e.g. root) that ignores folder permissions")
        with pytest.raises(PermissionError):
            write_labels(folder / "seg.png", np.zeros((4, 5), np.int32))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_training_divergence_is_a_user_error_not_a_bug():
    """The CLI reports ValueErrors as one line; a diverged run is a property of the settings."""
    from clusterseg.training.runlog import TrainingDiverged

    assert issubclass(TrainingDiverged, ValueError) and issubclass(TrainingDiverged, FloatingPointError)


def test_write_into_a_folder_that_refuses_files_leaves_nothing(tmp_path, monkeypatch):
    """What a read-only folder does for a normal user, simulated so that it also runs as root (as CI does)."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(kwargs.get("dir", tmp_path)))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError):
        write_labels(tmp_path / "seg.png", np.zeros((4, 5), np.int32))
    assert list(tmp_path.iterdir()) == []
    from typer.testing import CliRunner

    from clusterseg.cli import app
    from clusterseg.io import write_image

    monkeypatch.undo()
    write_image(tmp_path / "a.png", np.zeros((16, 20, 3), np.uint8))
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = CliRunner().invoke(app, ["superpixels", str(tmp_path / "a.png"), "-k", "4", "-m", "slic",
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Permission denied" in result.output
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
