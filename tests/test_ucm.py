"""Boundary merging, ultrametric contour maps and the Pb-style boundary cues."""

import numpy as np
import pytest

from clusterseg.contours import oriented_histogram_gradient, pb_contours, quantize, resize_features
from clusterseg.graph.ucm import boundary_merge, border_statistics, ucm_to_labels


def strips(widths=(2, 2, 2), height=4):
    """Vertical strips 0, 1, 2, ... of the given widths."""
    return np.repeat(np.repeat(np.arange(len(widths))[None], height, 0), widths, axis=1)


def grid_regions(h=24, w=24, block=6):
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy // block) * (w // block) + xx // block


def same_partition(a, b):
    pairs = np.unique(np.stack([a.ravel(), b.ravel()], 1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def refines(fine, coarse):
    """Every region of ``fine`` lies inside one region of ``coarse``."""
    pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()], 1), axis=0)
    return len(pairs) == len(np.unique(fine))


def test_strips_merge_weakest_boundary_first_with_exact_heights():
    lab = strips()
    edge = np.zeros(lab.shape)
    edge[:, 1:3] = 0.2  # both sides of the 0|1 border
    edge[:, 3:5] = 0.8  # both sides of the 1|2 border
    tree = boundary_merge(lab, edge)
    np.testing.assert_allclose(tree.heights, [0.2, 0.8])
    assert same_partition(tree.labels(2), np.array([0, 0, 0, 0, 1, 1])[None].repeat(4, 0))
    # the UCM holds each border's height between the two pixel columns, on every row
    np.testing.assert_allclose(tree.ucm[1::2, 4], 0.2)
    np.testing.assert_allclose(tree.ucm[1::2, 8], 0.8)
    assert tree.ucm.shape == (9, 13)


def test_ucm_thresholds_are_nested_and_finest_is_base():
    rng = np.random.default_rng(0)
    base = grid_regions()
    tree = boundary_merge(base, rng.random(base.shape))
    assert np.all(np.diff(tree.heights) >= 0)
    assert same_partition(ucm_to_labels(tree.ucm, 0.0), base)
    cuts = np.unique(tree.heights)
    levels = [ucm_to_labels(tree.ucm, t) for t in cuts]
    counts = [lv.max() + 1 for lv in levels]
    assert counts[-1] == 1 and all(a >= b for a, b in zip(counts, counts[1:]))
    for fine, coarse in zip(levels, levels[1:]):
        assert refines(fine, coarse)


def test_ucm_levels_match_merge_tree_levels():
    rng = np.random.default_rng(1)
    base = grid_regions()
    tree = boundary_merge(base, rng.random(base.shape))
    for k in (1, 3, 7, 16):
        assert same_partition(ucm_to_labels(tree.ucm, n_segments=k), tree.labels(k))
        assert tree.labels(k).max() + 1 == k
    assert tree.labels(100).max() + 1 == 16  # more than the base: the base


def test_a_cost_that_drops_after_a_merge_joins_a_plateau_and_levels_follow_the_merge_order():
    # 0 and 1 merge first (feature distance 1); the union's mean feature is then 0.9 from 2,
    # lower than the first merge: its height is raised to the first one (a plateau).
    lab = np.array([[0, 1], [2, 2]])
    feats = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.9]])
    tree = boundary_merge(lab, None, feats)
    assert tree.heights[0] == pytest.approx(1.0) and tree.heights[1] == tree.heights[0]
    assert tree.labels(2).max() + 1 == 2  # by count: exactly two regions, the merge order's
    assert ucm_to_labels(tree.ucm, n_segments=2).max() + 1 == 1  # a threshold jumps the plateau
    assert refines(tree.labels(2), ucm_to_labels(tree.ucm, n_segments=2))
    with pytest.raises(ValueError, match="n_segments"):
        tree.labels(0)


def test_split_labels_and_gaps_become_connected_consecutive_regions():
    lab = np.array([[0, 1, 0, 5, 5]])  # label 0 in two pieces, labels 2..4 unused
    tree = boundary_merge(lab, np.zeros(lab.shape), np.array([[0.0]] * 6))
    assert tree.n_base == 4 and same_partition(tree.base, np.array([[0, 1, 2, 3, 3]]))
    assert same_partition(ucm_to_labels(tree.ucm, 0.0), tree.base)
    for k in (1, 2, 3, 4):
        assert tree.labels(k).max() + 1 == k


def test_border_statistics_of_many_int32_labels_do_not_overflow():
    lab = np.arange(50000, dtype=np.int32)[None]
    edges, length, _ = border_statistics(lab)
    assert edges.min() == 0 and edges.max() == 49999 and len(edges) == 49999


def test_chi2_histogram_features_merge_similar_regions_first():
    lab = strips((2, 2, 2, 2))
    hist = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    tree = boundary_merge(lab, None, hist, feature_distance="chi2")
    assert same_partition(tree.labels(2), np.array([0, 0, 0, 0, 1, 1, 1, 1])[None].repeat(4, 0))
    # chi2 of (1, 0) and (0.9, 0.1): 0.5 * (0.01 / 1.9 + 0.01 / 0.1)
    np.testing.assert_allclose(tree.heights[0], 0.5 * (0.01 / 1.9 + 0.01 / 0.1))


def test_area_prior_merges_small_regions_first():
    lab = np.zeros((10, 10), int)
    lab[:, 5:] = 1
    lab[0, 0] = 2  # a one-pixel region behind a strong boundary
    edge = np.full(lab.shape, 0.5)
    edge[0, 0] = edge[0, 1] = edge[1, 0] = 1.0
    plain = boundary_merge(lab, edge)
    prior = boundary_merge(lab, edge, area_scale=50)
    assert plain.labels(2)[0, 0] != plain.labels(2)[0, 2]  # the speck survives without the prior
    assert prior.labels(2)[0, 0] == prior.labels(2)[0, 2]


def test_border_statistics_counts_each_pixel_pair_once():
    lab = strips((1, 1), height=3)
    edges, length, strength = border_statistics(lab, np.ones(lab.shape))
    assert edges.tolist() == [[0, 1]] and length.tolist() == [3.0] and strength.tolist() == [3.0]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ucm_to_labels(np.zeros((4, 5)), 0.5), "2H\\+1"),
        (lambda: ucm_to_labels(np.zeros((5, 5))), "exactly one"),
        (lambda: ucm_to_labels(np.zeros((5, 5)), 0.5, n_segments=2), "exactly one"),
        (lambda: ucm_to_labels(np.zeros((5, 5)), n_segments=0), "n_segments"),
        (lambda: boundary_merge(strips(), np.zeros((2, 2))), "boundary has shape"),
        (lambda: boundary_merge(strips(), None, np.zeros((2, 3))), "node_features"),
        (lambda: boundary_merge(strips(), None, feature_distance="cosine"), "feature_distance"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ cues
def test_oriented_gradient_peaks_on_a_step_and_is_transpose_symmetric():
    words = np.zeros((40, 40), int)
    words[:, 20:] = 1
    g = oriented_histogram_gradient(words, 2, radii=(5,))
    assert g.dtype == np.float32 and g.min() >= 0 and g.max() <= 1
    assert g[20, 19] > 0.6 and g[20, 20] > 0.6
    assert g[20, 5] == pytest.approx(0.0, abs=1e-5) and g[20, 35] == pytest.approx(0.0, abs=1e-5)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, (30, 30))
    np.testing.assert_allclose(oriented_histogram_gradient(w.T, 4), oriented_histogram_gradient(w, 4).T, atol=1e-5)


def test_quantize_words_and_constant_features():
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.normal(0, 0.1, (2, 10, 10)), rng.normal(5, 0.1, (2, 10, 10))], axis=2)
    words = quantize(f, 2)
    assert words.shape == (10, 20) and set(np.unique(words)) == {0, 1}
    assert len(np.unique(words[:, :10])) == 1 and words[0, 0] != words[0, 19]
    assert len(np.unique(quantize(np.ones((3, 5, 5)), 4))) == 1


def test_pb_contours_on_a_colour_step_with_texture_features():
    img = np.zeros((32, 32, 3), np.float32)
    img[:, 16:] = [0.9, 0.1, 0.1]
    texture = np.zeros((2, 16, 16), np.float32)
    texture[0, :, 8:] = 1.0
    b = pb_contours(img, texture)
    assert b.shape == (32, 32) and b.dtype == np.float32
    assert b[16, 15] > 0.5 > b[16, 3]
    assert resize_features(texture, (32, 32)).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="integer"):
        oriented_histogram_gradient(np.zeros((4, 4)))
