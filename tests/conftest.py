"""Shared fixtures: the 1,000 digits that ship with the library, the full MNIST folder
(``STN_DATA_DIR``, else ``../shared/data/mnist``; tests that need it skip without it),
and untrained models laid out as ``pretrained/`` is. Shared helpers: ``tests/helpers.py``."""

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
def sample_digits():
    """The 1,000 real MNIST test digits shipped with the library, as ``(N, 1, 28, 28)``
    floats, and their labels: no download, no ``STN_DATA_DIR`` needed."""
    from stn_core.distortions import as_float_images
    from stn_core.mnist import load_sample

    images, labels, _ = load_sample()
    return as_float_images(images), labels


# Untrained but complete models, one per kind the app serves: enough to exercise every
# handler without depending on the shipped weights (tests of those live in test_pretrained).
APP_MODELS = [
    ("full-st-cnn-affine", "FULL", {"model": "st-cnn", "transform": "affine", "canvas_size": 42, "batch_norm": True}),
    ("full-cnn", "FULL", {"model": "cnn", "canvas_size": 42, "batch_norm": True}),
    ("rts-st-cnn-affine", "RTS", {"model": "st-cnn", "transform": "affine", "canvas_size": 42, "batch_norm": True}),
    ("rts-cnn", "RTS", {"model": "cnn", "canvas_size": 42, "batch_norm": True}),
    ("tc-st-cnn-attention", "TC", {"model": "st-cnn", "transform": "attention", "canvas_size": 60, "output_size": 30}),
    ("tc-cnn", "TC", {"model": "cnn", "canvas_size": 60}),
    ("e-st-cnn-tps", "E", {"model": "st-cnn", "transform": "tps", "canvas_size": 28}),
    ("p-st-cnn-projective", "P", {"model": "st-cnn", "transform": "projective", "canvas_size": 28}),
]
# The "Several digits" view's two recurrent models and sequence CNN, and the "Two digits
# summed" view's parallel-transformer model and addition CNN: (slug, MultiConfig fields).
APP_TASK_MODELS = [
    ("sequence-glimpse-rnn", {"task": "sequence", "model": "glimpse-rnn"}),
    ("sequence-rnn-spn", {"task": "sequence", "model": "rnn-spn"}),
    ("sequence-cnn", {"task": "sequence", "model": "cnn"}),
    ("addition-2st-fcn-sum", {"task": "addition", "model": "parallel-st", "head": "digit-sum"}),
    ("addition-cnn-sum", {"task": "addition", "model": "cnn", "head": "digit-sum"}),
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A folder of untrained models with their cards, as ``pretrained/`` is laid out."""
    import torch

    from stn_core.checkpoints import save_model
    from stn_core.models import build_model
    from stn_core.multi import MultiConfig, build_multi_model

    folder = tmp_path_factory.mktemp("models")
    for seed, (name, regime, architecture) in enumerate(APP_MODELS):
        torch.manual_seed(seed)
        model = build_model(architecture)
        save_model(model, folder / f"{name}.safetensors", name=name, regime=regime)
    for seed, (name, fields) in enumerate(APP_TASK_MODELS):
        torch.manual_seed(seed)
        config = MultiConfig(**fields)
        assert config.slug == name, (config.slug, name)
        save_model(build_multi_model(config), folder / f"{name}.safetensors", name=name, task=config.task)
    return folder


@pytest.fixture(scope="session")
def lab(model_dir):
    from stn_lab.lab import Lab
    from stn_lab.service import InferenceService

    return Lab(InferenceService(model_dir, device="cpu"))


@pytest.fixture(scope="session")
def shipped_lab():
    """The page's handlers over the shipped models (``pretrained/``), as a user runs it."""
    from stn_lab.lab import Lab
    from stn_lab.service import InferenceService

    return Lab(InferenceService(device="cpu"))


@pytest.fixture(scope="session")
def served_app(lab):
    """The whole app over :func:`lab`, served as ``app.launch`` serves it (the live channel
    at ``/live`` included) on a free local port: ``served_app.url``, ``served_app.demo``."""
    import types

    import app
    from tests.helpers import free_port

    demo = app.build_app(lab)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{port}/", demo=demo, hub=demo.live_hub)
    demo.close()
