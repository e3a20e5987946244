import json

import pytest
import torch

from stn_core import load
from stn_core.checkpoints import CheckpointError, card_path, save_model
from stn_core.models import build_model


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model({"model": "st-cnn", "canvas_size": 28, "transform": "tps"})
    path = tmp_path / "e-st-cnn-tps.safetensors"
    save_model(model, path, {"name": "e-st-cnn-tps", "regime": "E", "canvas_size": 28})
    return model, path


def test_round_trip(saved):
    model, path = saved
    loaded = load(path)
    assert not loaded.training
    images = torch.rand(3, 1, 28, 28)
    model.eval()
    assert torch.equal(loaded(images), model(images))
    card = json.loads(card_path(path).read_text())
    assert card["architecture"] == {
        "model": "st-cnn", "canvas_size": 28, "hidden": 0, "batch_norm": False, "transform": "tps", "output_size": 28, "tps_grid_size": 4,
    }
    assert card["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert len(card["weights_sha256"]) == 64
    assert loaded.card["regime"] == "E"
    assert load(card_path(path)).canvas_size == 28  # the card's path works too


def test_tampered_weights_are_refused(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        load(path)


def test_missing_card(saved):
    _, path = saved
    card_path(path).unlink()
    with pytest.raises(CheckpointError, match="model card missing"):
        load(path)


def test_card_that_does_not_fit_the_weights(saved):
    _, path = saved
    card = json.loads(card_path(path).read_text())
    card["architecture"]["canvas_size"] = 42
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not match its model card"):
        load(path)
