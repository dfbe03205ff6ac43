"""Spatial-embedding instance segmentation: Lovasz hinge, loss, clustering, model, tiling, TTA."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clusterseg.instances.clustering import ClusteringParams, cluster_embeddings
from clusterseg.instances.embedding import add_coordinates, coordinate_grid, decode_output, gaussian_membership
from clusterseg.instances.loss import SpatialEmbeddingLoss
from clusterseg.instances.model import SpatialEmbeddingModel, _vector_map, d4_transforms  # d4 lives in clusterseg.nn.d4
from clusterseg.nn.erfnet import BranchedERFNet
from clusterseg.nn.lovasz import lovasz_hinge, lovasz_hinge_grouped
from clusterseg.io.checkpoints import CheckpointError


# --------------------------------------------------------------------------- Lovasz hinge
def _jaccard_loss_of_set(mistakes: set[int], gt: np.ndarray) -> float:
    """Delta(M) = |M| / |G u M| by brute force."""
    union = set(np.flatnonzero(gt)) | mistakes
    return len(mistakes) / len(union) if union else 0.0


def _lovasz_brute_force(logits: np.ndarray, gt: np.ndarray) -> float:
    """Lovasz extension of the Jaccard loss evaluated on the hinge errors, from its definition."""
    errors = np.maximum(0.0, 1.0 - logits * (2 * gt - 1))
    order = np.argsort(-errors, kind="stable")
    total, prev, chosen = 0.0, 0.0, set()
    for i in order:
        chosen.add(int(i))
        value = _jaccard_loss_of_set(chosen, gt)
        total += errors[i] * (value - prev)
        prev = value
    return total


@pytest.mark.parametrize("seed", range(5))
def test_lovasz_hinge_matches_definition(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=9)
    gt = (rng.random(9) < 0.4).astype(float)
    ours = float(lovasz_hinge(torch.tensor(logits), torch.tensor(gt)))
    assert ours == pytest.approx(_lovasz_brute_force(logits, gt), abs=1e-12)


def test_lovasz_hinge_equals_scaled_jaccard_loss_on_hard_predictions():
    # Logits +-1: errors are 0 (right) or 2 (wrong), so the loss is 2 (1 - IoU).
    gt = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1])
    pred = torch.tensor([1, 1, 0, 1, 0, 0, 1, 1])
    logits = 2.0 * pred - 1.0
    inter = int((gt & pred).sum())
    union = int((gt | pred).sum())
    assert float(lovasz_hinge(logits, gt)) == pytest.approx(2 * (1 - inter / union))
    # Perfect and confident: zero loss.
    assert float(lovasz_hinge(3.0 * (2.0 * gt - 1.0), gt)) == 0.0


def test_lovasz_hinge_batched_rows_and_gradient():
    rng = np.random.default_rng(3)
    logits = torch.tensor(rng.normal(size=(3, 7)), requires_grad=True)
    gt = torch.tensor(rng.random((3, 7)) < 0.5)
    rows = lovasz_hinge(logits, gt)
    assert rows.shape == (3,)
    for r in range(3):
        assert float(rows[r].detach()) == pytest.approx(float(lovasz_hinge(logits[r].detach(), gt[r])))
    assert torch.autograd.gradcheck(lambda x: lovasz_hinge(x, gt), (logits,))
    with pytest.raises(ValueError, match="differ in shape"):
        lovasz_hinge(logits, gt[:, :3])


def test_lovasz_hinge_grouped_equals_the_rows_in_any_order_with_gradient():
    rng = np.random.default_rng(4)
    logits = torch.tensor(rng.normal(size=(4, 9)), requires_grad=True)
    gt = torch.tensor(rng.random((4, 9)) < 0.4)
    gt[:, 0] = True
    perm = torch.tensor(rng.permutation(36))
    groups = torch.arange(4).repeat_interleave(9)[perm]

    def grouped(x):
        return lovasz_hinge_grouped(x.reshape(-1)[perm], gt.reshape(-1)[perm], groups, gt.sum(dim=1))

    assert torch.allclose(grouped(logits), lovasz_hinge(logits, gt), atol=1e-12)
    assert torch.autograd.gradcheck(grouped, (logits,))
    with pytest.raises(ValueError, match="1-D"):
        lovasz_hinge_grouped(logits, gt, groups.reshape(4, 9), gt.sum(dim=1))


def test_lovasz_hinge_grouped_may_leave_out_zero_error_elements():
    # Well-classified elements (hinge error 0) add nothing and sort last: leaving them out, with
    # the positives still counted, gives the full problem's loss; an empty group scores 0.
    logits = torch.tensor([2.0, 0.5, -0.2, 0.3, -3.0, 1.5], dtype=torch.float64)
    gt = torch.tensor([1, 1, 1, 0, 0, 1])
    full = float(lovasz_hinge(logits, gt))
    kept = torch.tensor([1, 2, 3])  # errors 0.5, 1.2, 1.3; left out: errors 0 (2.0 and 1.5 inside, -3 outside)
    ours = lovasz_hinge_grouped(logits[kept], gt[kept], torch.zeros(3, dtype=torch.long), torch.tensor([4, 0]))
    assert float(ours[0]) == pytest.approx(full) and float(ours[1]) == 0.0
    assert full > 0


# --------------------------------------------------------------------------- embeddings
def test_coordinate_grid_units_and_origin():
    grid = coordinate_grid(4, 6, pixel_size=0.5, origin=(10, 20))
    assert grid.shape == (2, 4, 6)
    assert float(grid[0, 3, 5]) == (20 + 5) * 0.5  # x = column
    assert float(grid[1, 3, 5]) == (10 + 3) * 0.5  # y = row
    whole = coordinate_grid(30, 40)
    assert torch.equal(coordinate_grid(4, 6, origin=(10, 20)), whole[:, 10:14, 20:26])


def test_gaussian_membership_half_at_log2():
    emb = torch.tensor([[0.0, 0.1, 0.0], [0.0, 0.0, 0.2]])
    centre = torch.zeros(1, 2)
    # s_x = ln2 / 0.01, s_y = ln2 / 0.04: both off-centre pixels sit exactly on phi = 0.5.
    sigma = torch.log(torch.tensor([[math.log(2) / 0.01, math.log(2) / 0.04]])) / 10
    phi = gaussian_membership(emb, centre, sigma)
    assert phi.numpy() == pytest.approx(np.array([[1.0, 0.5, 0.5]]))


# --------------------------------------------------------------------------- loss
def _ideal_raw(labels: np.ndarray, *, sigma: float = 2.0, seed_logit: float = 30.0) -> torch.Tensor:
    """Raw outputs under which every pixel embeds exactly onto its object's centre."""
    h, w = labels.shape
    grid = coordinate_grid(h, w).double().numpy()
    raw = np.zeros((1, 2 + 2 + 1, h, w))
    for k in np.unique(labels[labels > 0]):
        m = labels == k
        centre = grid[:, m].mean(axis=1)
        raw[0, :2, m] = np.arctanh(centre - grid[:, m].T)
    raw[0, 2:4] = sigma
    raw[0, 4] = np.where(labels > 0, seed_logit, -seed_logit)
    return torch.tensor(raw)


def test_loss_is_zero_for_ideal_outputs_and_positive_otherwise():
    labels = np.zeros((24, 24), np.int64)
    labels[2:8, 3:10] = 1
    labels[12:20, 12:18] = 2
    target = torch.tensor(labels)[None]
    loss = SpatialEmbeddingLoss(2)
    ideal = loss(_ideal_raw(labels), target)
    assert float(ideal.total) == pytest.approx(0.0, abs=1e-9)
    # Offsets that do not point at the centres: the instance term must see it.
    shifted = _ideal_raw(labels)
    shifted[0, 0] += 0.05
    assert float(loss(shifted, target).instance) > 0.5


def test_loss_terms_hand_computed():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2, :2] = 1  # one object of 4 pixels
    raw = torch.zeros(1, 5, 4, 4, dtype=torch.float64)
    raw[0, 2:4, 0, :2] = 1.0  # sigma 1 on the top row of the object, 0 below: mean 0.5
    terms = SpatialEmbeddingLoss(2, foreground_weight=10.0)(raw, labels)
    assert float(terms.variance) == pytest.approx(0.25)  # mean (sigma - 0.5)^2
    # Seed = sigmoid(0) = 0.5 everywhere: 12 background pixels give 12 * 0.25,
    # the 4 object pixels 10 * (0.5 - phi)^2; divided by 16 pixels.
    lo = SpatialEmbeddingLoss(2)
    maps = decode_output(raw, 2)
    emb = maps.embedding[0].reshape(2, -1)
    grid = coordinate_grid(4, 4, dtype=torch.float64).reshape(2, -1)
    mask = (labels[0].reshape(-1) == 1)
    centre = grid[:, mask].mean(dim=1, keepdim=True).T
    phi = gaussian_membership(emb, centre, torch.full((1, 2), 0.5, dtype=torch.float64))[0]
    expected_seed = (12 * 0.25 + 10 * ((0.5 - phi[mask]) ** 2).sum()) / 16
    assert float(terms.seed) == pytest.approx(float(expected_seed))
    assert float(lo(raw, labels).total) == pytest.approx(
        float(terms.instance) + 10 * 0.25 + float(terms.seed))


def test_loss_background_only_and_gradients():
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    raw = torch.zeros(2, 5, 8, 8, requires_grad=True)
    terms = SpatialEmbeddingLoss(2)(raw, labels)
    assert float(terms.instance.detach()) == 0.0 and float(terms.seed.detach()) == pytest.approx(0.25)
    labels[1, 2:6, 2:6] = 7
    raw2 = (0.1 * torch.randn(2, 5, 8, 8, generator=torch.Generator().manual_seed(0))).requires_grad_()
    SpatialEmbeddingLoss(2)(raw2, labels).total.backward()
    assert torch.isfinite(raw2.grad).all()
    assert raw2.grad[1, :2].abs().sum() > 0  # offsets receive gradient from the instance term


def _dense_reference_loss(raw, labels, classes, foreground_weight=10.0):
    """The loss of Neven et al. written densely over (objects x pixels), one object at a time."""
    maps = decode_output(raw, 2)
    grid = coordinate_grid(*labels.shape[-2:], dtype=raw.dtype).reshape(2, -1)
    inst, var, seed_terms = [], [], []
    for b in range(raw.shape[0]):
        emb, sig = maps.embedding[b].reshape(2, -1), maps.sigma[b].reshape(2, -1)
        seed, lab, cls = maps.seed[b].reshape(maps.seed.shape[1], -1), labels[b].reshape(-1), classes[b].reshape(-1)
        s_loss = sum(seed[c][(cls != c + 1) & (cls >= 0)].square().sum() for c in range(seed.shape[0]))
        i_loss, v_loss, ids = 0.0, 0.0, [int(k) for k in torch.unique(lab) if k > 0]
        for k in ids:
            m = lab == k
            s_k = sig[:, m].mean(dim=1)
            v_loss = v_loss + (sig[:, m] - s_k.detach()[:, None]).square().mean()
            phi = gaussian_membership(emb, grid[:, m].mean(dim=1)[None], s_k[None])[0]
            i_loss = i_loss + lovasz_hinge(2 * phi - 1, m)
            c = int(torch.mode(cls[m]).values) - 1
            s_loss = s_loss + foreground_weight * (seed[c][m] - phi[m].detach()).square().sum()
        n = max(len(ids), 1)
        inst.append(i_loss / n), var.append(v_loss / n), seed_terms.append(s_loss / lab.numel())
    return [torch.stack([torch.as_tensor(t, dtype=raw.dtype) for t in ts]).mean() for ts in (inst, var, seed_terms)]


def test_loss_equals_the_dense_reference_with_gradients():
    # Two seed maps, touching objects, an object of class 2, an empty image: the loss scores each
    # object only on the pixels near it in embedding space, within LOVASZ_TOLERANCE of the dense form.
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(2, 24, 20, dtype=torch.long)
    labels[0, 2:9, 3:10], labels[0, 9:16, 3:10], labels[0, 14:22, 12:19] = 3, 5, 9
    classes = (labels > 0).long()
    classes[0][labels[0] == 9] = 2
    raw = (0.3 * torch.randn(2, 6, 24, 20, generator=gen, dtype=torch.float64))
    raw[:, :2] *= 0.01  # offsets of a few pixels (coordinates are in units of 1024 px)
    raw[:, 2:4] += 1.2  # bandwidths of a few pixels (s = e^12), as in training
    raw.requires_grad_(True)
    ours = SpatialEmbeddingLoss(2)(raw, labels, classes)
    ref = _dense_reference_loss(raw, labels, classes)
    for term, expected in zip(ours[1:], ref):
        assert float(term.detach()) == pytest.approx(float(expected.detach()), abs=1e-9)
    (grad,) = torch.autograd.grad(ours.total, raw)
    (ref_grad,) = torch.autograd.grad(ref[0] + 10 * ref[1] + ref[2], raw)
    assert torch.allclose(grad, ref_grad, atol=1e-9 * float(ref_grad.abs().max()))
    assert float(ref[0].detach()) > 0.1 and grad[0, :2].abs().sum() > 0


def test_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must be"):
        SpatialEmbeddingLoss(2)(torch.zeros(1, 5, 8, 8), torch.zeros(1, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="n_sigma"):
        SpatialEmbeddingLoss(3)


# --------------------------------------------------------------------------- clustering
def _two_object_maps():
    h, w = 12, 20
    grid = coordinate_grid(h, w).double().numpy()
    labels = np.zeros((h, w), int)
    labels[2:8, 2:8] = 1
    labels[3:10, 11:18] = 2
    embedding = grid.copy()
    seed = np.zeros((h, w))
    for k, score in ((1, 0.95), (2, 0.99)):
        m = labels == k
        embedding[:, m] = grid[:, m].mean(axis=1, keepdims=True)
        seed[m] = score - 0.01 * np.random.default_rng(k).random(m.sum())
    sigma = np.full((2, h, w), 1.0)
    return embedding, sigma, seed, labels


def test_cluster_embeddings_recovers_objects_in_score_order():
    embedding, sigma, seed, truth = _two_object_maps()
    labels, scores = cluster_embeddings(embedding, sigma, seed, ClusteringParams(min_size=4))
    assert labels.dtype == np.int32
    # Object 2 has the higher seed, so it is found first.
    assert np.array_equal(labels == 1, truth == 2) and np.array_equal(labels == 2, truth == 1)
    assert np.isnan(scores[0]) and scores[1] == pytest.approx(seed[truth == 2].max())
    assert scores[1] > scores[2]


def test_cluster_embeddings_thresholds():
    embedding, sigma, seed, truth = _two_object_maps()
    # Seed threshold above object 1's scores: only object 2.
    labels, scores = cluster_embeddings(embedding, sigma, seed, ClusteringParams(seed_threshold=0.97, min_size=4))
    assert labels.max() == 1 and np.array_equal(labels == 1, truth == 2) and len(scores) == 2
    # Minimum size above object 1's 36 pixels, below object 2's 49.
    labels, _ = cluster_embeddings(embedding, sigma, seed, ClusteringParams(min_size=40))
    assert labels.max() == 1 and (labels == 1).sum() == 49
    # Nothing above the foreground threshold: empty result.
    labels, scores = cluster_embeddings(embedding, sigma, seed * 0.1)
    assert labels.max() == 0 and len(scores) == 1


def test_cluster_embeddings_has_no_255_object_limit():
    h, w = 60, 60
    grid = coordinate_grid(h, w).double().numpy()
    embedding = grid.copy()
    # 300 objects of 2x2 pixels on a 3-pixel lattice... 20 x 20 = 400 blocks of 3x3.
    truth = np.zeros((h, w), int)
    for n, (r, c) in enumerate(itertools.product(range(0, 60, 3), range(0, 60, 3))):
        truth[r:r + 2, c:c + 2] = n + 1
        embedding[:, r:r + 2, c:c + 2] = grid[:, r:r + 2, c:c + 2].mean(axis=(1, 2), keepdims=True)
    seed = np.where(truth > 0, 0.99, 0.0)
    sigma = np.full((1, h, w), 1.5)  # radius about 0.6 px: objects stay apart
    labels, scores = cluster_embeddings(embedding, sigma, seed, ClusteringParams(min_size=4))
    assert labels.max() == 400 and len(scores) == 401


def test_cluster_embeddings_bad_input():
    embedding, sigma, seed, _ = _two_object_maps()
    with pytest.raises(ValueError, match="do not match"):
        cluster_embeddings(embedding[:, :5], sigma, seed)
    bad = seed.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cluster_embeddings(embedding, sigma, bad)
    with pytest.raises(ValueError, match="fg_threshold"):
        ClusteringParams(fg_threshold=1.5)


# --------------------------------------------------------------------------- network and model
def test_branched_erfnet_any_size_and_width():
    net = BranchedERFNet((4, 1), width=0.25).eval()
    out = net(torch.rand(2, 3, 37, 53))
    assert out.shape == (2, 5, 37, 53)
    small = sum(p.numel() for p in net.parameters())
    big = sum(p.numel() for p in BranchedERFNet((4, 1), width=0.5).parameters())
    assert 3 < big / small < 5  # parameters scale with width squared
    with pytest.raises(ValueError, match="expected input"):
        net(torch.rand(1, 1, 16, 16))


def test_model_initial_output_and_save_load(tmp_path):
    torch.manual_seed(0)
    model = SpatialEmbeddingModel(width=0.25, clustering={"min_size": 5}, metadata={"note": "x"}).eval()
    raw = model(torch.rand(1, 3, 32, 32))
    assert torch.all(raw[:, :2] == 0) and torch.all(raw[:, 2:4] == 1)  # paper's initialisation
    path = model.save(tmp_path / "m.pt")
    with pytest.raises(FileExistsError):
        model.save(path)
    loaded = SpatialEmbeddingModel.load(path)
    x = torch.rand(1, 3, 40, 24)
    assert torch.equal(loaded(x), model(x))
    assert loaded.clustering.min_size == 5 and loaded.metadata["note"] == "x"
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        SpatialEmbeddingModel.load(tmp_path / "bad.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a clusterseg spatial-embedding"):
        SpatialEmbeddingModel.load(tmp_path / "other.pt")


class _GradientModel(SpatialEmbeddingModel):
    """An analytic, D4-equivariant stand-in for the network.

    Offsets are a (scaled) image gradient -- a vector field --, the bandwidths
    the two squared partial derivatives (they swap under quarter turns), the
    seed the image itself. If TTA de-transforms correctly, every transformed
    pass equals the plain one.
    """

    def forward(self, x):
        g = x.mean(dim=1, keepdim=True)
        p = F.pad(g, (1, 1, 1, 1), mode="replicate")
        gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
        gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
        return torch.cat([torch.atanh(0.4 * torch.tanh(gx)), torch.atanh(0.4 * torch.tanh(gy)),
                          gx.square(), gy.square(), g], dim=1)


def _asymmetric_image(h=40, w=56):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    return (np.sin(xx / 5.0) + np.cos(yy / 3.0 + xx / 7.0) + 0.3 * rng.random((h, w))).astype(np.float32)


def test_vector_map_of_flip_and_quarter_turns():
    assert torch.equal(_vector_map(0, False, "cpu"), torch.eye(2))
    assert torch.equal(_vector_map(0, True, "cpu"), torch.tensor([[-1.0, 0.0], [0.0, 1.0]]))
    for k, flip in d4_transforms():
        a = _vector_map(k, flip, "cpu")
        assert torch.equal(a @ a.T, torch.eye(2))  # orthogonal: a symmetry
    assert len({(k, f) for k, f in d4_transforms()}) == 8


def test_tta_detransforms_offsets_and_bandwidths():
    model = _GradientModel(width=0.25).eval()
    x = torch.from_numpy(_asymmetric_image())[None].repeat(3, 1, 1)
    plain = model._tile_maps(x, tta=False)
    augmented = model._tile_maps(x, tta=True)
    assert torch.allclose(augmented.offset, plain.offset, atol=1e-5)
    assert torch.allclose(augmented.sigma, plain.sigma, atol=1e-5)
    assert torch.allclose(augmented.seed, plain.seed, atol=1e-6)
    # The field is far from symmetric, so a wrong de-transform could not pass.
    assert not torch.allclose(plain.offset, torch.flip(plain.offset, dims=(-1,)), atol=1e-2)


def test_tiled_prediction_equals_whole_image():
    model = _GradientModel(width=0.25).eval()
    image = _asymmetric_image(150, 170)
    whole = model.predict_maps(image, channel_axis=None, tile_size=1024)
    tiled = model.predict_maps(image, channel_axis=None, tile_size=64, tile_overlap=8)
    for key in ("embedding", "sigma", "seed"):
        assert np.allclose(tiled[key], whole[key], atol=1e-6), key


@pytest.mark.parametrize("size,tile,margin", [(100, 64, 8), (64, 64, 8), (300, 96, 16), (65, 64, 0), (10, 64, 4)])
def test_tiles_partition_the_axis(size, tile, margin):
    covered = np.zeros(size, int)
    for r0, r1, k0, k1 in SpatialEmbeddingModel._tiles(size, tile, margin):
        assert 0 <= r0 <= k0 < k1 <= r1 <= size and r1 - r0 == min(tile, size)
        covered[k0:k1] += 1
    assert np.all(covered == 1)


def test_segment_end_to_end_on_ideal_maps():
    """predict_maps + clustering recover objects when the network is ideal."""

    labels_true = np.zeros((32, 32), int)
    labels_true[4:12, 4:14] = 1
    labels_true[18:28, 16:30] = 2
    raw = _ideal_raw(labels_true, sigma=1.0).float()

    class _Ideal(SpatialEmbeddingModel):
        def forward(self, x):
            return raw.expand(x.shape[0], -1, -1, -1)

    model = _Ideal(width=0.25, clustering={"min_size": 10}).eval()
    labels, scores = model.segment(np.zeros((32, 32), np.uint8), channel_axis=None)
    assert labels.max() == 2 and len(scores) == 3
    for k in (1, 2):
        assert len(np.unique(labels[labels_true == k])) == 1
    assert np.all(labels[labels_true == 0] == 0)
    with pytest.raises(TypeError, match="unknown clustering"):
        model.segment(np.zeros((32, 32), np.uint8), channel_axis=None, seed_thresh=0.5)


def test_predict_maps_bad_input():
    model = SpatialEmbeddingModel(width=0.25)
    with pytest.raises(ValueError):
        model.predict_maps(np.zeros((0, 5)), channel_axis=None)
    with pytest.raises(ValueError, match="tile_size"):
        model.predict_maps(np.zeros((16, 16)), channel_axis=None, tile_size=100)


def test_add_coordinates_matches_the_grid():
    offset = np.random.default_rng(0).normal(size=(2, 7, 9)).astype(np.float32)
    expected = offset + coordinate_grid(7, 9, pixel_size=0.25).numpy()
    assert np.allclose(add_coordinates(offset.copy(), pixel_size=0.25), expected)


def test_d4_symmetries_are_a_group_and_invert_exactly():
    from clusterseg.nn.d4 import apply_d4, invert_d4

    x = torch.arange(12.0).reshape(1, 3, 4)
    images = {tuple(apply_d4(x, k, f).flatten().tolist()) + (apply_d4(x, k, f).shape,) for k, f in d4_transforms()}
    assert len(images) == 8  # all different on an asymmetric input
    for k, flip in d4_transforms():
        assert torch.equal(invert_d4(apply_d4(x, k, flip), k, flip), x)
    assert torch.equal(apply_d4(x, 2, True), torch.flip(x, dims=(-2,)))  # flip then half turn = vertical flip


def test_model_clusters_each_imaging_modality_with_its_own_thresholds(tmp_path, monkeypatch):
    import clusterseg.models.spatial_embedding as se

    used = []
    monkeypatch.setattr(se, "cluster_embeddings", lambda emb, sigma, seed, params: (used.append(params), None))
    model = SpatialEmbeddingModel(width=0.25, clustering={"seed_threshold": 0.9},
                                  modality_clustering={"colour": {"seed_threshold": 0.6, "fg_threshold": 0.3}}).eval()
    loaded = SpatialEmbeddingModel.load(model.save(tmp_path / "m.pt"))
    assert loaded.modality_clustering == {"colour": ClusteringParams(fg_threshold=0.3, seed_threshold=0.6)}
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 255, (24, 24, 1), dtype=np.uint8), 3, axis=-1)
    colour = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    loaded.segment(grey)
    loaded.segment(colour)
    loaded.segment(colour, modality=None)  # the general thresholds
    loaded.segment(grey, modality="colour")
    loaded.segment(colour, seed_threshold=0.5)  # an override keeps the modality's other thresholds
    assert [p.seed_threshold for p in used] == [0.9, 0.6, 0.9, 0.6, 0.5]
    assert [p.fg_threshold for p in used] == [0.5, 0.3, 0.5, 0.3, 0.3]
    with pytest.raises(ValueError, match="modality must be"):
        loaded.segment(grey, modality="fluorescence")
    with pytest.raises(ValueError, match="modality_clustering keys"):
        SpatialEmbeddingModel(width=0.25, modality_clustering={"rgb": {}})
