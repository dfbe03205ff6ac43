"""bfloat16 autocast where supported, float32 fallback (clusterseg.nn.precision) and its use in inference."""

import numpy as np
import pytest
import torch
from skimage.draw import disk

import clusterseg.nn.precision as precision
from clusterseg.instances.api import PRETRAINED_MODELS
from clusterseg.instances.model import SpatialEmbeddingModel
from clusterseg.metrics import match_instances


def test_resolve_precision_follows_hardware(monkeypatch):
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)
    assert precision.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    assert precision.resolve_precision("auto") == "float32"
    assert precision.resolve_precision("bfloat16") == "bfloat16"  # explicit requests are honoured
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("half")


def test_autocast_runs_convolutions_in_the_chosen_dtype(monkeypatch):
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with precision.autocast("cpu", "bfloat16"):
        assert conv(x).dtype == torch.bfloat16
    with precision.autocast("cpu", "float32"):
        assert conv(x).dtype == torch.float32
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    with precision.autocast("cpu", "auto"):  # the fallback on CPUs without native bfloat16
        assert conv(x).dtype == torch.float32


def _image():
    rng = np.random.default_rng(0)
    image = (rng.random((96, 128)) * 30).astype(np.uint8)
    for r, c in [(30, 30), (30, 90), (70, 60), (60, 100)]:
        image[disk((r, c), 11)] = 200
    return image


def test_instance_maps_in_bf16_agree_with_float32():
    """Stated tolerance: embeddings within 1 px (1/1024 units), sigma within 0.03, seeds within 0.05,
    and the same objects (IoU >= 0.9) after clustering."""
    model = SpatialEmbeddingModel.load(PRETRAINED_MODELS["dsb2018-nuclei"])
    image = _image()
    full = model.predict_maps(image, channel_axis=None, precision="float32")
    half = model.predict_maps(image, channel_axis=None, precision="bfloat16")
    assert np.abs(full["embedding"] - half["embedding"]).max() < model.pixel_size
    assert np.abs(full["sigma"] - half["sigma"]).max() < 0.03
    assert np.abs(full["seed"] - half["seed"]).max() < 0.05
    a, _ = model.segment(image, channel_axis=None, precision="float32")
    b, _ = model.segment(image, channel_axis=None, precision="bfloat16")
    assert a.max() == b.max() == 4
    match = match_instances(a, b, iou_threshold=0.9)
    assert match.tp == 4


def test_float32_fallback_is_exactly_float32(monkeypatch):
    model = SpatialEmbeddingModel(width=0.25).eval()
    image = _image()
    exact = model.predict_maps(image, channel_axis=None, precision="float32")
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    auto = model.predict_maps(image, channel_axis=None, precision="auto")
    for key in exact:
        assert np.array_equal(exact[key], auto[key])


def _two_colour_image(h=32, w=40):
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.float32)
    img[:, w // 2:] = [0.9, 0.2, 0.1]
    img[:, : w // 2] = [0.1, 0.3, 0.8]
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


def test_dsc_precision_auto_falls_back_to_float32_and_bf16_splits_the_halves(monkeypatch):
    from clusterseg.unsupervised import deep_superpixel_cut

    fast = dict(n_superpixels=20, ae_iter=10, max_iter=8, min_iter=2, width=8, n_features=8, max_side=None)
    img = _two_colour_image()
    ref = deep_superpixel_cut(img, 2, precision="float32", **fast)
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    auto = deep_superpixel_cut(img, 2, precision="auto", **fast)
    np.testing.assert_array_equal(auto.labels, ref.labels)
    np.testing.assert_array_equal(auto.probabilities, ref.probabilities)
    bf = deep_superpixel_cut(img, 2, precision="bfloat16", **fast)
    assert bf.embedding.dtype == np.float32 and bf.labels.shape == img.shape[:2]
    assert bf.labels[0, 0] != bf.labels[0, -1]
    with pytest.raises(ValueError, match="precision"):
        deep_superpixel_cut(img, 2, precision="half", **fast)


def test_spwnet_precision_option(monkeypatch):
    from clusterseg.unsupervised import SPWNetModel

    img = _two_colour_image()
    opts = dict(ch_mul=4, n_blocks=2, n_superpixels=20, patch_sizes=(16,), n_batches=2, max_side=None)
    ref = SPWNetModel(2, precision="float32", **opts).fit([img], epochs=1).predict_logits(img)[0]
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    auto = SPWNetModel(2, precision="auto", **opts).fit([img], epochs=1).predict_logits(img)[0]
    np.testing.assert_array_equal(auto, ref)
    bf = SPWNetModel(2, precision="bfloat16", **opts).fit([img], epochs=1).predict_logits(img)[0]
    assert bf.dtype == np.float32 and bf.shape == ref.shape and np.isfinite(bf).all()
    with pytest.raises(ValueError, match="precision"):
        SPWNetModel(2, precision="fp16", **opts)


def test_channels_last_forward_equals_the_contiguous_network():
    torch.manual_seed(0)
    model = SpatialEmbeddingModel(width=0.25).eval()
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        fast = model(x)
        plain = model.net(x.contiguous())
    assert fast.shape == plain.shape == (2, 5, 40, 56)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(fast, plain, atol=1e-5)
    # gradients flow through the layout change
    model.train()
    x.requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
