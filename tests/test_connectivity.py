"""Tests for clusterseg.superpixels.enforce_connectivity (synthetic label maps only)."""

import numpy as np
import pytest
from skimage.measure import label as cc_label

from clusterseg.superpixels import enforce_connectivity
from clusterseg._jit import available as _jit_available
from clusterseg._jit import jit as _jit


def n_components(labels, connectivity=1):
    return int(cc_label(labels, background=-1, connectivity=connectivity).max())


def assert_consecutive_connected(out):
    assert out.dtype == np.int32
    n = int(out.max()) + 1
    assert out.min() == 0
    assert np.array_equal(np.unique(out), np.arange(n))
    assert n_components(out) == n  # every label is one 4-connected piece


def same_partition(a, b):
    """True when a and b are equal up to a renaming of the labels."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == np.unique(a).size == np.unique(b).size


def test_disconnected_label_is_split():
    labels = np.array([[0, 0, 1, 0], [0, 0, 1, 0], [1, 1, 1, 0]])
    out = enforce_connectivity(labels)
    expected = np.array([[0, 0, 1, 2], [0, 0, 1, 2], [1, 1, 1, 2]], dtype=np.int32)
    np.testing.assert_array_equal(out, expected)


def test_fragment_merges_into_only_neighbour():
    labels = np.zeros((5, 5), dtype=np.int64)
    labels[2, 2] = 7
    out = enforce_connectivity(labels, min_size=2)
    np.testing.assert_array_equal(out, np.zeros((5, 5), dtype=np.int32))
    # with min_size <= 1 the single pixel survives as its own segment
    out = enforce_connectivity(labels, min_size=1)
    assert out.max() == 1 and out[2, 2] == 1 and (out == 1).sum() == 1


def test_fragment_goes_to_longest_border():
    # F (2 px) shares 2 border edges with A and 3 with B
    a, f, b = 10, 20, 30
    labels = np.array(
        [
            [a, a, f, b, b],
            [a, a, f, b, b],
            [a, a, b, b, b],
            [a, a, b, b, b],
        ]
    )
    out = enforce_connectivity(labels, min_size=3)
    assert out.max() == 1
    assert out[0, 2] == out[0, 3] != out[0, 0]


def test_tie_goes_to_raster_first_neighbour():
    out = enforce_connectivity(np.array([[4, 4, 9, 2, 2]]), min_size=2)
    np.testing.assert_array_equal(out, [[0, 0, 0, 1, 1]])
    out = enforce_connectivity(np.array([[4, 4, 9, 2, 2]]).T, min_size=2)
    np.testing.assert_array_equal(out, np.array([[0, 0, 0, 1, 1]]).T)


def test_max_size_steers_merge_to_a_neighbour_that_fits():
    a, f, b = 0, 1, 2
    labels = np.array(
        [
            [a, a, f, f, b, b, b, b],
            [a, a, b, b, b, b, b, b],
        ]
    )
    # F borders A by 1 edge and B by 3 edges; sizes A=4, F=2, B=10
    no_limit = enforce_connectivity(labels, min_size=3)
    assert no_limit[0, 2] == no_limit[0, 4]
    limited = enforce_connectivity(labels, min_size=3, max_size=8)
    assert limited[0, 2] == limited[0, 0] != limited[0, 4]
    # when no neighbour fits, the longest border wins anyway
    tight = enforce_connectivity(labels, min_size=3, max_size=5)
    assert tight[0, 2] == tight[0, 4]


def test_chain_of_fragments_merges_until_large_enough():
    # a row of distinct 1-pixel labels next to a big block
    labels = np.zeros((4, 6), dtype=np.int32)
    labels[0] = np.arange(1, 7)
    out = enforce_connectivity(labels, min_size=5)
    assert_consecutive_connected(out)
    assert np.bincount(out.ravel()).min() >= 5


def test_connected_input_is_unchanged_up_to_relabelling(blocks_image_and_labels):
    _, truth = blocks_image_and_labels
    rng = np.random.default_rng(1)
    renamed = rng.permutation(np.arange(100, 104))[truth] - 50  # arbitrary values
    out = enforce_connectivity(renamed, min_size=10)
    assert_consecutive_connected(out)
    assert same_partition(out, truth)
    # raster order of first appearance
    assert out[0, 0] == 0 and out[0, -1] == 1


def test_negative_and_large_label_values():
    labels = np.array([[-5, -5, 2**40], [7, 7, 2**40]], dtype=np.int64)
    out = enforce_connectivity(labels)
    np.testing.assert_array_equal(out, [[0, 0, 1], [2, 2, 1]])


def test_single_label_image():
    labels = np.full((7, 9), 3, dtype=np.uint8)
    for min_size in (0, 10, 1000):
        out = enforce_connectivity(labels, min_size=min_size)
        np.testing.assert_array_equal(out, np.zeros((7, 9), dtype=np.int32))
    np.testing.assert_array_equal(enforce_connectivity(np.array([[5]])), [[0]])


def test_bool_and_connectivity_two():
    checker = np.array([[True, False], [False, True]])
    assert enforce_connectivity(checker).max() + 1 == 4
    out8 = enforce_connectivity(checker, connectivity=2)
    assert out8.max() + 1 == 2 and out8[0, 0] == out8[1, 1]


def test_volume_labels():
    labels = np.zeros((3, 4, 4), dtype=np.int32)
    labels[0, 0, 0] = 1
    labels[2, 3, 3] = 1
    out = enforce_connectivity(labels)
    assert out.max() == 2
    out = enforce_connectivity(labels, min_size=2)
    assert out.max() == 0


def test_large_random_map():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=(300, 400))
    min_size = 10
    out = enforce_connectivity(labels, min_size=min_size)
    assert out.shape == labels.shape
    assert_consecutive_connected(out)
    assert np.bincount(out.ravel()).min() >= min_size
    # output segments are unions of input components: never more segments
    assert out.max() + 1 <= n_components(labels)
    # every input component lies inside exactly one output segment
    comp = cc_label(labels, background=-1, connectivity=1)
    pairs = np.unique(np.stack([comp.ravel(), out.ravel()]), axis=1)
    assert pairs.shape[1] == comp.max()


def test_blocky_map_with_noise_pixels():
    rng = np.random.default_rng(3)
    rows, cols = np.indices((200, 300))
    labels = (rows // 20) * 100 + cols // 20  # 10 x 15 blocks of 400 px
    noisy = np.where(rng.random(labels.shape) < 0.02, -1, labels)
    out = enforce_connectivity(noisy, min_size=100)
    assert_consecutive_connected(out)
    assert out.max() + 1 == 150
    # noise pixels went back to a block they touch
    agree = np.mean([np.bincount(out[labels == v]).max() / (labels == v).sum() for v in np.unique(labels)])
    assert agree > 0.97


@pytest.mark.parametrize(
    "labels, kwargs, match",
    [
        (np.zeros((0, 4), dtype=int), {}, "empty"),
        (np.zeros(5, dtype=int), {}, "2D or 3D"),
        (np.zeros((3, 3), dtype=float), {}, "integer"),
        (np.zeros((3, 3), dtype=int), {"min_size": -1}, "min_size"),
        (np.zeros((3, 3), dtype=int), {"max_size": -2}, "max_size"),
        (np.zeros((3, 3), dtype=int), {"connectivity": 3}, "connectivity"),
    ],
)
def test_bad_input(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        enforce_connectivity(labels, **kwargs)


@pytest.mark.skipif(not _jit_available(), reason="numba is not installed")
@pytest.mark.parametrize("case", ["random", "ring", "thin"])
def test_compiled_border_lengths_equal_the_numpy_ones(case):
    from clusterseg.graph.connectivity import _border_lengths, _components, _face_pairs, _pixel_borders

    rng = np.random.default_rng(5)
    if case == "random":
        labels = rng.integers(0, 6, (37, 41))
    elif case == "ring":  # one segment bordering 100 others: a bucket long enough for the full sort
        labels = np.zeros((60, 60), np.int64)
        for i, (r, c) in enumerate((r, c) for r in range(2, 60, 6) for c in range(2, 60, 6)):
            labels[r:r + 3, c:c + 3] = i + 1
    else:
        labels = rng.integers(0, 3, (9, 1))
    comp = _components(labels, 1)
    n = int(comp.max()) + 1
    want = _border_lengths(*_face_pairs(comp), None, n)
    got = _jit(_pixel_borders)(comp, n)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
