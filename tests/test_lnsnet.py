"""LNSNet model, clustering, losses, GRM and inference (no real data, no shipped weights needed)."""

import numpy as np
import pytest
import torch
from skimage.measure import label as cc_label

from clusterseg.nn.grm import GAL, GBL, GradientAdaptiveFunction, GradientBidirectionFunction, gbl_scale
from clusterseg.nn.lnsnet import (
    LNSNet,
    LocalAssigner,
    assign_global,
    label_sums,
    assign_local,
    cluster_pixels,
    local_candidates,
    sample_seeds,
    window_seeds,
    seed_grid,
    student_t_kernel,
)
from clusterseg.nn.losses import (
    dec_target,
    homogeneity_loss,
    inner_window_mask,
    range_limited_clustering_loss,
    range_regulariser,
    reconstruction_loss,
    seed_centroid_loss,
)
from clusterseg.superpixels.lnsnet import lnsnet_superpixels


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return LNSNet().eval()


# ----------------------------------------------------------------------------- architecture
def test_parameter_counts_match_paper():
    m = LNSNet()
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert count(m.fem) == 7390
    assert count(m.sel) == 3723
    assert count(m.recon) == 105
    assert count(m) == 11218  # the paper's "11.22 K"
    assert "gal.memory" in m.state_dict()


def test_shapes(net):
    x = torch.randn(1, 5, 20, 30)
    out = net(x, 12)
    assert out["z"].shape == (1, 20, 20, 30)
    k = out["grid"].n_seeds
    assert out["seed_feats"].shape == (k, 20) and out["seed_rows"].shape == (k,)
    assert net.recon(out["z"]).shape == (1, 5, 20, 30)
    # batched embedder
    assert net.fem(torch.randn(2, 5, 9, 11)).shape == (2, 20, 9, 11)


@pytest.mark.parametrize("h,w", [(321, 481), (481, 321), (100, 100), (3000, 4000), (7, 500)])
@pytest.mark.parametrize("k", [1, 50, 100, 400, 1000, 2000])
def test_seed_grid_count_close_to_k(h, w, k):
    g = seed_grid(h, w, k)
    assert 1 <= g.rows <= h and 1 <= g.cols <= w
    if 4 <= k <= min(h, w) ** 2 / 4:  # room for a square-ish grid
        assert abs(g.n_seeds - k) <= 0.1 * k + 1
        assert 0.5 < g.cell_h / g.cell_w < 2.0  # nearly square cells


def test_fast_inference_embedder_equals_forward(net):
    x = torch.randn(1, 5, 31, 40)
    with torch.no_grad():
        torch.testing.assert_close(net.fem.forward_inference(x), net.fem(x), atol=1e-4, rtol=1e-4)


def test_tiled_embedder_equals_full(net):
    x = torch.randn(1, 5, 45, 23)
    with torch.no_grad():
        full = net.fem(x)
        tiled = net.fem.forward_tiled(x, tile_rows=10, halo=8)
    torch.testing.assert_close(tiled, full, atol=2e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- assignment
def _brute_force(z, seeds, grid, radius):
    _, c, h, w = z.shape
    zf = z[0].permute(1, 2, 0)
    d = torch.full((h, w, seeds.shape[0]), float("inf"), dtype=z.dtype)
    for r in range(h):
        a = r * grid.rows // h
        for col in range(w):
            b = col * grid.cols // w
            for da in range(-radius, radius + 1):
                for db in range(-radius, radius + 1):
                    if 0 <= a + da < grid.rows and 0 <= b + db < grid.cols:
                        k = (a + da) * grid.cols + b + db
                        d[r, col, k] = ((zf[r, col] - seeds[k]) ** 2).sum()
    return d


@pytest.mark.parametrize("radius", [1, 2])
def test_local_candidates_match_brute_force(radius):
    torch.manual_seed(1)
    z = torch.randn(1, 4, 13, 17, dtype=torch.float64)
    grid = seed_grid(13, 17, 12)
    seeds = torch.randn(grid.n_seeds, 4, dtype=torch.float64)
    d, idx, valid = local_candidates(z, seeds, grid, radius)
    assert d.shape == ((2 * radius + 1) ** 2, 13, 17)
    bf = _brute_force(z, seeds, grid, radius)
    got = torch.full_like(bf, float("inf"))
    got.scatter_reduce_(2, idx.permute(1, 2, 0), d.permute(1, 2, 0), reduce="amin")  # invalid ones are inf
    finite = torch.isfinite(bf)
    torch.testing.assert_close(got[finite], bf[finite])
    assert int(valid.sum()) == int(finite.sum())
    lab = assign_local(z, seeds, grid, radius, tile_pixels=40)  # several row tiles
    assert torch.equal(lab, bf.argmin(-1))


@pytest.mark.parametrize("h,w,k", [(13, 17, 12), (40, 30, 7), (5, 61, 9), (1, 9, 3)])
def test_local_assigner_equals_assign_local_and_sums_are_exact(h, w, k):
    torch.manual_seed(3)
    z = torch.randn(1, 6, h, w, dtype=torch.float64)
    grid = seed_grid(h, w, k)
    seeds = torch.randn(grid.n_seeds, 6, dtype=torch.float64)
    expected = _brute_force(z, seeds, grid, 1).argmin(-1)
    for assigner in (LocalAssigner(z, grid), LocalAssigner(z, grid, max_cached=0)):  # cached and tiled
        labels = assigner(seeds)
        assert torch.equal(labels, expected)
        sums, counts = assigner.cluster_sums()
        flat = labels.reshape(-1)
        ref = torch.zeros(grid.n_seeds, 6, dtype=torch.float64).index_add_(0, flat, z[0].reshape(6, -1).t())
        torch.testing.assert_close(sums, ref)
        assert torch.equal(counts.long(), torch.bincount(flat, minlength=grid.n_seeds))
    # extra channels: the same as concatenating them, in the cached layout and in the tiled fallback
    extra = torch.randn(1, 2, h, w, dtype=torch.float64)
    both = torch.cat([z, extra], 1)
    seeds2 = torch.randn(grid.n_seeds, 8, dtype=torch.float64)
    expected = _brute_force(both, seeds2, grid, 1).argmin(-1)
    for assigner in (LocalAssigner(z, grid, extra=extra), LocalAssigner(z, grid, max_cached=0, extra=extra)):
        labels = assigner(seeds2)
        assert torch.equal(labels, expected)
        flat = labels.reshape(-1)
        ref = torch.zeros(grid.n_seeds, 8, dtype=torch.float64).index_add_(0, flat, both[0].reshape(8, -1).t())
        torch.testing.assert_close(assigner.cluster_sums()[0], ref)
    # sums over arbitrary labels (the global path), channels-first and channels-last, with extra channels
    other = torch.randint(0, grid.n_seeds, (h, w))
    ref = torch.zeros(grid.n_seeds, 8, dtype=torch.float64).index_add_(0, other.reshape(-1), both[0].reshape(8, -1).t())
    for parts in ([z, extra], [z.contiguous(memory_format=torch.channels_last), extra]):
        sums, counts = label_sums(parts, other, grid.n_seeds)
        torch.testing.assert_close(sums, ref)
        assert torch.equal(counts.long(), torch.bincount(other.reshape(-1), minlength=grid.n_seeds))
    with pytest.raises(RuntimeError, match="assign"):
        LocalAssigner(z, grid).cluster_sums()


def test_local_assigner_sums_stay_exact_when_updated_by_moved_pixels():
    """Later cluster_sums move only the pixels that changed seed; they must equal sums from scratch."""
    torch.manual_seed(5)
    h, w = 48, 64
    z = torch.randn(1, 4, h, w, dtype=torch.float64)
    extra = torch.randn(1, 2, h, w, dtype=torch.float64)
    grid = seed_grid(h, w, 48)
    both = torch.cat([z, extra], 1)[0].reshape(6, -1).t()
    assigner = LocalAssigner(z, grid, extra=extra)
    seeds = torch.randn(grid.n_seeds, 6, dtype=torch.float64)
    moved = []
    for step in range(6):
        before = assigner.labels().clone() if step else None
        # small nudges move a few per cent of the pixels (the incremental path), a big one most (from scratch)
        seeds = seeds + (0.02 if step != 3 else 1.0) * torch.randn_like(seeds)
        labels = assigner(seeds)
        sums, counts = assigner.cluster_sums()
        flat = labels.reshape(-1)
        torch.testing.assert_close(sums, torch.zeros_like(seeds).index_add_(0, flat, both))
        assert torch.equal(counts.long(), torch.bincount(flat, minlength=grid.n_seeds))
        if before is not None:
            moved.append(float((labels != before).double().mean()))
    assert min(moved) < 0.1 < max(moved)  # both paths ran


def test_local_assigner_treats_missing_seed_columns_as_zero():
    torch.manual_seed(6)
    z = torch.randn(1, 4, 20, 24, dtype=torch.float64)
    extra = torch.randn(1, 3, 20, 24, dtype=torch.float64)
    grid = seed_grid(20, 24, 12)
    seeds = torch.randn(grid.n_seeds, 4, dtype=torch.float64)
    padded = torch.cat([seeds, torch.zeros(grid.n_seeds, 3, dtype=torch.float64)], 1)
    for cache in (1 << 26, 0):  # cached layout and tiled fallback
        assigner = LocalAssigner(z, grid, extra=extra, max_cached=cache)
        assert torch.equal(assigner(seeds), LocalAssigner(z, grid, extra=extra, max_cached=cache)(padded))
        assert torch.equal(assigner(seeds), LocalAssigner(z, grid)(seeds))


def _kmeans_reference(z, seeds, grid, steps, spatial_weight, colour=None, colour_weight=0.0):
    """Brute-force local k-means in (embedding, weighted position, weighted colour), numpy float64."""
    zf = z[0].permute(1, 2, 0).numpy()
    h, w, _ = zf.shape
    rr, cc = np.mgrid[:h, :w].astype(float)
    pos = np.stack([rr / grid.cell_h, cc / grid.cell_w], -1) * np.sqrt(spatial_weight)
    if colour is not None:  # colour rides along with the position channels
        cr, ccol = grid.centres(dtype=torch.float64)
        rows = cr[:, None].expand(grid.rows, grid.cols).reshape(-1)
        cols = ccol[None, :].expand(grid.rows, grid.cols).reshape(-1)
        start = sample_seeds(colour, rows, cols).numpy() * np.sqrt(colour_weight)
        pos = np.concatenate([colour[0].permute(1, 2, 0).numpy() * np.sqrt(colour_weight), pos], -1)
    cell_r = np.arange(h) * grid.rows // h
    cell_c = np.arange(w) * grid.cols // w

    def assign(feat, centre, use_pos):
        out = np.zeros((h, w), dtype=np.int64)
        for r in range(h):
            for c in range(w):
                best, best_d = -1, np.inf
                for a in range(cell_r[r] - 1, cell_r[r] + 2):
                    for b in range(cell_c[c] - 1, cell_c[c] + 2):
                        if 0 <= a < grid.rows and 0 <= b < grid.cols:
                            k = a * grid.cols + b
                            d = ((feat[r, c] - centre[k]) ** 2).sum()
                            if use_pos:
                                d += ((pos[r, c] - centre_pos[k]) ** 2).sum()
                            if d < best_d:
                                best, best_d = k, d
                out[r, c] = best
        return out

    centre = seeds.numpy().copy()
    cr = (np.arange(grid.rows) + 0.5) * grid.cell_h - 0.5
    ccol = (np.arange(grid.cols) + 0.5) * grid.cell_w - 0.5
    centre_pos = np.stack(np.meshgrid(cr / grid.cell_h, ccol / grid.cell_w, indexing="ij"), -1).reshape(-1, 2)
    centre_pos = centre_pos * np.sqrt(spatial_weight)
    if colour is not None:
        centre_pos = np.concatenate([start, centre_pos], 1)
    labels = assign(zf, centre, False)
    for _ in range(steps):
        for k in range(grid.n_seeds):
            mask = labels == k
            if mask.any():
                centre[k] = zf[mask].mean(0)
                centre_pos[k] = pos[mask].mean(0)
        labels = assign(zf, centre, True)
    return labels


@pytest.mark.parametrize("steps,spatial_weight", [(0, 0.0), (1, 0.0), (3, 0.3), (2, 5.0)])
def test_cluster_pixels_is_local_kmeans_with_a_position_term(steps, spatial_weight):
    torch.manual_seed(4)
    z = torch.randn(1, 3, 14, 19, dtype=torch.float64)
    grid = seed_grid(14, 19, 6)
    seeds = torch.randn(grid.n_seeds, 3, dtype=torch.float64)
    got = cluster_pixels(z, seeds, grid, steps, spatial_weight)
    assert np.array_equal(got.numpy(), _kmeans_reference(z, seeds, grid, steps, spatial_weight))
    # the global variant agrees with brute force on the first pass
    glob = cluster_pixels(z, seeds, grid, 0, assignment="global")
    d = ((z[0].permute(1, 2, 0)[:, :, None] - seeds) ** 2).sum(-1)
    assert torch.equal(glob, d.argmin(-1))
    assert cluster_pixels(z, seeds, grid, 2, 0.3, assignment="global").shape == (14, 19)
    with pytest.raises(ValueError, match="assignment"):
        cluster_pixels(z, seeds, grid, 1, assignment="nearest")


def test_cluster_pixels_colour_term():
    torch.manual_seed(5)
    z = torch.randn(1, 3, 12, 16, dtype=torch.float64)
    colour = torch.rand(1, 3, 12, 16, dtype=torch.float64) * 50
    grid = seed_grid(12, 16, 4)
    seeds = torch.randn(grid.n_seeds, 3, dtype=torch.float64)
    got = cluster_pixels(z, seeds, grid, 3, 0.5, colour=colour, colour_weight=0.02)
    want = _kmeans_reference(z, seeds, grid, 3, 0.5, colour, 0.02)
    assert np.array_equal(got.numpy(), want)
    assert not np.array_equal(want, _kmeans_reference(z, seeds, grid, 3, 0.5))  # the term matters here


def test_position_term_makes_flat_regions_compact():
    # a constant embedding leaves only the position term: the update steps turn the
    # degenerate first pass (every pixel ties, and goes to its first candidate)
    # into the grid cells, as SLIC does on a flat image; seeds that won nothing
    # come back from their own positions
    z = torch.zeros(1, 4, 24, 36)
    grid = seed_grid(24, 36, 6)
    seeds = torch.zeros(grid.n_seeds, 4)
    first = cluster_pixels(z, seeds, grid, 0)
    assert len(torch.unique(first)) < grid.n_seeds
    assert len(torch.unique(cluster_pixels(z, seeds, grid, 1, 1.0))) == grid.n_seeds
    labels = cluster_pixels(z, seeds, grid, 5, 1.0).numpy()
    sizes = np.bincount(labels.ravel(), minlength=grid.n_seeds)
    area = 24 * 36 / grid.n_seeds
    assert sizes.min() > 0.6 * area and sizes.max() < 1.4 * area, sizes
    assert cc_label(labels + 1, connectivity=1, background=0).max() == grid.n_seeds
    # without the position term nothing can undo the degenerate first pass
    assert len(np.unique(cluster_pixels(z, seeds, grid, 5, 0.0).numpy())) < grid.n_seeds


def test_assign_global_is_nearest_seed():
    torch.manual_seed(2)
    z = torch.randn(1, 3, 8, 9)
    seeds = torch.randn(7, 3)
    lab = assign_global(z, seeds, chunk=10)
    d = ((z[0].permute(1, 2, 0)[:, :, None] - seeds) ** 2).sum(-1)
    assert torch.equal(lab, d.argmin(-1))


def test_student_t_kernel_exponent():
    d = torch.tensor([0.0, 1.0, 3.0])
    torch.testing.assert_close(student_t_kernel(d), torch.tensor([1.0, 0.5, 0.25]))
    torch.testing.assert_close(student_t_kernel(d, alpha=2.0), (1 + d / 2) ** -1.5)


def test_sample_seeds_bilinear_and_differentiable():
    z = torch.arange(12.0).reshape(1, 1, 3, 4)
    rows = torch.tensor([0.0, 1.5, 2.0], requires_grad=True)
    cols = torch.tensor([0.0, 0.5, 3.0], requires_grad=True)
    s = sample_seeds(z, rows, cols)
    # z[r, c] = 4 r + c is linear, so bilinear sampling is exact
    torch.testing.assert_close(s[:, 0], 4 * rows.detach() + cols.detach())
    s.sum().backward()
    # interior sample: d/dcol = 1, d/drow = 4 (border samples are clamped)
    assert float(cols.grad[1]) == pytest.approx(1.0)
    assert float(rows.grad[1]) == pytest.approx(4.0)


def test_window_seeds_are_box_means_and_differentiable():
    torch.manual_seed(0)
    z = torch.randn(1, 3, 12, 16, dtype=torch.float64)
    grid = seed_grid(12, 16, 12)  # 3 x 4 cells of 4 x 4 pixels
    cr, cc = grid.centres(dtype=torch.float64)
    rows = cr[:, None].expand(grid.rows, grid.cols).reshape(-1)
    cols = cc[None, :].expand(grid.rows, grid.cols).reshape(-1)
    s = window_seeds(z, rows, cols, grid.cell_h / 2, grid.cell_w / 2)
    torch.testing.assert_close(s, torch.nn.functional.avg_pool2d(z, 4)[0].reshape(3, -1).t())
    # fractional box edges: compare with the mean over a 10x finer pixel grid
    s2 = window_seeds(z, torch.tensor([5.3], dtype=torch.float64), torch.tensor([7.6], dtype=torch.float64), 1.7, 2.2)
    fine = z.repeat_interleave(10, 2).repeat_interleave(10, 3)
    box = fine[0, :, round((5.3 - 1.7 + 0.5) * 10) : round((5.3 + 1.7 + 0.5) * 10),
               round((7.6 - 2.2 + 0.5) * 10) : round((7.6 + 2.2 + 0.5) * 10)]
    torch.testing.assert_close(s2[0], box.mean((1, 2)))
    # a box sticking out of the image is clipped: the corner pixel alone
    s3 = window_seeds(z, torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64), 0.5, 0.5)
    torch.testing.assert_close(s3[0], z[0, :, 0, 0])
    zr = z.clone().requires_grad_(True)
    pos = torch.tensor([5.3, 7.6], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda zz, p: window_seeds(zz, p[:1], p[1:], 1.7, 2.2), (zr, pos), eps=1e-6, atol=1e-6)


def test_isolated_pixels_take_the_majority_label_of_their_neighbours():
    from clusterseg.models.lnsnet_model import _absorb_isolated_pixels

    lab = np.array([[1, 1, 1, 1, 1],
                    [1, 5, 1, 2, 2],
                    [1, 1, 2, 7, 2],
                    [3, 4, 2, 2, 2],
                    [3, 9, 6, 2, 2]])
    expected = lab.copy()
    expected[1, 1] = 1  # neighbours 1, 1, 1, 1
    expected[2, 3] = 2  # neighbours 2, 2, 2, 2
    expected[3, 1] = 1  # neighbours 1, 9, 3, 2 all differ: the upper one
    # (2, 2) touches another 2 and the border pixels 9 and 6 are left alone
    assert np.array_equal(_absorb_isolated_pixels(lab), expected)
    # a majority beats the order: neighbours up 1, down 3, left 2, right 3
    assert _absorb_isolated_pixels(np.array([[1, 1, 1], [2, 5, 3], [2, 3, 3]]))[1, 1] == 3
    same = np.zeros((4, 4), dtype=np.int32)
    assert _absorb_isolated_pixels(same) is same


def test_seed_window_is_stored_with_the_weights(blocks_image, tmp_path):
    from clusterseg.models.lnsnet import load_lnsnet, save_lnsnet_weights

    torch.manual_seed(0)
    net = LNSNet(seed_window=1.0).eval()
    back = load_lnsnet(save_lnsnet_weights(net, tmp_path / "w.pt"))
    assert back.seed_window == 1.0
    a = lnsnet_superpixels(blocks_image, 12, weights=net, enforce_connectivity=False)
    point = LNSNet(seed_window=0.0).eval()
    point.load_state_dict(net.state_dict())
    b = lnsnet_superpixels(blocks_image, 12, weights=point, enforce_connectivity=False)
    assert np.array_equal(lnsnet_superpixels(blocks_image, 12, weights=back, enforce_connectivity=False), a)
    assert not np.array_equal(a, b)  # the window changes the seeds
    with pytest.raises(ValueError, match="seed_window"):
        LNSNet(seed_window=-1)


# ----------------------------------------------------------------------------- losses
def test_dec_target_and_kl_hand_computed():
    # 2 candidates x 2 pixels, both in range, candidate ids (0,1) for both pixels.
    kernel = torch.tensor([[0.5, 0.25], [0.25, 0.25]], dtype=torch.float64)
    idx = torch.tensor([[0, 0], [1, 1]])
    in_range = torch.ones(2, 2, dtype=torch.bool)
    p = kernel / kernel.sum(0)  # pixel0: (2/3, 1/3), pixel1: (1/2, 1/2)
    f = torch.tensor([2 / 3 + 1 / 2, 1 / 3 + 1 / 2], dtype=torch.float64)
    w = p**2 / f[:, None]
    q = w / w.sum(0)
    torch.testing.assert_close(dec_target(p, idx, 2), q)
    expected = (q * (q.log() - p.log())).sum(0).mean()
    torch.testing.assert_close(range_limited_clustering_loss(kernel, idx, in_range, 2), expected)
    # by hand for pixel 1: p = (1/2, 1/2), w = (1/4)/(7/6), (1/4)/(5/6) -> q = (5/12, 7/12)
    torch.testing.assert_close(q[:, 1], torch.tensor([5 / 12, 7 / 12], dtype=torch.float64))


def test_clustering_loss_out_of_range_mass_and_regulariser():
    kernel = torch.tensor([[1.0], [1.0], [2.0]], dtype=torch.float64)  # 3 candidates, 1 pixel
    in_range = torch.tensor([[True], [True], [False]])
    idx = torch.tensor([[0], [1], [2]])
    # P = (1/4, 1/4, 1/2); P~ = (1/4, 1/4, 0); Q = (1/2, 1/2); KL = log 2 - log(1/4) = log 2
    loss = range_limited_clustering_loss(kernel, idx, in_range, 3)
    assert float(loss) == pytest.approx(np.log(2.0))
    assert float(range_regulariser(kernel, in_range)) == pytest.approx(1.0)  # (1/2) / (1/2)
    assert inner_window_mask(2).sum() == 9 and inner_window_mask(1).all()


def test_reconstruction_loss_hand_computed():
    target = torch.zeros(1, 5, 1, 2)
    recon = torch.zeros(1, 5, 1, 2)
    recon[0, 0] = 1.0  # colour channel 0 off by 1 at both pixels -> colour MSE = 2/6
    recon[0, 4, 0, 0] = 2.0  # spatial channel off by 2 at one pixel -> spatial MSE = 4/4
    assert float(reconstruction_loss(recon, target, phi=1.0)) == pytest.approx(1 / 3 + 1.0)
    assert float(reconstruction_loss(recon, target, phi=0.5)) == pytest.approx(1 / 3 + 0.5)


def test_seed_centroid_loss_hand_computed():
    # one seed at (0, 0); two pixels fully assigned to it at (0, 0) and (2, 2): centroid (1, 1)
    rows = torch.tensor([0.0], requires_grad=True)
    cols = torch.tensor([0.0], requires_grad=True)
    p = torch.tensor([[[1.0, 1.0]]])
    idx = torch.zeros(1, 1, 2, dtype=torch.long)
    pr = torch.tensor([[0.0, 2.0]])
    pc = torch.tensor([[0.0, 2.0]])
    loss = seed_centroid_loss(rows, cols, p, idx, pr, pc, cell_h=2.0, cell_w=1.0)
    assert float(loss.detach()) == pytest.approx((1 / 2) ** 2 + 1.0)
    loss.backward()
    assert float(rows.grad) < 0 and float(cols.grad) < 0  # moves towards the centroid


def test_homogeneity_loss_hand_computed_and_differentiable():
    # 2x2 image, features 0, 2 (seed 0) and 4, 4 (seed 1)
    f = torch.tensor([[[0.0, 2.0], [4.0, 4.0]]])
    idx = torch.tensor([[[0, 0], [1, 1]]])
    hard = torch.ones(1, 2, 2)
    # centres 1 and 4 -> reconstruction 1, 1, 4, 4 -> mean squared error (1 + 1) / 4
    assert float(homogeneity_loss(hard, idx, 2, f)) == pytest.approx(0.5)
    # every pixel half on each seed: both centres 2.5 -> errors 6.25, 0.25, 2.25, 2.25
    idx2 = torch.stack([torch.zeros(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long)])
    half = torch.full((2, 2, 2), 0.5)
    assert float(homogeneity_loss(half, idx2, 2, f)) == pytest.approx(11.0 / 4)
    # sharper, correct assignments lower the loss; gradients are exact
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    feats = torch.randn(3, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda lg: homogeneity_loss(torch.softmax(lg, 0), idx2, 2, feats), (logits,), eps=1e-6, atol=1e-6
    )


def test_losses_gradcheck_through_local_assignment():
    """Local distances, kernel and the regulariser are exactly differentiable (float64 gradcheck)."""
    torch.manual_seed(3)
    grid = seed_grid(6, 7, 4)

    def kernel_of(z, seeds, radius):
        d, idx, valid = local_candidates(z, seeds, grid, radius)
        return torch.where(valid, student_t_kernel(torch.where(valid, d, torch.zeros_like(d))), torch.zeros_like(d)), idx

    w = torch.rand(9, 6, 7, dtype=torch.float64)

    def f(z, seeds):
        k, _ = kernel_of(z, seeds, 1)
        return (k * w).sum()

    def g(z, seeds):
        k, _ = kernel_of(z, seeds, 2)
        return range_regulariser(k, inner_window_mask(2)[:, None, None].expand_as(k))

    z = torch.randn(1, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    seeds = torch.randn(grid.n_seeds, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (z, seeds), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(g, (z, seeds), eps=1e-6, atol=1e-5)

    # the clustering loss treats the DEC target as a constant (Xie et al.): its gradient
    # equals that of KL(Q_fixed || P~) with Q computed beforehand
    k, idx = kernel_of(z, seeds, 1)
    valid = k > 0
    loss = range_limited_clustering_loss(k, idx, valid, grid.n_seeds)
    gz, gs = torch.autograd.grad(loss, (z, seeds))
    with torch.no_grad():
        q = dec_target(k / k.sum(0), idx, grid.n_seeds)

    def kl_fixed(z, seeds):
        kk, _ = kernel_of(z, seeds, 1)
        p = kk / kk.sum(0)
        return torch.where(q > 0, -q * torch.log(p.clamp_min(1e-300)), torch.zeros_like(q)).sum(0).mean()

    assert torch.autograd.gradcheck(kl_fixed, (z, seeds), eps=1e-6, atol=1e-5)
    hz, hs = torch.autograd.grad(kl_fixed(z, seeds), (z, seeds))
    torch.testing.assert_close(gz, hz)
    torch.testing.assert_close(gs, hs)


# ----------------------------------------------------------------------------- GRM
def test_gal_backward_scales_channels_and_memory():
    gal = GAL(3, momentum=0.5)
    assert torch.equal(gal.memory, torch.ones(3))
    g = torch.tensor([1.0, 3.0, 0.0], dtype=torch.float64)
    scale = gal.scale(g)
    torch.testing.assert_close(scale, torch.tensor([0.5, 0.75, 0.0], dtype=torch.float64))  # g / (g + m)
    z = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    out = gal(z, g)
    torch.testing.assert_close(out, z)  # identity forward
    (out * w).sum().backward()
    torch.testing.assert_close(z.grad, w * scale.view(1, 3, 1, 1))
    gal.update_memory(g)
    torch.testing.assert_close(gal.memory, torch.tensor([1.0, 2.0, 0.5]))
    assert "memory" in gal.state_dict()
    released = GAL(3, mode="released")
    torch.testing.assert_close(released.scale(g), torch.tensor([0.5, 0.25, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        GAL(3, mode="nope")


def test_gal_with_unit_scale_passes_gradcheck():
    z = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    ones = torch.ones(2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: GradientAdaptiveFunction.apply(t, ones) ** 2, (z,))


def test_gbl_scale_and_backward():
    b = torch.tensor([[0.0, 0.7, 0.8, 1.0]])
    torch.testing.assert_close(gbl_scale(b, 0.7), torch.tensor([[1.0, 1.0, -0.8, -1.0]]))
    x = torch.randn(1, 5, 1, 4, dtype=torch.float64, requires_grad=True)
    out = GBL(0.7)(x, b.double())
    torch.testing.assert_close(out, x)
    w = torch.randn(1, 5, 1, 4, dtype=torch.float64)
    (out * w).sum().backward()
    expected = w.clone()
    expected[:, 3:] *= torch.tensor([1.0, 1.0, -0.8, -1.0], dtype=torch.float64)
    torch.testing.assert_close(x.grad, expected)  # colour channels untouched, spatial flipped on edges
    # no contour pixel -> exact identity, gradcheck passes
    y = torch.randn(1, 5, 2, 2, dtype=torch.float64, requires_grad=True)
    psi = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: GradientBidirectionFunction.apply(t, psi, (3, 4)).sin(), (y,))


def test_gbl_equals_eq19_gradient():
    """GBL gradient of the plain MSE equals the gradient of the paper's Eq. 19 loss."""
    from clusterseg.nn.losses import reconstruction_loss

    torch.manual_seed(4)
    b = torch.rand(3, 4, dtype=torch.float64)
    target = torch.randn(1, 5, 3, 4, dtype=torch.float64)
    xr = torch.randn(1, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    reconstruction_loss(GBL(0.5)(xr, b), target).backward()
    g1 = xr.grad.clone()
    xr.grad = None
    psi = gbl_scale(b, 0.5)
    diff2 = (xr - target) ** 2
    eq19 = diff2[:, :3].mean() + (diff2[:, 3:] * psi).mean()
    eq19.backward()
    torch.testing.assert_close(g1, xr.grad)


# ----------------------------------------------------------------------------- superpixels API
def _check_labels(labels, shape):
    assert labels.shape == shape and labels.dtype == np.int32
    n = int(labels.max()) + 1
    assert labels.min() == 0 and len(np.unique(labels)) == n
    assert cc_label(labels + 1, connectivity=1, background=0).max() == n  # every label connected


def test_lnsnet_superpixels_basic(net, blocks_image):
    labels = lnsnet_superpixels(blocks_image, 24, weights=net)
    _check_labels(labels, blocks_image.shape[:2])


@pytest.mark.parametrize("k", [20, 60, 150])
def test_count_control(net, k):
    rng = np.random.default_rng(0)
    img = rng.random((96, 128, 3)).astype(np.float32)
    labels = lnsnet_superpixels(img, k, weights=net)
    _check_labels(labels, img.shape[:2])
    n = labels.max() + 1
    assert 0.85 * k <= n <= 1.15 * k, n


def test_input_variants(net, blocks_image):
    grey = blocks_image[..., 1]
    _check_labels(lnsnet_superpixels(grey, 10, weights=net, channel_axis=None), grey.shape)
    portrait = np.ascontiguousarray(blocks_image.transpose(1, 0, 2))
    _check_labels(lnsnet_superpixels(portrait, 10, weights=net), portrait.shape[:2])
    rgba = np.concatenate([blocks_image, np.zeros_like(blocks_image[..., :1])], -1)
    _check_labels(lnsnet_superpixels(rgba, 10, weights=net), rgba.shape[:2])
    u16 = blocks_image.astype(np.uint16) * 257
    _check_labels(lnsnet_superpixels(u16, 10, weights=net), u16.shape[:2])
    for thin in (blocks_image[:1], blocks_image[:, :1], blocks_image[:1, :1]):  # reflection padding impossible
        _check_labels(lnsnet_superpixels(thin, 1 if thin.size == 3 else 4, weights=net), thin.shape[:2])
    tiny = blocks_image[:3, :4]
    _check_labels(lnsnet_superpixels(tiny, 1, weights=net), (3, 4))
    _check_labels(lnsnet_superpixels(tiny, 12, weights=net), (3, 4))
    glob = lnsnet_superpixels(blocks_image, 12, weights=net, assignment="global")
    _check_labels(glob, blocks_image.shape[:2])
    refined = lnsnet_superpixels(blocks_image, 12, weights=net, refine_steps=2, enforce_connectivity=False)
    raw = lnsnet_superpixels(blocks_image, 12, weights=net, enforce_connectivity=False)
    assert refined.shape == raw.shape and refined.max() < seed_grid(48, 64, 12).n_seeds


def test_bad_input(net, blocks_image, tmp_path):
    with pytest.raises(ValueError):
        lnsnet_superpixels(np.zeros((0, 5, 3)), 4, weights=net)
    nan = blocks_image.astype(float) / 255
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        lnsnet_superpixels(nan, 4, weights=net)
    with pytest.raises(ValueError):
        lnsnet_superpixels(blocks_image, 0, weights=net)
    with pytest.raises(ValueError):
        lnsnet_superpixels(blocks_image, 10**9, weights=net)
    with pytest.raises(ValueError, match="assignment"):
        lnsnet_superpixels(blocks_image, 4, weights=net, assignment="fast")
    with pytest.raises(ValueError):
        lnsnet_superpixels(blocks_image, 4, weights=net, adapt_steps=-1)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="refine_steps"):
            lnsnet_superpixels(blocks_image, 4, weights=net, refine_steps=bad)
    for bad in (-0.1, float("nan"), "high"):
        with pytest.raises(ValueError, match="spatial_weight"):
            lnsnet_superpixels(blocks_image, 4, weights=net, spatial_weight=bad)
        with pytest.raises(ValueError, match="colour_weight"):
            lnsnet_superpixels(blocks_image, 4, weights=net, colour_weight=bad)
    with pytest.raises(FileNotFoundError):
        lnsnet_superpixels(blocks_image, 4, weights=tmp_path / "missing.pt")


def test_weights_file_round_trip(net, blocks_image, tmp_path):
    from clusterseg.models.lnsnet import load_lnsnet, save_lnsnet_weights

    path = save_lnsnet_weights(net, tmp_path / "w.pt")
    assert path.stat().st_size < 200_000
    back = load_lnsnet(path)
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    a = lnsnet_superpixels(blocks_image, 16, weights=net)
    b = lnsnet_superpixels(blocks_image, 16, weights=path)
    assert np.array_equal(a, b)
    from clusterseg.io.checkpoints import CheckpointError

    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        lnsnet_superpixels(blocks_image, 4, weights=tmp_path / "junk.pt")


def test_adapt_steps_leaves_model_untouched(net, blocks_image):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    labels = lnsnet_superpixels(blocks_image, 12, weights=net, adapt_steps=2)
    _check_labels(labels, blocks_image.shape[:2])
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_shipped_weights_load_and_segment(blocks_image):
    from clusterseg.superpixels.lnsnet import default_weights_path, load_model

    path = default_weights_path()
    if not path.is_file():
        pytest.skip("shipped LNSNet weights not installed")
    assert path.stat().st_size < 200_000
    model = load_model()
    assert isinstance(model, LNSNet) and not model.training
    labels = lnsnet_superpixels(blocks_image, 16)
    _check_labels(labels, blocks_image.shape[:2])
    # superpixels mostly respect the four flat quadrants (a random partition into 16
    # regions scores about 0.76; these cells are huge relative to the image, and the
    # embedding mixes colours within about 3 px of an edge, so a few pixels leak)
    from clusterseg.metrics import achievable_segmentation_accuracy
    from conftest import make_blocks_image

    _, truth = make_blocks_image()
    assert achievable_segmentation_accuracy(labels, truth) > 0.9
    assert achievable_segmentation_accuracy(lnsnet_superpixels(blocks_image, 64), truth) > 0.98


def test_lnsnet_function_and_dispatcher_share_their_defaults():
    """lnsnet_superpixels(img) and superpixels(img, method="lnsnet") once merged fragments at 0.3 vs 0.25."""
    from skimage.data import astronaut

    import clusterseg
    from clusterseg.superpixels.lnsnet import lnsnet_superpixels

    image = astronaut()[::8, ::8]
    assert np.array_equal(lnsnet_superpixels(image, 60), clusterseg.superpixels(image, 60, method="lnsnet"))


def test_lnsnet_precision_auto_is_the_default_and_bf16_stays_close_to_float32():
    from skimage.data import astronaut

    from clusterseg.metrics import achievable_segmentation_accuracy
    from clusterseg.nn.precision import resolve_precision
    from clusterseg.superpixels.lnsnet import lnsnet_superpixels

    image = astronaut()[::4, ::4]
    default = lnsnet_superpixels(image, 100)
    assert np.array_equal(default, lnsnet_superpixels(image, 100, precision=resolve_precision("auto")))
    full = lnsnet_superpixels(image, 100, precision="float32")
    half = lnsnet_superpixels(image, 100, precision="bfloat16")
    assert half.shape == full.shape and abs(int(half.max()) - int(full.max())) <= 10
    # Each labelling explains the other almost exactly: the boundaries moved, not the segments.
    assert achievable_segmentation_accuracy(half, full) > 0.97
    assert achievable_segmentation_accuracy(full, half) > 0.97
    with pytest.raises(ValueError, match="precision"):
        lnsnet_superpixels(image, 100, precision="half")


def test_lnsnet_auto_precision_falls_back_to_float32_without_native_bf16(monkeypatch):
    from skimage.data import astronaut

    import clusterseg.nn.precision as precision
    from clusterseg.superpixels.lnsnet import lnsnet_superpixels

    image = astronaut()[::4, ::4]
    full = lnsnet_superpixels(image, 80, precision="float32")
    monkeypatch.setattr(precision, "_cpu_bf16", lambda: False)
    assert precision.resolve_precision("auto") == "float32"
    assert np.array_equal(lnsnet_superpixels(image, 80), full)


def test_bf16_embedder_stays_close_to_float32(net):
    x = torch.randn(1, 5, 40, 52)
    with torch.no_grad():
        full = net.fem.forward_inference(x)
        half = net.fem.forward_inference(x, torch.bfloat16)
    assert half.dtype == torch.float32 and half.shape == full.shape
    # bfloat16 keeps 8 significant bits: about 0.4 % per value, averaging out over the layers
    assert float((half - full).abs().mean()) < 0.01 * float(full.abs().mean()) + 1e-3
    assert float((half - full).abs().max()) < 0.1 * float(full.abs().max())


def test_network_trainer_and_shipped_weights_agree_on_seed_window():
    from clusterseg.models import load_model
    from clusterseg.training.lifelong import LNSNetTrainingConfig

    trainer_default = LNSNetTrainingConfig().seed_window
    assert LNSNet().seed_window == trainer_default == load_model("lnsnet-bsds500").net.seed_window == 1.0


def test_lnsnet_config_is_the_one_source_of_inference_options(blocks_image):
    from clusterseg.models.lnsnet import LNSNetConfig

    cfg = LNSNetConfig(refine_steps=0, enforce_connectivity=False)
    by_config = lnsnet_superpixels(blocks_image, 12, config=cfg)
    by_kwargs = lnsnet_superpixels(blocks_image, 12, refine_steps=0, enforce_connectivity=False)
    assert np.array_equal(by_config, by_kwargs)
    assert not np.array_equal(by_config, lnsnet_superpixels(blocks_image, 12, enforce_connectivity=False))
    with pytest.raises(TypeError, match="unknown LNSNet options: \\['refine_step'\\]"):
        lnsnet_superpixels(blocks_image, 12, refine_step=3)
    with pytest.raises(ValueError, match="assignment"):
        LNSNetConfig(assignment="nearest")


def test_superpixels_keeps_the_min_size_of_a_config(blocks_image, monkeypatch):
    import importlib

    lnsnet_module = importlib.import_module("clusterseg.superpixels.lnsnet")
    from clusterseg.models.lnsnet import LNSNetConfig
    from clusterseg.superpixels import superpixels

    seen = []
    real = lnsnet_module._run
    monkeypatch.setattr(lnsnet_module, "_run", lambda model, rgb, k, device, cfg: seen.append(cfg) or real(
        model, rgb, k, device, cfg))
    superpixels(blocks_image, 12, method="lnsnet", config=LNSNetConfig(min_size_factor=0.05))
    superpixels(blocks_image, 12, method="lnsnet", min_size_factor=0.5)
    superpixels(blocks_image, 12, method="lnsnet")
    assert [c.min_size_factor for c in seen] == [0.05, 0.5, 0.25]


def test_nearest_candidate_index_matches_argmin():
    from clusterseg.nn.lnsnet_assignment import _nearest

    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        d = torch.rand(5, 9, 7, dtype=dtype) * 100
        d[0, :, 0] = float("inf")  # all candidates invalid: the first one
        d[1, 3, 1] = float("inf")
        expected = d.float().argmin(1) if dtype == torch.bfloat16 else d.argmin(1)
        expected[0, 0] = 0
        got = _nearest(d.clone(), 1)
        assert got.dtype == torch.int32
        assert torch.equal(got.long(), expected)


def test_nearest_candidate_ties_and_rounding():
    from clusterseg.nn.lnsnet_assignment import _nearest

    d = torch.tensor([[3.0, 1.0, 1.0, 2.0], [-1e-7, 0.0, 5.0, 5.0], [4.0, 4.0, 4.0, float("inf")]])
    assert _nearest(d.clone(), 1).tolist() == [1, 0, 0]  # ties to the lower index; rounding negatives count as 0
    wide = torch.rand(2, 300, 3)  # more candidates than spare mantissa bits: exact minimum
    assert torch.equal(_nearest(wide.clone(), 1).long(), wide.argmin(1))
