"""Tests for clusterseg.datasets.instances on tiny synthetic folders (never the real data)."""

import hashlib

import numpy as np
import pytest
import tifffile

from clusterseg.datasets.instances import (
    CITYSCAPES_INSTANCE_CLASSES,
    CityscapesInstances,
    InstanceFolder,
    InstanceSample,
    cityscapes_instances,
    dsb2018,
    split_by_name,
)
from clusterseg.io import write_image, write_labels

H, W = 6, 8


def _image(k, shape=(H, W, 3)):
    return np.full(shape, (10 * k + 5) % 256, dtype=np.uint8)


def _labels(k, shape=(H, W)):
    lab = np.zeros(shape, dtype=np.uint16)
    lab[1:3, 1:3] = 1
    lab[3:5, 4:7] = 40 + k  # ids kept as on disk, not renumbered
    return lab


def make_folder(base, names=("img10", "img2", "img1"), label_ext=".tif", image_ext=".png"):
    images, labels = base / "images", base / "labels"
    for k, name in enumerate(names):
        write_image(images / f"{name}{image_ext}", _image(k))
        write_labels(labels / f"{name}{label_ext}", _labels(k))
    return images, labels


# --------------------------------------------------------------------------- InstanceFolder
def test_folder_matches_by_stem_across_formats(tmp_path):
    images, labels = make_folder(tmp_path)
    # one label stored as PNG, one as .npy: matching is by stem only
    (labels / "img2.tif").unlink()
    write_labels(labels / "img2.png", _labels(1))
    (labels / "img1.tif").unlink()
    np.save(labels / "img1.npy", _labels(2).astype(np.int64))
    (images / "notes.txt").write_text("ignored")
    ds = InstanceFolder(images, labels)
    assert len(ds) == 3
    assert ds.names == ["img1", "img2", "img10"]  # natural order
    sample = ds[1]
    assert isinstance(sample, InstanceSample)
    name, image, lab = sample
    assert name == "img2"
    assert image.dtype == np.uint8 and image.shape == (H, W, 3) and image[0, 0, 0] == 15
    assert lab.dtype == np.int32 and lab.shape == (H, W)
    np.testing.assert_array_equal(lab, _labels(1))
    assert set(np.unique(ds[0].labels)) == {0, 1, 42}
    assert ds["img10"].name == "img10"
    assert [s.name for s in ds] == ds.names
    assert ds.label_path("img1").suffix == ".npy" and ds.image_path(2).name == "img10.png"
    ds.validate()


def test_folder_lists_unmatched_stems_on_both_sides(tmp_path):
    images, labels = make_folder(tmp_path, names=("a", "b"))
    for k in range(12):
        write_image(images / f"only_img{k}.png", _image(0))
    write_labels(labels / "only_lab.tif", _labels(0))
    with pytest.raises(ValueError) as info:
        InstanceFolder(images, labels)
    message = str(info.value)
    assert "12 image(s) without a label file" in message
    assert "'only_img0', 'only_img1'" in message and "and 2 more" in message
    assert "only_img11" not in message  # natural order: 0..9 listed, 10 and 11 counted
    assert "1 label file(s) without an image: 'only_lab'" in message
    # with explicit names, the unrelated files do not matter
    assert InstanceFolder(images, labels, names=["b", "a"]).names == ["b", "a"]
    with pytest.raises(ValueError, match="no label file .* 'only_img3'"):
        InstanceFolder(images, labels, names=["a", "only_img3"])


def test_folder_missing_empty_and_duplicate_stems(tmp_path):
    images, labels = make_folder(tmp_path, names=("a", "b"))
    with pytest.raises(ValueError, match="does not exist"):
        InstanceFolder(tmp_path / "nope", labels)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        InstanceFolder(images, tmp_path / "empty")
    write_labels(labels / "a.png", _labels(0))
    with pytest.raises(ValueError, match=r"same name stem: a\.png and a\.tif"):
        InstanceFolder(images, labels)


def test_folder_slicing_returns_lazy_subset(tmp_path):
    images, labels = make_folder(tmp_path, names=[f"n{k}" for k in range(5)])
    ds = InstanceFolder(images, labels)
    sub = ds[1:4:2]
    assert isinstance(sub, InstanceFolder)
    assert sub.names == ["n1", "n3"] and len(ds) == 5
    np.testing.assert_array_equal(sub[1].labels, ds[3].labels)
    assert ds[::-1].names == ["n4", "n3", "n2", "n1", "n0"]
    assert len(ds[5:]) == 0
    assert "n1" in sub and "n2" not in sub
    with pytest.raises(IndexError):
        sub[2]
    with pytest.raises(KeyError):
        sub["n2"]


def test_validate_lists_every_problem(tmp_path):
    images, labels = make_folder(tmp_path, names=("ok", "small", "float", "neg", "rgb"))
    write_labels(labels / "small.tif", _labels(0, shape=(H - 1, W)), overwrite=True)
    tifffile.imwrite(labels / "float.tif", _labels(0).astype(np.float32) + 0.5)
    (labels / "neg.tif").unlink()
    np.save(labels / "neg.npy", _labels(0).astype(np.int32) - 1)
    (labels / "rgb.tif").unlink()
    write_image(labels / "rgb.png", np.stack([_labels(0).astype(np.uint8)] * 3, axis=-1))
    ds = InstanceFolder(images, labels)
    calls = []
    with pytest.raises(ValueError) as info:
        ds.validate(progress=lambda done, total: calls.append((done, total)))
    message = str(info.value)
    assert message.startswith("4 problem(s)")
    assert "small: image 'small.png' has size (6, 8) (6x8x3) but label image 'small.tif' has size (5, 8)" in message
    assert "float" in message and "must be an integer image" in message and "float32" in message
    assert "neg" in message and "negative values (minimum -1)" in message
    assert "rgb" in message and "multi-channel" in message
    assert "ok:" not in message
    assert calls == [(k, 5) for k in range(1, 6)]
    # reading a bad sample raises too, naming the file
    with pytest.raises(ValueError, match="float.tif.*integer image"):
        ds["float"]
    with pytest.raises(ValueError, match="size"):
        ds["small"]
    assert ds["ok"].labels.max() == 40  # a good one still reads
    InstanceFolder(images, labels, names=["ok"]).validate()


def test_validate_no_objects_at_all(tmp_path):
    images, labels = make_folder(tmp_path, names=("a", "b"))
    for name in ("a", "b"):
        write_labels(labels / f"{name}.tif", np.zeros((H, W), np.uint16), overwrite=True)
    ds = InstanceFolder(images, labels)
    with pytest.raises(ValueError, match="no objects at all"):
        ds.validate()
    # one object anywhere is enough: background-only images are fine
    write_labels(labels / "b.tif", _labels(0), overwrite=True)
    ds.validate()
    assert ds["a"].labels.max() == 0


def test_labels_above_int32_are_rejected(tmp_path):
    images, labels = make_folder(tmp_path, names=("a",))
    (labels / "a.tif").unlink()
    big = _labels(0).astype(np.int64)
    big[0, 0] = 2**31
    np.save(labels / "a.npy", big)
    with pytest.raises(ValueError, match="above the int32 range"):
        InstanceFolder(images, labels)[0]


# --------------------------------------------------------------------------- split_by_name
def _held_by_rule(name, fraction):
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) / 2**160 < fraction


def test_split_by_name_follows_the_hash_rule_and_ignores_order():
    names = [f"sample_{k:04d}" for k in range(1000)]
    kept, held = split_by_name(names, 0.1)
    assert sorted(kept + held) == list(range(1000))
    assert 0.07 < len(held) / 1000 < 0.13
    assert {names[i] for i in held} == {n for n in names if _held_by_rule(n, 0.1)}
    # order independence and independence from which other names exist
    shuffled = list(np.random.default_rng(0).permutation(names))
    _, held2 = split_by_name(shuffled, 0.1)
    assert {shuffled[i] for i in held2} == {names[i] for i in held}
    subset = names[::3]
    _, held3 = split_by_name(subset, 0.1)
    assert {subset[i] for i in held3} == {names[i] for i in held} & set(subset)
    # deterministic, and monotone in the fraction
    assert split_by_name(names, 0.1) == (kept, held)
    assert set(held) <= set(split_by_name(names, 0.3)[1])
    assert split_by_name(names, 0.0) == (list(range(1000)), [])


def test_split_by_name_tiny_datasets_get_a_held_out_sample():
    names = ["a", "b", "c"]
    assert not any(_held_by_rule(n, 0.01) for n in names)  # the rule alone holds out nothing
    kept, held = split_by_name(names, 0.01)
    hashes = [int(hashlib.sha1(n.encode()).hexdigest(), 16) for n in names]
    assert held == [int(np.argmin(hashes))] and len(kept) == 2
    assert split_by_name(["a"], 0.01) == ([0], [])
    assert split_by_name([], 0.5) == ([], [])
    assert split_by_name(names, 0.0) == ([0, 1, 2], [])
    # never everything held out when there are two or more names
    kept, held = split_by_name(names, 0.999999)
    assert kept == [int(np.argmax(hashes))] and len(held) == 2


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan"), "0.1", True])
def test_split_by_name_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="fraction"):
        split_by_name(["a", "b"], fraction)


# --------------------------------------------------------------------------- DSB2018
def test_dsb2018_splits_with_fake_root(tmp_path, monkeypatch):
    names = [f"nucleus_{k:03d}" for k in range(30)]
    make_folder(tmp_path / "dsb2018" / "train", names=names)
    monkeypatch.setenv("CLUSTERSEG_DATA", str(tmp_path))
    everything = dsb2018(split="all")
    train, test = dsb2018(split="train"), dsb2018(tmp_path, "test")
    assert len(everything) == 30 and len(train) + len(test) == 30 and len(test) >= 1
    assert set(train.names).isdisjoint(test.names)
    assert set(test.names) == {n for n in names if _held_by_rule(n, 0.1)}
    assert len(test) == 4 and train.names == [n for n in names if n not in test.names]
    assert dsb2018(tmp_path / "dsb2018", "test").names == test.names
    assert len(dsb2018(split="test", test_fraction=0.5)) > len(test)
    sample = test[0]
    assert sample.labels.dtype == np.int32 and sample.image.shape == (H, W, 3)
    with pytest.raises(ValueError, match="split"):
        dsb2018(split="val")


def test_dsb2018_missing_data_names_path_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERSEG_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"CLUSTERSEG_DATA") as info:
        dsb2018()
    assert str(tmp_path / "dsb2018" / "train") in str(info.value)


# --------------------------------------------------------------------------- Cityscapes
def _instance_ids(k):
    ids = np.full((H, W), 7, dtype=np.uint16)  # road: class id without instances
    ids[0, 0] = 0
    ids[1:3, 5:8] = 26002  # car 2 appears first in raster order
    ids[3:5, 0:2] = 26001  # car 1
    ids[4:6, 3:5] = 24000 + k  # person (instance 0 or 1)
    ids[5, 7] = 26  # car "group" region without instance id
    return ids


def make_cityscapes(base, split="train"):
    for city, stems in (("aachen", ["aachen_000010_000019", "aachen_000002_000019"]), ("bonn", ["bonn_000000_000019"])):
        for k, stem in enumerate(stems):
            write_image(base / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", _image(k))
            write_labels(base / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png", _instance_ids(k))
    return base


def test_cityscapes_cars(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    ds = cityscapes_instances(root)
    assert isinstance(ds, CityscapesInstances) and ds.class_ids == (26,)
    assert ds.names == ["aachen_000002_000019", "aachen_000010_000019", "bonn_000000_000019"]
    name, image, labels = ds[0]
    expected = np.zeros((H, W), np.int32)
    expected[1:3, 5:8] = 1  # 26002, first in raster order
    expected[3:5, 0:2] = 2  # 26001
    assert labels.dtype == np.int32 and image.shape == (H, W, 3)
    np.testing.assert_array_equal(labels, expected)
    assert ds.class_of(0) == {1: 26, 2: 26}
    ds.validate()


def test_cityscapes_cars_and_persons(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    ds = CityscapesInstances(root, "train", classes=("car", "person"))
    expected = np.zeros((H, W), np.int32)
    expected[1:3, 5:8] = 1
    expected[3:5, 0:2] = 2
    expected[4:6, 3:5] = 3
    for index in range(len(ds)):
        np.testing.assert_array_equal(ds[index].labels, expected)
    assert ds.class_of("bonn_000000_000019") == {1: 26, 2: 26, 3: 24}
    # only persons: a single object, whatever its instance number
    persons = CityscapesInstances(root, classes="person")
    np.testing.assert_array_equal(persons[1].labels, (expected == 3).astype(np.int32))
    assert persons[1:].names == ds.names[1:]
    assert set(CITYSCAPES_INSTANCE_CLASSES) >= {"car", "person", "bicycle"}


def test_cityscapes_errors(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    with pytest.raises(ValueError, match=r"'cars'.*valid classes: person, rider, car"):
        CityscapesInstances(root, classes=("cars",))
    with pytest.raises(FileNotFoundError, match="available splits.*train"):
        CityscapesInstances(root, split="val")
    (root / "gtFine" / "train" / "bonn" / "bonn_000000_000019_gtFine_instanceIds.png").unlink()
    with pytest.raises(ValueError, match="bonn/bonn_000000_000019"):
        CityscapesInstances(root)


def test_split_by_name_salt_gives_an_independent_second_split():
    names = [f"img{i}" for i in range(2000)]
    kept, _ = split_by_name(names, 0.1)
    kept_names = [names[i] for i in kept]
    # Unsalted, the kept part has no name below the threshold: only the tiny-set rule fires.
    assert len(split_by_name(kept_names, 0.1)[1]) == 1
    inner_kept, inner_held = split_by_name(kept_names, 0.1, salt="val")
    assert 0.07 < len(inner_held) / len(kept_names) < 0.13


def test_synthetic_rosettes_are_reproducible_touching_objects():
    from clusterseg.datasets.synthetic import synthetic_rosettes

    a = synthetic_rosettes(3, seed=5, shape=(128, 128))
    b = synthetic_rosettes(3, seed=5, shape=(128, 128))
    assert [s.name for s in a] == [s.name for s in b]
    for (_, ia, la), (_, ib, lb) in zip(a, b):
        assert np.array_equal(ia, ib) and np.array_equal(la, lb)
        assert ia.shape == (128, 128, 3) and ia.dtype == np.uint8 and la.dtype == np.int32
        ids = np.unique(la)
        assert np.array_equal(ids, np.arange(ids.size))  # consecutive 0..n
        assert 4 <= ids.size - 1 <= 16
        # Objects touch: some horizontally adjacent pixels carry two different object labels.
        assert np.any((la[:, 1:] != la[:, :-1]) & (la[:, 1:] > 0) & (la[:, :-1] > 0))
    other = synthetic_rosettes(1, seed=6, shape=(128, 128))[0]
    assert not np.array_equal(other.labels, a[0].labels)
    with pytest.raises(ValueError, match="n_images"):
        synthetic_rosettes(-1)


def test_cityscapes_class_map_marks_classes_and_crowds(tmp_path):
    root = make_cityscapes(tmp_path / "cs")
    ds = CityscapesInstances(root, "train", classes=("car", "person"))
    cm = ds.class_map(0)
    labels = ds[0].labels
    assert cm.dtype == np.int8 and cm.shape == labels.shape
    assert (cm[1:3, 5:8] == 1).all() and (cm[3:5, 0:2] == 1).all()  # cars: first class
    assert (cm[4:6, 3:5] == 2).all()  # person: second class
    assert cm[5, 7] == -1 and labels[5, 7] == 0  # the car group is ignored, not background
    assert cm[0, 1] == 0 and cm[0, 0] == 0  # road and unlabelled: background
    assert set(np.unique(cm[labels > 0])) <= {1, 2} and (cm[labels == 0] <= 0).all()
