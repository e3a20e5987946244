import json

import pytest
import torch

from stn_core import load
from stn_core.cards import ModelCard, model_slug
from stn_core.checkpoints import CheckpointError, card_path, read_card, save_model
from stn_core.models import build_model


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model({"model": "st-cnn", "canvas_size": 28, "transform": "tps"})
    path = tmp_path / "e-st-cnn-tps.safetensors"
    save_model(model, path, name="e-st-cnn-tps", regime="E")
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
        "model": "st-cnn",
        "canvas_size": 28,
        "hidden": 0,
        "batch_norm": False,
        "transform": "tps",
        "output_size": 28,
        "tps_grid_size": 4,
    }
    assert card["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert len(card["weights_sha256"]) == 64
    assert loaded.card.regime == "E" and loaded.config == model.config
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
    card["architecture"]["tps_grid_size"] = 3  # a valid card, for other weights
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not match its model card"):
        load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda card: card.pop("regime"), "regime: missing field"),
        (lambda card: card["training"].pop("epochs"), r"training\.epochs: missing field"),
        (lambda card: card.update(parameter_count="42"), "parameter_count must be an integer, got '42'"),
        (lambda card: card["architecture"].update(hidden=1.5), r"architecture\.hidden must be an integer, got 1\.5"),
        (lambda card: card["architecture"].update(model="resnet"), r"architecture\.model: unknown model 'resnet'"),
        (lambda card: card["architecture"].pop("canvas_size"), r"architecture\.canvas_size: missing field"),
        (lambda card: card["test_error"].update(E="0.5"), r"test_error\.E must be a number"),
        (lambda card: card.update(label="CNN"), "label: the card says 'CNN', its architecture makes it 'ST-CNN TPS'"),
        (lambda card: card.update(canvas_size=42), "canvas_size: the card says 42"),
        (lambda card: card.update(regime="RTS"), "regime: RTS draws 42x42 canvases, but architecture.canvas_size is 28"),
        (lambda card: card.update(name="E TPS"), "name must be a slug"),
        (lambda card: card.update(colour="red"), "colour: unknown field"),
        (lambda card: card.update(angle_error={"190": 1.0}), "angle_error: '190' is not a whole angle"),
        (lambda card: card.update(angle_error={"15": None}), r"angle_error\.15 must be a number"),
        (lambda card: card["training"].update(init=7), r"training\.init must be a string"),
    ],
    ids=[
        "no-regime",
        "no-epochs",
        "string-count",
        "float-hidden",
        "bad-model",
        "no-canvas",
        "string-error",
        "label",
        "canvas",
        "regime-canvas",
        "name",
        "unknown",
        "angle-range",
        "angle-error",
        "init",
    ],
)
def test_a_bad_card_is_refused_naming_the_field(saved, change, message):
    _, path = saved
    card = json.loads(card_path(path).read_text())
    card["training"] = {
        "epochs": 1,
        "epochs_planned": 1,
        "images_seen": 256,
        "wall_time_s": 1.0,
        "device": "cpu (1 thread)",
        "processes": 1,
        "optimizer": "adam",
        "lr": 0.001,
        "loc_lr": 0.001,
        "batch_size": 256,
        "weight_decay": 0.0,
        "seed": 0,
        "train_digits": 60000,
        "command": "python -m stn_core.train",
    }
    card_path(path).write_text(json.dumps(card))
    assert load(path).card.training.epochs == 1  # the complete card loads
    change(card)
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=message):
        load(path)


def test_card_json_round_trips_and_keeps_the_field_order(saved):
    _, path = saved
    text = card_path(path).read_text()
    card = read_card(path)
    assert card.to_json() == text and ModelCard.from_json(text) == card
    assert list(json.loads(text))[:4] == ["name", "label", "regime", "canvas_size"]
    assert card.label == "ST-CNN TPS" and card.display_name == "E · ST-CNN TPS" and card.name == model_slug("E", card.config)


def test_weights_stored_in_float16_take_half_the_bytes_and_load_into_a_float32_model(tmp_path):
    from stn_core.checkpoints import store_float16
    from stn_core.multi import MultiConfig, build_multi_model

    torch.manual_seed(0)
    model = build_multi_model(MultiConfig("addition", "parallel-st", head="digit-sum")).eval()
    path = tmp_path / "addition-2st-fcn-sum.safetensors"
    save_model(model, path, name="addition-2st-fcn-sum", task="addition", test_error={"sum": 1.0})
    before = path.stat().st_size
    card = store_float16(path)
    assert path.stat().st_size < 0.51 * before and card.test_error == {"sum": 1.0}
    loaded = load(path)  # the card's SHA-256 was updated with the file
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(4, 2, 42, 42)
    assert torch.allclose(loaded(x), model(x), atol=1e-2) and not torch.equal(loaded(x), model(x))
