"""The compiled CPU kernels of LNSNet inference against plain references and the PyTorch path."""

import numpy as np
import pytest
import torch

from clusterseg.nn import lnsnet_kernels
from clusterseg.nn.lnsnet_assignment import cluster_pixels, window_seeds
from clusterseg.nn.seed_grid import seed_grid

pytestmark = pytest.mark.skipif(not lnsnet_kernels.available(), reason="numba is not installed")


def _reference_local_kmeans(f, seeds, fallback, grid, steps):
    """Plain local k-means in float64: 3x3 candidate cells, ties to the lower candidate."""
    h, w, nf = f.shape
    c = seeds.shape[1]
    cell_r = np.arange(h) * grid.rows // h
    cell_c = np.arange(w) * grid.cols // w

    def assign(centres, n_dist):
        labels = np.empty((h, w), np.int64)
        for r in range(h):
            for col in range(w):
                best, arg = np.inf, -1
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        rr, cc = cell_r[r] + dr, cell_c[col] + dc
                        if 0 <= rr < grid.rows and 0 <= cc < grid.cols:
                            k = rr * grid.cols + cc
                            d = ((f[r, col, :n_dist] - centres[k, :n_dist]) ** 2).sum()
                            if d < best:
                                best, arg = d, k
                labels[r, col] = arg
        return labels

    padded = np.zeros((grid.n_seeds, nf))
    padded[:, :c] = seeds
    labels = assign(padded, c)
    centres = fallback.astype(np.float64)
    for _ in range(steps):
        flat = labels.ravel()
        counts = np.bincount(flat, minlength=grid.n_seeds)
        sums = np.stack([np.bincount(flat, weights=f[..., j].ravel(), minlength=grid.n_seeds) for j in range(nf)], 1)
        centres = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        labels = assign(centres, nf)
    return labels


def test_local_kmeans_matches_plain_reference():
    rng = np.random.default_rng(3)
    h, w, nf, c = 14, 17, 5, 3
    grid = seed_grid(h, w, 6)
    f = rng.normal(size=(h, w, nf)).astype(np.float32)
    seeds = rng.normal(size=(grid.n_seeds, c)).astype(np.float32)
    fallback = rng.normal(size=(grid.n_seeds, nf)).astype(np.float32)
    features = torch.from_numpy(f).permute(2, 0, 1)[None]
    for steps in (0, 1, 4):
        got = lnsnet_kernels.local_kmeans(features, torch.from_numpy(seeds), torch.from_numpy(fallback), grid, steps)
        want = _reference_local_kmeans(f, seeds, fallback, grid, steps)
        assert got.dtype == torch.int64 and got.shape == (h, w)
        np.testing.assert_array_equal(got.numpy(), want)


def _random_embedding(seed: int, channels: int, h: int, w: int, n_segments: int):
    """A channels-last embedding, a Lab-like colour image, its seed grid and random seed features."""
    torch.manual_seed(seed)
    z = torch.rand(1, channels, h, w).contiguous(memory_format=torch.channels_last)
    grid = seed_grid(h, w, n_segments)
    return z, torch.rand(1, 3, h, w) * 50, grid, torch.rand(grid.n_seeds, channels)


def test_compiled_and_torch_paths_agree():
    z, colour, grid, seeds = _random_embedding(0, 8, 48, 64, 24)
    kwargs = dict(refine_steps=3, spatial_weight=1.0, colour=colour, colour_weight=0.01)
    a = cluster_pixels(z, seeds, grid, backend="compiled", **kwargs)
    b = cluster_pixels(z, seeds, grid, backend="torch", **kwargs)
    assert a.shape == b.shape == (48, 64) and a.dtype == b.dtype == torch.long
    assert (a == b).float().mean() > 0.99  # only float32 near-ties may differ
    assert int(a.min()) >= 0 and int(a.max()) < grid.n_seeds
    # deterministic, and the same whatever torch's thread count
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(a, cluster_pixels(z, seeds, grid, backend="compiled", **kwargs))
    finally:
        torch.set_num_threads(threads)


def test_compiled_path_on_separated_clusters_is_exact():
    # four flat quadrants, seeds at their values: every pixel has one clearly nearest seed
    z = torch.zeros(1, 2, 20, 20)
    z[0, 0, :10, 10:] = 5.0
    z[0, 1, 10:, :10] = 5.0
    z[0, :, 10:, 10:] = 5.0
    grid = seed_grid(20, 20, 4)
    seeds = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    for backend in ("compiled", "torch"):
        labels = cluster_pixels(z, seeds, grid, refine_steps=2, backend=backend)
        assert (labels[:10, :10] == 0).all() and (labels[:10, 10:] == 1).all()
        assert (labels[10:, :10] == 2).all() and (labels[10:, 10:] == 3).all()


def test_bad_backend_is_rejected():
    z = torch.rand(1, 2, 8, 8)
    grid = seed_grid(8, 8, 4)
    with pytest.raises(ValueError, match="backend"):
        cluster_pixels(z, torch.rand(grid.n_seeds, 2), grid, backend="fast")


@pytest.mark.parametrize("shape", [(40, 57), (5, 7), (1, 9)])
def test_window_means_equal_the_differentiable_window_seeds(shape):
    h, w = shape
    torch.manual_seed(1)
    z = torch.randn(1, 6, h, w).contiguous(memory_format=torch.channels_last)
    rows, cols = torch.rand(30) * (h - 1), torch.rand(30) * (w - 1)
    for half_h, half_w in [(4.3, 6.1), (0.5, 0.5), (0.2, 3.0)]:
        want = window_seeds(z.clone().requires_grad_(True), rows, cols, half_h, half_w).detach()
        got = lnsnet_kernels.window_means(z, rows, cols, half_h, half_w)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        # window_seeds without gradients dispatches to the kernel
        torch.testing.assert_close(window_seeds(z, rows, cols, half_h, half_w), got)


def test_window_means_known_values_and_outside_box():
    z = torch.arange(12.0).reshape(1, 1, 3, 4)
    # the box of pixel (1, 1) and half of each neighbour to the left and right
    got = lnsnet_kernels.window_means(z, torch.tensor([1.0, -9.0]), torch.tensor([1.0, 2.0]), 0.5, 1.0)
    assert got[0, 0].item() == pytest.approx((0.5 * 4 + 5 + 0.5 * 6) / 2)
    assert got[1, 0].item() == 2.0  # a box wholly outside the image: its nearest pixel


@pytest.mark.parametrize("shape,grid_shape", [((40, 57), (6, 8)), ((7, 5), (3, 5)), ((9, 9), (1, 1))])
def test_adaptive_means_equal_adaptive_avg_pool2d(shape, grid_shape):
    z = torch.randn(1, 4, *shape).contiguous(memory_format=torch.channels_last)
    got = lnsnet_kernels.adaptive_means(z, *grid_shape)
    torch.testing.assert_close(got, torch.nn.functional.adaptive_avg_pool2d(z, grid_shape), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_instance_norm_relu_equals_the_module(offset):
    torch.manual_seed(2)
    z = (torch.randn(1, 5, 23, 31) * 0.5 + offset).contiguous(memory_format=torch.channels_last)
    norm = torch.nn.InstanceNorm2d(5, affine=True)
    torch.nn.init.uniform_(norm.weight, 0.5, 2.0)
    torch.nn.init.uniform_(norm.bias, -0.5, 0.5)
    want = torch.relu(norm.double()(z.double())).float()  # float64 statistics as the reference
    got = lnsnet_kernels.instance_norm_relu_(z.clone(), norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(got, want.detach(), atol=5e-5, rtol=1e-5)
    assert bool((got >= 0).all())


@pytest.mark.parametrize("shape", [(17, 23), (1, 6), (4, 1)])
def test_lab_xy_input_equals_lab_xy_from_lab(shape):
    from clusterseg.features import lab_xy_from_lab, rgb_to_lab

    lab = rgb_to_lab(np.random.default_rng(4).random(shape + (3,)).astype(np.float32))
    got = lnsnet_kernels.lab_xy_input(lab)
    assert got.shape == (1, 5) + shape and got.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(got[0].numpy(), lab_xy_from_lab(lab), atol=1e-6)
    flat = lnsnet_kernels.lab_xy_input(np.full(shape + (3,), 50.0, np.float32))
    assert float(flat[0, :3].abs().max()) == 0.0  # constant colour channels are only centred


def test_absorb_isolated_pixels_matches_the_numpy_rule():
    from clusterseg.models import lnsnet_model

    labels = np.random.default_rng(6).integers(0, 4, (30, 40)).astype(np.int32)
    labels[10, 10], labels[9, 10], labels[11, 10], labels[10, 9], labels[10, 11] = 9, 1, 2, 1, 3
    got = lnsnet_kernels.absorb_isolated_pixels(labels)
    assert got[10, 10] == 1  # two of its neighbours carry 1
    # the NumPy rule of the model, with the compiled kernel switched off
    real = lnsnet_kernels.available
    lnsnet_kernels.available = lambda: False
    try:
        want = lnsnet_model._absorb_isolated_pixels(labels)
    finally:
        lnsnet_kernels.available = real
    np.testing.assert_array_equal(got, want)
    assert got.dtype == labels.dtype and not np.shares_memory(got, labels)


def test_rgb_to_lab_tables_agree_with_skimage():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(7).random((31, 29, 3)).astype(np.float32)
    rgb[0, 0], rgb[0, 1] = 0.0, 1.0  # black and white: the ends of both tables
    got = lnsnet_kernels.rgb_to_lab_tables(rgb)
    assert got.shape == rgb.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, rgb2lab(rgb), atol=5e-4)


def test_local_kmeans_in_bands_equals_the_whole_image():
    z, colour, grid, seeds = _random_embedding(8, 6, 40, 33, 30)
    fallback = torch.rand(grid.n_seeds, 6 + 3 + 2)
    extra = (colour, 0.1, 1.0 / grid.cell_h, 1.0 / grid.cell_w)
    whole = lnsnet_kernels.local_kmeans(z, seeds, fallback, grid, 3, *extra)
    banded = lnsnet_kernels.local_kmeans(z, seeds, fallback, grid, 3, *extra, band_pixels=100)
    assert torch.equal(whole, banded)
    assert lnsnet_kernels._bands(np.array([0, 10, 20, 30]), 10, 100) == [(0, 1), (1, 2), (2, 3)]
