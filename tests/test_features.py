import numpy as np
import pytest
from skimage.color import rgb2lab

from clusterseg.features import lab_xy_features, position_channels, standardize_channels


def test_position_channels_values():
    pos = position_channels((2, 4))
    assert pos.shape == (2, 2, 4)
    np.testing.assert_allclose(pos[0, :, 0], [-0.5, 0.0])
    np.testing.assert_allclose(pos[1, 0], [-0.5, -0.25, 0.0, 0.25])
    # rows constant along columns, cols constant along rows
    assert np.all(pos[0] == pos[0][:, :1]) and np.all(pos[1] == pos[1][:1])


def test_standardize_channels_zero_mean_unit_std_and_constant_channel():
    rng = np.random.default_rng(0)
    f = rng.normal(3.0, 2.0, size=(3, 5, 6)).astype(np.float32)
    f[2] = 7.0
    out = standardize_channels(f.copy())
    np.testing.assert_allclose(out[:2].mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out[:2].std(axis=(1, 2)), 1, atol=1e-5)
    assert np.all(out[2] == 0)


def test_lab_xy_features_matches_manual(blocks_image):
    f = lab_xy_features(blocks_image)
    assert f.shape == (5,) + blocks_image.shape[:2] and f.dtype == np.float32
    lab = rgb2lab(blocks_image.astype(np.float64) / 255)
    expected_l = (lab[..., 0] - lab[..., 0].mean()) / lab[..., 0].std()
    np.testing.assert_allclose(f[0], expected_l, atol=1e-4)
    raw = lab_xy_features(blocks_image, standardize=False)
    np.testing.assert_allclose(raw[1], lab[..., 1] / 256, atol=1e-5)
    np.testing.assert_allclose(raw[3:], position_channels(blocks_image.shape[:2]))


def test_lab_xy_features_grey_rgba_and_dtypes(blocks_image):
    grey = blocks_image[..., 0]
    fg = lab_xy_features(grey, channel_axis=None)
    # grey has no chroma: a and b are (numerically) constant -> zero after z-scoring
    assert np.abs(fg[1]).max() < 1e-2 and np.abs(fg[2]).max() < 1e-2
    rgba = np.concatenate([blocks_image, np.full(blocks_image.shape[:2] + (1,), 255, np.uint8)], -1)
    np.testing.assert_allclose(lab_xy_features(rgba), lab_xy_features(blocks_image), atol=1e-5)
    as16 = blocks_image.astype(np.uint16) * 257
    np.testing.assert_allclose(lab_xy_features(as16), lab_xy_features(blocks_image), atol=1e-3)


def test_lab_xy_features_bad_input():
    with pytest.raises(ValueError):
        lab_xy_features(np.zeros((0, 4, 3)))
    bad = np.zeros((4, 4, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        lab_xy_features(bad)


def test_normalize_percentile_sparse_objects_and_clip():
    from clusterseg.features import normalize_percentile

    # 3 bright pixels on a flat background: both percentiles are 0, so min/max is used
    image = np.zeros((40, 50))
    image[0, :3] = 200.0
    out = normalize_percentile(image)
    assert float(out.max()) == 1.0 and float(out.min()) == 0.0
    ramp = np.arange(1001.0)
    clipped = normalize_percentile(ramp, 10, 90, clip=True)
    assert float(clipped[0]) == 0.0 and float(clipped[-1]) == 1.0
    assert float(normalize_percentile(ramp, 10, 90)[-1]) == pytest.approx(1000 / 800 - 0.125)
    assert not normalize_percentile(np.full((3, 3), 7.0)).any()  # constant image -> 0


def test_rgb_to_lab_matches_skimage():
    from skimage.color import rgb2lab

    from clusterseg.features import rgb_to_lab

    rng = np.random.default_rng(0)
    rgb = rng.random((17, 23, 3))
    rgb[0, :6] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.002, 0.01, 0.03]]  # dark: linear branches
    lab = rgb_to_lab(rgb)
    assert lab.dtype == np.float32 and lab.shape == rgb.shape
    np.testing.assert_allclose(lab, rgb2lab(rgb), atol=2e-3)
    with pytest.raises(ValueError, match="shape"):
        rgb_to_lab(rgb[..., :2])
