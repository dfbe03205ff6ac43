"""Tests for clusterseg.io: round trips, natural frame order, errors, atomic writes."""

import os

import numpy as np
import pytest
import tifffile

from clusterseg.io import (
    FrameSequence,
    atomic_write,
    iter_video,
    list_frames,
    natural_sort_key,
    read_frames,
    read_image,
    read_labels,
    read_video,
    read_volume,
    write_gif,
    write_image,
    write_labels,
    write_video,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _no_temp_files(folder):
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def _has_cv2():
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- image round trips
@pytest.mark.parametrize("ext", [".png", ".tif", ".npy", ".bmp"])
@pytest.mark.parametrize("shape", [(7, 9), (7, 9, 3), (7, 9, 4)])
def test_uint8_round_trip(tmp_path, ext, shape):
    if ext == ".bmp" and shape[-1:] == (4,):
        pytest.skip("BMP RGBA support varies")
    image = _rng().integers(0, 256, size=shape, dtype=np.uint8)
    path = write_image(tmp_path / f"img{ext}", image)
    back = read_image(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("ext", [".png", ".tif", ".npy"])
@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3), (6, 5, 4)])
def test_uint16_round_trip(tmp_path, ext, shape):
    if ext == ".png" and len(shape) == 3 and not _has_cv2():
        pytest.skip("16-bit colour PNG needs OpenCV")
    image = _rng(1).integers(0, 65536, size=shape, dtype=np.uint16)
    path = write_image(tmp_path / f"img{ext}", image)
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)


def test_jpeg_round_trip_is_close(tmp_path):
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    image[:, 8:] = [200, 40, 40]
    back = read_image(write_image(tmp_path / "img.jpg", image))
    assert back.shape == (16, 16, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image).mean() < 4


def test_float_image_written_as_uint8(tmp_path):
    image = np.array([[0.0, 0.5, 1.0]])
    back = read_image(write_image(tmp_path / "f.png", image))
    np.testing.assert_array_equal(back, [[0, 128, 255]])


def test_bool_image_written_as_0_255(tmp_path):
    back = read_image(write_image(tmp_path / "b.png", np.array([[True, False]])))
    np.testing.assert_array_equal(back, [[255, 0]])


def test_float_out_of_range_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected \[0, 1\]"):
        write_image(tmp_path / "f.png", np.array([[0.0, 2.0]]))
    assert not list(tmp_path.iterdir())


def test_jpeg_refuses_16_bit_and_alpha(tmp_path):
    with pytest.raises(ValueError, match="8 bits"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2), dtype=np.uint16) + 1000)
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2, 4), dtype=np.uint8))


def test_float_tiff_round_trip(tmp_path):
    image = _rng(2).random((5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "f.tif", image)), image)


def test_planar_rgb_tiff_read_channels_last(tmp_path):
    image = _rng(3).integers(0, 256, size=(3, 8, 9), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", image, photometric="rgb", planarconfig="separate")
    back = read_image(tmp_path / "planar.tif")
    np.testing.assert_array_equal(back, np.moveaxis(image, 0, -1))


# --------------------------------------------------------------------------- volumes
@pytest.mark.parametrize("shape", [(4, 6, 5), (4, 6, 5, 3)])
def test_volume_tiff_round_trip(tmp_path, shape):
    vol = _rng(4).integers(0, 4000, size=shape, dtype=np.uint16)
    photometric = "rgb" if len(shape) == 4 else "minisblack"
    tifffile.imwrite(tmp_path / "vol.tif", vol, photometric=photometric)
    back = read_volume(tmp_path / "vol.tif")
    assert back.shape == shape and back.dtype == np.uint16
    np.testing.assert_array_equal(back, vol)


def test_volume_npy_round_trip(tmp_path):
    vol = _rng(5).random((3, 4, 5))
    np.save(tmp_path / "vol.npy", vol)
    np.testing.assert_array_equal(read_volume(tmp_path / "vol.npy"), vol)


def test_read_image_refuses_stack(tmp_path):
    tifffile.imwrite(tmp_path / "vol.tif", np.zeros((6, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match="read_volume"):
        read_image(tmp_path / "vol.tif")


def test_read_volume_refuses_2d_and_other_formats(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"flat\.npy.*\(Z, H, W\)"):
        read_volume(tmp_path / "flat.npy")
    write_image(tmp_path / "x.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="as a volume"):
        read_volume(tmp_path / "x.png")


def test_read_volume_rejects_nan(tmp_path):
    vol = np.zeros((3, 4, 5))
    vol[1, 1, 1] = np.nan
    np.save(tmp_path / "vol.npy", vol)
    with pytest.raises(ValueError, match="NaN"):
        read_volume(tmp_path / "vol.npy")


# --------------------------------------------------------------------------- labels
@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".npy"])
def test_labels_round_trip(tmp_path, ext):
    labels = _rng(6).integers(0, 65536, size=(9, 11)).astype(np.int64)
    labels[0, 0] = 65535
    back = read_labels(write_labels(tmp_path / f"lab{ext}", labels))
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, labels)


def test_png_labels_are_16_bit(tmp_path):
    from PIL import Image

    write_labels(tmp_path / "lab.png", np.array([[0, 300]], dtype=np.int32))
    with Image.open(tmp_path / "lab.png") as im:
        assert im.mode.startswith("I")  # 16-bit greyscale, not 8-bit "L"


def test_large_labels_go_to_int32_tiff(tmp_path):
    labels = np.array([[0, 70000], [-5, 2**31 - 1]], dtype=np.int64)
    path = write_labels(tmp_path / "big.tif", labels)
    assert tifffile.imread(path).dtype == np.int32
    np.testing.assert_array_equal(read_labels(path), labels)
    np.testing.assert_array_equal(read_labels(write_labels(tmp_path / "big.npy", labels)), labels)


def test_small_labels_tiff_is_uint16(tmp_path):
    path = write_labels(tmp_path / "small.tif", np.array([[0, 7]], dtype=np.int32))
    assert tifffile.imread(path).dtype == np.uint16


@pytest.mark.parametrize("value", [65536, -1])
def test_png_refuses_labels_outside_16_bit(tmp_path, value):
    labels = np.array([[0, value]], dtype=np.int32)
    with pytest.raises(ValueError, match=r"16-bit PNG.*\.tif.*\.npy"):
        write_labels(tmp_path / "lab.png", labels)
    assert not list(tmp_path.iterdir())


def test_write_labels_bad_input(tmp_path):
    with pytest.raises(ValueError, match="integer dtype"):
        write_labels(tmp_path / "l.png", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="3-D label volume"):
        write_labels(tmp_path / "l.png", np.zeros((2, 2, 3), dtype=int))
    with pytest.raises(ValueError, match="dimensions"):
        write_labels(tmp_path / "l.tif", np.zeros((2, 2, 3, 1), dtype=int))
    with pytest.raises(ValueError, match="empty"):
        write_labels(tmp_path / "l.png", np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match="int32"):
        write_labels(tmp_path / "l.npy", np.array([[2**40]]))
    with pytest.raises(ValueError, match="unsupported extension"):
        write_labels(tmp_path / "l.jpg", np.zeros((2, 2), dtype=int))


def test_read_labels_rejects_colour_and_fractional(tmp_path):
    write_image(tmp_path / "rgb.png", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="colour image .* not a label map.*rgb=.unique"):
        read_labels(tmp_path / "rgb.png")
    np.save(tmp_path / "frac.npy", np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="non-integer"):
        read_labels(tmp_path / "frac.npy")
    np.save(tmp_path / "whole.npy", np.array([[0.0, 3.0]]))
    np.testing.assert_array_equal(read_labels(tmp_path / "whole.npy"), [[0, 3]])


# --------------------------------------------------------------------------- read errors
@pytest.mark.parametrize("reader", [read_image, read_volume, read_labels])
def test_missing_file(tmp_path, reader):
    path = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        reader(path)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".npy"])
def test_corrupt_file(tmp_path, ext):
    path = tmp_path / f"corrupt{ext}"
    path.write_bytes(_rng(7).integers(0, 256, size=300, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=f"cannot read '.*corrupt{ext}'"):
        read_image(path)


def test_truncated_png(tmp_path):
    path = write_image(tmp_path / "t.png", _rng(8).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match="t.png"):
        read_image(path)


def test_read_directory_is_error(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        read_image(tmp_path)


def test_read_empty_npy(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"empty.npy.*is empty \(shape \(0, 4\)\)"):
        read_image(tmp_path / "empty.npy")


def test_read_nan_npy(tmp_path):
    image = np.zeros((3, 3))
    image[0, 0] = np.inf
    np.save(tmp_path / "nan.npy", image)
    with pytest.raises(ValueError, match="nan.npy.*NaN or infinite"):
        read_image(tmp_path / "nan.npy")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 3)])
def test_read_wrong_ndim_npy(tmp_path, shape):
    np.save(tmp_path / "bad.npy", np.zeros(shape))
    with pytest.raises(ValueError, match="bad.npy"):
        read_image(tmp_path / "bad.npy")


def test_read_unsupported_dtype_npy(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((3, 3), dtype=np.complex128))
    with pytest.raises(ValueError, match="c.npy.*unsupported dtype"):
        read_image(tmp_path / "c.npy")


def test_read_pickled_npy_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy"):
        read_image(tmp_path / "obj.npy")


def test_write_image_bad_input(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        write_image(tmp_path / "e.png", np.zeros((0, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "n.png", np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="unsupported dtype"):
        write_image(tmp_path / "c.png", np.zeros((2, 2), np.complex64))
    with pytest.raises(ValueError, match="dimensions"):
        write_image(tmp_path / "d.png", np.zeros((2, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="unsupported extension"):
        write_image(tmp_path / "x.xyz", np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError):
        write_image(tmp_path / "l.png", [[0, 1]])
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- overwrite / atomicity
@pytest.mark.parametrize(
    "writer, payload",
    [
        (write_labels, np.ones((3, 3), dtype=np.int32)),
        (write_image, np.ones((3, 3, 3), dtype=np.uint8)),
    ],
)
def test_overwrite_refused_then_allowed(tmp_path, writer, payload):
    path = tmp_path / "out.png"
    writer(path, payload)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"out\.png.*overwrite=True.*--overwrite"):
        writer(path, payload * 2)
    assert path.read_bytes() == before
    writer(path, payload * 2, overwrite=True)
    assert path.read_bytes() != before
    assert _no_temp_files(tmp_path) == []


def test_parent_folders_created(tmp_path):
    path = write_labels(tmp_path / "a" / "b" / "lab.npy", np.zeros((2, 2), dtype=np.int32))
    assert path.is_file()


def test_atomic_write_cleans_up_on_failure(tmp_path):
    target = tmp_path / "x.bin"

    def failing(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, failing)
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        atomic_write(target, failing, overwrite=True)
    assert target.read_bytes() == b"old"  # original untouched
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_write_temp_has_same_extension_and_folder(tmp_path):
    seen = []

    def record(tmp):
        seen.append(tmp)
        tmp.write_bytes(b"ok")

    atomic_write(tmp_path / "sub" / "y.png", record)
    assert seen[0].parent == tmp_path / "sub" and seen[0].suffix == ".png"
    assert seen[0] != tmp_path / "sub" / "y.png"
    assert (tmp_path / "sub" / "y.png").read_bytes() == b"ok"
    assert _no_temp_files(tmp_path / "sub") == []


def test_write_to_directory_path_refused(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(IsADirectoryError):
        write_image(tmp_path / "d.png", np.zeros((2, 2), np.uint8), overwrite=True)


# --------------------------------------------------------------------------- frames
def test_natural_sort_key():
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png", "frame02b.png"]
    assert sorted(names, key=natural_sort_key) == [
        "frame1.png", "frame2.png", "frame02b.png", "Frame3.png", "frame10.png"
    ]


def _write_frames(folder, n=12):
    folder.mkdir()
    for i in range(n):
        write_image(folder / f"frame{i}.png", np.full((4, 5, 3), i * 10, dtype=np.uint8))
    (folder / "notes.txt").write_text("not a frame")


def test_list_frames_natural_order(tmp_path):
    _write_frames(tmp_path / "clip")
    names = [p.name for p in list_frames(tmp_path / "clip")]
    assert names == [f"frame{i}.png" for i in range(12)]
    names = [p.name for p in list_frames(str(tmp_path / "clip" / "frame1*.png"))]
    assert names == ["frame1.png", "frame10.png", "frame11.png"]


def test_read_frames_lazy(tmp_path):
    _write_frames(tmp_path / "clip")
    frames = read_frames(tmp_path / "clip")
    assert isinstance(frames, FrameSequence) and len(frames) == 12
    assert frames[10][0, 0, 0] == 100 and frames[-1][0, 0, 0] == 110
    sub = frames[2:4]
    assert isinstance(sub, FrameSequence) and [f[0, 0, 0] for f in sub] == [20, 30]
    assert np.stack(list(frames)).shape == (12, 4, 5, 3)


def test_read_frames_as_list(tmp_path):
    _write_frames(tmp_path / "clip")
    frames = read_frames(tmp_path / "clip", as_list=True)
    assert isinstance(frames, list)
    assert [int(f[0, 0, 0]) for f in frames] == [i * 10 for i in range(12)]


def test_read_frames_shape_mismatch(tmp_path):
    _write_frames(tmp_path / "clip", n=2)
    write_image(tmp_path / "clip" / "frame2.png", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="frame2.png"):
        read_frames(tmp_path / "clip", as_list=True)


def test_read_frames_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        read_frames(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No image frames"):
        read_frames(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="pattern"):
        read_frames(str(tmp_path / "*.png"))


# --------------------------------------------------------------------------- gif / video
def test_gif_round_trip(tmp_path):
    frames = [np.full((8, 10, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    frames[1][:, :5] = [255, 0, 0]
    path = write_gif(tmp_path / "clip.gif", frames, fps=5)
    video = read_video(path)
    assert video.shape[:3] == (3, 8, 10)
    np.testing.assert_array_equal(video[1, 0, 0, :3], [255, 0, 0])
    np.testing.assert_array_equal(video[2, 0, 0, :3], [255, 255, 255])
    assert len(list(iter_video(path))) == 3
    with pytest.raises(FileExistsError):
        write_video(path, frames, fps=5)
    write_video(path, frames[:2], fps=5, overwrite=True)
    assert read_video(path).shape[0] == 2
    assert _no_temp_files(tmp_path) == []


def test_gif_accepts_float_and_grey_frames(tmp_path):
    frames = [np.zeros((4, 4)), np.ones((4, 4))]
    video = read_video(write_gif(tmp_path / "g.gif", frames))
    assert video.shape[0] == 2 and video[1, 0, 0, 0] == 255


def test_gif_errors(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_gif(tmp_path / "e.gif", [])
    with pytest.raises(ValueError, match="frame 1 has shape"):
        write_gif(tmp_path / "e.gif", [np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="fps"):
        write_gif(tmp_path / "e.gif", [np.zeros((4, 4), np.uint8)], fps=0)
    assert not list(tmp_path.iterdir())


def test_video_without_pyav_is_clear(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # makes "import av" fail
    with pytest.raises(ImportError, match="pip install av"):
        write_video(tmp_path / "v.mp4", [np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "missing.mp4")


def test_no_stray_files_after_many_writes(tmp_path):
    for i in range(5):
        write_labels(tmp_path / f"l{i}.png", np.full((3, 3), i, dtype=np.int32))
        write_image(tmp_path / f"i{i}.tif", np.zeros((3, 3), np.uint8))
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"l{i}.png" for i in range(5)] + [f"i{i}.tif" for i in range(5)]
    )


def test_written_files_have_normal_permissions(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    out = write_labels(tmp_path / "lab.png", np.zeros((2, 2), dtype=np.int32))
    assert out.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    os.chmod(out, 0o640)
    write_labels(out, np.ones((2, 2), dtype=np.int32), overwrite=True)
    assert out.stat().st_mode & 0o777 == 0o640  # overwriting keeps the old mode


def test_grey_alpha_png_read_as_grey(tmp_path):
    from PIL import Image

    la = np.zeros((3, 4, 2), dtype=np.uint8)
    la[..., 0] = 77
    la[..., 1] = 200
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    back = read_image(tmp_path / "la.png")
    assert back.shape == (3, 4) and (back == 77).all()


def test_write_labels_volume_round_trip_and_png_refusal(tmp_path):
    from clusterseg.io import read_volume, write_labels

    volume = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4) * 5000  # > 65535: int32 TIFF
    write_labels(tmp_path / "vol.tif", volume)
    np.testing.assert_array_equal(read_volume(tmp_path / "vol.tif"), volume)
    write_labels(tmp_path / "vol.npy", volume)
    np.testing.assert_array_equal(np.load(tmp_path / "vol.npy"), volume)
    with pytest.raises(ValueError, match="3-D label volume"):
        write_labels(tmp_path / "vol.png", volume)


def test_frame_sizes_are_read_from_the_headers_once(tmp_path, monkeypatch):
    import clusterseg.io.read as read_module
    from clusterseg.io import read_frames, write_image

    for i in range(3):
        write_image(tmp_path / f"f{i}.png", np.zeros((6, 8, 3), np.uint8))
    calls = []
    real = read_module.image_size
    monkeypatch.setattr(read_module, "image_size", lambda p: calls.append(p) or real(p))
    frames = read_frames(tmp_path)
    assert frames.check_same_size() == (6, 8) and frames.check_same_size() == (6, 8)
    assert len(calls) == 3
