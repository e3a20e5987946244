"""Tests of stn_core.preprocess: user images (sketches, uploads) to MNIST digits.

Centre convention under test: the ink's centre of mass lands within half a pixel (the
integer shift) of pixel (14, 14), row and column, with pixel centres at integer indices;
real MNIST digits satisfy the same.
"""

import io
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from stn_core import preprocess
from stn_core.preprocess import (
    MAX_BYTES,
    ImageInputError,
    NoDigitError,
    decode_image,
    normalize_digit,
    prepare_digit,
    stroke_width,
)

NOT_AN_IMAGE = "could not read this file as an image (PNG, JPEG, WebP, GIF, BMP or TIFF)"
SIZE = (200, 300)  # PIL order: width, height


def draw_seven(img: Image.Image, ink) -> Image.Image:
    ImageDraw.Draw(img).line([(40, 60), (160, 60), (80, 250)], fill=ink, width=16)
    return img


def seven() -> Image.Image:
    """A thick black "7" on white paper, mode L, 200 wide and 300 tall."""
    return draw_seven(Image.new("L", SIZE, 255), 0)


def blank() -> Image.Image:
    return Image.new("L", SIZE, 255)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def correlation(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def centre_of_mass(digit):
    rows, cols = np.indices(digit.shape)
    return (rows * digit).sum() / digit.sum(), (cols * digit).sum() / digit.sum()


def png_bytes(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG, compressed in a stream: a few hundred KB at most."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor, parts, rows_per_block = zlib.compressobj(), [], max(1, 2**20 // len(row))
    for start in range(0, height, rows_per_block):
        parts.append(compressor.compress(row * min(rows_per_block, height - start)))
    parts.append(compressor.flush())
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def reference():
    """The digit made from the plain grayscale sketch; other encodings must match it."""
    return prepare_digit(seven())


# --- the MNIST construction -------------------------------------------------------------


def test_dark_on_light_sketch_becomes_an_mnist_digit():
    digit = prepare_digit(encode(seven(), "PNG"))
    assert digit.shape == (28, 28) and digit.dtype == np.float32 and digit.flags.c_contiguous
    assert digit.min() == 0 and digit.max() == 1
    assert digit[[0, 0, -1, -1], [0, -1, 0, -1]].tolist() == [0, 0, 0, 0]
    rows, cols = np.nonzero(digit)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert height == 20  # the sketch is taller than wide: its height becomes 20 px
    ink_rows, ink_cols = np.nonzero(np.asarray(seven()) < 128)
    aspect = (np.ptp(ink_cols) + 1) / (np.ptp(ink_rows) + 1)
    assert abs(width - 20 * aspect) <= 1
    row, col = centre_of_mass(digit)
    assert abs(row - 14) <= 0.5 + 1e-6 and abs(col - 14) <= 0.5 + 1e-6


def test_wide_digit_is_scaled_by_its_width():
    img = Image.new("L", (300, 100), 255)
    ImageDraw.Draw(img).rectangle((20, 40, 280, 60), fill=0)  # 261 x 21 bar
    rows, cols = np.nonzero(prepare_digit(img))
    assert np.ptp(cols) + 1 == 20 and np.ptp(rows) + 1 in (1, 2, 3)


def test_thin_one_keeps_its_aspect_ratio():
    img = Image.new("L", (100, 300), 255)
    ImageDraw.Draw(img).rectangle((48, 20, 51, 280), fill=0)  # 4 x 261: a "1"
    digit = prepare_digit(img)
    rows, cols = np.nonzero(digit)
    assert np.ptp(rows) + 1 == 20 and np.ptp(cols) + 1 <= 3
    assert digit.max() == 1  # the thin stroke is not faded by the shrinking


def test_light_on_dark_gives_the_same_digit_as_dark_on_light(reference):
    inverted = Image.eval(seven(), lambda value: 255 - value)
    np.testing.assert_allclose(prepare_digit(encode(inverted, "PNG")), reference, atol=1e-5)


def test_faint_noise_outside_the_digit_does_not_widen_the_crop(reference):
    noisy = np.asarray(seven(), np.float32) / 255
    noisy[5, 5] = 0.95  # a speck 5% darker than the paper
    digit = prepare_digit(noisy)
    assert correlation(digit, reference) > 0.99


def test_real_mnist_digits_round_trip(mnist_dir):
    from stn_core.mnist import load_mnist

    images, _ = load_mnist("test", mnist_dir, download=False)
    digits = images[:100].numpy()
    scores = [correlation(prepare_digit(digit), digit) for digit in digits]
    assert scores[0] > 0.99
    assert np.mean(np.array(scores) > 0.9) >= 0.95


def test_normalize_digit_rejects_non_images():
    with pytest.raises(ImageInputError, match="2-D"):
        normalize_digit(np.zeros((4, 4, 3)))
    with pytest.raises(ImageInputError, match="2-D"):
        normalize_digit(np.zeros((0, 5)))
    with pytest.raises(ImageInputError, match="NaN or infinite"):
        normalize_digit(np.full((4, 4), np.inf))


# --- real handwriting: polarity, lighting, blank photos, stroke width (issue 16) ----------


def brush_sketch(points, height: int, brush: int = 18, size: int = 280) -> np.ndarray:
    """A stroke through ``points`` (in a unit box) drawn as the app's sketchpad draws it:
    a black round brush ``brush`` px wide on a white ``size`` x ``size`` canvas, the ink
    ``height`` px tall, antialiased (drawn 4x larger, then shrunk)."""
    scale, step = 4, (height - brush)
    img = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(img)
    xs = [(size / 2 + (x - 0.5) * step) * scale for x, _ in points]
    ys = [(size / 2 + (y - 0.5) * step) * scale for _, y in points]
    radius = brush * scale / 2
    path = list(zip(xs, ys))
    for (x0, y0), (x1, y1) in zip(path, path[1:]):  # a disc every scaled pixel along the path
        for t in np.linspace(0, 1, int(np.hypot(x1 - x0, y1 - y0)) + 1):
            x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return np.asarray(img.resize((size, size), Image.Resampling.BOX))


FOUR = [(0.55, 0.0), (0.0, 0.65), (0.8, 0.65), (0.55, 0.65), (0.55, 0.0), (0.55, 1.0)]
SEVEN = [(0.0, 0.0), (0.75, 0.0), (0.25, 1.0)]
TWO = [(0.0, 0.15), (0.5, 0.0), (0.9, 0.2), (0.0, 1.0), (0.9, 1.0)]


def plain_construction(image, monkeypatch) -> np.ndarray:
    """The MNIST construction without stroke-width normalisation (its bands made infinite)."""
    with monkeypatch.context() as patch:
        patch.setattr(preprocess, "STROKE_BAND", (0.0, float("inf")))
        patch.setattr(preprocess, "MIN_PEN_WIDTH", 0.0)
        return prepare_digit(image)


@pytest.fixture(scope="module")
def mnist_stroke_width():
    """The median stroke width of the shipped MNIST sample (all 1,000 digits)."""
    from stn_core.mnist import load_sample

    images = load_sample()[0]
    return float(np.median([stroke_width(np.asarray(image, np.float32) / 255) for image in images]))


def test_stroke_width_constant_is_the_median_of_the_mnist_sample(mnist_stroke_width):
    assert preprocess.STROKE_WIDTH == pytest.approx(mnist_stroke_width, abs=0.01)
    low, high = preprocess.STROKE_BAND
    assert low < mnist_stroke_width < high


def test_stroke_width_measures_a_bar_and_ignores_a_blot():
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 12:16] = 1  # 20 x 4 px
    assert stroke_width(bar) == pytest.approx(3.75, abs=0.01)  # the 0.5 threshold takes 1/4 px
    bar[10:15, 9:19] = 1  # a 5 x 10 blot on the stroke: ink mass / length would say 5.5
    assert stroke_width(bar) < 4.3
    assert stroke_width(np.zeros((5, 5))) == 0


@pytest.mark.parametrize("shape", [SEVEN, FOUR], ids=["seven", "four"])
def test_thin_stroke_sketch_gets_mnist_stroke_width(shape, mnist_stroke_width, monkeypatch):
    sketch = brush_sketch(shape, height=250)  # 18-px brush, 250 px tall: thin once scaled to 20 px
    assert stroke_width(plain_construction(sketch, monkeypatch)) < 0.75 * mnist_stroke_width  # the problem ...
    digit = prepare_digit(sketch)
    assert stroke_width(digit) == pytest.approx(mnist_stroke_width, abs=0.3)  # ... fixed
    rows, cols = np.nonzero(digit > 0.1)
    assert np.ptp(rows) + 1 == 20  # still an MNIST digit: 20 px tall, centred
    row, col = centre_of_mass(digit)
    assert abs(row - 14) <= 0.5 + 1e-6 and abs(col - 14) <= 0.5 + 1e-6


@pytest.mark.parametrize("shape, height", [(SEVEN, 40), (SEVEN, 60), (TWO, 80)], ids=["seven-40px", "seven-60px", "two-80px"])
def test_small_sketch_gets_mnist_stroke_width(shape, height, mnist_stroke_width, monkeypatch):
    sketch = brush_sketch(shape, height)  # the 18-px brush on a small digit: a blob once scaled
    # (A loop the brush fills, as in a "4" drawn 80 px tall, is no stroke: it is kept as drawn.)
    assert stroke_width(plain_construction(sketch, monkeypatch)) > 1.8 * mnist_stroke_width  # the problem ...
    digit = prepare_digit(sketch)
    assert stroke_width(digit) == pytest.approx(mnist_stroke_width, abs=0.3)  # ... fixed
    assert (digit > 0.5).mean() < 0.2  # not a blob: MNIST digits cover 10-20% of the canvas
    assert correlation(digit, prepare_digit(brush_sketch(shape, 200))) > 0.7  # the same digit, drawn large


def ring_zero(size: int, margin: int, width: int) -> np.ndarray:
    """A thick dark "0" on white paper; a negative margin crops it, so it runs off the border."""
    img = Image.new("L", (size, size), 255)
    ImageDraw.Draw(img).ellipse((margin, margin, size - 1 - margin, size - 1 - margin), outline=0, width=width)
    return np.asarray(img)


def test_ink_touching_the_border_keeps_its_polarity():
    cropped = ring_zero(200, -12, 30)  # a tightly cropped "0": the ring runs along the border
    border = np.concatenate([cropped[0], cropped[-1], cropped[:, 0], cropped[:, -1]])
    assert np.median(border) == 0  # the border alone calls the ink the background
    digit = prepare_digit(cropped)
    assert digit[14, 14] == 0 and digit[14, 4:9].max() == 1  # the hole is paper, the ring ink
    assert (digit > 0.5).mean() < 0.5  # not "a filled disc inside a frame"


def test_heavy_digit_covering_most_of_the_image_keeps_its_polarity():
    heavy = ring_zero(100, 8, 30)  # a fat "0" covering ~60% of a tightly cropped scan
    assert (heavy < 128).mean() > 0.5  # the majority of pixels alone would call it background
    digit = prepare_digit(heavy)
    assert digit[14, 14] == 0 and digit[14, 4:9].max() == 1


def lit(image: np.ndarray, light: np.ndarray) -> np.ndarray:
    """A photo of ``image`` (paper 1, ink 0.1 reflectance) under ``light``, as uint8."""
    reflectance = 0.1 + 0.9 * image.astype(np.float32) / 255
    return np.round(255 * reflectance * light).astype(np.uint8)


def uneven_light(height: int, width: int) -> np.ndarray:
    """Light falling from 1.0 at the top left to about 0.35 at the bottom right."""
    rows, cols = np.mgrid[0:height, 0:width]
    return 1.0 - 0.65 * (0.6 * cols / width + 0.4 * rows / height) ** 1.5


def test_uneven_lighting_is_flattened():
    paper = np.asarray(seven())
    even = prepare_digit(lit(paper, np.full(paper.shape, 0.9)))
    light = uneven_light(*paper.shape)
    uneven = lit(paper, light)
    assert uneven[-1, -1] < uneven[0, 0] * 0.4  # the shading is darker than the ink is
    digit = prepare_digit(uneven)
    assert correlation(digit, even) > 0.97  # the same digit, ...
    even_rows, even_cols = np.nonzero(even > 0.1)
    rows, cols = np.nonzero(digit > 0.1)
    assert abs(np.ptp(rows) - np.ptp(even_rows)) <= 1 and abs(np.ptp(cols) - np.ptp(even_cols)) <= 1  # ... size ...
    assert np.allclose(centre_of_mass(digit), centre_of_mass(even), atol=0.5)  # ... and position


def test_uneven_lighting_with_light_ink_is_flattened():
    chalk = 255 - np.asarray(seven())  # a light digit on a dark board (reflectance 0.25), ...
    board = (0.25 + 0.6 * chalk / 255) * uneven_light(*chalk.shape)  # ... lit unevenly
    photo = np.round(255 * board).astype(np.uint8)
    assert correlation(prepare_digit(photo), prepare_digit(chalk)) > 0.97


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(image + rng.normal(0, sigma * 255, image.shape)), 0, 255).astype(np.uint8)


def blank_photos():
    height, width = 300, 400
    rows, cols = np.mgrid[0:height, 0:width]
    gradient = 80 + 130 * cols / width  # a smooth grey ramp, 80..210
    radius = np.hypot(rows - height / 2, cols - width / 2) / np.hypot(height / 2, width / 2)
    vignette = 190 * (1 - 0.45 * radius**2)  # darker corners
    return {
        "grey-noise": noisy(np.full((height, width), 140.0), 0.03),
        "gradient": np.round(gradient).astype(np.uint8),
        "gradient-float": (gradient / 255).astype(np.float32),
        "vignette-noise": noisy(vignette, 0.02, seed=1),
        "vignette-jpeg": encode(Image.fromarray(noisy(vignette, 0.01, seed=2)), "JPEG", quality=70),
        "dark-noise": noisy(np.full((height, width), 30.0), 0.04, seed=3),
    }


@pytest.mark.parametrize("name", blank_photos())
def test_blank_photo_raises_no_digit_error(name):
    with pytest.raises(NoDigitError, match="^no digit found: draw or upload a dark digit on a light background"):
        prepare_digit(blank_photos()[name])


def test_noisy_photo_of_a_digit_is_still_read(reference):
    paper = np.asarray(seven()).astype(np.float32)
    photo = noisy(140 + (paper - 255) * 0.35, 0.03)  # ink 35% darker than grey paper, noisy
    digit = prepare_digit(photo)
    assert correlation(digit, reference) > 0.9
    rows, cols = np.nonzero(digit > 0.1)
    assert np.ptp(rows) + 1 == 20  # the noise did not widen the crop


# --- refused inputs ---------------------------------------------------------------------


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("digit.txt", "7")
    return buffer.getvalue()


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: b"", NOT_AN_IMAGE),
        (lambda: b"This is a seven, honest.\n", NOT_AN_IMAGE),
        (zip_bytes, NOT_AN_IMAGE),
        (lambda: np.random.default_rng(0).bytes(4096), NOT_AN_IMAGE),
        (lambda: encode(seven(), "PPM"), NOT_AN_IMAGE),  # Pillow reads it; we do not
        (lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", NOT_AN_IMAGE),
        (lambda: half(encode(seven(), "PNG")), "the image is truncated or damaged"),
        (lambda: half(encode(seven(), "JPEG")), "the image is truncated or damaged"),
        (lambda: bytes(MAX_BYTES + 1), "file too large: 10.0 MB, at most 10 MB allowed"),
        (lambda: png_bytes(8000, 8000), "image too large: 8000×8000 pixels, at most 40,000,000 allowed"),
    ],
    ids=["empty", "text", "zip", "random", "ppm", "eps", "truncated-png", "truncated-jpeg", "oversized", "64-Mpx"],
)
def test_bad_bytes_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ImageInputError) as caught:
        decode_image(make())
    assert str(caught.value) == message
    error = caught.value  # no Pillow traceback chained to the user's message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


BOMB_SCRIPT = """
import importlib.util, resource, sys
spec = importlib.util.spec_from_file_location("preprocess", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
data = open(sys.argv[2], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    module.decode_image(data)
except module.ImageInputError as error:
    print(error)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
print("torch" in sys.modules)
"""


@pytest.mark.parametrize("side", [8000, 50_000])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    """A fresh interpreter measures the peak memory; decoding would take side**2 bytes."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(side, side))
    assert bomb.stat().st_size < 400_000
    result = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, preprocess.__file__, str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    message, grown_mib, imported_torch = result.stdout.splitlines()
    assert message.startswith("image too large")
    assert int(grown_mib) < 32
    assert imported_torch == "False"  # the module needs only numpy and Pillow


def test_pixel_and_byte_limits_are_inclusive(monkeypatch):
    data = encode(seven(), "PNG")
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 200 * 300)
    monkeypatch.setattr(preprocess, "MAX_BYTES", len(data))
    assert decode_image(data).shape == (300, 200)
    with pytest.raises(ImageInputError, match="image too large: 200×301 pixels"):
        decode_image(np.ones((301, 200)))
    with pytest.raises(ImageInputError, match="file too large"):
        decode_image(data + b"\0")


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as stream:
        stream.truncate(MAX_BYTES + 1)  # sparse: nothing written
    with pytest.raises(ImageInputError, match="file too large"):
        decode_image(path)


def test_messages_never_show_the_path(tmp_path):
    text = tmp_path / "secret-folder" / "notes.png"
    text.parent.mkdir()
    text.write_text("not an image")
    with pytest.raises(ImageInputError) as caught:
        decode_image(str(text))
    assert str(caught.value) == NOT_AN_IMAGE
    with pytest.raises(ImageInputError) as caught:
        decode_image(tmp_path / "missing.png")
    assert str(caught.value) == "could not open the file"
    with pytest.raises(ImageInputError) as caught:
        decode_image(tmp_path)
    assert "secret" not in str(caught.value) and str(tmp_path) not in str(caught.value)


def transparent_sketch() -> Image.Image:
    return Image.new("RGBA", SIZE, (0, 0, 0, 0))


@pytest.mark.parametrize(
    "data",
    [
        encode(blank(), "PNG"),
        encode(Image.new("L", SIZE, 0), "PNG"),
        encode(Image.new("L", SIZE, 128), "PNG"),
        encode(Image.new("L", SIZE, 250), "JPEG"),
        encode(draw_seven(Image.new("L", SIZE, 255), 250), "PNG"),  # 2% contrast
        encode(Image.new("L", (1, 1), 0), "PNG"),
        encode(transparent_sketch(), "PNG"),
        np.ones((3, 3), np.float32),
    ],
    ids=["all-white", "all-black", "uniform", "jpeg-white", "too-faint", "1x1", "empty-sketch", "ones"],
)
def test_images_without_a_digit_raise_no_digit_error(data):
    with pytest.raises(NoDigitError, match="^no digit found: draw or upload a dark digit on a light background"):
        prepare_digit(data)


def test_tiny_image_decodes_and_a_3x3_dot_is_a_digit():
    assert decode_image(encode(Image.new("L", (1, 1), 0), "PNG")).shape == (1, 1)
    dot = np.ones((3, 3), np.float32)
    dot[1, 1] = 0
    digit = prepare_digit(dot)
    assert digit.max() == 1 and np.ptp(np.nonzero(digit)[0]) + 1 == 20


def test_unsupported_colour_mode_is_refused():
    with pytest.raises(ImageInputError, match="^unsupported colour mode LAB$"):
        decode_image(Image.new("LAB", (4, 4)))


def test_wrong_python_type_is_a_type_error():
    with pytest.raises(TypeError):
        decode_image(42)


# --- accepted files and modes -----------------------------------------------------------


def as_mode_i16():
    return Image.fromarray(np.asarray(seven()).astype(np.uint16) * 257)


def as_mode_f(scale):
    return Image.fromarray(np.asarray(seven()).astype(np.float32) * np.float32(scale / 255))


def with_alpha(mode, ink):
    return draw_seven(Image.new(mode, SIZE, (0,) * len(mode)), ink)


def transparent_palette() -> bytes:
    """Palette image: index 0 (black!) is transparent paper, index 1 black ink."""
    img = Image.new("P", SIZE, 0)
    img.putpalette([0, 0, 0, 0, 0, 0])
    draw_seven(img, 1)
    return encode(img, "PNG", transparency=0)


LOSSLESS = {
    "1-bit": lambda: encode(seven().convert("1"), "PNG"),
    "palette-png": lambda: encode(seven().convert("P"), "PNG"),
    "palette-gif": lambda: encode(seven().convert("P"), "GIF"),
    "palette-transparent": transparent_palette,
    "rgb-bmp": lambda: encode(seven().convert("RGB"), "BMP"),
    "rgb-webp": lambda: encode(seven().convert("RGB"), "WEBP", lossless=True),
    "rgba-transparent": lambda: encode(with_alpha("RGBA", (0, 0, 0, 255)), "PNG"),
    "la-transparent": lambda: encode(with_alpha("LA", (0, 255)), "PNG"),
    "cmyk-tiff": lambda: encode(seven().convert("CMYK"), "TIFF"),
    "16-bit-png": lambda: encode(as_mode_i16(), "PNG"),
    "32-bit-tiff": lambda: encode(seven().convert("I"), "TIFF"),
    "float-0-1-tiff": lambda: encode(as_mode_f(1), "TIFF"),
    "float-0-255-tiff": lambda: encode(as_mode_f(255), "TIFF"),
    "float-any-range-tiff": lambda: encode(as_mode_f(-4000).point(lambda v: v + 1000), "TIFF"),
}


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_encodings_give_the_reference_digit(name, reference):
    np.testing.assert_allclose(prepare_digit(LOSSLESS[name]()), reference, atol=1e-5)


def test_modes_really_are_the_ones_named():
    modes = {name: Image.open(io.BytesIO(make())).mode for name, make in LOSSLESS.items()}
    assert modes["16-bit-png"] == "I;16" and modes["32-bit-tiff"] == "I" and modes["float-0-1-tiff"] == "F"
    assert (modes["cmyk-tiff"], modes["la-transparent"], modes["1-bit"]) == ("CMYK", "LA", "1")
    assert modes["palette-transparent"] == "P"


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_jpeg_gives_nearly_the_reference_digit(mode, reference):
    assert correlation(prepare_digit(encode(seven().convert(mode), "JPEG", quality=85)), reference) > 0.98


def test_decoded_values_keep_their_scale():
    assert decode_image(encode(seven(), "PNG")).tolist() == (np.asarray(seven()) / np.float32(255)).tolist()
    sixteen = np.array([[0, 32768, 65535]], np.uint16)
    np.testing.assert_allclose(decode_image(encode(Image.fromarray(sixteen), "PNG")), [[0, 32768 / 65535, 1]])
    wide = Image.fromarray(np.array([[-1000.0, 0.0, 3000.0]], np.float32))
    np.testing.assert_allclose(decode_image(encode(wide, "TIFF")), [[0, 0.25, 1]])


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_multi_frame_files_use_their_first_frame(fmt, reference):
    first, second = seven().convert("P"), blank().convert("P")
    data = encode(first, fmt, save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    np.testing.assert_allclose(prepare_digit(data), reference, atol=1e-5)
    with pytest.raises(NoDigitError):  # the digit only on the second frame does not count
        prepare_digit(encode(second, fmt, save_all=True, append_images=[first]))


def test_every_input_kind_is_accepted(tmp_path, reference):
    data = encode(seven(), "PNG")
    path = tmp_path / "seven.png"
    path.write_bytes(data)
    for source in (data, bytearray(data), memoryview(data), path, str(path), seven(), seven().convert("RGBA")):
        np.testing.assert_allclose(prepare_digit(source), reference, atol=1e-5)


# --- numpy arrays -----------------------------------------------------------------------


def array_cases():
    gray = np.asarray(seven())
    stroke = gray < 128
    rgba = np.zeros((*gray.shape, 4), np.uint8)  # transparent black paper ...
    rgba[..., 3] = np.where(stroke, 255, 0)  # ... and an opaque black stroke
    return {
        "uint8": gray,
        "uint8-hw1": gray[..., None],
        "uint8-rgb": np.repeat(gray[..., None], 3, axis=2),
        "uint8-rgba": rgba,
        "uint16": gray.astype(np.uint16) * 257,
        "bool": ~stroke,
        "float64-0-1": gray / 255.0,
        "float32-0-255": gray.astype(np.float32),
        "float16-0-1": (gray / 255).astype(np.float16),
        "float-rgba": rgba / 255.0,
        "int64": gray.astype(np.int64),
        "non-contiguous": np.asfortranarray(gray),
    }


@pytest.mark.parametrize("name", array_cases())
def test_numpy_arrays_give_the_reference_digit(name, reference):
    array = array_cases()[name]
    gray = decode_image(array)
    assert gray.dtype == np.float32 and gray.shape == (300, 200) and 0 <= gray.min() <= gray.max() <= 1
    np.testing.assert_allclose(prepare_digit(array), reference, atol=1e-3)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((5, 5), np.nan), "NaN or infinite"),
        (np.array([[0.0, np.inf]]), "NaN or infinite"),
        (np.zeros((5, 5, 2)), "got shape"),
        (np.zeros((5, 5, 3, 1)), "got shape"),
        (np.zeros((5,)), "got shape"),
        (np.zeros((0, 5)), "empty"),
        (np.zeros((5, 5), np.complex64), "unsupported pixel type"),
        (np.full((5, 5), "7"), "unsupported pixel type"),
        (np.broadcast_to(np.uint8(0), (8000, 8000)), "image too large: 8000×8000 pixels"),
    ],
    ids=["nan", "inf", "two-channels", "4-d", "1-d", "empty", "complex", "strings", "64-Mpx"],
)
def test_bad_arrays_are_refused(array, message):
    with pytest.raises(ImageInputError, match=message):
        decode_image(array)


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64),
        elements=st.floats(0, 1, width=32),
    )
)
def test_any_small_array_gives_a_digit_or_a_clear_error(array):
    try:
        digit = prepare_digit(array)
    except ImageInputError as error:
        assert str(error)
        return
    assert digit.shape == (28, 28) and digit.dtype == np.float32 and digit.flags.c_contiguous
    assert np.isfinite(digit).all() and digit.min() >= 0 and digit.max() == 1
    rows, cols = np.nonzero(digit)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 20
