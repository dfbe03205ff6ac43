"""Superpixel-graph layer: hand-computed values on tiny graphs and gradient checks."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from clusterseg.graph import (
    adjacency_matrix,
    affinity_matrix,
    continuity_loss,
    dsc_cut_loss,
    edge_distances,
    exp_weights,
    gaussian_weights,
    majority_vote,
    mean_colour,
    merge_hierarchy,
    neighbour_softmax,
    pool_mean,
    pseudo_labels,
    region_adjacency,
    similarity_loss,
    soft_ncut_loss,
    spectral_ncut,
    superpixel_smoothing_loss,
    unpool,
)

LABELS_3X3 = np.array([[0, 0, 1], [0, 2, 1], [3, 1, 1]])


# ---------------------------------------------------------------- adjacency
def test_adjacency_4_connectivity_hand_computed():
    edges, counts = region_adjacency(LABELS_3X3, connectivity=1, return_counts=True)
    assert edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3]]
    assert counts.tolist() == [1, 2, 1, 2, 1]


def test_adjacency_8_connectivity_adds_diagonal_edge():
    edges, counts = region_adjacency(LABELS_3X3, connectivity=2, return_counts=True)
    assert edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert counts.tolist() == [3, 3, 1, 4, 1, 1]


def test_adjacency_matrix_symmetric_and_weighted():
    a = adjacency_matrix(LABELS_3X3, connectivity=1, n_nodes=5)
    assert a.shape == (5, 5)
    dense = a.toarray()
    assert np.array_equal(dense, dense.T)
    assert dense[2, 3] == 0 and dense[0, 2] == 1 and dense[4].sum() == 0
    aw = adjacency_matrix(LABELS_3X3, connectivity=2, weighted=True).toarray()
    assert aw[1, 2] == 4 and aw[2, 3] == 1


def test_adjacency_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        region_adjacency(np.zeros((2, 2, 2), int))
    with pytest.raises(ValueError, match="non-negative"):
        region_adjacency(np.array([[0, -1]]))
    with pytest.raises(ValueError, match="connectivity"):
        region_adjacency(LABELS_3X3, connectivity=3)
    with pytest.raises(ValueError, match="empty"):
        region_adjacency(np.zeros((0, 3), int))


# ---------------------------------------------------------------- pooling
def test_pool_mean_exact_and_empty_node():
    f = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[0.0, 0.0, 6.0], [3.0, 3.0, 0.0]]])
    lab = np.array([[0, 0, 1], [0, 2, 1]])
    g = pool_mean(f, lab, n_nodes=4)
    expected = torch.tensor([[7 / 3, 1.0], [4.5, 3.0], [5.0, 3.0], [0.0, 0.0]])
    assert torch.allclose(g, expected)
    assert torch.equal(unpool(g, lab)[1, 2], expected[1])


def test_pool_mean_gradcheck():
    f = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([[0, 0, 1, 1], [2, 0, 1, 1], [2, 2, 2, 1]])
    assert torch.autograd.gradcheck(lambda x: pool_mean(x, lab), (f,))


def test_pool_mean_bad_input():
    with pytest.raises(ValueError, match="pixels"):
        pool_mean(torch.zeros(2, 3, 3), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="integer"):
        pool_mean(torch.zeros(1, 2, 2), np.zeros((2, 2)))


def test_majority_vote_exact_with_tie():
    pix = np.array([[0, 1, 1, 3], [2, 2, 0, 3]])
    sp_ = np.array([[0, 0, 0, 2], [1, 1, 2, 2]])
    # sp0: {0,1,1} -> 1; sp1: {2,2} -> 2; sp2: {3,0,3} -> 3
    assert majority_vote(pix, sp_).tolist() == [1, 2, 3]
    # tie {0, 1} -> smallest label
    assert majority_vote(np.array([[1, 0]]), np.array([[0, 0]])).tolist() == [0]
    out = majority_vote(torch.as_tensor(pix), torch.as_tensor(sp_))
    assert isinstance(out, torch.Tensor)


# ---------------------------------------------------------------- affinity
def test_mean_colour_and_edge_weights():
    img = np.array([[[0, 0, 0], [2, 0, 0]], [[0, 4, 0], [0, 0, 0]]], float)
    lab = np.array([[0, 0], [1, 1]])
    mc = mean_colour(img, lab)
    assert np.allclose(mc, [[1, 0, 0], [0, 2, 0]])
    d = edge_distances(mc, np.array([[0, 1]]))
    assert np.allclose(d, [math.sqrt(5)])
    assert np.allclose(exp_weights(np.array([0.0, 2.0]), tau=-1), [1.0, math.exp(-2)])
    assert np.allclose(gaussian_weights(np.array([1.0, 2.0]), sigma=2.0), [math.exp(-1 / 8), math.exp(-0.5)])
    # default sigma = median of non-zero distances -> weight exp(-0.5) at the median
    assert np.allclose(gaussian_weights(np.array([0.0, 1.0, 3.0, 5.0]))[2], math.exp(-0.5))
    t = edge_distances(torch.tensor(mc), torch.tensor([[0, 1]]))
    assert torch.allclose(t, torch.tensor([math.sqrt(5)], dtype=torch.float64))


def test_affinity_matrix_layouts_agree():
    edges = np.array([[0, 1], [1, 2]])
    w = np.array([1.0, 2.0])
    expected = np.array([[0, 1, 0], [1, 0, 2], [0, 2, 0]], float)
    assert np.allclose(affinity_matrix(edges, w, 3, layout="dense").numpy(), expected)
    assert np.allclose(affinity_matrix(edges, w, 3, layout="sparse").to_dense().numpy(), expected)
    s = affinity_matrix(edges, w, 3, layout="scipy")
    assert sp.issparse(s) and np.allclose(s.toarray(), expected)
    with pytest.raises(ValueError, match="self-loops"):
        affinity_matrix(np.array([[1, 1]]), [1.0], 3)
    with pytest.raises(ValueError, match="layout"):
        affinity_matrix(edges, w, 3, layout="csr")


# ---------------------------------------------------------------- losses
# path graph 0 -(1)- 1 -(2)- 2, hard-soft-hard partition
W_PATH = torch.tensor([[0, 1, 0], [1, 0, 2], [0, 2, 0]], dtype=torch.float64)
Q_PATH = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_dsc_cut_hand_computed(layout):
    w = W_PATH if layout == "dense" else W_PATH.to_sparse()
    # k=0: Q0=[1,.5,0], W(1-Q0)=[.5,2,1] -> 1.5 ; k=1 symmetric -> 1.5
    assert dsc_cut_loss(Q_PATH, w).item() == pytest.approx(3.0)
    assert dsc_cut_loss(Q_PATH, w, normalize=True).item() == pytest.approx(3.0 / 6.0)
    # a hard partition cuts both orientations of the crossing edge
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert dsc_cut_loss(hard, w).item() == pytest.approx(2 * 2.0)


def test_dsc_cut_gradient_matches_slide_formula():
    q = Q_PATH.clone().requires_grad_(True)
    dsc_cut_loss(q, W_PATH).backward()
    one = torch.ones(3, dtype=torch.float64)
    for k in range(2):
        qk = Q_PATH[:, k]
        expected = W_PATH @ one - W_PATH @ qk - (qk @ W_PATH)
        assert torch.allclose(q.grad[:, k], expected)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_soft_ncut_hand_computed(layout):
    w = W_PATH if layout == "dense" else W_PATH.to_sparse()
    # deg=[1,3,2]; k0: assoc 1, vol 2.5 -> .6 ; k1: assoc 2, vol 3.5 -> 3/7
    assert soft_ncut_loss(Q_PATH, w).item() == pytest.approx((0.6 + 3 / 7) / 2)
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # k0: assoc 2, vol 4 ; k1: assoc 0, vol 2  -> (0.5 + 1)/2
    assert soft_ncut_loss(hard, w).item() == pytest.approx(0.75)


def test_continuity_hand_computed():
    fbar = torch.tensor([[1.0, 0.0], [2.0, 1.0], [4.0, 4.0]], dtype=torch.float64)
    edges = np.array([[0, 1], [1, 2]])
    d = torch.tensor([1.0, 3.0], dtype=torch.float64)
    # tau=0: neighbour means [2,1], [2.5,2], [2,1]
    assert continuity_loss(fbar, edges, d, tau=0.0).item() == pytest.approx(8.5 / 6)
    c0 = 1 / (1 + math.exp(2))  # weight of neighbour 0 (d=1) vs neighbour 2 (d=3) at tau=1
    nb = (c0 * 1 + (1 - c0) * 4, (1 - c0) * 4)
    expected = (1 + 1 + abs(2 - nb[0]) + abs(1 - nb[1]) + 2 + 3) / 6
    assert continuity_loss(fbar, edges, d, tau=1.0).item() == pytest.approx(expected)
    # weights leaving each node sum to one
    src, _, w = neighbour_softmax(edges, d, 3, tau=-2.0)
    assert torch.allclose(torch.zeros(3, dtype=torch.float64).index_add_(0, src, w), torch.ones(3, dtype=torch.float64))


def test_continuity_isolated_node_contributes_zero():
    fbar = torch.tensor([[1.0], [3.0], [7.0]], dtype=torch.float64)
    loss = continuity_loss(fbar, np.array([[0, 1]]), torch.tensor([1.0], dtype=torch.float64))
    assert loss.item() == pytest.approx((2 + 2 + 0) / 3)


def test_similarity_hand_computed_both_modes():
    # 4 pixels in a row; superpixel 0 = first 3 pixels
    logits = torch.tensor([[5.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 3.0]], dtype=torch.float64)[:, None, :]
    sp_ = np.array([[0, 0, 0, 1]])
    ce = lambda z, y: math.log(sum(math.exp(v) for v in z)) - z[y]  # noqa: E731
    pix = [(5, 0), (0, 1), (0, 1), (0, 3)]
    # mean mode: sp0 mean logits (5/3, 2/3) -> class 0
    assert pseudo_labels(logits, sp_, mode="mean").tolist() == [0, 1]
    exp_mean = (ce(pix[0], 0) + ce(pix[1], 0) + ce(pix[2], 0) + ce(pix[3], 1)) / 4
    assert similarity_loss(logits, sp_, mode="mean").item() == pytest.approx(exp_mean)
    # majority mode: pixel argmaxes (0, 1, 1) -> class 1
    assert pseudo_labels(logits, sp_, mode="majority").tolist() == [1, 1]
    exp_maj = (ce(pix[0], 1) + ce(pix[1], 1) + ce(pix[2], 1) + ce(pix[3], 1)) / 4
    assert similarity_loss(logits, sp_, mode="majority").item() == pytest.approx(exp_maj)
    with pytest.raises(ValueError, match="mode"):
        similarity_loss(logits, sp_, mode="vote")
    with pytest.raises(ValueError, match="do not match"):
        similarity_loss(logits, np.zeros((2, 2), int))


def test_superpixel_smoothing_hand_computed():
    img = torch.tensor([[[1.0, 3.0, 5.0]]])
    rec = torch.tensor([[[2.5, 1.0, 4.0]]])
    # v = (2, 5): (0.25 + 1 + 1) / 3
    assert superpixel_smoothing_loss(rec, img, np.array([[0, 0, 1]])).item() == pytest.approx(0.75)


def test_losses_gradcheck_float64():
    torch.manual_seed(0)
    m, k = 5, 3
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [0, 4], [1, 3]])
    w = torch.rand(len(edges), dtype=torch.float64) + 0.1
    wd = affinity_matrix(edges, w, m, layout="dense")
    ws = affinity_matrix(edges, w, m, layout="sparse")
    z = torch.randn(m, k, dtype=torch.float64, requires_grad=True)
    d = torch.rand(len(edges), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: dsc_cut_loss(x.softmax(1), wd), (z,))
    assert torch.autograd.gradcheck(lambda x: dsc_cut_loss(x.softmax(1), ws, normalize=True), (z,))
    assert torch.autograd.gradcheck(lambda x: soft_ncut_loss(x.softmax(1), wd), (z,))
    assert torch.autograd.gradcheck(lambda x: soft_ncut_loss(x.softmax(1), ws), (z,))
    assert torch.autograd.gradcheck(lambda x: continuity_loss(x, edges, d, tau=1.0), (z,))
    logits = torch.randn(k, 3, 4, dtype=torch.float64, requires_grad=True)
    lab = np.array([[0, 0, 1, 1], [2, 0, 1, 1], [2, 2, 2, 1]])
    assert torch.autograd.gradcheck(lambda x: similarity_loss(x, lab), (logits,))
    img = torch.rand(3, 3, 4, dtype=torch.float64)
    rec = torch.rand(3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: superpixel_smoothing_loss(x, img, lab), (rec,))


def test_cut_losses_prefer_graph_consistent_partition():
    # two triangles joined by a weak edge: the natural 2-way split has lower loss
    edges = np.array([[0, 1], [1, 2], [0, 2], [3, 4], [4, 5], [3, 5], [2, 3]])
    w = torch.tensor([1, 1, 1, 1, 1, 1, 0.1], dtype=torch.float64)
    a = affinity_matrix(edges, w, 6, layout="dense")
    good = torch.tensor([[1, 0]] * 3 + [[0, 1]] * 3, dtype=torch.float64)
    bad = torch.tensor([[1, 0], [0, 1]] * 3, dtype=torch.float64)
    assert dsc_cut_loss(good, a) < dsc_cut_loss(bad, a)
    assert soft_ncut_loss(good, a) < soft_ncut_loss(bad, a)


# ---------------------------------------------------------------- spectral / merging
def test_spectral_ncut_two_cliques():
    edges = np.array([[0, 1], [1, 2], [0, 2], [3, 4], [4, 5], [3, 5], [2, 3]])
    w = np.array([1, 1, 1, 1, 1, 1, 0.05])
    a = affinity_matrix(edges, w, 6, layout="scipy")
    lab = spectral_ncut(a, 2, random_state=0)
    assert len(set(lab[:3])) == 1 and len(set(lab[3:])) == 1 and lab[0] != lab[3]


def test_merge_hierarchy_ward():
    labels = np.array([[0, 0, 1, 1, 2, 2, 3, 3]] * 2)
    feats = np.array([[0.0], [0.1], [5.0], [5.2]])
    out = merge_hierarchy(labels, feats, [1, 2, 3, 4])
    assert set(out) == {1, 2, 3, 4}
    assert out[4].max() == 3 and out[1].max() == 0
    two = out[2][0]
    assert two[0] == two[2] and two[4] == two[6] and two[0] != two[4]
    # the closest pair (0, 1) merges first
    three = out[3][0]
    assert three[0] == three[2] and len(np.unique(three)) == 3


def test_merge_hierarchy_costs_and_threshold_cut():
    from clusterseg.graph.spectral import cut_hierarchy_costs

    labels = np.array([[0, 0, 1, 1, 2, 2, 3, 3]] * 2)
    feats = np.array([[0.0], [0.1], [5.0], [5.2]])
    _, costs = merge_hierarchy(labels, feats, [1, 2, 3, 4], return_costs=True)
    # sizes 4 px of 16 -> fractions; Ward cost n_a n_b/(n_a+n_b) d^2 / N
    assert costs[3] == pytest.approx(4 * 4 / 8 * 0.1**2 / 16)
    assert costs[2] == pytest.approx(4 * 4 / 8 * 0.2**2 / 16)
    assert costs[1] == pytest.approx(8 * 8 / 16 * 5.05**2 / 16)
    assert cut_hierarchy_costs(costs, 4, [0.0, 0.002, 0.006, 100.0]) == [4, 3, 2, 1]
