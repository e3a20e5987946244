"""Distorted MNIST of the paper (section 4.1): regimes R, RTS, P, E and TC.

A distortion is a deterministic function of explicit parameters (:class:`Distortion`):
the regimes only *draw* those parameters at random, and the web app's sliders build
them by hand, so both go through the very same :func:`distort`.

Parameters describe what happens to the **digit** (content), in the coordinates of
:mod:`stn_core.geometry`. The digit is first bent elastically, then its corners are
moved (perspective), then it is scaled, sheared and rotated about its centre, shifted,
and placed on a ``canvas_size`` canvas; clutter is drawn over the result. Sampling runs
the chain backwards (output -> input), so the whole distortion is one bilinear resampling.

Regimes (``REGIMES``), each drawing fresh parameters per call:

* ``R``   -- rotation uniform in +-90 deg; 28x28.
* ``RTS`` -- rotation +-45 deg, scale 0.7-1.2, placed uniformly at random on a 42x42
  canvas (the scaled 28x28 frame stays on the canvas).
* ``P``   -- the image is scaled by 0.75 and each of its four corners moved by Gaussian
  noise of sigma = 0.1 of the image side (0.2 normalised units = 2.8 px); 28x28.
* ``E``   -- elastic: a 4x4 thin-plate-spline control grid whose source points move by
  Gaussian noise of sigma = 0.1 normalised units (1.4 px), clipped at 3 sigma; 28x28.
  Why this strength: control points are 9.3 px apart, so 1.4 px offsets bend strokes
  visibly (wavy lines, fatter and thinner loops) while the digits stay readable; looking
  at the first 16 test digits at sigma 0.07, 0.1, 0.15 and 0.2, 0.07 barely shows, and
  from 0.15 on some digits (a 1, a 6) smear into blobs that no longer show their class.
* ``TC``  -- translated cluttered MNIST: the digit at a random whole-pixel position fully
  inside a 60x60 canvas, plus six 6x6 fragments cut from random digits of the same split
  (from their central 20x20, where the ink is) at random places on the canvas.

>>> images = torch.rand(3, 1, 28, 28)
>>> generator = torch.Generator().manual_seed(0)
>>> distort(images, draw_distortion("RTS", 3, generator)).shape
torch.Size([3, 1, 42, 42])
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import Affine, Projective, ThinPlateSpline, affine_theta, homography_from_points, invert_affine, pixel_grid, sample
from .mnist import DIGIT_SIZE

__all__ = [
    "Clutter",
    "Distortion",
    "EVAL_SEED",
    "REGIMES",
    "Regime",
    "add_clutter",
    "as_float_images",
    "distort",
    "distortion_grid",
    "draw_clutter",
    "draw_distortion",
    "fixed_test_set",
    "frame_room",
]

# The image's corners in (x, y), clockwise from top-left: the order of ``Distortion.corners``.
UNIT_CORNERS = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
ELASTIC_GRID = 4
_ELASTIC = ThinPlateSpline(ELASTIC_GRID)
# Every fixed test set is drawn from this seed (the paper's arXiv number).
EVAL_SEED = 150602025


@dataclass(frozen=True)
class Regime:
    """One distortion regime as data: everything that defines its random draw.

    A parameter left at ``None`` is not drawn. Parameters are drawn in this order, each
    from the same generator, so a regime's draw is fixed by its fields and the seed:
    rotation, scale, shift, shear, perspective, elastic, clutter, stroke.

    Attributes:
        name: short name (``"RTS"``); also the prefix of its models' slugs, in lower case.
        canvas_size: side of the distorted image in pixels.
        description: one line, for people (docs, the app's regime buttons).
        paper: where the regime comes from.
        rotation: ``(low, high)`` degrees, uniform.
        scale: ``(low, high)`` isotropic scale, uniform.
        shift: ``"frame"``: the centre is uniform over every position that keeps the
            scaled 28x28 frame on the canvas; ``"pixel"``: a whole-pixel shift keeping the
            unscaled frame on the canvas (crisp digits, as the cluttered regime needs).
        shear: ``(low, high)`` horizontal shear, uniform.
        perspective: ``(corner_scale, sigma_low, sigma_high)``: the corners go to
            ``corner_scale * unit + sigma * z`` with ``z`` standard normal and ``sigma``
            uniform in ``[sigma_low, sigma_high]`` (a fixed sigma when they are equal).
        elastic: ``(sigma_low, sigma_high)``: control-point offsets ``sigma * z``, ``z``
            standard normal clipped at 3, ``sigma`` uniform in the range.
        clutter: ``(fragments, size)`` per image, cut from the pool's digits.
        stroke: ``(low, high)`` stroke-width change, uniform (see :func:`restroke`).
    """

    name: str
    canvas_size: int
    description: str
    paper: str
    rotation: tuple[float, float] | None = None
    scale: tuple[float, float] | None = None
    shift: str | None = None
    shear: tuple[float, float] | None = None
    perspective: tuple[float, float, float] | None = None
    elastic: tuple[float, float] | None = None
    clutter: tuple[int, int] | None = None
    stroke: tuple[float, float] | None = None

    @property
    def slug(self) -> str:
        return self.name.lower()


PAPER = "Jaderberg et al. 2015, section 4.1 and Table 1"
REGIMES = {
    regime.name: regime
    for regime in (
        Regime("R", DIGIT_SIZE, "rotated ±90°", PAPER, rotation=(-90, 90)),
        Regime(
            "RTS",
            42,
            "rotated ±45°, scaled 0.7–1.2, placed anywhere on 42×42",
            PAPER,
            rotation=(-45, 45),
            scale=(0.7, 1.2),
            shift="frame",
        ),
        Regime(
            "P",
            DIGIT_SIZE,
            "projective: scaled 0.75, corners moved (σ 0.1 of the side)",
            PAPER,
            perspective=(0.75, 0.2, 0.2),
        ),
        Regime(
            "E",
            DIGIT_SIZE,
            "elastic: 4×4 thin-plate spline, control points moved (σ 1.4 px)",
            PAPER,
            elastic=(0.1, 0.1),
        ),
        Regime(
            "TC",
            60,
            "translated on 60×60 with six 6×6 fragments of clutter",
            PAPER,
            shift="pixel",
            clutter=(6, 6),
        ),
        # Ours, not the paper's: a regime spanning the app's sliders, so that any slider
        # position is one the models were trained on. Ranges chosen so that the digit stays
        # whole and readable on the canvas: scale 0.6-1.3 keeps a rotated digit's ink
        # (20x20 at scale 1, up to 28 px across when rotated) inside 42 px; shear beyond
        # 0.4 and corner noise beyond P's strength make 4s and 9s, 1s and 7s collide.
        Regime(
            "FULL",
            42,
            "any rotation, scaled 0.6–1.3, sheared ±0.4, anywhere on 42×42, perspective and elastic up to P's and E's, "
            "stroke width varied",
            "ours: spans the app's sliders",
            rotation=(-180, 180),
            scale=(0.6, 1.3),
            shift="frame",
            shear=(-0.4, 0.4),
            perspective=(1.0, 0.0, 0.2),
            elastic=(0.0, 0.1),
            stroke=(-0.5, 0.7),
        ),
    )
}


def frame_room(scale: Tensor, canvas_size: int) -> Tensor:
    """The largest shift (normalised canvas units, per axis) that keeps a 28x28 frame scaled
    by ``scale`` on a ``canvas_size`` canvas: a ``"frame"`` shift is ``u * frame_room`` with
    ``u`` in [-1, 1].

    >>> frame_room(torch.tensor([1.0, 1.5]), 42).tolist()
    [0.3333333432674408, 0.0]
    """
    return (canvas_size - DIGIT_SIZE * scale) / canvas_size


def _regime(name: str) -> Regime:
    if name not in REGIMES:
        raise ValueError(f"unknown regime {name!r}; expected one of {', '.join(REGIMES)}")
    return REGIMES[name]


@dataclass(frozen=True)
class Clutter:
    """Fragments drawn over a canvas: ``F`` fragments of ``size x size`` per image.

    Attributes:
        source_index: ``(N, F)`` long, which digit of the pool each fragment is cut from.
        crop_xy: ``(N, F, 2)`` long, top-left ``(x, y)`` pixel of the cut in that digit.
        place_xy: ``(N, F, 2)`` long, top-left ``(x, y)`` pixel where it lands on the canvas.
    """

    source_index: Tensor
    crop_xy: Tensor
    place_xy: Tensor
    size: int = 6


@dataclass(frozen=True)
class Distortion:
    """Explicit parameters of a batch of ``N`` distortions (all tensors lead with ``N``).

    Attributes:
        canvas_size: side of the output canvas in pixels.
        rotation: ``(N,)`` degrees, counter-clockwise on screen.
        scale: ``(N,)`` isotropic scale of the digit.
        shear: ``(N,)`` horizontal shear of the digit (``x += shear * y``).
        shift: ``(N, 2)`` translation of the digit's centre, normalised canvas units
            (1 = half the canvas).
        corners: ``(N, 4, 2)`` where the digit image's corners go (perspective), in its
            own normalised coordinates, clockwise from top-left; ``None`` = unmoved.
        elastic: ``(N, 16, 2)`` offsets of the 4x4 thin-plate-spline control points'
            source positions, normalised units; ``None`` = no elastic warp.
        clutter: fragments drawn on top; ``None`` = clean canvas.
        stroke: ``(N,)`` stroke-width change applied to the digit before the warp (see
            :func:`restroke`); ``None`` = unchanged.
    """

    canvas_size: int
    rotation: Tensor
    scale: Tensor
    shear: Tensor
    shift: Tensor
    corners: Tensor | None = None
    elastic: Tensor | None = None
    clutter: Clutter | None = None
    stroke: Tensor | None = None

    @classmethod
    def create(
        cls,
        canvas_size: int = DIGIT_SIZE,
        *,
        rotation=0.0,
        scale=1.0,
        shear=0.0,
        shift_x=0.0,
        shift_y=0.0,
        corners: Tensor | None = None,
        elastic: Tensor | None = None,
        clutter: Clutter | None = None,
        stroke: Tensor | None = None,
    ) -> "Distortion":
        """Build from scalars or ``(N,)`` tensors (broadcast to a common ``N``).

        >>> Distortion.create(42, rotation=torch.tensor([0.0, 90.0]), scale=0.5).scale.tolist()
        [0.5, 0.5]
        """
        rotation, scale, shear, shift_x, shift_y = torch.broadcast_tensors(
            *[torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in (rotation, scale, shear, shift_x, shift_y)]
        )
        return cls(
            int(canvas_size), rotation, scale, shear, torch.stack([shift_x, shift_y], -1), corners, elastic, clutter, stroke
        )

    def __len__(self) -> int:
        return self.rotation.shape[0]

    def __getitem__(self, index) -> "Distortion":
        """The parameters of images ``index`` (a slice or index tensor), as a new batch."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                changes[f.name] = value[index]
            elif isinstance(value, Clutter):
                changes[f.name] = Clutter(value.source_index[index], value.crop_xy[index], value.place_xy[index], value.size)
        return replace(self, **changes)

    def to(self, device) -> "Distortion":
        """The same parameters on ``device`` (clutter indices move with the pool, in :func:`add_clutter`)."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)


def as_float_images(images: Tensor) -> Tensor:
    """``(N, H, W)`` uint8 digits -> ``(N, 1, H, W)`` float in [0, 1]."""
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"expected (N, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
    return images.unsqueeze(1).float().div_(255.0)


def restroke(images: Tensor, amount: Tensor) -> Tensor:
    """Thicken (``amount > 0``) or thin (``amount < 0``) the strokes of ``(N, 1, S, S)`` digits.

    ``amount`` ``(N,)`` in [-1, 1] blends each image towards its grey-level dilation (+1)
    or erosion (-1) by a 3x3 square, i.e. about one pixel more or less ink on each side of
    a stroke at +-1. Why: digits drawn with a mouse or a pen are thinner or thicker than
    MNIST's after normalisation, and a model that saw only MNIST's widths misreads them.

    >>> dot = torch.zeros(1, 1, 5, 5); dot[0, 0, 2, 2] = 1.0
    >>> int(restroke(dot, torch.tensor([1.0])).sum())
    9
    """
    a = amount.to(images).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    return torch.where(a >= 0, images + a * (dilated - images), images + a * (images - eroded))


def distortion_grid(distortion: Distortion, input_size: int = DIGIT_SIZE) -> Tensor:
    """Sampling grid of ``distortion`` over its canvas, in the input digit's coordinates.

    Returns:
        ``(N, canvas_size, canvas_size, 2)``.
    """
    d = distortion
    canvas = d.canvas_size
    # Content map on the canvas: the digit, embedded at the centre at its own pixel size,
    # is scaled, sheared, rotated and shifted. Sampling needs its inverse.
    content = affine_theta(d.rotation, d.scale, d.scale, d.shear, d.shift[:, 0], d.shift[:, 1])
    to_input = invert_affine(content) * (canvas / input_size)
    points = pixel_grid(canvas, dtype=to_input.dtype, device=to_input.device)
    points = Affine().map_points(to_input.reshape(-1, 6), points)
    if d.corners is not None:
        unit = UNIT_CORNERS.to(d.corners).expand_as(d.corners)
        points = Projective().map_points(homography_from_points(d.corners, unit), points)
    if d.elastic is not None:
        source = _ELASTIC.identity(dtype=d.elastic.dtype, device=d.elastic.device) + d.elastic.reshape(len(d), -1)
        points = _ELASTIC.map_points(source, points)
    return points.view(len(d), canvas, canvas, 2)


def add_clutter(canvas: Tensor, pool: Tensor, clutter: Clutter) -> Tensor:
    """Draw clutter fragments cut from ``pool`` onto ``canvas`` (pixel-wise maximum).

    Args:
        canvas: ``(N, 1, C, C)`` float images.
        pool: ``(P, 1, 28, 28)`` float digits the fragments are cut from.

    Returns:
        A new ``(N, 1, C, C)`` tensor.
    """
    n, side, device = canvas.shape[0], canvas.shape[-1], pool.device
    crop_xy, place_xy = clutter.crop_xy.to(device), clutter.place_xy.to(device)
    offsets = torch.arange(clutter.size, device=device)
    rows = (crop_xy[..., 1:] + offsets)[..., :, None]  # (N, F, s, 1)
    cols = (crop_xy[..., :1] + offsets)[..., None, :]  # (N, F, 1, s)
    fragments = pool[:, 0][clutter.source_index.to(device)[..., None, None], rows, cols]  # (N, F, s, s)
    place_rows = (place_xy[..., 1:] + offsets)[..., :, None]
    place_cols = (place_xy[..., :1] + offsets)[..., None, :]
    flat_index = (place_rows * side + place_cols).reshape(n, -1).to(canvas.device)
    flat = canvas.reshape(n, -1).scatter_reduce(1, flat_index, fragments.reshape(n, -1).to(canvas), reduce="amax")
    return flat.view_as(canvas)


def distort(images: Tensor, distortion: Distortion, pool: Tensor | None = None) -> Tensor:
    """Apply ``distortion`` to a batch of digits.

    Args:
        images: ``(N, 1, H, W)`` float in [0, 1], ink bright on 0.
        distortion: ``N`` parameter sets (see :class:`Distortion`).
        pool: ``(P, 1, 28, 28)`` digits to cut clutter from; needed iff ``distortion.clutter``.

    Returns:
        ``(N, 1, canvas_size, canvas_size)`` float in [0, 1].
    """
    if images.dim() != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise ValueError(f"distort expects square images of shape (N, 1, S, S), got {tuple(images.shape)}")
    if images.shape[0] != len(distortion):
        raise ValueError(f"{images.shape[0]} images but {len(distortion)} distortions")
    distortion = distortion.to(images.device)
    if distortion.stroke is not None:
        images = restroke(images, distortion.stroke)
    grid = distortion_grid(distortion, input_size=images.shape[-1])
    warped = sample(images, grid)
    if distortion.clutter is not None:
        if pool is None:
            raise ValueError("this distortion has clutter: pass the pool of digits to cut it from")
        warped = add_clutter(warped, pool, distortion.clutter)
    return warped.clamp_(0.0, 1.0)


def _uniform(n: int, low: float, high: float, generator, shape=()) -> Tensor:
    return torch.rand((n, *shape), generator=generator) * (high - low) + low


def draw_distortion(regime: str, n: int, generator: torch.Generator, pool_size: int | None = None) -> Distortion:
    """Draw ``n`` random distortions of ``regime`` (its :class:`Regime` entry says how).

    Args:
        generator: a CPU ``torch.Generator``; the same seed gives the same parameters.
        pool_size: number of digits clutter may be cut from (regimes with clutter only).
    """
    spec = _regime(regime)
    canvas = spec.canvas_size
    rotation = _uniform(n, *spec.rotation, generator) if spec.rotation else torch.zeros(n)
    scale = _uniform(n, *spec.scale, generator) if spec.scale else torch.ones(n)
    shift = torch.zeros(n, 2)
    if spec.shift == "frame":
        shift = _uniform(n, -1, 1, generator, (2,)) * frame_room(scale, canvas)[:, None]
    elif spec.shift == "pixel":  # whole pixels keep the digit crisp and fully on the canvas
        half_room = (canvas - DIGIT_SIZE) // 2
        shift = torch.randint(-half_room, half_room + 1, (n, 2), generator=generator).float() / (canvas / 2)
    shear = _uniform(n, *spec.shear, generator) if spec.shear else torch.zeros(n)
    corners = elastic = clutter = stroke = None
    if spec.perspective:
        corner_scale, low, high = spec.perspective
        sigma = _sigma(n, low, high, generator)[:, None, None]
        corners = corner_scale * UNIT_CORNERS + sigma * torch.randn((n, 4, 2), generator=generator)
    if spec.elastic:
        sigma = _sigma(n, *spec.elastic, generator)[:, None, None]
        offsets = sigma * torch.randn((n, ELASTIC_GRID**2, 2), generator=generator)
        elastic = torch.minimum(torch.maximum(offsets, -3 * sigma), 3 * sigma)
    if spec.clutter:
        if pool_size is None or pool_size < 1:
            raise ValueError(f"regime {regime} needs pool_size: the number of digits clutter is cut from")
        fragments, size = spec.clutter
        clutter = draw_clutter(n, canvas, pool_size, generator, fragments, size)
    if spec.stroke:
        stroke = _uniform(n, *spec.stroke, generator)
    return Distortion.create(
        canvas,
        rotation=rotation,
        scale=scale,
        shear=shear,
        shift_x=shift[:, 0],
        shift_y=shift[:, 1],
        corners=corners,
        elastic=elastic,
        clutter=clutter,
        stroke=stroke,
    )


def _sigma(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    """``(n,)`` noise strengths: fixed when ``low == high`` (no random number drawn), else uniform."""
    return torch.full((n,), float(low)) if low == high else _uniform(n, low, high, generator)


def draw_clutter(
    n: int, canvas_size: int, pool_size: int, generator: torch.Generator, fragments: int = 6, size: int = 6
) -> Clutter:
    """Random clutter: ``fragments`` pieces of ``size x size`` per image, cut from the central
    20x20 of random pool digits (where their ink is), placed anywhere on the canvas."""
    margin = (DIGIT_SIZE - 20) // 2
    return Clutter(
        source_index=torch.randint(0, pool_size, (n, fragments), generator=generator),
        crop_xy=torch.randint(margin, DIGIT_SIZE - margin - size + 1, (n, fragments, 2), generator=generator),
        place_xy=torch.randint(0, canvas_size - size + 1, (n, fragments, 2), generator=generator),
        size=size,
    )


def fixed_test_set(images: Tensor, regime: str, seed: int = EVAL_SEED, batch_size: int = 2000) -> Tensor:
    """The fixed, seeded distorted copy of ``images`` used for every evaluation.

    Args:
        images: ``(N, 1, 28, 28)`` float digits (also the clutter pool for ``TC``).

    Returns:
        ``(N, 1, C, C)`` float, identical for the same images, regime and seed.
    """
    generator = torch.Generator().manual_seed(seed)
    distortion = draw_distortion(regime, images.shape[0], generator, pool_size=images.shape[0])
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        chunks.append(distort(images[start : start + batch_size], distortion[start : start + batch_size], pool=images))
    return torch.cat(chunks)
