"""Tests for clusterseg.datasets on a tiny fake BSDS500 layout (never the real data)."""

from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from clusterseg.datasets import BSDS500, BSDSSample, bsds500, data_root, read_bsds_ground_truth
from clusterseg.io import write_image

H, W = 6, 8


def _segmentation(seed):
    rng = np.random.default_rng(seed)
    seg = np.ones((H, W), dtype=np.uint16)
    seg[:, W // 2 :] = 2
    seg[rng.integers(0, H), :] = 3
    return seg


def _write_mat(path, segs):
    cell = np.empty((1, len(segs)), dtype=object)
    for g, seg in enumerate(segs):
        bnd = np.zeros(seg.shape, dtype=np.uint8)
        bnd[:, W // 2] = 1
        cell[0, g] = {"Segmentation": seg, "Boundaries": bnd}
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"groundTruth": cell})


def make_fake_bsds(base: Path, splits=("train", "val"), ids=("100", "20", "3"), n_gt=3):
    root = base / "bsds500"
    for split in splits:
        for k, image_id in enumerate(ids):
            image = np.full((H, W, 3), 10 * k, dtype=np.uint8)
            image[..., 0] = int(image_id) % 256
            write_image(root / "images" / split / f"{image_id}.jpg", image)
            segs = [_segmentation(100 * k + g) for g in range(n_gt)]
            _write_mat(root / "groundTruth" / split / f"{image_id}.mat", segs)
    return root


def test_ground_truth_reader(tmp_path):
    segs = [_segmentation(0), _segmentation(1)]
    _write_mat(tmp_path / "x.mat", segs)
    out_segs, out_bnds = read_bsds_ground_truth(tmp_path / "x.mat")
    assert len(out_segs) == len(out_bnds) == 2
    for seg, out in zip(segs, out_segs):
        assert out.dtype == np.int32 and out.min() == 0
        np.testing.assert_array_equal(out, seg.astype(np.int32) - 1)
    assert out_bnds[0].dtype == bool and out_bnds[0][:, W // 2].all() and out_bnds[0].sum() == H


def test_ground_truth_reader_single_annotation(tmp_path):
    _write_mat(tmp_path / "one.mat", [_segmentation(5)])
    segs, bnds = read_bsds_ground_truth(tmp_path / "one.mat")
    assert len(segs) == 1 and segs[0].shape == (H, W)


def test_ground_truth_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mat"):
        read_bsds_ground_truth(tmp_path / "nope.mat")
    savemat(tmp_path / "other.mat", {"something": np.zeros(3)})
    with pytest.raises(ValueError, match="no 'groundTruth'"):
        read_bsds_ground_truth(tmp_path / "other.mat")
    (tmp_path / "junk.mat").write_bytes(b"\x00" * 50)
    with pytest.raises(ValueError, match="junk.mat"):
        read_bsds_ground_truth(tmp_path / "junk.mat")


@pytest.mark.parametrize("use_inner", [False, True])
def test_bsds500_iteration(tmp_path, use_inner):
    root = make_fake_bsds(tmp_path)
    ds = bsds500(root if use_inner else tmp_path, split="val")
    assert isinstance(ds, BSDS500) and ds.root == root
    assert ds.ids == ["3", "20", "100"]  # numeric order
    assert len(ds) == 3
    samples = list(ds)
    assert len(samples) == 3
    for sample in samples:
        assert isinstance(sample, BSDSSample)
        image_id, image, segs, bnds = sample  # unpacks like a tuple
        assert image.dtype == np.uint8 and image.shape == (H, W, 3)
        assert len(segs) == len(bnds) == 3
        assert all(s.dtype == np.int32 and s.shape == (H, W) and s.min() == 0 for s in segs)
        assert all(b.dtype == bool for b in bnds)
    # the image belongs to its id (JPEG is lossy: compare loosely)
    assert abs(int(samples[1].image[0, 0, 0]) - 20) <= 3
    assert ds["20"].image_id == "20" and ds[-1].image_id == "100"
    with pytest.raises(KeyError):
        ds["999"]


def test_bsds500_limit_and_train(tmp_path):
    make_fake_bsds(tmp_path)
    ds = bsds500(tmp_path, split="train", limit=2)
    assert ds.ids == ["3", "20"] and len(list(ds)) == 2
    with pytest.raises(ValueError, match="limit"):
        bsds500(tmp_path, limit=-1)


def test_bsds500_missing_split(tmp_path):
    make_fake_bsds(tmp_path)
    with pytest.raises(FileNotFoundError, match="split 'test' not found.*train, val"):
        bsds500(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        bsds500(tmp_path, split="validation")


def test_bsds500_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="CLUSTERSEG_DATA"):
        bsds500(tmp_path / "nowhere")


def test_bsds500_missing_ground_truth(tmp_path):
    root = make_fake_bsds(tmp_path, splits=("val",))
    (root / "groundTruth" / "val" / "20.mat").unlink()
    ds = bsds500(tmp_path)
    with pytest.raises(FileNotFoundError, match="20.mat"):
        ds["20"]


def test_bsds500_uses_env_var(tmp_path, monkeypatch):
    root = make_fake_bsds(tmp_path / "data", splits=("val",))
    monkeypatch.setenv("CLUSTERSEG_DATA", str(tmp_path / "data"))
    assert data_root() == tmp_path / "data"
    assert bsds500().root == root


def test_data_root_env_var_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERSEG_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CLUSTERSEG_DATA.*missing"):
        data_root()


def test_data_root_fallback_message(tmp_path, monkeypatch):
    import clusterseg.datasets._paths as paths

    monkeypatch.delenv("CLUSTERSEG_DATA", raising=False)
    monkeypatch.setattr(paths, "_candidates", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(FileNotFoundError, match="set the CLUSTERSEG_DATA"):
        data_root()
    (tmp_path / "b").mkdir()
    assert data_root() == (tmp_path / "b").resolve()


def test_data_root_candidates_include_repo_sibling(monkeypatch, tmp_path):
    import clusterseg.datasets._paths as paths

    monkeypatch.chdir(tmp_path)
    repo = Path(paths.__file__).resolve().parents[3]
    candidates = paths._candidates()
    assert candidates[0] == repo.parent / "shared" / "data"
    assert tmp_path.parent / "shared" / "data" in candidates
