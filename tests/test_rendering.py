import numpy as np
import torch

from stn_core.geometry import Affine, Projective, ThinPlateSpline, affine_theta
from stn_core.rendering import CONTROL_COLOUR, GRID_COLOUR, OUTLINE_COLOUR, draw_sampling_grid, grid_lines, theta_markdown, to_picture


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


def test_grid_follows_theta():
    # A grid zoomed to half size sits in the middle half of the picture.
    theta = affine_theta(scale_x=0.5, scale_y=0.5).reshape(6)
    picture = np.asarray(draw_sampling_grid(np.zeros((42, 42), np.float32), Affine(), theta, size=336))
    red = np.all(picture == OUTLINE_COLOUR, axis=-1)
    rows, cols = np.nonzero(red)
    assert 80 <= rows.min() <= 88 and 248 <= rows.max() <= 256 and 80 <= cols.min() <= 88
    assert np.all(picture == GRID_COLOUR, axis=-1).any()


def test_tps_control_points_are_drawn():
    tps = ThinPlateSpline(4)
    picture = np.asarray(draw_sampling_grid(np.zeros((28, 28), np.float32), tps, tps.identity(), size=336))
    assert np.all(picture == CONTROL_COLOUR, axis=-1).sum() > 16 * 10


def test_theta_text_for_every_family():
    affine = theta_markdown(Affine(), affine_theta(rotation=30.0, scale_x=0.8, scale_y=0.8).reshape(6))
    assert "+30.0°" in affine and "0.80 × 0.80" in affine and "output" in affine
    assert "h₃₃ = 1" in theta_markdown(Projective(), Projective().identity())
    assert "16 control points" in theta_markdown(ThinPlateSpline(4), ThinPlateSpline(4).identity())
    from stn_core.geometry import Attention

    attention = theta_markdown(Attention(), torch.tensor([0.5, 0.1, -0.2]))
    assert "0.50 × 0.50" in attention and "(+0.10, -0.20)" in attention
