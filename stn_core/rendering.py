"""Pictures and text for the app: crisp upscaled digits, the sampling grid drawn over the
input, and theta in words. Pillow and numpy only, so it is cheap enough for every frame of
a slider drag (a fresh matplotlib figure costs ~17 ms; these take well under 1 ms).

Points are in the normalised coordinates of :mod:`stn_core.geometry`; a point ``(x, y)``
lands at pixel ``((x + 1) / 2 * size, (y + 1) / 2 * size)`` of a ``size``-pixel picture.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from .geometry import ThinPlateSpline, Transform, decompose_affine

__all__ = ["GRID_COLOUR", "draw_sampling_grid", "grid_lines", "theta_markdown", "to_picture"]

GRID_COLOUR = (255, 159, 28)  # amber: visible on black canvas and white ink alike
OUTLINE_COLOUR = (255, 59, 48)
CONTROL_COLOUR = (0, 200, 255)


def to_picture(image: np.ndarray, size: int = 336) -> Image.Image:
    """A ``(H, W)`` float image in [0, 1] as an RGB picture of ``size`` pixels, crisp
    (nearest-neighbour: every pixel the network sees stays a visible square)."""
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.NEAREST).convert("RGB")


def grid_lines(transform: Transform, theta: torch.Tensor, lines: int = 7, samples: int = 25) -> np.ndarray:
    """Where ``T_theta`` sends a ``lines x lines`` lattice of the output, edges included.

    Args:
        theta: ``(P,)`` parameters of one transformation.

    Returns:
        ``(2 * lines, samples, 2)`` input-space points: ``lines`` horizontal polylines,
        then ``lines`` vertical ones; the first and last of each set are the outline.
    """
    ticks = torch.linspace(-1.0, 1.0, lines, dtype=theta.dtype)
    along = torch.linspace(-1.0, 1.0, samples, dtype=theta.dtype)
    level, position = torch.meshgrid(ticks, along, indexing="ij")
    horizontal = torch.stack([position, level], dim=-1)
    vertical = torch.stack([level, position], dim=-1)
    points = torch.cat([horizontal, vertical]).reshape(-1, 2)
    mapped = transform.map_points(theta.reshape(1, -1), points)[0]
    return mapped.reshape(2 * lines, samples, 2).numpy()


def _to_pixels(points: np.ndarray, size: int) -> list[tuple[float, float]]:
    # Clipped to the picture, so an outline on the canvas edge stays visible.
    pixels = np.clip((points + 1.0) * (size / 2.0), -size, 2 * size)
    pixels = np.where(np.abs(pixels - size) < 1.0, size - 1.0, pixels)
    return [(float(x), float(y)) for x, y in pixels]


def draw_sampling_grid(
    canvas: np.ndarray, transform: Transform, theta: torch.Tensor, size: int = 336, lines: int = 7
) -> Image.Image:
    """The input canvas with the sampling grid ``T_theta(G)`` drawn over it.

    The outline (red) is where the output's border samples from; the interior lines
    (amber) are the output's lattice. For thin-plate splines the control points' source
    positions are drawn as cyan dots.
    """
    picture = to_picture(canvas, size)
    draw = ImageDraw.Draw(picture)
    polylines = grid_lines(transform, theta.detach().double().cpu(), lines)
    width = max(1, size // 168)
    for index, polyline in enumerate(polylines):
        outline = index % lines in (0, lines - 1)
        draw.line(_to_pixels(polyline, size), fill=OUTLINE_COLOUR if outline else GRID_COLOUR, width=2 * width if outline else width)
    if isinstance(transform, ThinPlateSpline):
        radius = 2 * width + 1
        for x, y in _to_pixels(theta.detach().double().cpu().reshape(-1, 2).numpy(), size):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=CONTROL_COLOUR)
    return picture


def _matrix(rows: list[list[float]]) -> str:
    body = "\n".join("  [" + ", ".join(f"{v:+.3f}" for v in row) + "]" for row in rows)
    return f"```\n{body}\n```"


def theta_markdown(transform: Transform, theta: torch.Tensor) -> str:
    """``theta`` as a matrix (or homography, or control points) and, for affine and
    attention, its reading in words."""
    values = theta.detach().double().cpu().reshape(-1)
    convention = "θ maps each **output** coordinate to the **input** location it samples (x right, y down, both in [−1, 1])."
    if transform.name in ("affine", "attention"):
        if transform.name == "attention":
            s, tx, ty = values.tolist()
            values = torch.tensor([s, 0.0, tx, 0.0, s, ty], dtype=torch.float64)
        matrix = values.reshape(2, 3)
        parts = decompose_affine(matrix)
        words = (
            f"grid rotated **{float(parts.rotation):+.1f}°**, scaled **{float(parts.scale_x):.2f} × {float(parts.scale_y):.2f}**, "
            f"sheared **{float(parts.shear):+.2f}**, shifted **({float(parts.shift_x):+.2f}, {float(parts.shift_y):+.2f})**"
        )
        return f"**θ ({transform.name})**\n{_matrix(matrix.tolist())}\n{words}\n\n{convention}"
    if transform.name == "projective":
        homography = torch.cat([values, torch.ones(1, dtype=torch.float64)]).reshape(3, 3)
        return f"**θ (projective homography, h₃₃ = 1)**\n{_matrix(homography.tolist())}\n\n{convention}"
    points = values.reshape(-1, 2).tolist()
    k = transform.grid_size
    rows = [points[i : i + k] for i in range(0, len(points), k)]
    text = "\n".join("  " + "  ".join(f"({x:+.2f},{y:+.2f})" for x, y in row) for row in rows)
    return f"**θ (thin-plate spline: source positions of the {len(points)} control points)**\n```\n{text}\n```\n\n{convention}"
