"""Tests for clusterseg.superpixels.superpixels with the classical methods (synthetic images only)."""

import importlib.util
import sys
import types

import numpy as np
import pytest
from skimage.measure import label as cc_label

from clusterseg.superpixels import available_methods, superpixels
from clusterseg.superpixels.classical import grid_seeds

HAS_PYSNIC = importlib.util.find_spec("pysnic") is not None
try:
    import cv2

    HAS_XIMGPROC = hasattr(cv2, "ximgproc")
except ImportError:  # pragma: no cover
    HAS_XIMGPROC = False

CORE = ["slic", "felzenszwalb", "watershed"]
ALL_CLASSICAL = [
    "slic",
    pytest.param("snic", marks=pytest.mark.skipif(not HAS_PYSNIC, reason="pysnic not installed")),
    "felzenszwalb",
    "watershed",
    *[
        pytest.param(m, marks=pytest.mark.skipif(not HAS_XIMGPROC, reason="opencv-contrib not installed"))
        for m in ("seeds", "lsc", "opencv_slic")
    ],
]


def make_scene(height=100, width=150, seed=0):
    """RGB uint8 image: colour gradient, three discs and a bar, with noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    image = np.stack(
        [60 + 100 * cols / width, 80 + 80 * rows / height, np.full((height, width), 120.0)], axis=-1
    )
    for (cy, cx, r), colour in zip(
        [(0.3, 0.25, 0.2), (0.65, 0.6, 0.25), (0.3, 0.8, 0.15)],
        [(230, 40, 40), (30, 200, 60), (250, 240, 40)],
    ):
        disc = (rows - cy * height) ** 2 + (cols - cx * width) ** 2 < (r * height) ** 2
        image[disc] = colour
    image[int(0.85 * height) :, : width // 3] = (20, 20, 160)
    image += rng.normal(0, 5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene():
    return make_scene()


def check_labels(labels, shape):
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int32
    assert labels.shape == shape
    n = int(labels.max()) + 1
    assert labels.min() == 0
    assert np.array_equal(np.unique(labels), np.arange(n)), "labels are not consecutive"
    assert cc_label(labels, background=-1, connectivity=1).max() == n, "a label is not connected"
    return n


@pytest.mark.parametrize("method", ALL_CLASSICAL)
def test_methods_give_connected_consecutive_labels(scene, method):
    k = 60
    labels = superpixels(scene, k, method=method)
    n = check_labels(labels, scene.shape[:2])
    # loose count bounds: SEEDS returns fewer cells than requested by design
    assert 0.4 * k <= n <= 1.6 * k, f"{method}: {n} segments for {k}"
    # the final pass removes fragments below 0.25 of the nominal size
    min_size = int(0.25 * scene.shape[0] * scene.shape[1] / k)
    assert np.bincount(labels.ravel()).min() >= min_size
    again = superpixels(scene, k, method=method)
    if method == "lsc":
        # OpenCV's LSC is not bit-for-bit reproducible between calls (see lsc_labels)
        assert abs(int(again.max()) + 1 - n) <= 0.1 * n
    else:
        np.testing.assert_array_equal(labels, again)


@pytest.mark.parametrize("method", ALL_CLASSICAL)
def test_more_segments_when_asked(scene, method):
    few = superpixels(scene, 20, method=method).max() + 1
    many = superpixels(scene, 150, method=method).max() + 1
    assert many > 2 * few


@pytest.mark.parametrize("method", ALL_CLASSICAL)
def test_boundaries_follow_the_discs(scene, method):
    # pixels of a superpixel should mostly share the same scene region
    rows, cols = np.mgrid[:100, :150]
    disc = (rows - 65) ** 2 + (cols - 90) ** 2 < 25**2
    labels = superpixels(scene, 80, method=method)
    inside = np.bincount(labels.ravel(), weights=disc.ravel(), minlength=labels.max() + 1)
    size = np.bincount(labels.ravel())
    purity = np.maximum(inside, size - inside).sum() / size.sum()
    assert purity > 0.95


def test_felzenszwalb_count_is_fitted(scene):
    for k in (30, 100):
        n = superpixels(scene, k, method="felzenszwalb").max() + 1
        assert abs(n - k) <= 0.25 * k, (k, n)


def test_felzenszwalb_fixed_scale_changes_count(scene):
    coarse = superpixels(scene, 50, method="felzenszwalb", scale=2000).max() + 1
    fine = superpixels(scene, 50, method="felzenszwalb", scale=5).max() + 1
    assert fine > coarse


def test_compactness_makes_shapes_more_regular(scene):
    from clusterseg.metrics.superpixel import compactness as co

    loose = superpixels(scene, 60, method="watershed", compactness=0.0)
    tight = superpixels(scene, 60, method="watershed", compactness=5.0)
    assert co(tight) > co(loose)


@pytest.mark.parametrize("method", CORE)
def test_input_variants(scene, method):
    shape = scene.shape[:2]
    grey = scene.mean(axis=-1).astype(np.uint8)
    rgba = np.concatenate([scene, np.full(shape + (1,), 255, np.uint8)], axis=-1)
    variants = {
        "grey": (grey, {}),
        "grey_none_axis": (grey, {"channel_axis": None}),
        "rgba": (rgba, {}),
        "uint16": (scene.astype(np.uint16) * 257, {}),
        "float01": (scene / 255.0, {}),
        "float_any": (scene.astype(np.float32) * 3 - 100, {}),
        "channels_first": (np.moveaxis(scene, -1, 0), {"channel_axis": 0}),
    }
    ref = superpixels(scene, 40, method=method)
    for name, (img, kw) in variants.items():
        out = superpixels(img, 40, method=method, **kw)
        check_labels(out, shape)
        if name in ("uint16", "float01", "channels_first", "rgba"):
            # same pixel values after normalisation -> same result
            np.testing.assert_array_equal(out, ref, err_msg=name)


@pytest.mark.parametrize("method", ALL_CLASSICAL)
def test_portrait_and_tiny_images(scene, method):
    portrait = np.ascontiguousarray(np.transpose(scene, (1, 0, 2)))
    check_labels(superpixels(portrait, 50, method=method), portrait.shape[:2])
    tiny = scene[:12, :9]
    n = check_labels(superpixels(tiny, 4, method=method), (12, 9))
    assert 1 <= n <= 12


def test_single_segment_and_constant_image(scene):
    out = superpixels(scene, 1, method="slic")
    check_labels(out, scene.shape[:2])
    flat = np.zeros((30, 40, 3), dtype=np.uint8)
    for method in CORE:
        check_labels(superpixels(flat, 12, method=method), (30, 40))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_segments": 0}, ValueError, ">= 1"),
        ({"n_segments": 100 * 150 + 1}, ValueError, "exceeds"),
        ({"n_segments": 2.5}, ValueError, "integer"),
        ({"n_segments": "10"}, TypeError, "integer"),
        ({"method": "nope"}, ValueError, "available: .*slic"),
        ({"method": "felzenszwalb", "compactness": 3.0}, ValueError, "no compactness"),
        ({"compactness": -1.0}, ValueError, "compactness"),
        ({"min_size_factor": float("nan")}, ValueError, "min_size_factor"),
    ],
)
def test_bad_arguments(scene, kwargs, error, match):
    with pytest.raises(error, match=match):
        superpixels(scene, **kwargs)


def test_bad_images():
    with pytest.raises(ValueError, match="empty"):
        superpixels(np.zeros((0, 10, 3), dtype=np.uint8), 5)
    nan = np.zeros((10, 10), dtype=float)
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        superpixels(nan, 5)
    with pytest.raises(ValueError, match="channels"):
        superpixels(np.zeros((10, 10, 5)), 5)
    with pytest.raises(TypeError, match="numpy"):
        superpixels([[0, 1], [1, 0]], 2)


def test_available_methods():
    names = available_methods()
    assert {"slic", "felzenszwalb", "watershed"} <= set(names)
    assert set(names) <= set(available_methods(installed_only=False))
    assert "lnsnet" in available_methods(installed_only=False)
    assert ("snic" in names) == HAS_PYSNIC
    assert ("lsc" in names) == HAS_XIMGPROC


def test_opencv_missing_gives_install_hint(scene, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` fail
    for method in ("seeds", "lsc", "opencv_slic"):
        with pytest.raises(ImportError, match=r"clusterseg\[opencv\]"):
            superpixels(scene, 20, method=method)


def test_lnsnet_is_delegated(scene, monkeypatch):
    calls = {}

    def fake_lnsnet(rgb, n_segments, **kwargs):
        calls.update(rgb=rgb, n_segments=n_segments, kwargs=kwargs)
        out = np.zeros(rgb.shape[:2], dtype=np.int64)
        out[:, ::2] = 5  # one label in many disconnected stripes
        return out

    fake = types.ModuleType("clusterseg.superpixels.lnsnet")
    fake.lnsnet_superpixels = fake_lnsnet
    monkeypatch.setitem(sys.modules, "clusterseg.superpixels.lnsnet", fake)
    out = superpixels(scene[:20, :30], 6, method="lnsnet", min_size_factor=0, weights="w.pt")
    # min_size_factor goes to LNSNet's own count-controlled merging
    assert calls["n_segments"] == 6 and calls["kwargs"] == {"weights": "w.pt", "min_size_factor": 0.0}
    rgb = calls["rgb"]
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.float32
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    n = check_labels(out, (20, 30))
    assert n == 30  # 15 stripes of each value, each its own connected segment
    # with the default min_size_factor the dispatcher does not merge again what
    # LNSNet's count control kept (here: 1-pixel-wide stripes)
    assert check_labels(superpixels(scene[:20, :30], 6, method="lnsnet"), (20, 30)) == 30
    assert calls["kwargs"] == {}  # no min_size_factor given: LNSNet's config default (0.25) applies


def test_grid_seeds():
    for shape, k in [((100, 150), 60), ((150, 100), 60), ((7, 300), 10), ((5, 5), 25)]:
        rows, cols = grid_seeds(shape, k)
        assert abs(rows.size - k) <= 0.35 * k
        assert rows.min() >= 0 and rows.max() < shape[0]
        assert cols.min() >= 0 and cols.max() < shape[1]
        assert len(set(zip(rows.tolist(), cols.tolist()))) == rows.size


def test_pysnic_missing_gives_install_hint(scene, monkeypatch):
    for name in ("pysnic", "pysnic.algorithms", "pysnic.algorithms.snic"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"clusterseg\[snic\]"):
        superpixels(scene, 20, method="snic")
    assert "snic" not in available_methods()
