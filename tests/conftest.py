"""Shared fixtures: small deterministic synthetic images (tests never read ../shared/data)."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    """Tests use tiny tensors: one thread avoids OpenMP oversubscription on shared CI cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_blocks_image(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """RGB uint8 image of four flat colour quadrants plus mild noise, and its true labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), dtype=np.int32)
    labels[: height // 2, width // 2 :] = 1
    labels[height // 2 :, : width // 2] = 2
    labels[height // 2 :, width // 2 :] = 3
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40]], dtype=float)
    image = colours[labels] + rng.normal(0, 4, size=(height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), labels


@pytest.fixture
def blocks_image():
    image, _ = make_blocks_image()
    return image


@pytest.fixture
def blocks_image_and_labels():
    return make_blocks_image()


def recovered(labels: np.ndarray, truth: np.ndarray, purity: float = 0.95) -> bool:
    """Each of the two true regions is dominated (>= purity) by one label, and the two labels differ."""
    majority = []
    for region in (0, 1):
        values, counts = np.unique(labels[truth == region], return_counts=True)
        if counts.max() / counts.sum() < purity:
            return False
        majority.append(values[counts.argmax()])
    return majority[0] != majority[1]
