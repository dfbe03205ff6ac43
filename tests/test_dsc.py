"""Deep Superpixel Cut and the segment()/segment_hierarchy() API on small synthetic images."""

import numpy as np
import pytest
import torch

from clusterseg.nn.autoencoder import SuperAE
from clusterseg.unsupervised import deep_superpixel_cut, segment, segment_hierarchy
from clusterseg.unsupervised._common import merge_small_fragments
from conftest import recovered

FAST = dict(n_superpixels=24, ae_iter=30, max_iter=24, min_iter=4, width=8, n_features=8, max_side=None)


def two_regions(h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), int)
    truth[:, w // 2 + 3:] = 1
    truth[h // 2:, : w // 4] = 1  # an L-shaped boundary, not a straight split
    colours = np.array([[0.85, 0.2, 0.15], [0.1, 0.3, 0.9]])
    img = colours[truth] + rng.normal(0, 0.03, (h, w, 3))
    return np.clip(img, 0, 1).astype(np.float32), truth


def test_dsc_recovers_two_regions_and_shapes():
    img, truth = two_regions()
    res = deep_superpixel_cut(img, n_segments=2, random_state=0, **FAST)
    assert res.labels.shape == truth.shape and res.labels.dtype == np.int32
    assert res.labels.min() == 0 and res.labels.max() <= 1
    assert recovered(res.labels, truth)
    assert 1 <= res.n_iter <= FAST["max_iter"]
    assert res.node_features.shape[0] == res.superpixels.max() + 1


def test_dsc_deterministic_and_restores_global_rng():
    img, _ = two_regions(seed=1)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = deep_superpixel_cut(img, n_segments=3, random_state=5, **FAST).labels
    after = torch.rand(1)
    assert torch.equal(before, after)  # global RNG untouched
    b = deep_superpixel_cut(img, n_segments=3, random_state=5, **FAST).labels
    assert np.array_equal(a, b)


def test_segment_api_label_range_and_hierarchy():
    img, truth = two_regions()
    u8 = (img * 255).astype(np.uint8)
    labels, hier = segment(u8, n_segments=4, method="dsc", return_hierarchy=True, random_state=0, **FAST)
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    n = labels.max() + 1
    assert n <= 4 and np.array_equal(np.unique(labels), np.arange(n))
    assert set(hier) == set(range(1, len(hier) + 1))
    for k, lab in hier.items():
        assert lab.max() + 1 <= k
    assert hier[1].max() == 0


def test_segment_hierarchy_two_level_recovers_regions():
    img, truth = two_regions(seed=2)
    levels = segment_hierarchy(img, n_segments=[2, 3], max_segments=4, method="dsc", random_state=0, **FAST)
    assert set(levels) == {2, 3}
    # levels are connected regions: truth has 3 connected parts (class 1 is split in two)
    from skimage.measure import label as cc_label

    parts = cc_label(truth, connectivity=1, background=-1)
    assert parts.max() == 3
    maj = []
    for p in (1, 2, 3):
        vals, cnt = np.unique(levels[3][parts == p], return_counts=True)
        assert cnt.max() / cnt.sum() > 0.85  # superpixel boundaries may be 1 px off
        maj.append(vals[cnt.argmax()])
    assert len(set(maj)) == 3
    assert levels[2].max() == 1


def test_dsc_channel_axis_and_greyscale():
    img, truth = two_regions()
    chw = np.moveaxis(img, -1, 0)
    lab = segment(chw, n_segments=2, channel_axis=0, **FAST)
    assert lab.shape == truth.shape
    grey = segment(img.mean(-1), n_segments=2, channel_axis=None, **FAST)
    assert grey.shape == truth.shape


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n_segments=1), ValueError, "n_segments"),
        (dict(n_segments=2.5), TypeError, "n_segments"),
        (dict(method="kmeans"), ValueError, "method"),
        (dict(affinity="cosine"), ValueError, "affinity"),
    ],
)
def test_segment_bad_arguments(kwargs, exc, match):
    img, _ = two_regions()
    with pytest.raises(exc, match=match):
        segment(img, **({"n_segments": 2} | kwargs))


def test_segment_bad_images():
    img, _ = two_regions()
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="(?i)nan"):
        segment(bad, 2)
    with pytest.raises(ValueError):
        segment(np.zeros((0, 4, 3), np.float32), 2)
    with pytest.raises(TypeError):
        segment([[0, 1], [1, 0]], 2)
    with pytest.raises(ValueError):
        segment(np.zeros((4, 4, 5), np.float32), 2)


def test_merge_small_fragments():
    lab = np.zeros((6, 6), int)
    lab[:, 3:] = 1
    lab[1, 1] = 2  # isolated single pixel inside class 0
    lab[4, 4] = 0  # single pixel of class 0 inside class 1
    out = merge_small_fragments(lab, min_size=2)
    assert out[1, 1] == out[0, 0] and out[4, 4] == out[0, 5]
    assert out.max() == 1 and out.dtype == np.int32
    # fragments at or above min_size survive
    assert merge_small_fragments(lab, min_size=1).max() == 2


def test_superae_shapes():
    ae = SuperAE(3, n_features=5, width=4)
    f, r = ae(torch.zeros(2, 3, 9, 13))
    assert f.shape == (2, 5, 9, 13) and r.shape == (2, 3, 9, 13)


def test_dsc_config_is_the_one_source_of_options():
    from clusterseg.unsupervised import DSCConfig

    img, _ = two_regions(seed=3)
    cfg = DSCConfig(**FAST)
    by_config = deep_superpixel_cut(img, n_segments=2, config=cfg).labels
    by_kwargs = deep_superpixel_cut(img, n_segments=2, **FAST).labels
    assert np.array_equal(by_config, by_kwargs)
    assert DSCConfig.with_options(cfg, beta=0.0).beta == 0.0 and cfg.beta == DSCConfig().beta
    with pytest.raises(TypeError, match="unknown DSC options: \\['betta'\\]"):
        deep_superpixel_cut(img, n_segments=2, betta=1.0)
    with pytest.raises(ValueError, match="max_iter"):
        DSCConfig(max_iter=0)
