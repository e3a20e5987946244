import numpy as np
import torch

from stn_core.geometry import Affine, Projective, ThinPlateSpline, affine_theta
from stn_lab.rendering import grid_lines, grid_svg, picture_html, png_data_url, theta_markdown, to_picture


def test_picture_is_crisp_and_sized():
    image = np.zeros((28, 28), np.float32)
    image[0, 0] = 1.0
    picture = np.asarray(to_picture(image, 336))
    assert picture.shape == (336, 336, 3)
    assert (picture[:12, :12] == 255).all() and (picture[12:24, :12] == 0).all()  # one pixel = a 12x12 square


def test_identity_grid_lines_span_the_canvas():
    lines = grid_lines(Affine(), Affine().identity(), lines=5, samples=9)
    assert lines.shape == (10, 9, 2)
    assert np.allclose(lines[0, :, 1], -1) and np.allclose(lines[4, :, 1], 1)  # top and bottom edges
    assert np.allclose(lines[5, :, 0], -1) and np.allclose(lines[9, :, 0], 1)  # left and right edges


def _polylines(svg: str) -> list[np.ndarray]:
    import re

    return [
        np.array([[float(v) for v in pair.split(",")] for pair in points.split()])
        for points in re.findall(r'<polyline points="([^"]+)"', svg)
    ]


def test_grid_svg_follows_theta():
    # A grid zoomed to half size: its outline is the square [-0.5, 0.5]^2 of the canvas.
    theta = affine_theta(scale_x=0.5, scale_y=0.5).reshape(6)
    svg = grid_svg(np.zeros((42, 42), np.float32), Affine(), theta, size=336, lines=7)
    assert svg.startswith("<svg") and 'width="336"' in svg and "data:image/png;base64," in svg
    lines = _polylines(svg)
    assert len(lines) == 14
    assert np.allclose(lines[0][:, 1], -0.5) and np.allclose(lines[6][:, 1], 0.5)  # top and bottom of the outline
    assert np.abs(np.concatenate(lines)).max() == 0.5


def test_tps_control_points_are_drawn():
    tps = ThinPlateSpline(4)
    svg = grid_svg(np.zeros((28, 28), np.float32), tps, tps.identity(), size=336)
    assert svg.count("<circle") == 16 and 'cx="-1.0000" cy="-1.0000"' in svg


def test_png_data_url_holds_the_image_at_its_own_size():
    import base64
    import io

    from PIL import Image

    image = np.random.default_rng(0).random((42, 42)).astype(np.float32)
    url = png_data_url(image)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert decoded.shape == (42, 42) and np.abs(decoded / 255.0 - image).max() <= 0.5 / 255 + 1e-6
    assert 'width="200"' in picture_html(image, 200, "V") and "pixelated" in picture_html(image)


def test_theta_text_for_every_family():
    affine = theta_markdown(Affine(), affine_theta(rotation=30.0, scale_x=0.8, scale_y=0.8).reshape(6))
    assert "+30.0°" in affine and "0.80 × 0.80" in affine and "output" in affine
    assert "h₃₃ = 1" in theta_markdown(Projective(), Projective().identity())
    assert "16 control points" in theta_markdown(ThinPlateSpline(4), ThinPlateSpline(4).identity())
    from stn_core.geometry import Attention

    attention = theta_markdown(Attention(), torch.tensor([0.5, 0.1, -0.2]))
    assert "0.50 × 0.50" in attention and "(+0.10, -0.20)" in attention


def test_theta_words_read_affine_and_attention_and_name_the_other_families():
    from stn_core.geometry import Attention
    from stn_lab.rendering import theta_words

    affine = theta_words(Affine(), affine_theta(rotation=-20.0, scale_x=0.7, scale_y=0.7, shift_x=0.1).reshape(6))
    assert affine == "grid rotated -20.0°, scaled 0.70 × 0.70, sheared +0.00, shifted (+0.10, +0.00)"
    assert "**" not in affine and "**-20.0°**" in theta_words(Affine(), affine_theta(rotation=-20.0).reshape(6), bold=True)
    # An attention θ never turns the grid: no "-0.0°" either.
    assert theta_words(Attention(), torch.tensor([0.5, 0.1, -0.2])) == (
        "grid rotated +0.0°, scaled 0.50 × 0.50, sheared +0.00, shifted (+0.10, -0.20)"
    )
    assert theta_words(Projective(), Projective().identity()) == "projective θ: 8 numbers (no reading as rotation and scale)"
    assert theta_words(ThinPlateSpline(4), ThinPlateSpline(4).identity()).startswith("tps θ: 32 numbers")


def test_grid_lines_of_a_bending_transform_bend_and_of_the_identity_lie_on_the_lattice():
    tps = ThinPlateSpline(4)
    bent = tps.identity().clone()
    bent[5] += 0.3  # one inner control point moved right
    lines = grid_lines(tps, bent.double(), lines=7, samples=9)
    straight = grid_lines(tps, tps.identity().double(), lines=7, samples=9)
    assert lines.shape == straight.shape == (14, 9, 2)
    assert np.allclose(straight[3, :, 1], 0.0) and np.allclose(straight[3, :, 0], np.linspace(-1, 1, 9))
    assert not np.allclose(lines, straight, atol=1e-3)
