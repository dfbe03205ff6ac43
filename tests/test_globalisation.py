"""Intervening-contour affinities, normalised-cut eigenvectors and the globalised boundary (sPb)."""

import numpy as np
import pytest

from clusterseg.graph.globalisation import intervening_contour_affinity, spectral_boundary
from clusterseg.graph.spectral import ncut_eigenvectors, spectral_embedding
from clusterseg.unsupervised.hierarchy import HierarchyOptions, combine_cues


def wall(h=12, w=16, col=8, strength=1.0):
    b = np.zeros((h, w), np.float32)
    b[:, col] = strength
    return b


def test_affinity_is_symmetric_and_one_without_boundaries():
    w = intervening_contour_affinity(np.zeros((5, 6)), radius=2)
    assert w.shape == (30, 30)
    assert abs(w - w.T).max() == 0
    assert np.allclose(w.data, 1.0)
    assert w.diagonal().max() == 0
    # pixel (2, 2) links to every pixel within radius 2 except itself: 12 neighbours
    assert w[2 * 6 + 2].nnz == 12


def test_affinity_is_low_across_a_wall_and_exact_along_it():
    b = wall()
    w = intervening_contour_affinity(b, radius=3, rho=0.1).toarray()
    i, left, right, same = 5 * 16 + 7, 5 * 16 + 6, 5 * 16 + 9, 6 * 16 + 6
    assert w[i, left] == pytest.approx(1.0)  # no boundary between them
    assert w[left, right] == pytest.approx(np.exp(-10.0))  # the wall (1.0) lies between: exp(-1 / 0.1)
    assert w[left, same] == pytest.approx(1.0)


def test_ncut_eigenvectors_dense_and_sparse_agree():
    rng = np.random.default_rng(0)
    b = rng.random((14, 15)).astype(np.float32) * 0.3
    b[:, 7] = 1.0
    w = intervening_contour_affinity(b, radius=2)
    lam_d, v_d = ncut_eigenvectors(w, 4, dense_below=10**6)
    lam_s, v_s = ncut_eigenvectors(w, 4, dense_below=1)
    assert np.all(np.diff(lam_d) >= -1e-12) and lam_d[0] == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(lam_d, lam_s, atol=1e-4)
    for a, c in zip(v_d.T[1:], v_s.T[1:]):  # each vector up to sign
        cos = abs(a @ c) / (np.linalg.norm(a) * np.linalg.norm(c))
        assert cos > 0.999


def test_spectral_embedding_separates_two_cliques():
    w = np.zeros((6, 6))
    w[:3, :3] = w[3:, 3:] = 1.0
    w[2, 3] = w[3, 2] = 0.01
    np.fill_diagonal(w, 0)
    e = spectral_embedding(w, 2)
    assert e.shape == (6, 2)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0)
    # the second coordinate separates the cliques
    assert np.sign(e[:3, 1]).tolist() == [np.sign(e[0, 1])] * 3
    assert np.all(np.sign(e[3:, 1]) == -np.sign(e[0, 1]))


def test_spectral_boundary_keeps_a_closed_outline_and_drops_an_isolated_edge():
    b = np.zeros((48, 48), np.float32)
    b[12, 12:36] = b[35, 12:36] = b[12:36, 12] = b[12:36, 35] = 1.0  # a closed square
    b[40:46, 4:10] = 0.0
    b[42, 40:44] = 1.0  # a short open edge: separates nothing
    s = spectral_boundary(b, n_vectors=4, random_state=0)
    assert s.shape == b.shape and s.dtype == np.float32 and s.min() >= 0
    assert s[12, 24] > 3 * s[42, 42]
    assert np.array_equal(s, spectral_boundary(b, n_vectors=4, random_state=0))  # deterministic


def test_spectral_boundary_tiny_and_bad_inputs():
    assert not spectral_boundary(np.ones((1, 1))).any()
    with pytest.raises(ValueError, match="2-D"):
        spectral_boundary(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="n_vectors"):
        spectral_boundary(np.zeros((8, 8)), n_vectors=0)
    with pytest.raises(ValueError, match="radius"):
        intervening_contour_affinity(np.zeros((4, 4)), radius=0)


def test_combine_cues_adds_the_globalised_map_only_when_weighted():
    cues = {"brightness": wall(24, 24, 12), "colour": wall(24, 24, 12)}
    local = combine_cues(cues, HierarchyOptions(spectral_weight=0.0, pmi_weight=0.0))
    assert np.array_equal(local, cues["brightness"])
    full = combine_cues(cues, HierarchyOptions(spectral_weight=0.5, pmi_weight=0.0))
    added = full - local
    assert added.min() >= 0 and added.max() <= 0.75 + 1e-6
    assert added[10, 12] > added[10, 3]


@pytest.mark.parametrize("field, value", [("spectral_weight", -0.5), ("histogram_weight", float("nan")),
                                          ("n_eigenvectors", 0), ("n_words", 0)])
def test_hierarchy_options_name_a_bad_field(field, value):
    with pytest.raises(ValueError, match=f"HierarchyOptions.{field}"):
        HierarchyOptions(**{field: value})


def test_pmi_affinity_known_values_on_a_tiny_row():
    from clusterseg.graph.globalisation import pmi_affinity

    # words 0 0 1, radius 1: pair counts (both directions, +1 prior) 00: 3, 01: 2, 10: 2, 11: 1 of 8;
    # marginals 5/8, 3/8; PMI(0,0) = log(0.96), PMI(0,1) = log(16/15), PMI(1,1) = log(8/9) is the smallest
    w = pmi_affinity(np.array([[0, 0, 1]]), radius=1, rho=1.0).toarray()
    expected = np.array([[0.0, 0.96 * 15 / 16, 0.0], [0.96 * 15 / 16, 0.0, 1.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_pmi_affinity_links_a_texture_more_than_a_border():
    from clusterseg.graph.globalisation import pmi_affinity

    words = np.full((12, 16), 2)
    words[:, :8] = np.arange(8) % 2  # stripes of words 0 and 1 on the left, word 2 on the right
    w = pmi_affinity(words, radius=2).tocsr()
    assert abs(w - w.T).max() == 0 and w.diagonal().max() == 0 and w.data.min() > 0 and w.data.max() <= 1
    inside = w[5 * 16 + 3, 5 * 16 + 4]  # a 1 next to a 0 inside the stripes
    across = w[5 * 16 + 7, 5 * 16 + 8]  # the last stripe next to word 2
    assert inside > 2 * across
    with pytest.raises(ValueError, match="words"):
        pmi_affinity(words.astype(float))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        pmi_affinity(words, n_words=2)


def test_pmi_boundary_ignores_a_striped_texture_and_finds_the_object_border():
    from clusterseg.graph.globalisation import pmi_boundary

    rgb = np.zeros((48, 64, 3), np.float32)
    rgb[:, :, 2] = 0.8
    rgb[:, :32, 0] = 0.9
    rgb[::2, :32, 1] = 0.9  # horizontal stripes inside the left region
    s = pmi_boundary(rgb, n_words=4, n_vectors=3)
    assert s.shape == (48, 64) and s.dtype == np.float32 and s.min() >= 0
    assert s[:, 30:34].mean() > 3 * s[:, 8:24].mean()
    with pytest.raises(ValueError, match="rgb"):
        pmi_boundary(rgb[..., 0])


def test_combine_cues_adds_the_pmi_cue_only_when_weighted():
    cues = {"brightness": wall(24, 24, 12), "colour": wall(24, 24, 12)}
    with pytest.raises(ValueError, match="pmi"):
        combine_cues(cues)  # on by default, but the cue was not computed
    cues["pmi"] = 2.0 * wall(24, 24, 12)
    local = combine_cues(cues, HierarchyOptions(pmi_weight=0.0))
    assert np.array_equal(local, cues["brightness"])
    assert np.array_equal(combine_cues(cues), combine_cues(cues, HierarchyOptions(pmi_weight=0.5)))
    added = combine_cues(cues, HierarchyOptions(pmi_weight=0.5)) - local
    assert added.min() >= 0 and added.max() <= 0.75 + 1e-6 and added[10, 12] > added[10, 3]
    with pytest.raises(ValueError, match="HierarchyOptions.pmi_weight"):
        HierarchyOptions(pmi_weight=-1.0)
