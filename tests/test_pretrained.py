"""The shipped models in pretrained/: loadable, honest cards, numbers that reproduce."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

from stn_core import load
from stn_core.cards import model_slug
from stn_core.checkpoints import read_card
from stn_core.distortions import REGIMES
from stn_core.evaluate import (
    cards_table,
    error_rate,
    pretrained_readme,
    regime_test_set,
    replace_results_section,
    sample_test_set,
    task_sample_set,
    task_test_set,
)
from stn_core.mnist import TEST_DIGITS
from stn_core.models import build_model, count_parameters
from stn_core.multi import TASKS, MultiConfig, build_multi_model, task_errors
from stn_core.train import parse_args, recipe

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
SHIPPED = sorted(PRETRAINED.glob("*.safetensors"))
IDS = [p.stem for p in SHIPPED]


def test_the_apps_default_pair_ships_and_the_weights_fit_in_40_mb_with_each_file_under_10_mb():
    names = {p.stem for p in SHIPPED}
    assert {"full-st-cnn-affine", "full-cnn", "rts-st-cnn-affine", "rts-cnn"} <= names
    assert sum(p.stat().st_size for p in SHIPPED) <= 40 * 1024 * 1024
    assert max(p.stat().st_size for p in SHIPPED) < 10 * 1024 * 1024  # a Space then needs no Git LFS


@pytest.mark.parametrize("weights", SHIPPED, ids=IDS)
def test_loads_and_its_card_matches_its_tensors(weights):
    model = load(weights)
    card = json.loads(weights.with_suffix(".json").read_text())
    assert not model.training
    for key in ("epochs", "images_seen", "wall_time_s", "device", "command"):
        assert key in card["training"], key
    assert model.card == read_card(weights) and model.card.to_json() == weights.with_suffix(".json").read_text()
    assert card["test_digits"] == TEST_DIGITS
    if "task" in card:  # a several-digit model (stn_core.multi)
        task = TASKS[card["task"]]
        config = MultiConfig.from_dict(card["architecture"])
        assert card["canvas_size"] == task.canvas_size
        assert card["parameter_count"] == count_parameters(model) == count_parameters(build_multi_model(config))
        assert set(card["test_error"]) == set(task.metrics) and model.card.name == weights.stem == config.slug
        logits = model(torch.rand(3, task.channels, task.canvas_size, task.canvas_size))
        assert logits.shape == ((3, task.classes) if task.heads == 1 else (3, task.heads, task.classes))
        return
    assert card["canvas_size"] == model.canvas_size == REGIMES[card["regime"]].canvas_size
    assert card["parameter_count"] == count_parameters(model) == count_parameters(build_model(card["architecture"]))
    assert card["regime"] in card["test_error"]
    assert model.card.name == weights.stem == model_slug(model.card.regime, model.config)
    size = model.canvas_size
    logits = model(torch.rand(3, 1, size, size))
    assert logits.shape == (3, 10)


@pytest.mark.slow
@pytest.mark.parametrize("weights", SHIPPED, ids=IDS)
def test_error_on_the_shipped_sample_matches_the_card(weights):
    model = load(weights)
    if model.card.task is not None:
        measured = task_errors(model, *task_sample_set(model.card.task))
        assert model.card.sample_error and set(model.card.sample_error) == set(measured)
        for metric, recorded in model.card.sample_error.items():
            assert abs(measured[metric] - recorded) <= 0.1 + 1e-9, (metric, measured[metric], recorded)
        return
    for regime, recorded in model.card.sample_error.items():
        measured = error_rate(model, *sample_test_set(regime))
        assert abs(measured - recorded) <= 0.1 + 1e-9, (regime, measured, recorded)  # one digit in 1,000


@pytest.mark.slow
@pytest.mark.parametrize("weights", SHIPPED, ids=IDS)
def test_full_test_set_reproduces_every_recorded_cell(weights, mnist_dir):
    model = load(weights)
    if model.card.task is not None:
        measured = task_errors(model, *task_test_set(model.card.task, mnist_dir))
        for metric, recorded in model.card.test_error.items():
            assert measured[metric] == pytest.approx(recorded, abs=1e-3), metric
        return
    for regime, recorded in model.card.test_error.items():
        assert error_rate(model, *regime_test_set(regime, mnist_dir)) == pytest.approx(recorded, abs=1e-3), regime


def test_readmes_are_generated_from_the_cards():
    cards = {str(p): read_card(p) for p in SHIPPED}
    assert (PRETRAINED / "README.md").read_text() == pretrained_readme(cards)
    readme = (PRETRAINED.parent / "README.md").read_text()
    assert replace_results_section(readme, cards_table(cards)) == readme


def test_torch_hub_returns_a_shipped_model():
    model = torch.hub.load(str(PRETRAINED.parent), "rts_st_cnn_affine", source="local", trust_repo=True)
    assert model.card.name == "rts-st-cnn-affine" and not model.training


def _recipe(command_line: str) -> tuple[str, dict]:
    """``(name, recipe)`` of a ``[python] -m stn_core.train ...`` command line."""
    args = parse_args(shlex.split(command_line.partition("-m stn_core.train ")[2]))
    return args.name, recipe(args)


def test_the_readmes_train_the_table_loop_reproduces_every_shipped_recipe():
    readme = (PRETRAINED.parent / "README.md").read_text()
    [script] = [block for block in re.findall(r"```bash\n(.*?)```", readme, re.S) if "for run in" in block]
    # Run the README's own loop with python echoed and cp silenced: it prints the commands it would run.
    echoed = subprocess.run(
        ["bash", "-c", 'python() { echo "$*"; }; cp() { :; }\n' + script], capture_output=True, text=True, check=True
    ).stdout
    readme_runs = dict(_recipe(line) for line in echoed.splitlines() if line.startswith("-m stn_core.train "))
    assert sorted(readme_runs) == IDS
    for weights in SHIPPED:
        name, shipped = _recipe(read_card(weights).training.command)
        assert name == weights.stem and shipped == readme_runs[name], name
