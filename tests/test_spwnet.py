"""SP-WNet: WNet shapes, patch sampler, training on tiny images, save/load, sequences."""

import numpy as np
import pytest
import tifffile
import torch

from clusterseg.nn.wnet import UNet, WNet
from clusterseg.unsupervised import PatchSampler, SPWNetModel, segment, segment_sequence
from clusterseg.unsupervised.api import _train_indices
from conftest import recovered

TINY = dict(ch_mul=4, n_blocks=2, max_side=None, n_superpixels=24, patch_sizes=(16, 24), n_batches=4, lr=5e-3)


def two_regions(h=32, w=48, seed=0, swap=False):
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), int)
    truth[:, w // 2:] = 1
    colours = np.array([[0.9, 0.15, 0.1], [0.1, 0.25, 0.95]])
    if swap:
        colours = colours[::-1]
    img = colours[truth] + rng.normal(0, 0.03, (h, w, 3))
    return np.clip(img, 0, 1).astype(np.float32), truth


def test_unet_wnet_shapes_and_multiple():
    net = WNet(3, n_classes=5, ch_mul=2, n_blocks=3)
    logits, rec = net(torch.zeros(2, 3, 16, 24))
    assert logits.shape == (2, 5, 16, 24) and rec.shape == (2, 3, 16, 24)
    assert net.multiple == 8
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 3, 12, 16))
    u = UNet(1, 2, ch_mul=2, n_blocks=1)
    assert u(torch.zeros(1, 1, 4, 6)).shape == (1, 2, 4, 6)
    with pytest.raises(ValueError):
        WNet(3, n_classes=1)


def test_decoder_reads_softmax_of_encoder():
    net = WNet(3, n_classes=3, ch_mul=2, n_blocks=1).eval()
    x = torch.rand(1, 3, 8, 8)
    logits, rec = net(x)
    assert torch.allclose(rec, net.decoder(torch.softmax(logits, 1)))


def test_patch_sampler_counts_and_sizes():
    img = torch.arange(3 * 40 * 50, dtype=torch.float32).reshape(3, 40, 50)
    s = PatchSampler([img, img], sizes=(16, 24), n_batches=3, multiple=8, random_state=0)
    steps = list(s.epoch())
    assert len(steps) == 3
    per_img = steps[0][0]
    shapes = sorted((tuple(b.shape[-2:]), b.shape[0]) for b in per_img)
    # pixels per batch kept at 24*24*4: 16x16 -> 9, 16x24 / 24x16 -> 6, 24x24 -> 4
    assert shapes == [((16, 16), 9), ((16, 24), 6), ((24, 16), 6), ((24, 24), 4)]
    # every patch is a (possibly flipped/rotated) crop of the image: its values are a subset
    vals = set(img.flatten().tolist())
    assert set(per_img[0].flatten().tolist()) <= vals
    # sampled once: a second epoch reuses the same patch set (reshuffled)
    a = torch.cat([b[0].flatten() for b in steps[0][0]])
    all2 = torch.cat([torch.cat([b.flatten() for b in st[0]]) for st in s.epoch()])
    assert torch.isin(a, all2).all()
    # patches larger than the image are clipped to it (multiple of 8)
    small = PatchSampler([torch.zeros(3, 20, 20)], sizes=(32,), n_batches=1, multiple=8)
    assert next(iter(small.epoch()))[0][0].shape[-2:] == (16, 16)


def test_spwnet_fit_predict_recovers_two_regions():
    img, truth = two_regions()
    model = SPWNetModel(2, **TINY, beta_cut=1.0).fit([img], epochs=3)
    lab = model.predict(img)
    assert lab.shape == truth.shape and lab.dtype == np.int32
    assert lab.min() >= 0 and lab.max() < 2
    assert recovered(lab, truth)
    hist = model.history[-1]
    assert set(hist) == {"img", "patch", "cut", "sim", "con", "loss"}
    assert np.isfinite(hist["loss"])
    # pixel argmax mode and working-resolution output
    assert model.predict(img, use_superpixels=False).shape == truth.shape


def test_spwnet_save_load_round_trip(tmp_path):
    img, _ = two_regions()
    model = SPWNetModel(3, **TINY).fit([img], epochs=1)
    path = tmp_path / "m.pt"
    model.save(path)
    loaded = SPWNetModel.load(path)
    assert loaded.config == model.config
    assert np.array_equal(loaded.predict(img), model.predict(img))
    for a, b in zip(model.net.state_dict().values(), loaded.net.state_dict().values()):
        assert torch.equal(a, b)
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="checkpoint"):
        SPWNetModel.load(tmp_path / "bad.pt")


def test_spwnet_errors():
    with pytest.raises(ValueError, match="n_classes"):
        SPWNetModel(1)
    with pytest.raises(TypeError, match="unknown"):
        SPWNetModel(3, not_an_option=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        SPWNetModel(3, **TINY).predict(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(RuntimeError, match="unfitted"):
        SPWNetModel(3, **TINY).save("x.pt")
    with pytest.raises(ValueError, match="epochs"):
        SPWNetModel(3, **TINY).fit([np.zeros((16, 16, 3), np.float32)], epochs=0)


def test_segment_spwnet_single_image():
    img, truth = two_regions()
    lab = segment(img, n_segments=3, method="spwnet", max_iter=8, **TINY)
    assert lab.shape == truth.shape and lab.dtype == np.int32
    assert np.array_equal(np.unique(lab), np.arange(lab.max() + 1)) and lab.max() < 3


def test_segment_sequence_consistent_ids_and_volume(tmp_path):
    frames = []
    for i in range(5):
        img, _ = two_regions(seed=i)
        frames.append(img)
    video = np.stack(frames)  # (T, H, W, 3)
    labels, model = segment_sequence(video, 2, train_on=2, epochs=3, return_model=True, **TINY)
    assert labels.shape == video.shape[:3] and labels.dtype == np.int32
    # same content in every frame -> same class ids everywhere
    assert all(np.array_equal(labels[0][:, :20], labels[i][:, :20]) for i in range(5))
    # a fitted model applies to new frames with consistent ids: swapped colours swap classes
    swapped, truth = two_regions(seed=9, swap=True)
    lab_sw = model.predict(swapped)
    assert lab_sw[0, 0] == labels[0][0, -1] and lab_sw[0, -1] == labels[0][0, 0]
    # greyscale volume from a TIFF stack, sliced along axis 2
    vol = (video.mean(-1) * 255).astype(np.uint8)  # (T, H, W)
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, np.moveaxis(vol, 0, 2))  # stored as (H, W, T)
    out = segment_sequence(str(path), 3, axis=2, model=model)
    assert out.shape == (5, 32, 48)
    calls = []
    segment_sequence(list(frames[:2]), 3, model=model, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]


def test_segment_sequence_bad_input():
    with pytest.raises(ValueError, match="3-D"):
        segment_sequence(np.zeros((4, 4)), 3)
    with pytest.raises(ValueError, match="spwnet"):
        segment_sequence(np.zeros((2, 16, 16)), 3, method="dsc")
    with pytest.raises(FileNotFoundError):
        segment_sequence("/nonexistent/stack.tif", 3)
    with pytest.raises(ValueError, match="out of range"):
        _train_indices([0, 7], 5)
    assert _train_indices(2, 5) == [1, 3]
    assert _train_indices(9, 3) == [0, 1, 2]


def test_preprocess_unsharp_stays_in_unit_range():
    rng = np.random.default_rng(0)
    img = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    model = SPWNetModel(3, **(TINY | dict(max_side=30)), unsharp_radius=5.0, unsharp_amount=1.0)
    rgb = model.preprocess(img)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.float32
    assert np.isfinite(rgb).all() and rgb.min() >= 0.0 and rgb.max() <= 1.0


def test_fit_sequence_model_then_apply(tmp_path):
    from clusterseg.unsupervised import fit_sequence_model, iter_segment_sequence

    video = np.stack([two_regions(seed=i)[0] for i in range(3)])
    model = fit_sequence_model(video, 2, train_on=[0, -1], epochs=1, **TINY)
    assert model.fitted and model.config.n_classes == 2
    model.save(tmp_path / "seq.pt")
    out = list(iter_segment_sequence(video, model=SPWNetModel.load(tmp_path / "seq.pt")))
    assert [i for i, _ in out] == [0, 1, 2] and out[0][1].shape == (32, 48)
