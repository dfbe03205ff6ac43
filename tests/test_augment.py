"""Imaging-modality augmentation (clusterseg.augment) and its use in instance-training crops."""

import numpy as np
import pytest
from skimage.draw import disk

from clusterseg.augment import ModalityAugmentation, augment_modality, colour_matrix, render_stain, resize_pair
from clusterseg.training.instances import InstanceCrops, InstanceTrainingConfig, prepare_samples


def _nuclei(h=64, w=80, grey=True):
    image = np.zeros((h, w), np.float32)
    labels = np.zeros((h, w), np.int32)
    for n, (r, c) in enumerate([(16, 20), (40, 50), (20, 62)], start=1):
        rr, cc = disk((r, c), 8, shape=(h, w))
        image[rr, cc] = 1.0
        labels[rr, cc] = n
    rgb = np.repeat(image[None], 3, axis=0)
    if not grey:
        rgb[1] *= 0.5
    return rgb, labels


def test_colour_matrix_identity_and_grey_axis():
    assert np.allclose(colour_matrix(0.0, 1.0), np.eye(3))
    for hue, sat in [(0.4, 1.0), (-1.0, 0.3), (2.0, 1.7)]:
        m = colour_matrix(hue, sat)
        assert np.allclose(m @ np.ones(3), np.ones(3))  # grey stays grey
    # A hue rotation keeps the distance from grey; saturation 0 collapses onto grey.
    v = np.array([1.0, 0.2, 0.1])
    rotated = colour_matrix(1.0, 1.0) @ v
    assert np.isclose(np.linalg.norm(rotated - rotated.mean()), np.linalg.norm(v - v.mean()))
    assert np.ptp(colour_matrix(0.0, 0.0) @ v) < 1e-12


def test_render_stain_makes_bright_objects_dark_and_coloured():
    rgb, labels = _nuclei()
    out = render_stain(rgb[0], np.random.default_rng(0))
    assert out.shape == rgb.shape and out.dtype == np.float32
    assert 0 < out.min() and out.max() <= 1
    assert out[:, labels > 0].mean() < out[:, labels == 0].mean() - 0.3  # bright-field: nuclei absorb
    assert np.ptp(out[:, labels > 0].mean(axis=1)) > 0.05  # no longer grey


def test_augment_modality_is_a_pure_function_of_the_generator():
    rgb, _ = _nuclei()
    a = augment_modality(rgb, np.random.default_rng([3, 1]))
    b = augment_modality(rgb, np.random.default_rng([3, 1]))
    c = augment_modality(rgb, np.random.default_rng([3, 2]))
    assert a.shape == rgb.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.isfinite(a).all()


def test_augment_modality_covers_inversion_stain_and_grey():
    rgb, labels = _nuclei()
    inverted = stained = greyed = 0
    for seed in range(60):
        out = augment_modality(rgb, np.random.default_rng(seed))
        inside, outside = out[:, labels > 0].mean(), out[:, labels == 0].mean()
        inverted += inside < outside
        stained += np.ptp(out[:, labels == 0].mean(axis=1)) > 0.02
        greyed += np.ptp(out, axis=0).max() < 1e-5
    assert 5 <= inverted <= 40  # dark objects on bright background some of the time
    assert stained >= 5 and greyed >= 1


def test_augment_modality_without_any_draw_only_renormalises():
    rgb, _ = _nuclei()
    none = ModalityAugmentation(p_stain=0, p_invert=0, p_colour=0, p_grey=0, gamma=(1, 1), contrast=(1, 1),
                                brightness=0, p_blur=0, p_noise=0, percentile_low=(0, 0),
                                percentile_high=(100, 100))
    assert np.allclose(augment_modality(rgb, np.random.default_rng(0), none), rgb, atol=1e-6)


def test_augment_modality_rejects_bad_input_and_config():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        augment_modality(np.zeros((8, 8)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="p_invert"):
        ModalityAugmentation(p_invert=1.5)


def test_resize_pair_keeps_label_ids_and_scales_objects():
    rgb, labels = _nuclei()
    x, y = resize_pair(rgb[:, :64, :64], labels[:64, :64], 128)
    assert x.shape == (3, 128, 128) and y.shape == (128, 128) and y.dtype == labels.dtype
    assert set(np.unique(y)) <= set(np.unique(labels))
    for n in np.unique(labels[:64, :64])[1:]:
        ratio = (y == n).sum() / (labels[:64, :64] == n).sum()
        assert 3.5 < ratio < 4.5


def test_training_crops_zoom_and_stay_deterministic():
    rgb, labels = _nuclei(96, 96)
    samples = prepare_samples([("a", rgb.transpose(1, 2, 0), labels)])
    cfg = InstanceTrainingConfig(crop=48, p_scale=1.0, scale_range=(0.5, 2.0), seed=4)
    crops = InstanceCrops(samples, cfg)
    x1, y1 = crops[0]
    x2, y2 = InstanceCrops(samples, cfg)[0]
    assert x1.shape == (3, 48, 48) and y1.shape == (48, 48)
    assert np.array_equal(x1.numpy(), x2.numpy()) and np.array_equal(y1.numpy(), y2.numpy())
    # Zooms are drawn from the range; with p_scale 0 there is none.
    rng = np.random.default_rng(0)
    zooms = [crops._zoom(rng) for _ in range(50)]
    assert min(zooms) >= 0.5 and max(zooms) <= 2.0 and np.ptp(zooms) > 0.5
    still = InstanceCrops(samples, InstanceTrainingConfig(crop=48, p_scale=0.0))
    assert all(still._zoom(rng) == 1.0 for _ in range(10))


def test_training_config_rejects_bad_zoom_and_precision():
    with pytest.raises(ValueError, match="scale_range"):
        InstanceTrainingConfig(scale_range=(1.5, 2.0))
    with pytest.raises(ValueError, match="p_scale"):
        InstanceTrainingConfig(p_scale=2.0)
    with pytest.raises(ValueError, match="precision"):
        InstanceTrainingConfig(precision="float16")
