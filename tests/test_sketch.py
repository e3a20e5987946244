"""stn_core.sketch (digits redrawn as sketchpad strokes) and the training option that uses it."""

import numpy as np
import pytest
import torch

import stn_core.sketch as sketch
import stn_core.train as training
from stn_core.mnist import load_sample
from stn_core.preprocess import stroke_width
from stn_core.sketch import BRUSH, SKETCH_CANVAS, cached_training_sketches, draw_sketch, sketch_digits
from stn_core.train import parse_args


@pytest.fixture(scope="module")
def digits():
    images, labels, _ = load_sample()
    return images[:6].numpy(), labels[:6]


@pytest.mark.parametrize("height", [80, 200, 260])
def test_a_sketch_is_as_tall_as_asked_and_drawn_in_black_on_white(digits, height):
    drawing = draw_sketch(digits[0][0], height)
    assert drawing.shape == (SKETCH_CANVAS, SKETCH_CANVAS) and drawing.dtype == np.uint8
    rows = np.nonzero((drawing < 128).any(axis=1))[0]
    # The brush's half-width at each end included; the skeleton's last upscaled pixel may fall short.
    assert abs((rows.max() - rows.min() + 1) - height) <= 0.03 * height + 1
    assert drawing[0, 0] == 255 and drawing.min() == 0


def test_a_sketch_has_strokes_of_the_brushs_width(digits):
    drawing = draw_sketch(digits[0][1], 200)
    ink = (drawing < 128).astype(np.float32)
    # Measured at the canvas's own scale: one brush wide (antialiasing moves the edge by a pixel).
    assert abs(stroke_width(ink) - BRUSH) <= 2.5


def test_bad_sketch_requests_say_what_was_expected():
    with pytest.raises(ValueError, match="height must be from 19 to 280 px, got 18"):
        draw_sketch(np.ones((28, 28)), BRUSH)
    with pytest.raises(ValueError, match="with some ink"):
        draw_sketch(np.zeros((28, 28)), 200)
    with pytest.raises(ValueError, match="one height per digit, got 1 heights for 2 digits"):
        sketch_digits(np.ones((2, 28, 28)), np.array([200]))


def test_sketched_digits_come_out_as_mnist_digits(digits):
    out = sketch_digits(digits[0], np.array([80, 120, 160, 200, 240, 200]))
    assert out.shape == (6, 28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() == pytest.approx(1.0)
    for digit in out:  # MNIST's construction: centre of mass at pixel (14, 14), within a pixel
        rows, cols = np.indices(digit.shape)
        mass = digit.sum()
        assert abs((rows * digit).sum() / mass - 14) < 1 and abs((cols * digit).sum() / mass - 14) < 1
    # The strokes differ from MNIST's pen (that is the point), the digit stays where it was.
    original = digits[0].astype(np.float32) / 255
    assert np.abs(out - original).mean() > 0.02
    assert all(np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.5 for a, b in zip(out, original))


def test_training_sketches_are_built_once_and_read_back(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("STN_CACHE_DIR", str(tmp_path))
    first = cached_training_sketches(digits[0], log=lambda message: None)
    assert len(list(tmp_path.glob("sketches-*.npy"))) == 1

    def refuse(*args):
        raise AssertionError("rebuilt instead of read from the cache")

    monkeypatch.setattr(sketch, "sketch_digits", refuse)
    assert np.array_equal(cached_training_sketches(digits[0], log=lambda message: None), first)
    with pytest.raises(AssertionError, match="rebuilt"):  # other digits: another file
        cached_training_sketches(digits[0][:3], log=lambda message: None)


def test_a_digit_that_cannot_be_sketched_keeps_its_own_form(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("STN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sketch, "sketch_digits", lambda images, heights: np.zeros((len(images), 28, 28), np.float32))
    out = cached_training_sketches(digits[0][:2], log=lambda message: None)
    assert np.array_equal(out, digits[0][:2].astype(np.float32) / 255)


def test_sketch_share_options_are_checked():
    with pytest.raises(SystemExit):
        parse_args(["--sketch-share", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--sketch-share", "1.5"])
    with pytest.raises(SystemExit):
        parse_args(["--task", "sequence", "--model", "rnn-spn", "--sketch-share", "0.5"])
    assert training.recipe(parse_args(["--sketch-share", "0.5"]))["sketch_share"] == 0.5


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_training_shows_the_share_of_digits_as_sketches_and_the_card_says_so(mnist_dir, tmp_path, monkeypatch, share):
    marker = 0.25  # every "sketch" is this grey square: easy to tell apart from a digit
    monkeypatch.setattr(
        training, "cached_training_sketches", lambda images, log: np.full((len(images), 28, 28), marker, np.float32)
    )
    seen = []
    real_distort = training.distort

    def spy(digits, distortion, pool):
        seen.append((digits == marker).flatten(1).all(1))
        return real_distort(digits, distortion, pool=pool)

    monkeypatch.setattr(training, "distort", spy)
    options = ["--model", "cnn", "--regime", "RTS", "--train-subset", "512", "--batch-size", "128", "--test-subset", "100"]
    options += ["--epochs", "1", "--sketch-share", str(share), "--out", str(tmp_path), "--data-dir", str(mnist_dir)]
    card = training.train(parse_args(options))
    shown = torch.cat(seen).float().mean().item()
    assert shown == 1.0 if share == 1.0 else 0.35 < shown < 0.65
    assert card.training.sketch_share == share
