"""Superpixel metrics: hand-computed 4x4 cases, invariances, perfect scores, bad input."""

import numpy as np
import pytest

from clusterseg.metrics import (
    achievable_segmentation_accuracy,
    boundary_precision,
    boundary_recall,
    compactness,
    f_measure,
    label_boundaries,
    n_segments,
    superpixel_scores,
    undersegmentation_error,
)

# Four 2x2 superpixels; ground truth = 3 left columns vs last column.
SP = np.array(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 3, 3],
        [2, 2, 3, 3],
    ]
)
GT = np.array(
    [
        [0, 0, 0, 1],
        [0, 0, 0, 1],
        [0, 0, 0, 1],
        [0, 0, 0, 1],
    ]
)


def random_labels(shape, n, seed):
    rng = np.random.default_rng(seed)
    # blocky random labels (so that segments are not single pixels)
    small = rng.integers(0, n, size=(shape[0] // 2 + 1, shape[1] // 2 + 1))
    return np.kron(small, np.ones((2, 2), dtype=int))[: shape[0], : shape[1]]


def permute(labels, seed):
    rng = np.random.default_rng(seed)
    ids = np.unique(labels)
    new = rng.choice(10_000, size=ids.size, replace=False) + 3
    return new[np.searchsorted(ids, labels)]


def test_label_boundaries_hand():
    # pixel marked iff its right or bottom neighbour differs
    expected = np.array(
        [
            [0, 1, 0, 0],
            [1, 1, 1, 1],
            [0, 1, 0, 0],
            [0, 1, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(label_boundaries(SP), expected)
    gt_expected = np.zeros((4, 4), bool)
    gt_expected[:, 2] = True
    np.testing.assert_array_equal(label_boundaries(GT), gt_expected)
    assert not label_boundaries(np.zeros((3, 5), int)).any()


def test_asa_hand():
    # superpixel -> best GT overlap: 4 + 2 + 4 + 2 = 12 of 16
    assert achievable_segmentation_accuracy(SP, GT) == pytest.approx(0.75)


def test_undersegmentation_error_hand():
    # superpixels 1 and 3 straddle: each min(2,2) + min(2,2) = 4 -> 8 / 16
    assert undersegmentation_error(SP, GT) == pytest.approx(0.5)
    # a superpixel with a 1-pixel leak: min(3, 1) + min(1, 3) = 2 -> 2 / 16
    sp = np.zeros((4, 4), int)
    sp[:, 2:] = 1
    gt = sp.copy()
    gt[0, 1] = 1
    assert undersegmentation_error(sp, gt) == pytest.approx(2 / 16)


def test_boundary_recall_precision_hand():
    # GT boundary: column 2 (4 px); superpixel boundary: 7 px (see above)
    assert boundary_recall(SP, GT, tolerance=0) == pytest.approx(1 / 4)
    assert boundary_recall(SP, GT, tolerance=1) == pytest.approx(1.0)
    assert boundary_precision(SP, GT, tolerance=0) == pytest.approx(1 / 7)
    assert boundary_precision(SP, GT, tolerance=1) == pytest.approx(6 / 7)  # (1,0) is 2 px away
    assert boundary_precision(SP, GT, tolerance=2) == pytest.approx(1.0)
    assert boundary_precision(SP, GT) == pytest.approx(1.0)  # default tolerance 2


def test_tolerance_window_disk_vs_square():
    sp = np.ones((3, 3), int)
    sp[0, 0] = 0  # superpixel boundary: only pixel (0, 0)
    gt = np.zeros((3, 3), int)
    gt[1, 1] = 1  # GT boundary: (0,1), (1,0), (1,1); (1,1) is sqrt(2) from (0,0)
    assert boundary_recall(sp, gt, tolerance=1) == pytest.approx(2 / 3)
    assert boundary_recall(sp, gt, tolerance=1, window="square") == pytest.approx(1.0)
    assert boundary_recall(sp, gt, tolerance=1.5) == pytest.approx(1.0)


def test_boundary_vacuous_cases():
    flat = np.zeros((4, 4), int)
    assert boundary_recall(SP, flat) == 1.0  # nothing to recall
    assert boundary_precision(flat, GT) == 1.0  # nothing predicted
    assert boundary_recall(flat, GT) == 0.0


def test_compactness_hand():
    # 2x2 squares: A=4, P=8 -> 4*pi*4/64 = pi/4
    assert compactness(SP) == pytest.approx(np.pi / 4)
    # 1x4 strips: A=4, P=10 -> 4*pi*4/100
    strips = np.repeat(np.arange(4)[:, None], 4, axis=1)
    assert compactness(strips) == pytest.approx(16 * np.pi / 100)
    # top strip (A=4, P=10) + 3x4 block (A=12, P=14), weighted by area / 16
    two = np.ones((4, 4), int)
    two[0] = 0
    expected = 4 / 16 * (16 * np.pi / 100) + 12 / 16 * (48 * np.pi / 196)
    assert compactness(two) == pytest.approx(expected)
    # ragged shapes are less compact than squares
    assert compactness(random_labels((16, 16), 6, 0)) < np.pi / 4


def test_f_measure_hand():
    assert f_measure(0.5, 1.0) == pytest.approx(2 / 3)
    assert f_measure(0.5, 1.0, beta=4) == pytest.approx(17 * 0.5 / (16 + 0.5))
    assert f_measure(0.0, 0.0) == 0.0
    np.testing.assert_allclose(f_measure([1.0, 0.5], [1.0, 1.0]), [1.0, 2 / 3])
    # beta = 4 favours recall
    assert f_measure(0.9, 0.3, beta=4) > f_measure(0.3, 0.9, beta=4)
    with pytest.raises(ValueError, match="beta"):
        f_measure(0.5, 0.5, beta=0)


def test_n_segments():
    assert n_segments(np.array([[0, 0, 5], [7, 7, 5]])) == 3
    assert n_segments(SP) == 4


def test_identical_is_perfect():
    labels = random_labels((20, 24), 8, 1)
    assert achievable_segmentation_accuracy(labels, labels) == 1.0
    assert undersegmentation_error(labels, labels) == 0.0
    assert boundary_recall(labels, labels, tolerance=0) == 1.0
    assert boundary_precision(labels, labels, tolerance=0) == 1.0
    s = superpixel_scores(labels, labels)
    assert s["f1"] == 1.0 and s["f_beta"] == 1.0


def test_several_ground_truths_aggregation():
    gts = [GT, SP]
    np.testing.assert_allclose(achievable_segmentation_accuracy(SP, gts, aggregate=None), [0.75, 1.0])
    assert achievable_segmentation_accuracy(SP, gts) == 1.0  # best
    assert achievable_segmentation_accuracy(SP, gts, aggregate="mean") == pytest.approx(0.875)
    np.testing.assert_allclose(undersegmentation_error(SP, gts, aggregate=None), [0.5, 0.0])
    assert undersegmentation_error(SP, gts) == 0.0  # best = minimum
    assert undersegmentation_error(SP, gts, aggregate="mean") == pytest.approx(0.25)
    np.testing.assert_allclose(boundary_recall(SP, gts, tolerance=0, aggregate=None), [0.25, 1.0])
    np.testing.assert_allclose(boundary_precision(SP, gts, tolerance=0, aggregate=None), [1 / 7, 1.0])
    with pytest.raises(ValueError, match="aggregate"):
        achievable_segmentation_accuracy(SP, gts, aggregate="max")


def test_superpixel_scores_matches_single_functions():
    labels = random_labels((24, 30), 12, 2)
    gts = [random_labels((24, 30), 4, s) for s in (3, 4, 5)]
    br = boundary_recall(labels, gts, tolerance=1, aggregate=None)
    bp = boundary_precision(labels, gts, tolerance=1, aggregate=None)
    for agg in ("best", "mean", None):
        s = superpixel_scores(labels, gts, tolerance=1, aggregate=agg)
        singles = {
            "asa": achievable_segmentation_accuracy(labels, gts, aggregate=agg),
            "undersegmentation_error": undersegmentation_error(labels, gts, aggregate=agg),
            "boundary_recall": boundary_recall(labels, gts, tolerance=1, aggregate=agg),
            "boundary_precision": boundary_precision(labels, gts, tolerance=1, aggregate=agg),
        }
        for key, value in singles.items():
            np.testing.assert_allclose(s[key], value, err_msg=key)
        if agg is None:
            np.testing.assert_allclose(s["f_beta"], f_measure(br, bp, beta=4))
    s = superpixel_scores(labels, gts, tolerance=1)
    assert s["n_segments"] == n_segments(labels)
    assert s["compactness"] == pytest.approx(compactness(labels))
    assert s["f_beta"] == pytest.approx(np.max(f_measure(br, bp, beta=4)))
    assert s["beta"] == 4.0


def test_label_permutation_invariance():
    labels = random_labels((20, 22), 9, 6)
    gt = random_labels((20, 22), 4, 7)
    a = superpixel_scores(labels, gt)
    b = superpixel_scores(permute(labels, 8), permute(gt, 9))
    for key in a:
        assert a[key] == pytest.approx(b[key]), key


def test_monotone_in_tolerance():
    labels = random_labels((30, 30), 10, 10)
    gt = random_labels((30, 30), 3, 11)
    brs = [boundary_recall(labels, gt, tolerance=t) for t in (0, 1, 2, 4)]
    bps = [boundary_precision(labels, gt, tolerance=t) for t in (0, 1, 2, 4)]
    assert np.all(np.diff(brs) >= 0) and np.all(np.diff(bps) >= 0)


def test_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        achievable_segmentation_accuracy(SP, GT[:3])
    with pytest.raises(ValueError, match="non-integer"):
        undersegmentation_error(SP + 0.5, GT)
    with pytest.raises(ValueError, match="NaN"):
        boundary_recall(np.full((2, 2), np.nan), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="empty"):
        achievable_segmentation_accuracy(np.zeros((0, 3), int), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="empty list"):
        achievable_segmentation_accuracy(SP, [])
    with pytest.raises(ValueError, match="dtype"):
        n_segments(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="tolerance"):
        boundary_recall(SP, GT, tolerance=-1)
    with pytest.raises(ValueError, match="window"):
        boundary_recall(SP, GT, window="circle")
    with pytest.raises(ValueError, match="2-D"):
        compactness(np.zeros((2, 2, 2), int))
    # integer-valued floats are accepted
    assert achievable_segmentation_accuracy(SP.astype(float), GT) == pytest.approx(0.75)
