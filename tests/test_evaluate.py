import json

import pytest
import torch

from stn_core.cards import ModelCard, TrainingRecord
from stn_core.checkpoints import read_card, save_model
from stn_core.distortions import REGIMES
from stn_core.evaluate import PAPER_TABLE, error_rate, main, pretrained_readme, regime_test_set, results_table
from stn_core.models import ModelConfig, build_model


def _card(regime, model, transform=None, **fields) -> ModelCard:
    config = ModelConfig(model, REGIMES[regime].canvas_size, transform=transform)
    name = f"{regime.lower()}-{model}"
    return ModelCard(name, regime, config, fields.pop("parameter_count", 1), "0" * 64, **fields)


class Oracle(torch.nn.Module):
    """Answers from a lookup table: makes the expected error rate known exactly."""

    def __init__(self, answers):
        super().__init__()
        self.answers = answers
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.seen = 0

    def forward(self, x):
        part = self.answers[self.seen : self.seen + x.shape[0]]
        self.seen += x.shape[0]
        return torch.nn.functional.one_hot(part, 10).float()


def test_error_rate_counts_mistakes():
    labels = torch.arange(1000) % 10
    answers = labels.clone()
    answers[:37] = (answers[:37] + 1) % 10
    assert error_rate(Oracle(answers), torch.zeros(1000, 1, 28, 28), labels, batch_size=300) == pytest.approx(3.7)


def test_labels_follow_the_paper():
    assert _card("R", "cnn").label == "CNN"
    assert _card("R", "st-cnn", "tps").label == "ST-CNN TPS"
    assert _card("R", "st-fcn", "affine").label == "ST-FCN Aff"
    assert set(PAPER_TABLE["ST-CNN Aff"]) == {"R", "RTS", "P", "E", "TC"}


def test_table_layout_puts_each_model_under_its_regime():
    cards = {"a": _card("R", "cnn"), "b": _card("RTS", "cnn"), "c": _card("R", "st-cnn", "affine")}
    results = {"a": {"R": 1.0, "P": 9.0}, "b": {"RTS": 0.5}, "c": {"R": 0.25}}
    table = results_table(results, cards, show_paper=True).splitlines()
    assert table[0] == "| model | R | RTS |"
    assert table[2] == "| CNN | 1.00 (1.2) | 0.50 (0.8) |"
    assert table[3] == "| ST-CNN Aff | 0.25 (0.7) | — (0.5) |"  # the paper's number even where ours is missing


def test_pretrained_readme_reports_each_models_training_cost():
    training = TrainingRecord(
        epochs=40,
        epochs_planned=40,
        images_seen=2396160,
        wall_time_s=1590,
        device="cpu (1 thread)",
        processes=1,
        optimizer="adam",
        lr=1e-3,
        loc_lr=1e-3,
        batch_size=256,
        weight_decay=1e-4,
        seed=0,
        train_digits=60000,
        command="python -m stn_core.train",
    )
    card = _card(
        "R", "st-cnn", "affine", parameter_count=132698, test_error={"R": 0.75}, sample_error={"R": 0.9}, training=training
    )
    readme = pretrained_readme({"pretrained/r-st-cnn-affine.safetensors": card}).splitlines()
    assert "| ST-CNN Aff | 0.75 (0.7) |" in readme
    row = (
        "| ST-CNN Aff (R) | `r-st-cnn-affine.safetensors` | 132,698 | 40 | 0.0001 | 2,396,160 | 26 min | cpu (1 thread) | R 0.9 |"
    )
    assert row in readme


@pytest.mark.slow
def test_command_line_end_to_end(mnist_dir, tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "r-cnn.safetensors"
    model = build_model({"model": "cnn", "canvas_size": 28})
    save_model(model, path, name="r-cnn", regime="R", test_error={})
    out = tmp_path / "results.json"
    assert (
        main([str(path), "--regimes", "R", "P", "RTS", "--json", str(out), "--data-dir", str(mnist_dir), "--update-cards"]) == 0
    )
    results = json.loads(out.read_text())
    assert list(results) == [str(path)] and set(results[str(path)]) == {"R", "P"}  # RTS needs a 42x42 input
    images, labels = regime_test_set("R", mnist_dir)
    assert results[str(path)]["R"] == pytest.approx(error_rate(model.eval(), images, labels))
    printed = capsys.readouterr().out
    assert "| CNN |" in printed and f"{results[str(path)]['R']:.2f}" in printed
    card = read_card(path)
    assert card.test_error["P"] == pytest.approx(results[str(path)]["P"], abs=1e-4)
    assert set(card.sample_error) == {"R", "P"} and 0 <= card.sample_error["R"] <= 100 and card.test_digits == 10000
