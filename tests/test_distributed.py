"""clusterseg.distributed: chunked instances and superpixels on dask, collections of files."""

import numpy as np
import pytest
from skimage.draw import disk
from skimage.measure import label as connected

pytest.importorskip("dask.distributed")
zarr = pytest.importorskip("zarr")

import clusterseg  # noqa: E402
from clusterseg import distributed as cd  # noqa: E402
from clusterseg.distributed.merge import border_pairs, merge_labels  # noqa: E402
from clusterseg.metrics import instance_iou  # noqa: E402
from clusterseg.unsupervised import SPWNetModel, fit_sequence_model  # noqa: E402

# Nuclei on and across the borders of 128-px chunks (corner at (128, 128), edges at rows/cols 128, 256).
CENTRES = [(64, 60), (128, 128), (64, 128), (128, 200), (200, 128), (190, 256), (40, 250), (230, 40), (128, 300)]


def _nuclei_image():
    rng = np.random.default_rng(1)
    image = np.full((256, 320), 10, np.uint8)
    for r, c in CENTRES:
        image[disk((r, c), 13, shape=image.shape)] = 180 + rng.integers(0, 60)
    return (image + rng.random(image.shape) * 15).astype(np.uint8)


def _assert_same_objects(chunked, whole, min_iou=0.95):
    assert chunked.max() == whole.max() == len(CENTRES)
    assert np.array_equal(np.unique(chunked), np.arange(len(CENTRES) + 1))  # unique, consecutive labels
    iou, _, _ = instance_iou(chunked, whole)
    assert (iou.max(axis=0) >= min_iou).all() and (iou.max(axis=1) >= min_iou).all()


@pytest.fixture(scope="module")
def whole_image_labels():
    return clusterseg.instances(_nuclei_image(), channel_axis=None).labels


def test_border_pairs_and_merge_by_hand():
    a = np.array([[5, 5, 5, 0, 7, 7]])
    b = np.array([[9, 9, 0, 0, 8, 3]])
    assert border_pairs(a, b).tolist() == [[5, 9], [7, 3], [7, 8]]  # 7 meets 8 and 3 on one pixel each
    assert border_pairs(a, b, min_fraction=1.0).tolist() == [[5, 9], [7, 3], [7, 8]]
    assert border_pairs(np.zeros((2, 2), int), np.ones((2, 2), int)).shape == (0, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        border_pairs(a, b[:, :3])
    # 10~40 joined, 12 alone, 99 (not in ids: a halo-only label) ignored.
    assert merge_labels(np.array([3, 10, 12, 40]), np.array([[10, 40], [12, 99]])).tolist() == [1, 2, 3, 2]
    assert merge_labels(np.array([], np.int64), np.zeros((0, 2))).size == 0


def test_chunked_instances_match_the_whole_image_call(whole_image_labels):
    chunked = cd.instances(_nuclei_image(), chunks=128, overlap=32, channel_axis=None).compute()
    assert chunked.dtype == np.int32 and chunked.shape == (256, 320)
    _assert_same_objects(chunked, whole_image_labels)


def test_chunked_instances_on_a_local_cluster_write_zarr(tmp_path, whole_image_labels):
    from dask.distributed import Client, LocalCluster

    source = tmp_path / "image.zarr"
    zarr.open_array(str(source), mode="w", shape=(256, 320), chunks=(64, 64), dtype="uint8")[:] = _nuclei_image()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        out = cd.instances(str(source), chunks=128, overlap=32, channel_axis=None, client=client,
                           out=tmp_path / "labels.zarr")
        chunked = out.compute(scheduler=client)
    assert (tmp_path / "labels.zarr").is_dir()
    assert not any(p.name.endswith("-tmp") for p in tmp_path.iterdir())  # temporary chunk stores removed
    _assert_same_objects(chunked, whole_image_labels)
    with pytest.raises(FileExistsError, match="overwrite"):
        cd.instances(str(source), chunks=128, channel_axis=None, out=tmp_path / "labels.zarr")


def test_chunked_instances_choose_an_overlap_and_check_arguments():
    image = _nuclei_image()
    labels = cd.instances(image, chunks=128, channel_axis=None).compute()  # overlap from the objects found
    assert labels.max() == len(CENTRES)
    with pytest.raises(ValueError, match="multiple of 8"):
        cd.instances(image, chunks=100, channel_axis=None)
    with pytest.raises(ValueError, match="overlap"):
        cd.instances(image, chunks=128, overlap=100, channel_axis=None)
    with pytest.raises(ValueError, match="chunks"):
        cd.instances(image, chunks=4, channel_axis=None)
    with pytest.raises(ValueError, match="2-D image"):
        cd.instances(np.zeros((2, 3, 4, 5)), chunks=128)


def test_chunked_superpixels_are_unique_connected_and_sized():
    rng = np.random.default_rng(0)
    image = (rng.random((200, 260, 3)) * 255).astype(np.uint8)
    labels = cd.superpixels(image, segment_size=400, method="slic", chunks=96).compute()
    assert labels.dtype == np.int32 and labels.shape == (200, 260)
    n = labels.max() + 1
    assert np.array_equal(np.unique(labels), np.arange(n))  # 0..n-1, unique over the image
    assert connected(labels + 1, connectivity=1, background=0).max() == n  # every label 4-connected
    assert 0.8 * image[..., 0].size / 400 <= n <= 2.0 * image[..., 0].size / 400
    same = cd.superpixels(image, n_segments=130, method="slic", chunks=96).compute()
    assert same.max() + 1 == n  # 200 * 260 / 130 = 400 pixels per superpixel: the same call
    with pytest.raises(ValueError, match="exactly one"):
        cd.superpixels(image, chunks=96)


def test_collection_goes_past_a_corrupt_file_and_skips_finished_ones(tmp_path):
    from clusterseg.io import read_labels, write_image

    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", _nuclei_image()[:128, :128])
    (folder / "b.png").write_bytes(b"not a png at all")
    write_image(folder / "c.png", _nuclei_image()[128:, 128:])
    report = cd.process_files(folder, "superpixels", tmp_path / "out", n_segments=20, method="slic")
    assert sorted(p.name for p in report.written) == ["a_labels.tif", "c_labels.tif"]
    assert list(report.failed) == [folder / "b.png"] and "b.png" in report.failed[folder / "b.png"]
    assert not report.ok and read_labels(tmp_path / "out" / "a_labels.tif").max() >= 10
    again = cd.process_files(folder, "superpixels", tmp_path / "out", n_segments=20, method="slic")
    assert again.written == [] and len(again.skipped) == 2 and list(again.failed) == [folder / "b.png"]
    with pytest.raises(ValueError, match="task must be"):
        cd.process_files([folder / "a.png"], "nonsense", tmp_path / "out2")


def test_cli_chunked_instances_and_superpixels_write_zarr(tmp_path):
    from typer.testing import CliRunner

    from clusterseg.cli import app

    source = tmp_path / "big.npy"
    np.save(source, _nuclei_image())
    runner = CliRunner()
    result = runner.invoke(app, ["instances", str(source), "--chunks", "128", "-o", str(tmp_path / "labels.zarr")])
    assert result.exit_code == 0, result.output
    assert zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")[:].max() == len(CENTRES)
    result = runner.invoke(app, ["superpixels", str(source), "--chunks", "128", "--segment-size", "600", "-m", "slic",
                                 "-o", str(tmp_path / "sp.zarr")])
    assert result.exit_code == 0, result.output
    sp = zarr.open_array(str(tmp_path / "sp.zarr"), mode="r")[:]
    assert sp.min() == 0 and 60 <= sp.max() + 1 <= 250
    again = runner.invoke(app, ["instances", str(source), "--chunks", "128", "-o", str(tmp_path / "labels.zarr")])
    assert again.exit_code == 2 and "exists" in again.output
    wrong = runner.invoke(app, ["instances", str(source), "--chunks", "128", "-o", str(tmp_path / "labels")])
    assert wrong.exit_code == 2 and ".zarr" in wrong.output


def test_segment_frames_applies_one_fitted_sp_wnet_to_every_slice(tmp_path):
    rng = np.random.default_rng(0)
    volume = np.zeros((4, 48, 64), np.float32)
    volume[:, :, 32:] = 1.0  # two halves in every slice
    volume += rng.normal(0, 0.05, volume.shape).astype(np.float32)
    model = fit_sequence_model(volume, n_segments=2, train_on=2, epochs=1, channel_axis=None,
                                          ch_mul=4, n_blocks=2, n_superpixels=30, patch_sizes=(16,), n_batches=2)
    expected = np.stack([model.predict(s, channel_axis=None) for s in volume])
    labels = cd.segment_frames(volume, model, out=tmp_path / "classes.zarr")
    assert labels.shape == (4, 48, 64) and labels.dtype == np.int32
    assert np.array_equal(labels.compute(), expected)  # the same model, hence the same class ids everywhere
    with pytest.raises(ValueError, match="fitted"):
        cd.segment_frames(volume, SPWNetModel(2))


def test_ome_zarr_input_reads_level_0(tmp_path):
    from clusterseg.distributed.sources import as_dask_image

    image = _nuclei_image()
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    group.create_array("0", shape=image.shape, chunks=(64, 64), dtype="uint8")[:] = image
    group.create_array("1", shape=(128, 160), chunks=(64, 64), dtype="uint8")[:] = image[::2, ::2]
    group.attrs["ome"] = {"multiscales": [{"datasets": [{"path": "0"}, {"path": "1"}]}]}
    array = as_dask_image(tmp_path / "img.ome.zarr", 128, channel_axis=None)
    assert array.shape == image.shape and array.chunksize == (128, 128)
    assert np.array_equal(array.compute(), image)


def test_process_files_names_same_stem_inputs_as_the_cli(tmp_path):
    from clusterseg.io import write_image

    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        write_image(tmp_path / folder / "x.png", (rng.random((24, 24, 3)) * 255).astype(np.uint8))
    inputs = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"]
    report = cd.process_files(inputs, "superpixels", tmp_path / "out", n_segments=9, method="slic")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x_labels.tif", "b_x_labels.tif"]
    assert len(report.written) == 2 and not report.failed


def test_chunked_instances_decide_the_imaging_modality_once_for_the_whole_image():
    import dask.array as da

    from clusterseg.distributed.arrays import _global_normalisation
    from clusterseg.instances.model import SpatialEmbeddingModel

    net = SpatialEmbeddingModel(width=0.25)
    image = np.full((128, 128, 3), 90, np.uint8)  # grey background: a chunk of it alone looks grey
    image[:40, :40] = (200, 60, 160)  # stained objects in one corner
    options = _global_normalisation(da.from_array(image, chunks=(64, 64, 3)), net, {})
    assert options["modality"] == "colour" and options["intensity_range"][1] > options["intensity_range"][0]
    given = _global_normalisation(da.from_array(image, chunks=64), net, {"modality": "grey"})
    assert given["modality"] == "grey"
    kept = _global_normalisation(da.from_array(image, chunks=64), net, {"intensity_range": (0.0, 0.5)})
    assert kept == {"intensity_range": (0.0, 0.5), "modality": "colour"}
