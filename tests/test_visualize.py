"""Tests for clusterseg.visualize."""

import numpy as np
import pytest

from clusterseg.visualize import (
    label2rgb_mean,
    label2rgb_random,
    make_strip,
    overlay_boundaries,
    side_by_side,
)

LABELS = np.array(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 3, 3],
        [2, 2, 3, 3],
    ],
    dtype=np.int32,
)


def test_label2rgb_random_distinct_and_consistent():
    labels = np.arange(500).reshape(20, 25) % 300
    rgb = label2rgb_random(labels)
    assert rgb.shape == (20, 25, 3) and rgb.dtype == np.uint8
    codes = rgb[..., 0].astype(int) << 16 | rgb[..., 1].astype(int) << 8 | rgb[..., 2]
    # one colour per label, and distinct labels get distinct colours
    for value in np.unique(labels):
        assert np.unique(codes[labels == value]).size == 1
    assert np.unique(codes).size == 300


def test_label2rgb_random_deterministic_and_seeded():
    a = label2rgb_random(LABELS, seed=3)
    np.testing.assert_array_equal(a, label2rgb_random(LABELS, seed=3))
    assert not np.array_equal(a, label2rgb_random(LABELS, seed=4))


def test_label2rgb_random_colour_depends_on_value_only():
    # frames of a video: class 3 keeps its colour when classes 1 and 2 are absent
    full = label2rgb_random(LABELS)
    partial = label2rgb_random(np.where(LABELS == 3, 3, 0))
    np.testing.assert_array_equal(partial[LABELS == 3], full[LABELS == 3])
    np.testing.assert_array_equal(partial[LABELS == 0], full[LABELS == 0])


def test_label2rgb_random_negative_labels_and_volumes():
    rgb = label2rgb_random(LABELS - 1)
    codes = rgb.reshape(-1, 3)
    assert np.unique(codes, axis=0).shape[0] == 4
    assert label2rgb_random(np.stack([LABELS, LABELS])).shape == (2, 4, 4, 3)


def test_label2rgb_random_rejects_float():
    with pytest.raises(ValueError, match="integer dtype"):
        label2rgb_random(LABELS.astype(float))


def test_label2rgb_mean_hand_computed():
    image = np.zeros((4, 4), dtype=np.uint8)
    image[0, 0] = 255  # region 0 has one white pixel of 4 -> mean 63.75
    image[2:, 2:] = 100
    out = label2rgb_mean(LABELS, image)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:2, :2], 64)
    np.testing.assert_array_equal(out[:2, 2:], 0)
    np.testing.assert_array_equal(out[2:, 2:], 100)


def test_label2rgb_mean_colour_and_channel_axis():
    image = np.zeros((3, 4, 4), dtype=np.uint8)
    image[0] = 200  # red plane
    out = label2rgb_mean(LABELS, image, channel_axis=0)
    np.testing.assert_array_equal(out[..., 0], 200)
    np.testing.assert_array_equal(out[..., 1:], 0)


def test_label2rgb_mean_shape_mismatch():
    with pytest.raises(ValueError, match="do not match"):
        label2rgb_mean(LABELS, np.zeros((5, 4, 3), np.uint8))


def test_overlay_boundaries_thick_marks_both_sides():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    out = overlay_boundaries(image, LABELS)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    yellow = np.all(out == [255, 255, 0], axis=-1)
    # pixels with a 4-neighbour of another label (corners of the image have none)
    expected = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(yellow, expected)
    np.testing.assert_array_equal(out[~yellow], 0)
    labels = np.zeros((6, 6), dtype=np.int32)
    labels[:, 3:] = 1
    out = overlay_boundaries(np.zeros((6, 6)), labels, color=(1, 0, 0))
    red = np.all(out == [255, 0, 0], axis=-1)
    np.testing.assert_array_equal(red.any(axis=0), [False, False, True, True, False, False])
    np.testing.assert_array_equal(out[:, 0], 0)


def test_overlay_boundaries_inner_mode_and_color_scales():
    labels = np.zeros((6, 6), dtype=np.int32)
    labels[:, 3:] = 1
    image = np.full((6, 6, 3), 0.5)
    a = overlay_boundaries(image, labels, color=(0, 0, 255), mode="inner")
    b = overlay_boundaries(image, labels, color=(0.0, 0.0, 1.0), mode="inner")
    np.testing.assert_array_equal(a, b)
    blue = np.all(a == [0, 0, 255], axis=-1)
    # scikit-image semantics: label 0 is background, inner marks region 1's edge
    np.testing.assert_array_equal(blue.all(axis=0), [False, False, False, True, False, False])
    np.testing.assert_array_equal(blue.any(axis=0), blue.all(axis=0))
    np.testing.assert_array_equal(a[:, 0], 128)  # untouched interior keeps the image


def test_overlay_boundaries_thin_one_pixel():
    out = overlay_boundaries(np.zeros((4, 4), np.uint8), LABELS, color=(0, 255, 0), mode="thin")
    green = np.all(out == [0, 255, 0], axis=-1)
    expected = np.array(
        [[0, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]], dtype=bool
    )
    np.testing.assert_array_equal(green, expected)
    np.testing.assert_array_equal(out[~green], 0)


def test_overlay_boundaries_accepts_uint16_grey_and_rgba():
    labels = np.zeros((5, 5), dtype=np.int32)
    grey16 = np.full((5, 5), 65535, dtype=np.uint16)
    assert overlay_boundaries(grey16, labels)[0, 0].tolist() == [255, 255, 255]
    rgba = np.zeros((5, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    assert overlay_boundaries(rgba, labels).shape == (5, 5, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"mode": "subpixel"}, "mode"), ({"color": (1, 2)}, "color"), ({"color": (300, 0, 0)}, "color")],
)
def test_overlay_boundaries_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        overlay_boundaries(np.zeros((4, 4)), LABELS, **kwargs)


def test_overlay_boundaries_bad_image():
    with pytest.raises(ValueError, match="NaN"):
        overlay_boundaries(np.full((4, 4), np.nan), LABELS)
    with pytest.raises(ValueError, match="do not match"):
        overlay_boundaries(np.zeros((4, 5)), LABELS)


def test_side_by_side_layout():
    a = np.zeros((2, 3), dtype=np.uint8)
    b = np.full((4, 2, 3), 255, dtype=np.uint8)
    out = side_by_side([a, b], gap=1, fill=7)
    assert out.shape == (4, 3 + 1 + 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:2, :3], 0)
    np.testing.assert_array_equal(out[2:, :3], 7)  # padding under the short image
    np.testing.assert_array_equal(out[:, 3], 7)  # separator
    np.testing.assert_array_equal(out[:, 4:], 255)


def test_side_by_side_errors():
    with pytest.raises(ValueError, match="at least one"):
        side_by_side([])
    with pytest.raises(ValueError, match="gap"):
        side_by_side([np.zeros((2, 2))], gap=-1)


def test_make_strip_with_labels():
    frames = [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)]
    strip = make_strip(frames, [LABELS, np.zeros((4, 4), np.int32)], gap=2)
    assert strip.shape == (4, 10, 3)
    np.testing.assert_array_equal(strip[:, :4], overlay_boundaries(frames[0], LABELS))
    assert np.all(strip[1:3, :4] == [255, 255, 0])
    np.testing.assert_array_equal(strip[:, 4:6], 255)  # gap
    np.testing.assert_array_equal(strip[:, 6:], 0)  # one label: no boundary
    with pytest.raises(ValueError, match="2 images but 1 label"):
        make_strip(frames, [LABELS])
    assert make_strip(frames).shape == (4, 12, 3)
