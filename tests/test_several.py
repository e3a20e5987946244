"""The "Several digits" view's logic (stn_lab.several) over untrained sequence models."""

import re

import numpy as np
import pytest
import torch

from stn_core.geometry import Affine
from stn_core.multi import compose_sequence, initial_crops
from stn_lab.lab import LabError
from stn_lab.rendering import GLIMPSE_COLOURS, glimpses_svg
from stn_lab.several import OWN, ROOM, Scene, SeveralDigits, canvas_html, glimpses_html, readout_html


@pytest.fixture(scope="module")
def several(lab):
    assert isinstance(lab.several, SeveralDigits)
    return lab.several


def test_the_menu_holds_the_shipped_recurrent_models_best_first(several):
    assert [slug for _, slug in several.choices()] == ["sequence-glimpse-rnn", "sequence-rnn-spn"]
    assert several.cnn is not None


def test_a_random_scene_is_the_same_for_a_seed_and_lies_on_the_canvas(several):
    scene = several.random_scene(3)
    assert scene == several.random_scene(3) and scene != several.random_scene(4)
    assert all(0 <= v <= ROOM for place in scene.places for v in place)
    xs = [x for x, _ in scene.places]
    assert xs == sorted(xs)  # the task's layout: left to right


def test_the_canvas_is_the_tasks_composition_of_the_chosen_digits(several):
    scene = Scene((5, 6, 7), ((0, 10), (36, 40), (72, 72)), None)
    canvas = several.canvas(scene)
    expected = compose_sequence(several.pool, torch.tensor([[5, 6, 7]]), torch.tensor([scene.places]))
    assert torch.equal(canvas, expected)
    # the third digit's 28x28 sits in the bottom-right corner, exactly
    assert torch.equal(canvas[0, 0, 72:, 72:], several.pool[7, 0])


def test_clutter_adds_ink_and_follows_its_seed(several):
    bare = Scene((5, 6, 7), ((0, 10), (36, 40), (72, 72)), None)
    cluttered = Scene(bare.picks, bare.places, 11)
    assert several.canvas(cluttered).sum() > several.canvas(bare).sum()
    assert torch.equal(several.canvas(cluttered), several.canvas(cluttered))


def test_the_truth_is_the_digits_left_to_right_and_the_users_digit_is_unknown(several):
    labels = [int(several.labels[i]) for i in (5, 6, 7)]
    scene = Scene((5, 6, 7), ((60, 0), (0, 0), (30, 0)), None)
    assert several.truth(scene) == [labels[1], labels[2], labels[0]]
    assert several.truth(Scene((5, OWN, 7), scene.places, None)) == [None, labels[2], labels[0]]


def test_the_users_digit_goes_where_it_was_put(several):
    own = np.zeros((28, 28), np.float32)
    own[10:18, 10:18] = 1.0
    canvas = several.canvas(Scene((OWN, 6, 7), ((0, 0), (36, 0), (72, 0)), None), own)
    assert torch.equal(canvas[0, 0, :28, :28], torch.as_tensor(own))


@pytest.mark.parametrize(
    "scene, own, message",
    [
        (Scene((OWN, 6, 7), ((0, 0), (36, 0), (72, 0)), None), None, "no digit of yours yet"),
        (Scene((5, 6, 7), ((0, 0), (36, 0), (73, 0)), None), None, "from 0 to 72 px, got (73, 0)"),
        (Scene((5, 6, 1000), ((0, 0), (36, 0), (72, 0)), None), None, "sample index must be from 0 to 999, got 1000"),
        (Scene((5, 6), ((0, 0), (36, 0)), None), None, "a scene has 3 digits, got 2"),
    ],
)
def test_a_scene_that_cannot_be_drawn_is_refused_saying_why(several, scene, own, message):
    with pytest.raises(LabError, match=re.escape(message)):
        several.read(scene, "sequence-rnn-spn", own)


def test_an_unknown_model_is_refused(several):
    with pytest.raises(LabError, match="unknown sequence model 'nope'"):
        several.read(several.random_scene(0), "nope")


def test_a_reading_gives_every_glimpse_and_an_untrained_model_looks_at_its_initial_crops(several):
    reading = several.read(several.random_scene(0), "sequence-glimpse-rnn")
    assert reading.canvas.shape == (100, 100) and reading.glimpses.shape == (3, 28, 28)
    assert reading.probs.shape == (3, 10) and np.allclose(reading.probs.sum(1), 1.0, atol=1e-5)
    assert reading.cnn_probs.shape == (3, 10)
    assert torch.allclose(reading.theta, initial_crops(3, 0.3), atol=1e-6)


def test_the_step_decides_which_grids_and_glimpses_show(several):
    reading = several.read(several.random_scene(0), "sequence-rnn-spn")
    for step in (1, 2, 3):
        picture = canvas_html(reading, step)
        assert picture.count("<text") == step  # one number per grid shown
        row = glimpses_html(reading, step)
        assert row.count(" reads <b>") == step and row.count("not yet taken") == 3 - step
    first = int(reading.probs[0].argmax())
    assert f"reads {first} _ _</b>" in readout_html(reading, 1)  # no digit before its glimpse is taken
    words = readout_html(reading, 2)
    assert "truth <b>" in words and "CNN reads <b>" in words and "glimpse 2: centred at" in words


def test_each_glimpse_has_its_own_colour_and_number():
    thetas = initial_crops(3, 0.3)
    svg = glimpses_svg(np.zeros((100, 100)), Affine(), thetas)
    for k in range(3):
        assert GLIMPSE_COLOURS[k] in svg and f">{k + 1}</text>" in svg
    assert len(set(GLIMPSE_COLOURS)) == len(GLIMPSE_COLOURS)


def test_the_views_handler_answers_a_missing_position_with_a_warning_and_keeps_the_picture(lab):
    import gradio as gr

    import app

    demo = app.build_app(lab)
    [fn] = [b.fn for b in demo.fns.values() if getattr(b.fn, "__name__", "") == "render" and "several" in b.fn.__module__][:1]
    with pytest.warns(UserWarning, match="centre must be a number"):
        answer = fn(None, (5, 6, 7), 0, True, "none", "sequence-rnn-spn", 3, 20, 20, None, 50, 80, 50)
    assert all(isinstance(part, type(gr.skip())) for part in answer)
