"""A user's image (sketch or upload) as an MNIST-style 28x28 digit.

Two steps, each usable alone:

* :func:`decode_image` turns bytes, a path, a ``PIL.Image`` or a numpy array into a
  float32 ``(H, W)`` grayscale array in ``[0, 1]``, white = 1. Transparent pixels are
  paper (composited over white); animated or multi-page files give their first frame.
* :func:`normalize_digit` repeats the MNIST construction on it: ink bright (1) on black
  (0), cropped to the ink, scaled so the longer side is 20 px, and pasted into a 28x28
  canvas with the ink's centre of mass at pixel ``(14, 14)`` (row, column; pixel *centres*
  are at integer indices, as in real MNIST, whose centres of mass lie within half a
  pixel of ``(14, 14)``).

Real handwriting (issue 16) is handled on the way: the polarity is not read from the
border alone, uneven lighting is flattened, blank photos (grey, gradients, noise) are
refused, and a sketch's strokes are redrawn at MNIST's width (:func:`stroke_width`), so a
digit drawn large with the app's 18-px brush is not thinner than MNIST's, nor one drawn
small a blob. ``benchmarks/bench_handwriting.py`` measures the effect on USPS and on
sketch-like renderings.

:func:`prepare_digit` chains them. Every bad input raises :class:`ImageInputError`, a
``ValueError`` whose message can be shown to the user as it is; :class:`NoDigitError`
is its kind for a readable image with nothing drawn on it.

Limits: files of at most :data:`MAX_BYTES` bytes and images of at most :data:`MAX_PIXELS`
pixels, checked from the file size and the image header before any pixel is decoded.
Larger images are refused rather than shrunk, so :func:`decode_image` always returns the
full resolution; :func:`prepare_digit` then peaks at about 14 bytes per pixel (0.55 GB
for a 40-megapixel PNG, measured).

>>> sketch = np.ones((100, 60), np.float32)   # white paper ...
>>> sketch[20:80, 25:35] = 0.0                # ... with a black bar: a "1"
>>> digit = normalize_digit(sketch)
>>> digit.shape, digit.dtype, float(digit.max())
((28, 28), dtype('float32'), 1.0)
>>> rows, cols = np.nonzero(digit)
>>> int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)  # 60x10 -> 20x3
(20, 3)
"""

from __future__ import annotations

import functools
import io
import math
import os

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "ImageInputError",
    "NoDigitError",
    "decode_image",
    "normalize_digit",
    "prepare_digit",
    "skeletonize",
    "stroke_width",
]

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Only these decoders run on user bytes: Pillow can also open formats that shell out to
# other programs (EPS runs Ghostscript). "JPEG" covers phones' multi-picture (MPO) files.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# Ink fainter than this fraction of the strongest stroke does not widen the crop: paper
# texture, JPEG ringing and stray specks are at most a few percent. It is kept inside the
# crop, so real MNIST test digits come back unchanged: of the 10,000, 82.5% to within one
# grey level (1/255) and 99.2% with correlation > 0.9. The rest lose a faint edge pixel
# (thin strokes then shift by one pixel), or (0.5%) have strokes thinner than 99.5% of
# MNIST's (MIN_PEN_WIDTH) and are redrawn at MNIST's median width.
INK_THRESHOLD = 0.1
# An image whose ink differs from the background by less than this has nothing drawn.
MIN_CONTRAST = 0.05
# Light ink on a dark background only when the darker of the two tones covers more than
# this share of the image (border and whole image weighing half each); in between, dark
# ink on light paper, as photos and sketches are.
LIGHT_INK_SHARE = 0.55
# Background, polarity and noise are judged on an overview of at most this many pixels a
# side (area-averaged: a photo's noise averages out, a stroke does not).
OVERVIEW_SIZE = 128
# The darkest and brightest tones, and the ink's depth below the paper, are taken at this
# quantile of the overview's pixels (the 6th most extreme of 128x128): one hot pixel is
# not a digit.
INK_TAIL = 1 / 3000
# ... which must exceed this many robust standard deviations of the background's noise.
MIN_SNR = 5.0
# A fitted background varying by more than this across the image is flattened.
FLAT_MIN = 0.02
# Pixels this much (or 3 noise deviations) darker than the fitted paper are left out of it.
FIT_TOLERANCE = 0.02
FIT_ROUNDS = 10
FIT_SIZE = 32  # the background is fitted on the overview shrunk to this many pixels a side
MAD_SCALE = 1.4826  # MAD to standard deviation, for normal noise
FLOOR = 0.05  # the darkest paper (or board) a contrast is divided by
MEDIAN_SAMPLES = 1_000_000  # pixels sampled for a median over a large image
# Pixel noise (in units of the strongest stroke) above which the crop is taken on the ink
# smoothed (5x5 box) and above 3 noise deviations, and fainter ink zeroed; scans,
# sketches and renders have none.
NOISE_FLOOR = 0.01
# MNIST's stroke width (:func:`stroke_width`, px): the median of the shipped 1,000-digit
# sample (2.264 on all 10,000 test digits). Digits whose width lies outside a band are
# redrawn at this width. A digit drawn with a brush (strokes of one width: the spread of
# its local widths at most BRUSH_SPREAD; a pen's vary, 0.1 to 0.45 in MNIST and USPS)
# larger than MNIST's 28 px has a width that has nothing to do with MNIST's: its band is
# STROKE_BAND (about the sample's 25% and 98% quantiles, 1.87 and 3.94). Any other digit
# (MNIST itself, scans, pen photos) keeps its pen unless it is thinner than all but 0.5%
# of the 10,000 MNIST test digits (MIN_PEN_WIDTH); it is never thinned. Redrawing USPS
# scans of ordinary width cost the models more errors than it saved, and thinning heavy
# ones erased their loops (0s read as 6s): see benchmarks/bench_handwriting.
STROKE_WIDTH = 2.26
STROKE_BAND = (1.9, 3.9)
MIN_PEN_WIDTH = 1.01
BRUSH_SPREAD = 0.15
WIDTH_UPSAMPLE = 4  # stroke_width measures on the digit upsampled this many times
WORK_SIZE = 80  # re-widening works on the digit's box scaled to this longer side (4 x 20 px)
WIDTH_PASSES = 3  # measure and redraw at most this many times, ...
WIDTH_TOLERANCE = 0.25  # ... until the width is this close to STROKE_WIDTH
# A redrawing whose longer side falls short of this share of the expected one erased whole
# strokes (the arms of a digit whose loop the brush filled) and is not used.
KEEP_EXTENT = 0.85
DIGIT_SIZE, CANVAS_SIZE, CENTRE = 20, 28, 14
# ITU-R 601-2 luma, the weights of Pillow's own "L" conversion.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

NOT_AN_IMAGE = "could not read this file as an image (PNG, JPEG, WebP, GIF, BMP or TIFF)"
NO_DIGIT = "no digit found: draw or upload a dark digit on a light background, or a light one on a dark background"
# Pillow modes holding plain numbers rather than colours, scaled by _to_unit.
NUMERIC_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


class ImageInputError(ValueError):
    """An input that cannot become a digit; the message is meant for the user."""


class NoDigitError(ImageInputError):
    """A readable image with no digit on it (empty sketch, blank or uniform image)."""


def decode_image(data) -> np.ndarray:
    """Decode an image into grayscale, white = 1.

    Args:
        data: encoded image ``bytes`` (or ``bytearray``/``memoryview``), a path
            (``str``/``os.PathLike``) to such a file, a ``PIL.Image.Image``, or a numpy
            array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA).

    Returns:
        float32 array ``(H, W)`` in ``[0, 1]``, C-contiguous, at the input's resolution.

    Pixel values are scaled by the range their type declares: 8-bit by 255, 16-bit
    (``I;16`` images, ``uint16`` arrays) by 65535, ``bool`` as 0/1. Types that declare
    no range (floats, Pillow's 32-bit ``I`` and ``F`` modes, signed integers) are read
    as ``[0, 1]`` if they fit (floats only), else ``[0, 255]``, else ``[0, 65535]``, and
    otherwise rescaled from their own min..max. An alpha channel is composited over white.

    Raises:
        ImageInputError: a file over :data:`MAX_BYTES`, an image over :data:`MAX_PIXELS`
            or with no pixels, bytes that are no supported image, a truncated or damaged
            file, an unsupported colour mode or array shape/type, or NaN/inf values.
        TypeError: ``data`` is none of the types above.

    Example:
        >>> decode_image(np.array([[0, 255]], np.uint8))
        array([[0., 1.]], dtype=float32)
    """
    if isinstance(data, np.ndarray):
        return _from_array(data)
    if isinstance(data, Image.Image):
        return _from_pil(data)
    with _open(data) as img:
        return _from_pil(img)


def normalize_digit(gray: np.ndarray) -> np.ndarray:
    """Turn a grayscale image of one digit into an MNIST digit.

    1. **Polarity** (on an *overview*: the image area-averaged to at most
       :data:`OVERVIEW_SIZE` px a side). The tones halfway between the darkest and the
       brightest pixels (their :data:`INK_TAIL` quantiles) split the image in two; the
       dark tone is the background (light ink) only if it covers more than
       :data:`LIGHT_INK_SHARE` of the image, the border and the whole image weighing half
       each. So ink running along the border (a tightly cropped "0"), or a heavy digit
       covering most of the image, keeps its polarity; between the two, dark ink on light
       paper wins, as in photos and sketches.
    2. **Background**: a cubic surface fitted to the paper by least squares and refitted
       without the pixels more than :data:`FIT_TOLERANCE` (or three noise deviations)
       darker than it: the paper's upper envelope, which the ink does not pull down.
    3. **No digit**: the ink's depth below that surface (its :data:`INK_TAIL` quantile)
       must exceed :data:`MIN_SNR` times the pixel noise (measured from differences of
       neighbours), and the ink must reach :data:`MIN_CONTRAST`. Blank photos (grey,
       gradients, vignetting, sensor and JPEG noise) raise :class:`NoDigitError`.
    4. **Uneven lighting**: where the fitted paper varies by more than :data:`FLAT_MIN`,
       each pixel's ink is its contrast against the paper there (``(bg - gray) / bg``
       for dark ink), so shading is not ink. An evenly lit image (every clean sketch and
       scan) keeps a constant paper level, the median of the paper's pixels.
    5. **The MNIST construction**: the ink is scaled so the strongest stroke is 1. The
       bounding box of the ink above :data:`INK_THRESHOLD` (above the noise, in a noisy
       photo) is cropped and scaled, keeping its aspect ratio, so its longer side is 20 px
       (a triangle filter: antialiased when shrinking, no ringing), its peak set back to 1.
    6. **Stroke width**: if the result's :func:`stroke_width` lies outside
       :data:`STROKE_BAND` (for brush strokes on an image larger than MNIST's: a sketch),
       or for any other digit is below :data:`MIN_PEN_WIDTH` (thinner than 99.5% of
       MNIST's; a pen's digit is never thinned), the
       box is redrawn with strokes :data:`STROKE_WIDTH` (MNIST's median) wide (see
       :func:`_rewidth`; measured again and redrawn until within
       :data:`WIDTH_TOLERANCE`, at most :data:`WIDTH_PASSES` times; a redrawing that
       erases whole strokes is not used). A sketch drawn with the app's
       18-px brush gets MNIST's stroke, whether drawn large (thin) or small (a blob).
    7. It is pasted in a black 28x28 canvas by the integer shift that brings its centre of
       mass nearest to pixel ``(14, 14)``, kept inside the canvas.

    Args:
        gray: ``(H, W)`` grayscale in ``[0, 1]``, as from :func:`decode_image`.

    Returns:
        float32 array ``(28, 28)`` in ``[0, 1]``, C-contiguous, ink 1 on background 0.

    Raises:
        NoDigitError: the image holds no ink that stands out of its background and its
            noise (blank, uniform, a smooth gradient, noise alone, 1x1).
        ImageInputError: ``gray`` is not a non-empty finite 2-D array.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or gray.size == 0:
        raise ImageInputError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    if not np.isfinite(gray).all():
        raise ImageInputError("the image contains NaN or infinite values")
    ink, noise = _ink(gray)
    if noise > NOISE_FLOOR:  # a noisy photo: the crop follows the strokes, not the noise
        threshold = max(INK_THRESHOLD, 3 * noise)
        smooth = Image.fromarray(np.round(ink * 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(2))
        stroke = np.asarray(smooth) > 255 * threshold
        if not stroke.any():
            raise NoDigitError(NO_DIGIT)
        ink[ink < threshold] = 0  # the noise itself is no ink (nor anything to thicken)
    else:
        stroke = ink > INK_THRESHOLD
    rows, cols = np.nonzero(stroke.any(axis=1))[0], np.nonzero(stroke.any(axis=0))[0]
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    small = _scaled(box)
    width, spread = _width_and_spread(small)
    brush = max(box.shape) > CANVAS_SIZE and spread <= BRUSH_SPREAD
    low, high = STROKE_BAND if brush else (MIN_PEN_WIDTH, math.inf)
    for _ in range(WIDTH_PASSES):
        if low <= width <= high:
            break
        redrawn = _rewidth(box, width, STROKE_WIDTH)
        if redrawn is box:
            break
        box, small = redrawn, _scaled(redrawn)
        width = stroke_width(small)
        low, high = STROKE_WIDTH - WIDTH_TOLERANCE, STROKE_WIDTH + WIDTH_TOLERANCE  # once redrawn: to the target
    return _centred(small)


def prepare_digit(data) -> np.ndarray:
    """:func:`normalize_digit` of :func:`decode_image`: any accepted input to ``(28, 28)``."""
    return normalize_digit(decode_image(data))


def stroke_width(digit: np.ndarray) -> float:
    """Typical stroke width of a digit, in pixels: the median over its skeleton of the
    stroke's local width there.

    The digit is upsampled 4x (bilinear) and thresholded at half its peak; at every pixel
    of that shape's :func:`skeletonize` the local width is ``2 d - 1``, ``d`` being the
    Euclidean distance to the nearest background pixel. The median over the skeleton,
    divided by 4, is robust to what a mean is not: a filled loop or a blot, junctions,
    and short strokes. A sharp 20x3-px bar measures 2.75 (the threshold takes a quarter
    pixel), a 2-px one 1.75.

    On the shipped MNIST sample (1,000 test digits, :func:`stn_core.mnist.load_sample`) the
    median is 2.25 px, with 2% / 25% / 75% / 98% quantiles 1.25 / 1.81 / 2.75 / 3.87. A
    digit drawn with the app's 18-px brush about 200 px tall measures about 1.75 after
    the plain MNIST construction, one drawn 80 px tall about 4.5. Returns 0 for an
    image without ink.

    >>> bar = np.zeros((28, 28), np.float32); bar[4:24, 13:16] = 1  # 20 x 3 px
    >>> stroke_width(bar)
    2.75
    """
    return _width_and_spread(digit)[0]


def _width_and_spread(digit: np.ndarray) -> tuple[float, float]:
    """:func:`stroke_width`, and how much the local width varies along the skeleton
    (interquartile range over median): about 0.03 for a brush's strokes, 0.1 to 0.45 for
    a pen's (MNIST, USPS)."""
    digit = np.asarray(digit, dtype=np.float32)
    peak = float(digit.max(initial=0.0))
    if peak <= 0:
        return 0.0, 0.0
    height, width = digit.shape
    big = Image.fromarray(digit / peak).resize((width * WIDTH_UPSAMPLE, height * WIDTH_UPSAMPLE), Image.Resampling.BILINEAR)
    typical, spread = _local_widths(np.asarray(big) > 0.5)
    return typical / WIDTH_UPSAMPLE, spread


def _local_widths(mask: np.ndarray) -> tuple[float, float]:
    """Interquartile mean, and interquartile range over median, of the local width
    ``2 d - 1`` (pixels) over the skeleton of ``mask``."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0, 0.0
    # Crop to the shape plus a one-pixel frame of background.
    mask = np.pad(mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], 1)
    rows, cols = np.nonzero(skeletonize(mask))
    if rows.size == 0:  # thinning erases a 2x2 square
        return 2.0, 0.0
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    edge_rows, edge_cols = np.nonzero(grown & ~mask)  # background touching the shape
    nearest = np.full(rows.size, np.inf)
    for start in range(0, edge_rows.size, 1024):  # in chunks: at most 1024 x skeleton distances
        dr = rows[:, None] - edge_rows[None, start : start + 1024]
        dc = cols[:, None] - edge_cols[None, start : start + 1024]
        nearest = np.minimum(nearest, (dr * dr + dc * dc).min(axis=1))
    widths = np.sort(2 * np.sqrt(nearest) - 1)
    quarter = widths.size // 4
    q1, median, q3 = np.percentile(widths, [25, 50, 75])
    return float(widths[quarter : widths.size - quarter].mean()), float((q3 - q1) / median)


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a binary image (Zhang & Suen's thinning, 1984).

    Peels boundary pixels in two alternating sub-passes until none can go without
    breaking the shape's connectivity or shortening a line's end. Each sub-pass looks
    its rule up in a table of the 256 neighbourhoods.

    >>> skeletonize(np.ones((3, 8), bool)).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]])
    """
    image = np.pad(np.asarray(mask, dtype=bool), 1).astype(np.uint8)
    core = image[1:-1, 1:-1]  # a view: thinning it thins the padded image
    # The 8 neighbours P2..P9, clockwise from north, as bits 0..7 of a code.
    ring = (
        image[:-2, 1:-1],
        image[:-2, 2:],
        image[1:-1, 2:],
        image[2:, 2:],
        image[2:, 1:-1],
        image[2:, :-2],
        image[1:-1, :-2],
        image[:-2, :-2],
    )
    while True:
        changed = False
        for table in _THINNING_TABLES:
            code = np.zeros(core.shape, np.uint8)
            for bit, neighbour in enumerate(ring):
                code |= neighbour << bit
            removed = table[code] & core.astype(bool)
            if removed.any():
                core[removed] = 0
                changed = True
        if not changed:
            return core.astype(bool)


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen's removal rule for each 8-neighbourhood code, one table per sub-pass."""
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # P2..P9
    count = bits.sum(axis=1)
    crossings = ((bits == 0) & (np.roll(bits, -1, axis=1) == 1)).sum(axis=1)
    p2, p4, p6, p8 = bits[:, 0], bits[:, 2], bits[:, 4], bits[:, 6]
    common = (count >= 2) & (count <= 6) & (crossings == 1)
    first = common & ~((p2 & p4 & p6) | (p4 & p6 & p8)).astype(bool)
    second = common & ~((p2 & p4 & p8) | (p2 & p6 & p8)).astype(bool)
    return first, second


_THINNING_TABLES = _thinning_tables()


def _ink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink map of ``gray`` (background 0, peak 1) and the pixel noise's standard deviation in it."""
    overview = _shrunk(gray, OVERVIEW_SIZE)
    values = overview.ravel()
    k = min(values.size, max(1, int(np.ceil(INK_TAIL * values.size))))
    darkest, brightest = np.partition(values, k - 1)[k - 1], np.partition(values, values.size - k)[values.size - k]
    light_ink = _dark_share(overview, (darkest + brightest) / 2) > LIGHT_INK_SHARE
    paper = 1.0 - overview if light_ink else overview  # from here on, ink is darker than paper
    noise = _pixel_noise(paper)
    coef, fitted = _background(paper, max(3 * noise, FIT_TOLERANCE))
    depth = (fitted - paper).ravel()
    if np.partition(depth, depth.size - k)[depth.size - k] <= MIN_SNR * noise:
        raise NoDigitError(NO_DIGIT)
    if np.ptp(fitted) > FLAT_MIN:  # uneven lighting: ink is the contrast against the local paper
        background = _surface(coef, gray.shape)  # the paper's brightness, in paper units
        np.clip(background, 0.0, 1.0, out=background)
        # Light falls on paper and ink alike: the contrast is relative to the local paper
        # (dark ink absorbs a share of the light there, light ink reflects a share more).
        if light_ink:
            np.subtract(1.0, background, out=background)
            ink = gray - background
        else:
            ink = background - gray
        ink /= np.maximum(background, FLOOR, out=background)
        del background
    else:  # even: a constant paper level, the median of the paper's pixels
        kept = depth <= max(3 * noise, FIT_TOLERANCE)
        level = np.float32(np.median(overview.ravel()[kept]))
        ink = gray - level if light_ink else level - gray
    noise = _pixel_noise(ink)
    np.clip(ink, 0.0, None, out=ink)  # in place: inputs may have 40 M pixels
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise NoDigitError(NO_DIGIT)
    ink /= peak
    return ink, noise / peak


def _dark_share(image: np.ndarray, threshold: float) -> float:
    """The share of ``image`` darker than ``threshold``, its border weighing as much as all
    its pixels (the mean of the two shares)."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return 0.5 * float((border < threshold).mean()) + 0.5 * float((image < threshold).mean())


def _shrunk(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` shrunk by area averaging to a longer side of ``size`` (if larger), float64."""
    height, width = image.shape
    factor = max(height, width) / size
    if factor <= 1:
        return image.astype(np.float64)
    shape = (max(1, round(width / factor)), max(1, round(height / factor)))
    image = image if image.dtype == np.float32 else image.astype(np.float32)
    return np.asarray(Image.fromarray(image).resize(shape, Image.Resampling.BOX), np.float64)


def _exponents() -> list[tuple[int, int]]:
    """``(i, j)`` of the monomials ``x**i * y**j`` of degree <= 3 (x: column, y: row)."""
    return [(i, j) for i in range(4) for j in range(4 - i)]


def _design(rows: np.ndarray, cols: np.ndarray) -> list[np.ndarray]:
    """The monomials of degree <= 3 in ``cols`` (x) and ``rows`` (y), both in ``[-1, 1]``."""
    return [cols**i * rows**j for i, j in _exponents()]


@functools.lru_cache(maxsize=8)
def _design_matrix(shape: tuple[int, int]) -> np.ndarray:
    """``(H * W, 10)``: the cubic monomials at every pixel of an ``(H, W)`` image."""
    rows, cols = np.meshgrid(_coordinates(shape[0]), _coordinates(shape[1]), indexing="ij")
    return np.stack([term.ravel() for term in _design(rows.astype(np.float64), cols.astype(np.float64))], axis=1)


def _coordinates(size: int) -> np.ndarray:
    """Pixel centres of ``size`` pixels on ``[-1, 1]`` (the same points at every scale)."""
    return ((np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1).astype(np.float32)


def _background(paper: np.ndarray, tolerance: float) -> tuple[np.ndarray | None, np.ndarray]:
    """The paper's brightness under the ink: ``(coefficients or None, fitted surface)``.

    A least-squares cubic surface, fitted on the overview shrunk further (area averaging)
    to at most :data:`FIT_SIZE` pixels a side and refitted without the pixels more than
    ``tolerance`` darker than it until those stop changing: the upper envelope of the
    paper, which the ink (darker) does not pull down however much of the image it covers.
    None (and a constant surface) for an image too small to fit.
    """
    if min(paper.shape) < 4:
        return None, np.full(paper.shape, np.max(paper))
    coarse = _shrunk(paper, FIT_SIZE)
    values = coarse.ravel()
    design = _design_matrix(coarse.shape)
    kept = np.ones(values.size, bool)
    for _ in range(FIT_ROUNDS):
        coef = np.linalg.lstsq(design[kept], values[kept], rcond=None)[0]
        now = values >= design @ coef - tolerance
        if (now == kept).all() or now.sum() < 2 * design.shape[1]:
            break
        kept = now
    return coef, (_design_matrix(paper.shape) @ coef).reshape(paper.shape)


def _surface(coef: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The fitted surface at full resolution: one float32 array, no full-size temporaries."""
    rows, cols = _coordinates(shape[0])[:, None], _coordinates(shape[1])[None, :]
    terms = dict(zip(_exponents(), coef))
    # Horner's scheme in the rows, each coefficient a polynomial in the columns.
    in_cols = [sum(np.float32(terms[i, j]) * cols**i for i in range(4 - j)) for j in range(4)]
    surface = np.empty(shape, np.float32)
    surface[:] = in_cols[3]
    for j in (2, 1, 0):
        surface *= rows
        surface += in_cols[j]
    return surface


def _pixel_noise(image: np.ndarray) -> float:
    """Robust standard deviation of the pixel noise, from differences of horizontal
    neighbours (1.4826 MAD / sqrt 2): neither the ink nor a gradient moves it much.
    Noise-free images (sketches, scans, renders) give about 0: most neighbours are equal.
    """
    if image.shape[1] < 2:
        return 0.0
    step = max(1, int(image.size // MEDIAN_SAMPLES))
    steps = np.abs(np.diff(image[::step], axis=1))
    return MAD_SCALE * float(np.median(steps)) / np.sqrt(2)


def _scaled(box: np.ndarray) -> np.ndarray:
    """``box`` scaled, keeping its aspect ratio, to a longer side of 20 px, peak 1."""
    height, width = box.shape
    scale = DIGIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # The triangle filter's weights are non-negative, so the result stays in [0, 1] and
    # keeps a positive peak; scaling that peak back to 1 keeps thin strokes from fading.
    small = np.asarray(Image.fromarray(box).resize(size, Image.Resampling.BILINEAR))
    return np.clip(small / small.max(), 0.0, 1.0)


def _rewidth(box: np.ndarray, width: float, target: float) -> np.ndarray:
    """``box`` (strokes ``width`` px wide once scaled to 20 px) redrawn with strokes
    ``target`` px wide once cropped to its ink and scaled to 20 px.

    On the box scaled to :data:`WORK_SIZE` px, a Gaussian blur and a new threshold move
    every edge by the same distance ``r``: a straight edge blurred with ``sigma`` crosses
    the level ``1 - Phi(r / sigma)`` at ``r`` outside (thicker, ``r > 0``) or inside
    (thinner) its old place. ``sigma`` grows with ``|r|`` (at least 1 px), and the edge is
    redrawn antialiased, about a pixel wide. Thinning by more than a pixel erodes by whole
    pixels (a disc) first, so short strokes do not melt into blobs. A result that lost whole
    strokes (shorter than :data:`KEEP_EXTENT` of the expected extent) is not used: ``box``
    itself comes back.
    """
    height, box_width = box.shape
    scale = WORK_SIZE / max(height, box_width)
    size = (max(1, round(box_width * scale)), max(1, round(height * scale)))
    work = np.asarray(Image.fromarray(box).resize(size, Image.Resampling.BILINEAR))
    # Edges moved by r add 2r to every stroke and to the box, and the box becomes 20 px:
    # (k w + 2r) * 20 / (20 k + 2r) = target, with k = WORK_SIZE / 20.
    k = WORK_SIZE / DIGIT_SIZE
    radius = 10 * k * (target - width) / (DIGIT_SIZE - target)
    if abs(radius) < 0.25:
        return box
    expected = max(work.shape) + 2 * radius  # the longer side once redrawn
    out = work
    if radius < -1:  # thinning by more than a pixel: erode by whole pixels first
        reach = int(-radius)
        out = _eroded(work, reach)
        radius += reach
    if abs(radius) >= 0.25 and out.max() > 0:
        sigma = max(1.0, abs(radius) / 1.5)
        level = 0.5 * math.erfc(radius / sigma / math.sqrt(2))  # 1 - Phi(r / sigma)
        slope = math.exp(-0.5 * (radius / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))  # per pixel, there
        pad = int(np.ceil(3 * sigma + max(radius, 0.0))) + 1
        padded = Image.fromarray(np.round(np.pad(out, pad) * 255).astype(np.uint8))
        blurred = np.asarray(padded.filter(ImageFilter.GaussianBlur(sigma)), np.float32) / 255
        out = np.clip((blurred - level) / slope + 0.5, 0.0, 1.0)
    if out.max() <= 0:  # thinned away
        return box
    out /= out.max()
    stroke = out > INK_THRESHOLD
    rows, cols = np.nonzero(stroke.any(axis=1))[0], np.nonzero(stroke.any(axis=0))[0]
    if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 < KEEP_EXTENT * expected:
        return box  # thinning erased whole strokes (a filled loop's arms): keep the digit as it was
    return np.ascontiguousarray(out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def _eroded(image: np.ndarray, reach: int) -> np.ndarray:
    """Grey erosion of ``image`` by a disc of radius ``reach`` px (beyond the edge: 0)."""
    padded = np.pad(image, reach)
    out = image.copy()
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if 0 < dy * dy + dx * dx <= reach * reach:
                shifted = padded[reach + dy : reach + dy + image.shape[0], reach + dx : reach + dx + image.shape[1]]
                np.minimum(out, shifted, out=out)
    return out


def _centred(small: np.ndarray) -> np.ndarray:
    """``small`` pasted in the 28x28 canvas with its centre of mass nearest (14, 14)."""
    mass = small.sum()
    centre_row = (small.sum(axis=1) @ np.arange(small.shape[0])) / mass
    centre_col = (small.sum(axis=0) @ np.arange(small.shape[1])) / mass
    top = min(max(round(CENTRE - centre_row), 0), CANVAS_SIZE - small.shape[0])
    left = min(max(round(CENTRE - centre_col), 0), CANVAS_SIZE - small.shape[1])
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.float32)
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageInputError(f"image too large: {width}×{height} pixels, at most {MAX_PIXELS:,} allowed")
    if width * height == 0:
        raise ImageInputError("the image is empty (0 pixels)")


def _open(data) -> Image.Image:
    """Open (header only) encoded bytes or a file, refusing oversized files."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        source, nbytes = io.BytesIO(data), memoryview(data).nbytes
    elif isinstance(data, (str, os.PathLike)):
        try:
            source, nbytes = data, os.path.getsize(data)
        except OSError:
            raise ImageInputError("could not open the file") from None
    else:
        raise TypeError(f"expected bytes, a path, a PIL image or a numpy array, got {type(data).__name__}")
    if nbytes > MAX_BYTES:
        raise ImageInputError(f"file too large: {nbytes / 2**20:.1f} MB, at most {MAX_BYTES // 2**20} MB allowed")
    try:
        return Image.open(source, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own, looser limit fired first, before the size is known to us.
        raise ImageInputError(f"image too large: more than {MAX_PIXELS:,} pixels") from None
    except Exception:  # Pillow's parsers raise many exception types on foreign bytes
        raise ImageInputError(NOT_AN_IMAGE) from None


def _from_pil(img: Image.Image) -> np.ndarray:
    _check_pixels(*img.size)  # the header's size: nothing decoded yet
    try:
        img.load()  # a file opens on its first frame, so that is the one decoded
    except Exception:  # truncated data surfaces as OSError, SyntaxError, zlib errors...
        raise ImageInputError("the image is truncated or damaged") from None
    if img.mode in NUMERIC_MODES:
        return _to_unit(np.asarray(img))
    try:
        gray = img.convert("L")
        if img.has_transparency_data:  # composite over white: paste through the alpha
            paper = Image.new("L", img.size, 255)
            paper.paste(gray, mask=img.convert("RGBA").getchannel("A"))
            gray = paper
    except ValueError:
        raise ImageInputError(f"unsupported colour mode {img.mode}") from None
    return np.divide(np.asarray(gray), np.float32(255), dtype=np.float32)


def _from_array(array: np.ndarray) -> np.ndarray:
    channels = array.shape[2] if array.ndim == 3 else 0
    if array.ndim not in (2, 3) or channels not in (0, 1, 3, 4):
        raise ImageInputError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    _check_pixels(array.shape[1], array.shape[0])
    values = _to_unit(array)
    if channels in (0, 1):
        return np.ascontiguousarray(values.reshape(array.shape[:2]))
    gray = values[..., :3] @ LUMA
    if channels == 4:
        alpha = values[..., 3]
        gray = gray * alpha + (1 - alpha)  # over white paper
    return np.clip(gray, 0.0, 1.0)


def _to_unit(values: np.ndarray) -> np.ndarray:
    """Scale numbers to float32 ``[0, 1]`` by the rules in :func:`decode_image`."""
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.float32)
    if kind == "u":
        return values.astype(np.float32) / np.float32(np.iinfo(values.dtype).max)
    if kind not in "if":
        raise ImageInputError(f"unsupported pixel type {values.dtype}")
    if not np.isfinite(values).all():
        raise ImageInputError("the image contains NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    for top in (255.0, 65535.0) if kind == "i" else (1.0, 255.0, 65535.0):
        if low >= 0 and high <= top:
            return values.astype(np.float32) / np.float32(top)
    # In float64: the span of extreme values overflows float32. A constant maps to 0.
    return ((values.astype(np.float64) - low) / (high - low or 1.0)).astype(np.float32)
