"""Pictures and text for the app: crisp digits, the sampling grid drawn over the input,
and theta in words. Cheap enough for every frame of a slider drag: the live panels are
inline HTML/SVG around a PNG of the image at its own size (28 to 60 px), which the browser
scales with ``image-rendering: pixelated``, so nothing large is encoded and no file is
written (a fresh matplotlib figure costs ~17 ms).

The SVG works in the normalised coordinates of :mod:`stn_core.geometry` directly: the
canvas spans [-1, 1] on both axes, so grid points need no conversion.
"""

from __future__ import annotations

import base64
import functools
import html
import io

import numpy as np
import torch
from PIL import Image

from stn_core.geometry import ThinPlateSpline, Transform, decompose_affine

__all__ = [
    "GLIMPSE_COLOURS",
    "GRID_COLOUR",
    "grid_lines",
    "glimpses_svg",
    "grid_svg",
    "picture_html",
    "png_data_url",
    "lattice",
    "theta_markdown",
    "theta_words",
    "theta_words_many",
    "to_picture",
]

GRID_COLOUR = (255, 159, 28)  # amber: visible on black canvas and white ink alike
OUTLINE_COLOUR = (255, 59, 48)
CONTROL_COLOUR = (0, 200, 255)


def to_picture(image: np.ndarray, size: int = 336) -> Image.Image:
    """A ``(H, W)`` float image in [0, 1] as an RGB picture of ``size`` pixels, crisp
    (nearest-neighbour: every pixel the network sees stays a visible square)."""
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.NEAREST).convert("RGB")


@functools.lru_cache(maxsize=8)
def lattice(lines: int, samples: int) -> torch.Tensor:
    """``(2 * lines * samples, 2)`` float64 points of the output's ``lines x lines`` lattice:
    ``lines`` horizontal polylines of ``samples`` points, then ``lines`` vertical ones.
    Made once per shape (every slider frame draws the same lattice)."""
    ticks = torch.linspace(-1.0, 1.0, lines, dtype=torch.float64)
    along = torch.linspace(-1.0, 1.0, samples, dtype=torch.float64)
    level, position = torch.meshgrid(ticks, along, indexing="ij")
    horizontal = torch.stack([position, level], dim=-1)
    vertical = torch.stack([level, position], dim=-1)
    return torch.cat([horizontal, vertical]).reshape(-1, 2)


def grid_lines(transform: Transform, theta: torch.Tensor, lines: int = 7, samples: int = 25) -> np.ndarray:
    """Where ``T_theta`` sends a ``lines x lines`` lattice of the output, edges included.

    Args:
        theta: ``(P,)`` parameters of one transformation, or ``(N, P)`` for ``N`` at once.

    Returns:
        ``(2 * lines, samples, 2)`` input-space points (``(N, 2 * lines, samples, 2)`` for a
        batch): ``lines`` horizontal polylines, then ``lines`` vertical ones; the first and
        last of each set are the outline.
    """
    batch = theta.reshape(-1, theta.shape[-1]).double()
    mapped = transform.map_points(batch, lattice(lines, samples)).reshape(-1, 2 * lines, samples, 2).numpy()
    return mapped if theta.dim() > 1 else mapped[0]


def png_data_url(image: np.ndarray) -> str:
    """A ``(H, W)`` float image in [0, 1] as a ``data:`` URL of a grayscale PNG at its own size."""
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def picture_html(image: np.ndarray, size: int = 336, alt: str = "") -> str:
    """An ``<img>`` showing ``image`` at ``size`` pixels, every pixel a crisp square.

    The browser scales the tiny PNG, so nothing large is encoded or written per frame."""
    return (
        f'<img src="{png_data_url(image)}" width="{size}" height="{size}" alt="{html.escape(alt)}" '
        f'style="image-rendering: pixelated; display: block; margin: auto; width: 100%; max-width: {size}px; height: auto">'
    )


def _hex(colour: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % colour


def _svg_open(canvas: np.ndarray, size: int) -> list[str]:
    """The start of a canvas SVG: the canvas image spanning [-1, 1] on both axes."""
    pad = 0.04  # room for the outline's stroke on the canvas edge
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="{-1 - pad} {-1 - pad} {2 + 2 * pad} {2 + 2 * pad}" '
        f'style="display: block; margin: auto; background: #222; width: 100%; max-width: {size}px; height: auto">',
        f'<image href="{png_data_url(canvas)}" x="-1" y="-1" width="2" height="2" preserveAspectRatio="none" '
        'style="image-rendering: pixelated"/>',
    ]


def _grid_polylines(polylines: np.ndarray, lines: int, outline: str, lattice_colour: str, scale: float = 1.0) -> list[str]:
    """SVG polylines of one grid (:func:`grid_lines`' output): outline thick, lattice thin."""
    parts = []
    for index, polyline in enumerate(polylines):
        edge = index % lines in (0, lines - 1)
        colour, width = (outline, 2.5 * scale) if edge else (lattice_colour, 1.2 * scale)
        points = " ".join(f"{x:.4f},{y:.4f}" for x, y in polyline)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="{width}" '
            'vector-effect="non-scaling-stroke" stroke-linejoin="round"/>'
        )
    return parts


def grid_svg(canvas: np.ndarray, transform: Transform, theta: torch.Tensor, size: int = 336, lines: int = 7) -> str:
    """The input canvas with the sampling grid ``T_theta(G)`` drawn over it, as inline SVG.

    The SVG's own coordinates are the normalised ones (the canvas spans [-1, 1]), so the
    grid is drawn at exactly :func:`grid_lines`' points and stays crisp at any display
    size. Outline red, lattice amber, thin-plate-spline control points cyan.
    """
    theta = theta.detach().double().cpu()
    parts = _svg_open(canvas, size)
    parts += _grid_polylines(grid_lines(transform, theta, lines), lines, _hex(OUTLINE_COLOUR), _hex(GRID_COLOUR))
    if isinstance(transform, ThinPlateSpline):
        parts += [
            f'<circle cx="{x:.4f}" cy="{y:.4f}" r="0.03" fill="{_hex(CONTROL_COLOUR)}"/>'
            for x, y in theta.reshape(-1, 2).tolist()
        ]
    parts.append("</svg>")
    return "".join(parts)


# One colour per glimpse, in order (Okabe-Ito: told apart with the commonest colour blindness).
GLIMPSE_COLOURS = ("#e69f00", "#56b4e9", "#009e73", "#f0e442", "#cc79a7")


def glimpses_svg(canvas: np.ndarray, transform: Transform, thetas: torch.Tensor, size: int = 400, lines: int = 5) -> str:
    """A canvas with several sampling grids over it, glimpse ``k`` in
    ``GLIMPSE_COLOURS[k]`` with its number at its top-left corner, as inline SVG.

    Args:
        thetas: ``(K, P)``, one transformation per glimpse, in the order they were taken.
    """
    thetas = thetas.detach().double().cpu().reshape(thetas.shape[0], -1)
    parts = _svg_open(canvas, size)
    for k, polylines in enumerate(grid_lines(transform, thetas, lines)):
        colour = GLIMPSE_COLOURS[k % len(GLIMPSE_COLOURS)]
        parts += _grid_polylines(polylines, lines, colour, colour, scale=0.8)
        x, y = polylines[0, 0]  # the output's (-1, -1) corner, where glimpse k starts
        # kept inside the picture, where a grid reaching past the canvas would take it out of sight
        x, y = min(max(x, -1.0), 0.85), min(max(y, -0.82), 1.0)
        parts.append(
            f'<text x="{x:.4f}" y="{y - 0.03:.4f}" font-size="0.16" font-weight="bold" fill="{colour}" '
            f'stroke="#000" stroke-width="0.012" paint-order="stroke">{k + 1}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _matrix(rows: list[list[float]]) -> str:
    body = "\n".join("  [" + ", ".join(f"{v:+.3f}" for v in row) + "]" for row in rows)
    return f"```\n{body}\n```"


def theta_words(transform: Transform, theta: torch.Tensor, bold: bool = False) -> str:
    """What ``theta`` does to the sampling grid, in one line of words.

    Affine and attention thetas are read as rotation, scale, shear and shift (see
    :func:`~stn_core.geometry.decompose_affine`); a projective or thin-plate-spline theta
    has no such reading and is named instead.

    >>> from stn_core.geometry import Affine, affine_theta
    >>> theta_words(Affine(), affine_theta(rotation=30.0, scale_x=0.5, scale_y=0.5).reshape(6))
    'grid rotated +30.0°, scaled 0.50 × 0.50, sheared +0.00, shifted (+0.00, +0.00)'
    """
    return theta_words_many(transform, theta.reshape(1, -1), bold)[0]


def theta_words_many(transform: Transform, thetas: torch.Tensor, bold: bool = False) -> list[str]:
    """:func:`theta_words` of ``(N, P)`` thetas, decomposed in one pass (a live tick's batch)."""
    values = thetas.detach().double().cpu().reshape(thetas.shape[0], -1)
    if transform.name == "attention":
        s, tx, ty = values.unbind(1)
        zero = torch.zeros_like(s)
        values = torch.stack([s, zero, tx, zero, s, ty], 1)
    elif transform.name != "affine":
        return [f"{transform.name} θ: {values.shape[1]} numbers (no reading as rotation and scale)"] * values.shape[0]
    parts = decompose_affine(values.reshape(-1, 2, 3))
    # + 0.0 turns -0.0 into 0.0, so that no reading says "rotated -0.0°".
    rows = (torch.stack(list(parts), 1) + 0.0).tolist()
    b = "**" if bold else ""
    return [
        f"grid rotated {b}{rotation:+.1f}°{b}, scaled {b}{scale_x:.2f} × {scale_y:.2f}{b}, "
        f"sheared {b}{shear:+.2f}{b}, shifted {b}({shift_x:+.2f}, {shift_y:+.2f}){b}"
        for rotation, scale_x, scale_y, shear, shift_x, shift_y in rows
    ]


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
        words = theta_words(transform, theta, bold=True)
        return f"**θ ({transform.name})**\n{_matrix(matrix.tolist())}\n{words}\n\n{convention}"
    if transform.name == "projective":
        homography = torch.cat([values, torch.ones(1, dtype=torch.float64)]).reshape(3, 3)
        return f"**θ (projective homography, h₃₃ = 1)**\n{_matrix(homography.tolist())}\n\n{convention}"
    points = values.reshape(-1, 2).tolist()
    k = transform.grid_size
    rows = [points[i : i + k] for i in range(0, len(points), k)]
    text = "\n".join("  " + "  ".join(f"({x:+.2f},{y:+.2f})" for x, y in row) for row in rows)
    return f"**θ (thin-plate spline: source positions of the {len(points)} control points)**\n```\n{text}\n```\n\n{convention}"
