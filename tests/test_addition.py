"""The "Two digits summed" view's logic (stn_lab.addition) over untrained addition models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from stn_lab.addition import OWN, POSE_RANGES, Addition, Pair, channels_html, outputs_html, sum_html
from stn_lab.lab import LabError

UPRIGHT = (0.0, 1.0, 0.0, 0.0)  # rotation, scale, x, y: the digit as it is, in the channel's centre
MODEL = "addition-2st-fcn-sum"


@pytest.fixture(scope="module")
def addition(lab):
    assert isinstance(lab.addition, Addition)
    return lab.addition


def test_the_menu_holds_the_shipped_parallel_models_and_the_cnn_reads_beside_them(addition):
    assert [slug for _, slug in addition.choices()] == [MODEL]
    assert addition.cnn is not None and addition.cnn.config.slug == "addition-cnn-sum"


def test_a_random_pair_is_the_same_for_a_seed_and_its_poses_lie_in_the_tasks_ranges(addition):
    pair = addition.random_pair(3)
    assert pair == addition.random_pair(3) and pair != addition.random_pair(4)
    for pose in pair.poses:
        for value, (low, high) in zip(pose, POSE_RANGES.values()):
            assert low <= value <= high


def test_an_upright_digit_sits_unchanged_in_the_centre_of_its_own_channel(addition):
    channels = addition.channels(Pair((5, 6), (UPRIGHT, UPRIGHT)))
    assert channels.shape == (1, 2, 42, 42)
    for c, pick in enumerate((5, 6)):
        assert torch.allclose(channels[0, c, 7:35, 7:35], addition.pool[pick, 0], atol=1e-5)
        assert float(channels[0, c].sum()) == pytest.approx(float(addition.pool[pick].sum()), abs=1e-3)


def test_a_pose_moves_its_own_digit_only(addition):
    still = addition.channels(Pair((5, 6), (UPRIGHT, UPRIGHT)))
    moved = addition.channels(Pair((5, 6), (UPRIGHT, (30.0, 0.8, 1.0, -1.0))))
    assert torch.equal(moved[0, 0], still[0, 0]) and not torch.allclose(moved[0, 1], still[0, 1])
    ink = moved[0, 1].nonzero().float()
    assert ink[:, 1].mean() > 21 and ink[:, 0].mean() < 21  # x = 1 is right, y = -1 is up


def test_the_users_digit_goes_into_the_channel_it_was_given(addition):
    own = np.zeros((28, 28), np.float32)
    own[4:24, 12:16] = 1.0
    channels = addition.channels(Pair((5, OWN), (UPRIGHT, UPRIGHT)), own)
    assert torch.allclose(channels[0, 1, 7:35, 7:35], torch.from_numpy(own), atol=1e-5)
    assert addition.truth(Pair((5, OWN), (UPRIGHT, UPRIGHT))) == [int(addition.labels[5]), None]


@pytest.mark.parametrize(
    "pair, own, message",
    [
        (Pair((OWN, 6), (UPRIGHT, UPRIGHT)), None, "no digit of yours yet"),
        (Pair((5, 100_000), (UPRIGHT, UPRIGHT)), None, "sample index must be from 0 to"),
        (Pair((5,), (UPRIGHT,)), None, "a pair has 2 digits, got 1"),
        (Pair((5, 6), (UPRIGHT, (0.0, 1.0, 0.0))), None, "a pose has 4 numbers"),
        (Pair((5, 6), (UPRIGHT, (90.0, 1.0, 0.0, 0.0))), None, "rotation must be a number from -45 to 45, got 90.0"),
        (Pair((5, 6), (UPRIGHT, (0.0, None, 0.0, 0.0))), None, "scale must be a number from 0.7 to 1.2, got None"),
        (Pair((5, 6), (UPRIGHT, (0.0, 1.0, float("nan"), 0.0))), None, "x must be a number from -1 to 1, got nan"),
        (Pair((5, 6), (UPRIGHT, (0.0, 1.0, 0.0, True))), None, "y must be a number from -1 to 1, got True"),
    ],
)
def test_a_pair_that_cannot_be_drawn_is_refused_saying_why(addition, pair, own, message):
    with pytest.raises(LabError, match=re.escape(message)):
        addition.read(pair, MODEL, own)


def test_an_unknown_model_is_refused_naming_the_shipped_ones(addition):
    with pytest.raises(LabError, match=f"unknown addition model 'nope'; available: {MODEL}"):
        addition.read(addition.random_pair(0), "nope")


def test_a_reading_gives_each_transformers_warp_of_both_channels_and_three_readings(addition):
    reading = addition.read(addition.random_pair(0), MODEL)
    assert reading.channels.shape == (2, 42, 42) and reading.glimpses.shape == (2, 2, 42, 42)
    assert reading.theta.shape == (2, 6)
    assert reading.probs.shape == (19,) and reading.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert reading.digit_probs.shape == (2, 10) and np.allclose(reading.digit_probs.sum(1), 1.0, atol=1e-5)
    assert reading.cnn_probs.shape == (19,)
    # several pairs in one pass read as each alone
    pairs = [addition.random_pair(seed) for seed in (0, 1)]
    together = addition.read_many(pairs, MODEL, [None, None])
    assert np.allclose(together[0].probs, reading.probs, atol=1e-5)


def test_the_pictures_show_both_grids_on_both_channels_and_the_words_the_sums(addition):
    pair = Pair((5, 6), (UPRIGHT, UPRIGHT))
    reading = addition.read(pair, MODEL)
    channels = channels_html(reading)
    assert channels.count("<svg") == 2 and channels.count("</text>") == 4  # grids 1 and 2 on each channel
    assert json.loads(re.search(r"data-pair='([^']*)'", channels).group(1)) == {"model": MODEL, "picks": [5, 6]}
    assert outputs_html(reading).count("<img") == 4  # two transformers × two channels
    words = sum_html(reading)
    a, b = (int(p.argmax()) for p in reading.digit_probs)
    truth = [int(addition.labels[i]) for i in (5, 6)]
    assert f"sum {int(reading.probs.argmax())}</b>" in words and f"(read as {a} + {b})" in words
    assert f"truth <b>{truth[0]} + {truth[1]} = {sum(truth)}</b>" in words and "CNN (digit-sum head): sum <b>" in words
    own = addition.read(Pair((OWN, 6), (UPRIGHT, UPRIGHT)), MODEL, np.zeros((28, 28), np.float32))
    assert "truth: <b>?</b>" in sum_html(own)


def test_the_views_handler_answers_a_missing_pose_with_a_warning_and_keeps_the_picture(lab):
    import gradio as gr

    import app

    demo = app.build_app(lab)
    [fn] = [b.fn for b in demo.fns.values() if getattr(b.fn, "__name__", "") == "render" and "addition" in b.fn.__module__][:1]
    with pytest.warns(UserWarning, match="scale must be a number"):
        answer = fn(None, (5, 6), "none", MODEL, 0, None, 0, 0, 0, 1, 0, 0)
    assert all(isinstance(part, type(gr.skip())) for part in answer)
    drawn = fn(None, (5, 6), "none", MODEL, 0, 1, 0, 0, 0, 1, 0, 0)
    assert drawn[0] == channels_html(lab.addition.read(Pair((5, 6), (UPRIGHT, UPRIGHT)), MODEL))
