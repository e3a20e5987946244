"""The app's controls as the library's distortions: what the sliders of a demo mean.

Nine controls: the digit is rotated, scaled, shifted and sheared; ``perspective`` and
``elastic`` scale a random corner / control-point pattern drawn from ``seed`` (strength 1 =
as strong as the paper's regimes P and E); ``clutter`` adds the TC regime's fragments.
:meth:`Controls.distortion` turns them into a :class:`~stn_core.distortions.Distortion`,
so a slider drives exactly the functions the training regimes use.

>>> Controls(rotation=30.0).distortion(42, pool_size=1).rotation.tolist()
[30.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from .distortions import DIGIT_SIZE, ELASTIC_GRID, REGIMES, UNIT_CORNERS, Clutter, Distortion, draw_clutter, draw_distortion

__all__ = ["CONTROL_NAMES", "CONTROL_RANGES", "Controls", "distortion_batch", "trained_ranges"]

# Documented range of every control; values outside are clamped, non-numbers refused.
CONTROL_RANGES = {
    "rotation": (-180.0, 180.0),
    "scale": (0.3, 2.0),
    "shift_x": (-1.0, 1.0),
    "shift_y": (-1.0, 1.0),
    "shear": (-1.0, 1.0),
    "perspective": (0.0, 2.0),
    "elastic": (0.0, 3.0),
    "seed": (0, 2**31 - 1),
}
# Strength 1 of these controls is one draw of the matching regime (P, E).
PERSPECTIVE_SIGMA, ELASTIC_SIGMA = 0.2, 0.1


@dataclass(frozen=True)
class Controls:
    """What the sliders say: the digit is rotated (degrees, counter-clockwise), scaled,
    sheared and shifted (normalised canvas units); ``perspective`` and ``elastic`` scale a
    random corner / control-point pattern drawn from ``seed`` (1 = as strong as regimes P
    and E); ``clutter`` adds the TC regime's fragments, also drawn from ``seed``."""

    rotation: float = 0.0
    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    shear: float = 0.0
    perspective: float = 0.0
    elastic: float = 0.0
    clutter: bool = False
    seed: int = 0

    def checked(self) -> "Controls":
        """The same controls clamped to ``CONTROL_RANGES``.

        Raises:
            ValueError: naming the control and its range, for a value that is not a finite number.
        """
        changed = {}
        for name, (low, high) in CONTROL_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
            clamped = type(low)(min(max(value, low), high))
            if clamped != value or type(clamped) is not type(value):
                changed[name] = clamped
        if not isinstance(self.clutter, bool):
            raise ValueError(f"clutter must be true or false, got {self.clutter!r}")
        # Checked controls come back as they are, not copied: the live path checks every
        # frame twice (on arrival and again in its batch).
        return replace(self, **changed) if changed else self

    @classmethod
    def from_regime(cls, regime: str, seed: int) -> "Controls":
        """A random distortion of ``regime`` (drawn by the regime itself), as control values."""
        drawn = draw_distortion(regime, 1, torch.Generator().manual_seed(seed), pool_size=1)
        base = cls(seed=seed)
        if regime == "P":  # corners = 0.75 * (unit + 0.2 * z / 0.75): scale 0.75 after a perspective of 1 / 0.75
            return replace(base, scale=0.75, perspective=1 / 0.75)
        if regime == "E":
            return replace(base, elastic=1.0)
        return replace(
            base,
            rotation=float(drawn.rotation[0]),
            scale=float(drawn.scale[0]),
            shift_x=float(drawn.shift[0, 0]),
            shift_y=float(drawn.shift[0, 1]),
            shear=float(drawn.shear[0]),
            clutter=REGIMES[regime].clutter is not None,
        )

    def distortion(self, canvas_size: int, pool_size: int) -> Distortion:
        """One :class:`Distortion` for a ``canvas_size`` canvas; clutter cut from a pool of ``pool_size``."""
        return distortion_batch([self], canvas_size, pool_size)


def _patterns(controls: Controls, canvas_size: int, pool_size: int):
    """``(corners, elastic, clutter)`` of one control set, each ``None`` where it is off."""
    if not (controls.perspective or controls.elastic or controls.clutter):
        return None, None, None  # a plain affine frame, the live view's commonest: no generator
    generator = torch.Generator().manual_seed(controls.seed)
    # Always drawn in this order, so that each pattern depends on the seed alone.
    corner_pattern = torch.randn((1, 4, 2), generator=generator)
    elastic_pattern = torch.randn((1, ELASTIC_GRID**2, 2), generator=generator).clamp(-3, 3)
    corners = UNIT_CORNERS + controls.perspective * PERSPECTIVE_SIGMA * corner_pattern if controls.perspective else None
    elastic = controls.elastic * ELASTIC_SIGMA * elastic_pattern if controls.elastic else None
    clutter = draw_clutter(1, canvas_size, pool_size, generator) if controls.clutter else None
    return corners, elastic, clutter


def distortion_batch(controls: list[Controls], canvas_size: int, pool_size: int) -> Distortion:
    """One :class:`Distortion` of ``N = len(controls)`` images, the same as the controls'
    own :meth:`Controls.distortion` stacked, built with one tensor per parameter.

    Raises:
        ValueError: when the controls differ in whether perspective, elastic or clutter is
            on (a batch's optional parts are all present or all absent).

    >>> batch = distortion_batch([Controls(rotation=10.0), Controls(scale=0.5)], 42, pool_size=1)
    >>> batch.rotation.tolist(), batch.scale.tolist()
    ([10.0, 0.0], [1.0, 0.5])
    """
    if not controls:
        raise ValueError("expected at least one set of controls, got none")
    affine = torch.tensor([[c.rotation, c.scale, c.shear, c.shift_x, c.shift_y] for c in controls], dtype=torch.float32)
    parts = [_patterns(c, canvas_size, pool_size) for c in controls]
    merged = []
    for name, values in zip(("perspective", "elastic", "clutter"), zip(*parts)):
        present = [v is not None for v in values]
        if any(present) and not all(present):
            raise ValueError(f"cannot batch controls that differ in whether {name} is on")
        if not present[0]:
            merged.append(None)
        elif name == "clutter":
            merged.append(
                Clutter(
                    *(torch.cat([getattr(v, k) for v in values]) for k in ("source_index", "crop_xy", "place_xy")), values[0].size
                )
            )
        else:
            merged.append(torch.cat(values))
    corners, elastic, clutter = merged
    rotation, scale, shear = affine[:, :3].T.contiguous()
    return Distortion(canvas_size, rotation, scale, shear, affine[:, 3:5].contiguous(), corners, elastic, clutter)


# The order of the controls everywhere they travel as a list (sliders, API, links).
CONTROL_NAMES = tuple(f.name for f in fields(Controls))


def trained_ranges(regime: str) -> dict[str, tuple[float, float]]:
    """The control values a model trained on ``regime`` has seen, per control.

    Read from the regime's :class:`~stn_core.distortions.Regime` entry. The shift range is
    the widest one the regime draws (at its smallest scale); for a fixed parameter the range
    is one point. The app shades these ranges on its sliders.

    >>> trained_ranges("RTS")["rotation"]
    (-45.0, 45.0)
    >>> trained_ranges("R")["shift_x"]
    (0.0, 0.0)
    """
    spec = REGIMES[regime]
    canvas = spec.canvas_size
    low_scale, high_scale = spec.scale or (1.0, 1.0)
    shift = 0.0
    if spec.shift == "frame":
        shift = (canvas - DIGIT_SIZE * low_scale) / canvas
    elif spec.shift == "pixel":
        shift = ((canvas - DIGIT_SIZE) // 2) / (canvas / 2)
    perspective = (0.0, 0.0)
    if spec.perspective:
        corner_scale, sigma_low, sigma_high = spec.perspective
        # corners = c * unit + sigma * z = c * (unit + (sigma / c) * z): strength sigma / (c * 0.2)
        perspective = (sigma_low / (corner_scale * PERSPECTIVE_SIGMA), sigma_high / (corner_scale * PERSPECTIVE_SIGMA))
        if corner_scale != 1.0:
            low_scale = high_scale = corner_scale
    elastic = (spec.elastic[0] / ELASTIC_SIGMA, spec.elastic[1] / ELASTIC_SIGMA) if spec.elastic else (0.0, 0.0)
    ranges = {
        "rotation": tuple(map(float, spec.rotation or (0.0, 0.0))),
        "scale": (float(low_scale), float(high_scale)),
        "shift_x": (-round(shift, 4), round(shift, 4)),
        "shift_y": (-round(shift, 4), round(shift, 4)),
        "shear": tuple(map(float, spec.shear or (0.0, 0.0))),
        "perspective": (round(perspective[0], 4), round(perspective[1], 4)),
        "elastic": (round(elastic[0], 4), round(elastic[1], 4)),
    }
    return {name: (float(low) + 0.0, float(high) + 0.0) for name, (low, high) in ranges.items()}
