"""Classical watershed nucleus baseline (clusterseg.instances.classical) on synthetic discs."""

import numpy as np
import pytest

from clusterseg.instances.classical import DEFAULT_GRID, tune_watershed_nuclei, watershed_nuclei
from clusterseg.metrics import match_instances

# (centre row, centre col, radius): two touching (overlapping) pairs and two isolated discs
DISCS = [(20, 20, 10), (20, 38, 10), (62, 22, 9), (62, 39, 9), (30, 75, 11), (75, 76, 8)]


def make_discs(bright: bool = True, noise: float = 6.0, seed: int = 0):
    """uint8 image of touching discs (bright on dark or dark on bright) and its true labels."""
    h, w = 96, 100
    yy, xx = np.mgrid[:h, :w]
    truth = np.zeros((h, w), dtype=np.int32)
    # nearest-centre assignment inside each disc: touching discs split along their chord
    best = np.full((h, w), np.inf)
    for k, (cy, cx, r) in enumerate(DISCS, start=1):
        d = np.hypot(yy - cy, xx - cx) / r
        inside = (d < 1) & (d < best)
        truth[inside] = k
        best = np.where(inside, d, best)
    rng = np.random.default_rng(seed)
    fg, bg = (210.0, 40.0) if bright else (60.0, 220.0)
    image = np.where(truth > 0, fg, bg) + rng.normal(0, noise, truth.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def assert_recovers(labels, truth, min_iou=0.8):
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    assert labels.min() == 0
    # consecutive labels 1..n
    np.testing.assert_array_equal(np.unique(labels[labels > 0]), np.arange(1, labels.max() + 1))
    m = match_instances(labels, truth, iou_threshold=min_iou)
    assert labels.max() == truth.max() == len(DISCS)
    assert m.tp == len(DISCS), (m.tp, m.fp, m.fn)
    assert m.matched_iou.min() > min_iou


def test_bright_discs_on_dark_background():
    image, truth = make_discs(bright=True)
    assert_recovers(watershed_nuclei(image), truth)


def test_dark_discs_on_bright_rgb_background_auto_polarity():
    grey, truth = make_discs(bright=False, seed=1)
    # H&E-like colour: same structure in every channel, different gains
    rgb = np.stack([grey, (grey * 0.8).astype(np.uint8), grey], axis=-1)
    assert_recovers(watershed_nuclei(rgb), truth)
    # channels-first input gives the same labels
    np.testing.assert_array_equal(
        watershed_nuclei(np.moveaxis(rgb, -1, 0), channel_axis=0), watershed_nuclei(rgb)
    )


def test_explicit_polarity_and_h_maxima_and_float_image():
    image, truth = make_discs(bright=True, seed=2)
    assert_recovers(watershed_nuclei(image, invert=False), truth)
    # wrong polarity: the background becomes the single foreground object
    wrong = watershed_nuclei(image, invert=True, min_distance=50)
    assert match_instances(wrong, truth).tp == 0
    assert_recovers(watershed_nuclei(image, h=2.0), truth)
    # float input in an arbitrary range, greyscale via channel_axis=None
    assert_recovers(watershed_nuclei(image.astype(np.float64) * 3.7 - 100, channel_axis=None), truth)


def test_min_distance_controls_splitting():
    image, truth = make_discs(bright=True)
    # markers at least 40 px apart cannot split touching discs (centres ~17 px apart)
    merged = watershed_nuclei(image, min_distance=40)
    assert 0 < merged.max() < truth.max()


def test_min_size_removes_small_objects():
    image, truth = make_discs(bright=True, noise=0.0)
    image[88:91, 5:8] = 210  # a 9-pixel speck
    assert watershed_nuclei(image, min_size=4).max() == len(DISCS) + 1
    assert watershed_nuclei(image, min_size=16).max() == len(DISCS)


def test_constant_and_empty_foreground_give_zeros():
    flat = np.full((30, 40), 7, dtype=np.uint8)
    out = watershed_nuclei(flat)
    assert out.shape == (30, 40) and out.dtype == np.int32 and not out.any()
    speck = np.zeros((30, 40), dtype=np.uint8)
    speck[5, 5] = 255
    assert not watershed_nuclei(speck, sigma=0, min_size=4).any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": -1}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"threshold": "li"}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"min_distance": 0}, "min_distance"),
        ({"min_distance": 2.5}, "min_distance"),
        ({"min_size": -3}, "min_size"),
        ({"invert": "yes"}, "invert"),
        ({"h": 0}, "h must"),
        ({"compactness": -1}, "compactness"),
    ],
)
def test_bad_parameters(kwargs, match):
    image, _ = make_discs()
    with pytest.raises(ValueError, match=match):
        watershed_nuclei(image, **kwargs)


def test_bad_images():
    with pytest.raises(ValueError, match="empty"):
        watershed_nuclei(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="NaN"):
        watershed_nuclei(np.full((5, 5), np.nan))
    with pytest.raises(ValueError, match="dimensions"):
        watershed_nuclei(np.zeros((2, 5, 5, 3)))
    with pytest.raises(TypeError):
        watershed_nuclei([[0, 1], [1, 0]])


def test_tune_returns_grid_keys_and_best_score():
    pairs = [make_discs(bright=b, seed=s) for b, s in ((True, 0), (False, 3))]
    images, truths = [p[0] for p in pairs], [p[1] for p in pairs]
    grid = {"min_distance": [40, 5], "min_size": [16]}
    best = tune_watershed_nuclei(images, truths, grid)
    assert set(best) == {"min_distance", "min_size", "score"}
    # min_distance=40 merges the touching discs; 5 recovers all of them
    assert best["min_distance"] == 5 and best["min_size"] == 16
    assert best["score"] == pytest.approx(1.0)
    # the default grid has the documented keys
    assert set(DEFAULT_GRID) == {"sigma", "min_distance", "min_size"}


def test_tune_bad_input():
    image, truth = make_discs()
    with pytest.raises(ValueError, match="empty"):
        tune_watershed_nuclei([], [])
    with pytest.raises(ValueError, match="label maps"):
        tune_watershed_nuclei([image], [truth, truth])
    with pytest.raises(ValueError, match="unknown parameter"):
        tune_watershed_nuclei([image], [truth], {"radius": [1, 2]})
    with pytest.raises(ValueError, match="non-empty sequence"):
        tune_watershed_nuclei([image], [truth], {"sigma": []})
    with pytest.raises(ValueError, match="both in grid and fixed"):
        tune_watershed_nuclei([image], [truth], {"sigma": [1]}, sigma=2)
