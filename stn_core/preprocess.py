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

import io
import os

import numpy as np
from PIL import Image

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "ImageInputError",
    "NoDigitError",
    "decode_image",
    "normalize_digit",
    "prepare_digit",
]

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Only these decoders run on user bytes: Pillow can also open formats that shell out to
# other programs (EPS runs Ghostscript). "JPEG" covers phones' multi-picture (MPO) files.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# Ink fainter than this fraction of the strongest stroke does not widen the crop: paper
# texture, JPEG ringing and stray specks are at most a few percent. It is kept inside the
# crop, so real MNIST test digits come back unchanged (83% exactly, 99.6% with correlation
# > 0.9; the rest lose a faint edge pixel, and thin strokes then shift by one pixel).
INK_THRESHOLD = 0.1
# An image whose ink differs from the background by less than this has nothing drawn.
MIN_CONTRAST = 0.05
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

    Polarity is detected, not assumed: the background is the median of the border pixels,
    and a bright background (> 0.5) means dark ink, which is inverted. The ink is then
    measured from the background and scaled so the strongest stroke is 1. The bounding
    box of the ink above :data:`INK_THRESHOLD` is cropped and scaled, keeping its aspect
    ratio, so its longer side is 20 px (a triangle filter: antialiased when shrinking, no
    ringing), its peak set back to 1, and pasted in a black 28x28 canvas by the integer
    shift that brings its centre of mass nearest to pixel ``(14, 14)``, kept inside the
    canvas.

    Args:
        gray: ``(H, W)`` grayscale in ``[0, 1]``, as from :func:`decode_image`.

    Returns:
        float32 array ``(28, 28)`` in ``[0, 1]``, C-contiguous, ink 1 on background 0.

    Raises:
        NoDigitError: the image holds no ink of contrast :data:`MIN_CONTRAST` or more
            against its background (blank, uniform, 1x1).
        ImageInputError: ``gray`` is not a non-empty finite 2-D array.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or gray.size == 0:
        raise ImageInputError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    if not np.isfinite(gray).all():
        raise ImageInputError("the image contains NaN or infinite values")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = background - gray if background > 0.5 else gray - background
    np.clip(ink, 0.0, None, out=ink)  # in place: inputs may have 40 M pixels
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise NoDigitError(NO_DIGIT)
    ink /= peak
    stroke = ink > INK_THRESHOLD
    rows, cols = np.nonzero(stroke.any(axis=1))[0], np.nonzero(stroke.any(axis=0))[0]
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = box.shape
    scale = DIGIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # The triangle filter's weights are non-negative, so the result stays in [0, 1] and
    # keeps a positive peak; scaling that peak back to 1 keeps thin strokes from fading.
    small = np.asarray(Image.fromarray(box).resize(size, Image.Resampling.BILINEAR))
    small = np.clip(small / small.max(), 0.0, 1.0)

    mass = small.sum()
    centre_row = (small.sum(axis=1) @ np.arange(small.shape[0])) / mass
    centre_col = (small.sum(axis=0) @ np.arange(small.shape[1])) / mass
    top = min(max(round(CENTRE - centre_row), 0), CANVAS_SIZE - small.shape[0])
    left = min(max(round(CENTRE - centre_col), 0), CANVAS_SIZE - small.shape[1])
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.float32)
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def prepare_digit(data) -> np.ndarray:
    """:func:`normalize_digit` of :func:`decode_image`: any accepted input to ``(28, 28)``."""
    return normalize_digit(decode_image(data))


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
