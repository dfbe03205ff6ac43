"""Tests for clusterseg._validation."""

import numpy as np
import pytest

from clusterseg._validation import check_image, check_labels, check_n_segments, to_float_rgb


# --------------------------------------------------------------------------- check_image
@pytest.mark.parametrize(
    "shape", [(4, 5), (4, 5, 1), (4, 5, 3), (4, 5, 4)],
)
def test_check_image_accepts_2d_images(shape):
    image = np.zeros(shape, dtype=np.uint8)
    assert check_image(image) is image


@pytest.mark.parametrize(
    "dtype", [bool, np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64,
              np.float16, np.float32, np.float64],
)
def test_check_image_accepts_supported_dtypes(dtype):
    check_image(np.zeros((3, 3), dtype=dtype))


def test_check_image_rejects_lists():
    with pytest.raises(TypeError, match="numpy.ndarray.*list"):
        check_image([[0, 1], [2, 3]])


@pytest.mark.parametrize("shape", [(0, 5), (4, 0, 3), (0, 0)])
def test_check_image_rejects_empty(shape):
    with pytest.raises(ValueError, match=r"image is empty \(shape"):
        check_image(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_image_rejects_non_finite(bad):
    image = np.zeros((3, 3, 3), dtype=np.float32)
    image[1, 2, 0] = bad
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        check_image(image)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 3), (1, 2, 3, 4, 3)])
def test_check_image_rejects_wrong_ndim(shape):
    with pytest.raises(ValueError, match="dimensions"):
        check_image(np.zeros(shape))


@pytest.mark.parametrize("channels", [2, 5, 7])
def test_check_image_rejects_bad_channel_count(channels):
    with pytest.raises(ValueError, match=f"{channels} channels"):
        check_image(np.zeros((4, 5, channels)))


@pytest.mark.parametrize("dtype", [np.complex64, object, np.str_, "datetime64[s]"])
def test_check_image_rejects_unsupported_dtype(dtype):
    with pytest.raises(ValueError, match="unsupported dtype"):
        check_image(np.zeros((3, 3), dtype=dtype))


def test_check_image_channel_axis_first_and_none():
    check_image(np.zeros((3, 4, 5)), channel_axis=0)
    with pytest.raises(ValueError, match="channel_axis=None"):
        check_image(np.zeros((4, 5, 3)), channel_axis=None)
    with pytest.raises(ValueError, match="out of range"):
        check_image(np.zeros((4, 5, 3)), channel_axis=3)


def test_check_image_volumes():
    vol = np.zeros((6, 4, 5))
    with pytest.raises(ValueError, match="6|5 channels"):
        check_image(vol)
    assert check_image(vol, allow_3d=True) is vol
    check_image(vol, allow_3d=True, channel_axis=None)
    check_image(np.zeros((6, 4, 5, 3)), allow_3d=True)
    with pytest.raises(ValueError, match="2 channels"):
        check_image(np.zeros((6, 4, 5, 2)), allow_3d=True)


def test_check_image_uses_name():
    with pytest.raises(ValueError, match="^frame 3 is empty"):
        check_image(np.zeros((0, 3)), name="frame 3")


# --------------------------------------------------------------------------- to_float_rgb
def test_to_float_rgb_uint8_grey_replicated():
    image = np.array([[0, 51], [102, 255]], dtype=np.uint8)
    out = to_float_rgb(image)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    expected = np.array([[0.0, 0.2], [0.4, 1.0]], dtype=np.float32)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], expected, atol=1e-7)


def test_to_float_rgb_uint16_scaled_by_dtype_max():
    image = np.zeros((1, 2, 3), dtype=np.uint16)
    image[0, 1] = [65535, 13107, 0]
    out = to_float_rgb(image)
    np.testing.assert_allclose(out[0, 1], [1.0, 0.2, 0.0], atol=1e-7)
    np.testing.assert_array_equal(out[0, 0], 0.0)


def test_to_float_rgb_uint8_dark_image_not_stretched():
    image = np.full((2, 2), 10, dtype=np.uint8)
    np.testing.assert_allclose(to_float_rgb(image), 10 / 255, rtol=1e-6)


def test_to_float_rgb_rgba_alpha_dropped():
    image = np.zeros((1, 1, 4), dtype=np.uint8)
    image[0, 0] = [255, 0, 51, 7]
    np.testing.assert_allclose(to_float_rgb(image)[0, 0], [1.0, 0.0, 0.2], atol=1e-7)


def test_to_float_rgb_single_channel_replicated():
    image = np.array([[[0], [255]]], dtype=np.uint8)
    out = to_float_rgb(image)
    np.testing.assert_array_equal(out, [[[0, 0, 0], [1, 1, 1]]])


def test_to_float_rgb_bool():
    out = to_float_rgb(np.array([[True, False]]))
    np.testing.assert_array_equal(out[..., 0], [[1.0, 0.0]])


def test_to_float_rgb_signed_ints_minmax():
    image = np.array([[-10, 0], [10, 30]], dtype=np.int16)
    np.testing.assert_allclose(to_float_rgb(image)[..., 1], [[0, 0.25], [0.5, 1.0]])


def test_to_float_rgb_float_in_unit_range_kept():
    image = np.array([[0.1, 0.7]], dtype=np.float64)
    np.testing.assert_allclose(to_float_rgb(image)[..., 2], [[0.1, 0.7]], rtol=1e-6)


def test_to_float_rgb_float_out_of_range_rescaled():
    image = np.array([[0.0, 100.0, 250.0]], dtype=np.float32)
    np.testing.assert_allclose(to_float_rgb(image)[..., 0], [[0.0, 0.4, 1.0]], rtol=1e-6)
    image = np.array([[-1.0, 1.0]])
    np.testing.assert_allclose(to_float_rgb(image)[..., 0], [[0.0, 1.0]])


@pytest.mark.parametrize(
    "value, dtype, expected",
    [(7, np.int32, 1.0), (0, np.int64, 0.0), (3.5, np.float64, 1.0), (-2.0, np.float32, 0.0), (0.25, np.float16, 0.25)],
)
def test_to_float_rgb_constant_images(value, dtype, expected):
    out = to_float_rgb(np.full((3, 2), value, dtype=dtype))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected)


def test_to_float_rgb_channel_axis():
    image = np.zeros((3, 2, 2), dtype=np.uint8)
    image[0] = 255  # red plane first
    out = to_float_rgb(image, channel_axis=0)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], 1.0)
    np.testing.assert_array_equal(out[..., 1:], 0.0)
    grey = to_float_rgb(np.ones((2, 3), dtype=np.uint8), channel_axis=None)
    assert grey.shape == (2, 3, 3)


def test_to_float_rgb_does_not_modify_input_and_is_contiguous():
    image = np.arange(24, dtype=np.float64).reshape(2, 4, 3)
    before = image.copy()
    out = to_float_rgb(image)
    np.testing.assert_array_equal(image, before)
    assert out.flags.c_contiguous and 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("shape", [(4, 5, 2), (4,), (0, 3)])
def test_to_float_rgb_rejects_bad_input(shape):
    with pytest.raises(ValueError):
        to_float_rgb(np.zeros(shape))


# --------------------------------------------------------------------------- check_n_segments
@pytest.mark.parametrize("value", [1, 200, np.int64(50), 100.0, 400])
def test_check_n_segments_accepts(value):
    n = check_n_segments(value, 400)
    assert n == int(value) and type(n) is int


@pytest.mark.parametrize("value", [0, -3])
def test_check_n_segments_too_small(value):
    with pytest.raises(ValueError, match=f"n_segments must be >= 1, got {value}"):
        check_n_segments(value, 100)


def test_check_n_segments_too_large():
    with pytest.raises(ValueError, match=r"n_segments=101 exceeds the number of pixels \(100\)"):
        check_n_segments(101, 100)


@pytest.mark.parametrize("value", [2.5, float("nan")])
def test_check_n_segments_non_integer(value):
    with pytest.raises(ValueError, match="must be an integer"):
        check_n_segments(value, 100)


@pytest.mark.parametrize("value", [True, "10", None])
def test_check_n_segments_wrong_type(value):
    with pytest.raises(TypeError, match="k must be an integer"):
        check_n_segments(value, 100, name="k")


# --------------------------------------------------------------------------- check_labels
def test_check_labels():
    labels = np.zeros((2, 2), dtype=np.int32)
    assert check_labels(labels) is labels
    with pytest.raises(ValueError, match="integer dtype"):
        check_labels(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2 dimensions"):
        check_labels(np.zeros((2, 2, 2), dtype=int))
    with pytest.raises(ValueError, match="empty"):
        check_labels(np.zeros((0, 2), dtype=int))
    with pytest.raises(TypeError):
        check_labels([[0]])


def test_as_int_labels_lenient_policy():
    from clusterseg._validation import as_int_labels

    out = as_int_labels([[0.0, 1.0], [2.0, 2.0]])
    assert out.dtype == np.int64 and out.tolist() == [[0, 1], [2, 2]]
    assert as_int_labels(np.array([True, False])).tolist() == [1, 0]
    assert as_int_labels(np.array([-1, 3])).tolist() == [-1, 3]
    for bad, message in (
        ([[0.5, 1.0]], "non-integer"),
        ([[np.nan, 1.0]], "NaN"),
        (np.array(["a", "b"]), "dtype"),
        (np.zeros((0, 3)), "empty"),
        (np.array(3), "at least one dimension"),
        ([np.zeros(2), np.zeros(2)], "single label array"),
    ):
        with pytest.raises(ValueError, match=message):
            as_int_labels(bad)
    with pytest.raises(ValueError, match="2-D"):
        as_int_labels(np.zeros(4, dtype=int), ndim=2)
    with pytest.raises(ValueError, match="non-negative"):
        as_int_labels(np.array([[0, -2]]), ndim=2, non_negative=True)
