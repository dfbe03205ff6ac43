"""The shipped ``dsb2018-nuclei`` model: packaged, loadable, and it finds nuclei in a synthetic image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk

import clusterseg
from clusterseg.instances import PRETRAINED_MODELS, load_instance_model
from clusterseg.metrics import match_instances


def _synthetic_nuclei(seed: int = 0, size: int = 160):
    """Bright, slightly blurred, noisy discs on a dark background, two of them touching."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((size, size), np.int32)
    centres = [(30, 30), (30, 80), (40, 130), (90, 40), (95, 95), (95, 113), (135, 60), (130, 130)]
    for k, (r, c) in enumerate(centres, start=1):
        rr, cc = disk((r, c), 9 + (k % 3), shape=truth.shape)
        truth[rr, cc] = k
    image = ndimage.gaussian_filter((truth > 0).astype(float), 1.0) * 160 + 20
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def test_shipped_model_is_packaged_and_documented():
    path = PRETRAINED_MODELS["dsb2018-nuclei"]
    assert path.is_file() and path.stat().st_size < 5_000_000
    model = load_instance_model("dsb2018-nuclei")
    assert model.n_classes == 1 and "DSB2018" in model.metadata.get("data", "")
    assert model.metadata["val_dsb50_tuned"] > 0.7


@pytest.mark.parametrize("as_rgb", [False, True])
def test_shipped_model_finds_synthetic_nuclei(as_rgb):
    image, truth = _synthetic_nuclei()
    if as_rgb:
        image = np.repeat(image[..., None], 3, axis=-1)
    labels, scores = clusterseg.instances(image, channel_axis=-1 if as_rgb else None)
    assert labels.shape == truth.shape and labels.dtype == np.int32
    assert len(scores) == labels.max() + 1 and np.all((scores[1:] > 0) & (scores[1:] <= 1))
    m = match_instances(labels, truth, iou_threshold=0.5)
    assert (m.tp, m.fp, m.fn) == (8, 0, 0)  # including the two touching nuclei
    assert m.mean_matched_iou > 0.85


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="neither a shipped model"):
        clusterseg.instances(np.zeros((32, 32), np.uint8), model="no-such-model", channel_axis=None)
