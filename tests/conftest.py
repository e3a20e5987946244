"""Shared fixtures: the real MNIST folder (``STN_DATA_DIR``, else ``../shared/data/mnist``)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mnist_dir() -> Path:
    return Path(os.environ.get("STN_DATA_DIR") or ROOT.parent / "shared" / "data" / "mnist")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    folder = _mnist_dir()
    if not (folder / "t10k-images-idx3-ubyte.gz").exists() and not (folder / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found in {folder}; set STN_DATA_DIR to the folder with the four IDX files")
    return folder


@pytest.fixture(scope="session")
def test_digits(mnist_dir):
    """The 10,000 real MNIST test digits as ``(N, 1, 28, 28)`` floats, and their labels."""
    from stn_core.distortions import as_float_images
    from stn_core.mnist import load_mnist

    images, labels = load_mnist("test", mnist_dir, download=False)
    return as_float_images(images), labels
