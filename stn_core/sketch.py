"""Digits as a sketchpad draws them: a skeleton stamped with one round brush.

A digit drawn with a mouse has strokes of one width with round ends, unlike MNIST's pen
strokes, whose width varies along the stroke. :func:`draw_sketch` redraws a digit that way,
and :func:`sketch_digits` passes the drawing through :func:`stn_core.preprocess.prepare_digit`,
the path a user's sketch takes, so that the result is exactly what a model is shown.

Two uses:

* ``benchmarks/bench_handwriting.py`` measures models on sketches of USPS and MNIST
  test digits (a proxy for digits drawn in the app);
* ``python -m stn_core.train --sketch-share P`` trains on a share ``P`` of training digits
  in their sketched form (:func:`cached_training_sketches`): writing-style augmentation,
  drawn from the MNIST training digits only.

The drawing convention, :data:`SKETCH_CANVAS` and :data:`BRUSH`, is the app's sketchpad's
(``stn_lab`` builds its ``gr.Sketchpad`` from these two numbers).

>>> digit = np.zeros((28, 28), np.uint8); digit[4:24, 13:16] = 255   # a "1"
>>> drawing = draw_sketch(digit, height=200)
>>> drawing.shape, drawing.dtype, int(drawing.min()), int(drawing.max())
((280, 280), dtype('uint8'), 0, 255)
>>> sketch_digits(digit[None], np.array([200])).shape
(1, 28, 28)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .preprocess import ImageInputError, prepare_digit, skeletonize

__all__ = ["BRUSH", "SKETCH_CANVAS", "SKETCH_HEIGHTS", "cached_training_sketches", "draw_sketch", "sketch_digits"]

SKETCH_CANVAS, BRUSH = 280, 18  # the sketchpad: a 280x280 canvas, an 18-px round black brush
SUPERSAMPLE = 2  # drawn at twice the size and reduced: the browser's antialiased stroke
# Heights (px, ink included) of training sketches, drawn uniformly: from a digit drawn small
# (80 px, where the brush covers a quarter of its height and fills loops) to one that fills
# most of the canvas. Preprocessing rescales every one to MNIST's 20 px.
SKETCH_HEIGHTS = (80, 240)
SKETCH_SEED = 0  # the heights of the training sketches
CACHE_VERSION = 1  # bump when draw_sketch or prepare_digit changes what a sketch becomes
# One digit drawn and prepared, on one CPU core: 13.8 ms measured on 25 MNIST training digits
# at each of 80, 140, 200 and 240 px (2026-12-03, development machine). What a cache miss
# costs, as the log line announces it.
SECONDS_PER_SKETCH = 0.014


def draw_sketch(digit: np.ndarray, height: int = 200, upscale: int = 4) -> np.ndarray:
    """A digit's skeleton drawn as the sketchpad draws a stroke: ``(280, 280)`` uint8, black ink on white.

    Args:
        digit: ``(H, W)`` ink bright on dark (MNIST's polarity), any numeric type.
        height: pixels from the ink's top to its bottom, the brush included.
        upscale: the digit is upscaled this many times (bilinear) before it is thresholded
            at half its peak and thinned, so the skeleton is smooth (4 for MNIST's 28 px,
            8 for USPS's 16 px).

    Raises:
        ValueError: an empty digit, or a ``height`` that is not from ``BRUSH + 1`` to the canvas.
    """
    if not BRUSH < height <= SKETCH_CANVAS:
        raise ValueError(f"height must be from {BRUSH + 1} to {SKETCH_CANVAS} px, got {height}")
    digit = np.asarray(digit, np.float32)
    if digit.ndim != 2 or not digit.max() > 0:
        raise ValueError(f"expected a 2-d digit with some ink, got shape {digit.shape} and peak {digit.max(initial=0)}")
    big = Image.fromarray(digit).resize((digit.shape[1] * upscale, digit.shape[0] * upscale), Image.Resampling.BILINEAR)
    big = np.asarray(big)
    rows, cols = np.nonzero(skeletonize(big > 0.5 * big.max()))
    scale = (height - BRUSH) / max(np.ptp(rows) + 1, 1)
    ys = (rows - (rows.min() + rows.max()) / 2) * scale + SKETCH_CANVAS / 2
    xs = (cols - (cols.min() + cols.max()) / 2) * scale + SKETCH_CANVAS / 2
    canvas = Image.new("L", (SKETCH_CANVAS * SUPERSAMPLE,) * 2, 255)
    draw = ImageDraw.Draw(canvas)
    radius = BRUSH * SUPERSAMPLE / 2
    for y, x in zip(ys * SUPERSAMPLE, xs * SUPERSAMPLE):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return np.asarray(canvas.reduce(SUPERSAMPLE))


def sketch_digits(digits: np.ndarray, heights: np.ndarray, upscale: int = 4) -> np.ndarray:
    """Each digit sketched at its height and prepared as a user's sketch is: ``(N, 28, 28)`` float32 in [0, 1].

    A drawing that ``prepare_digit`` refuses (it found no digit: not seen on MNIST's
    training digits) comes back as zeros; callers that need a digit there keep the original.
    """
    if len(digits) != len(heights):
        raise ValueError(f"expected one height per digit, got {len(heights)} heights for {len(digits)} digits")
    out = np.zeros((len(digits), 28, 28), np.float32)
    for i, (digit, height) in enumerate(zip(digits, heights)):
        try:
            out[i] = prepare_digit(draw_sketch(digit, int(height), upscale))
        except ImageInputError:
            pass
    return out


def _cache_dir() -> Path:
    return Path(os.environ.get("STN_CACHE_DIR") or Path.home() / ".cache" / "stn-lab")


def cached_training_sketches(images: np.ndarray, *, log=print) -> np.ndarray:
    """The sketched form of each training digit, ``(N, 28, 28)`` float32, at heights drawn
    from :data:`SKETCH_HEIGHTS` with :data:`SKETCH_SEED`; a digit that cannot be sketched keeps its own form.

    Building it takes :data:`SECONDS_PER_SKETCH` a digit (14 minutes for MNIST's 60,000), so
    the result is kept in ``$STN_CACHE_DIR`` (default ``~/.cache/stn-lab``) under a name
    that hashes the digits and :data:`CACHE_VERSION`: a changed set or recipe is rebuilt.

    Args:
        images: ``(N, 28, 28)`` uint8 digits, ink bright (MNIST's training images).
    """
    images = np.ascontiguousarray(images, np.uint8)
    key = hashlib.sha256(images.tobytes() + f"v{CACHE_VERSION} seed{SKETCH_SEED} {SKETCH_HEIGHTS}".encode()).hexdigest()
    path = _cache_dir() / f"sketches-{key[:16]}.npy"
    if path.exists():
        sketches = np.load(path)
        if sketches.shape == (len(images), 28, 28):
            return sketches
    minutes = len(images) * SECONDS_PER_SKETCH / 60
    log(f"sketching {len(images):,} training digits once (about {minutes:.0f} min), cached in {path}")
    heights = np.random.default_rng(SKETCH_SEED).integers(SKETCH_HEIGHTS[0], SKETCH_HEIGHTS[1] + 1, len(images))
    sketches = sketch_digits(images, heights)
    blank = sketches.reshape(len(images), -1).max(1) == 0
    sketches[blank] = images[blank].astype(np.float32) / 255
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, sketches)
    os.replace(partial, path)
    return sketches
