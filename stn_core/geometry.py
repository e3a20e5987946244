"""Grid generator and sampler of a spatial transformer (paper, section 3.2-3.3).

Coordinate convention (the one convention of the whole project)
----------------------------------------------------------------
Points are ``(x, y)`` in *normalised* image coordinates: ``x`` grows to the right,
``y`` grows downwards, and the image spans ``[-1, 1]`` on both axes with pixel
*centres* at ``(2 i + 1) / size - 1`` (``align_corners=False``).

A transformation's parameters ``theta`` map each **output** pixel's coordinate to the
**input** location it samples: ``T_theta(G)`` in the paper, the ``grid`` argument of
:func:`torch.nn.functional.grid_sample`, and exactly what
:func:`torch.nn.functional.affine_grid` computes for an affine ``theta``. So the grid
*drawn on the input* shows where the output looks; moving content by a map ``M`` means
sampling with ``M``'s inverse.

Angles are in degrees, positive = counter-clockwise **as seen on screen** (with ``y``
pointing down). A grid of shape ``(N, H, W, 2)`` holds ``(x, y)`` in its last axis.

Transformation families (each: ``num_params``, ``identity()``, ``map_points()``,
``grid()``): :class:`Affine` (6), :class:`Attention` (3: isotropic scale + translation),
:class:`Projective` (8: homography with ``h33 = 1``) and :class:`ThinPlateSpline`
(``2 K^2``: source positions of a ``K x K`` control grid).

>>> theta = affine_theta(rotation=90.0)          # grid turned 90 deg counter-clockwise
>>> [round(v, 6) + 0.0 for v in theta.flatten().tolist()]
[0.0, 1.0, 0.0, -1.0, 0.0, 0.0]
>>> image = torch.arange(16.0).view(1, 1, 4, 4)
>>> warped = sample(image, Affine().grid(invert_affine(theta).view(1, 6), 4))
>>> torch.allclose(warped, torch.rot90(image, 1, dims=(2, 3)), atol=1e-5)  # content turns CCW
True
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Affine",
    "AffineParts",
    "Attention",
    "Projective",
    "ThinPlateSpline",
    "Transform",
    "TRANSFORM_NAMES",
    "affine_theta",
    "decompose_affine",
    "homography_from_points",
    "invert_affine",
    "make_transform",
    "pixel_grid",
    "sample",
]


def pixel_grid(height: int, width: int | None = None, *, dtype=torch.float32, device=None) -> Tensor:
    """Normalised centres of an ``height x width`` image's pixels, row by row.

    Returns:
        ``(height * width, 2)`` tensor of ``(x, y)``; ``x`` varies fastest, as in
        :func:`torch.nn.functional.affine_grid`.

    >>> pixel_grid(2).tolist()
    [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]]
    """
    width = height if width is None else width
    if height < 1 or width < 1:
        raise ValueError(f"pixel_grid expects a positive size, got {height}x{width}")
    xs = (torch.arange(width, dtype=dtype, device=device) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=dtype, device=device) * 2 + 1) / height - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y], dim=-1).reshape(-1, 2)


def _size_hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _check_params(params: Tensor, num_params: int, name: str) -> None:
    if not isinstance(params, Tensor):
        raise TypeError(f"{name} parameters must be a tensor, got {type(params).__name__}")
    if params.dim() != 2 or params.shape[1] != num_params:
        raise ValueError(f"{name} expects parameters of shape (N, {num_params}), got {tuple(params.shape)}")
    if not params.is_floating_point():
        raise TypeError(f"{name} parameters must be a float tensor, got {params.dtype}")


def _batched_points(points: Tensor, batch: int) -> Tensor:
    """``(1 or N, M, 2)``: shared points stay unexpanded, so per-point work is done once."""
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] not in (1, batch):
        raise ValueError(f"points must have shape (M, 2) or ({batch}, M, 2), got {tuple(points.shape)}")
    return points


class Transform:
    """A family of transformations ``T_theta``: output coordinates -> input coordinates."""

    name: str = ""
    num_params: int = 0

    def identity(self, *, dtype=torch.float32, device=None) -> Tensor:
        """Parameters of the identity transformation, shape ``(num_params,)``."""
        raise NotImplementedError

    def _map(self, params: Tensor, points: Tensor) -> Tensor:
        raise NotImplementedError

    def map_points(self, params: Tensor, points: Tensor) -> Tensor:
        """Map output-space points to the input locations they sample.

        Args:
            params: ``(N, num_params)`` float tensor.
            points: ``(M, 2)`` or ``(N, M, 2)`` normalised ``(x, y)``.

        Returns:
            ``(N, M, 2)`` input-space points, same dtype and device as ``params``.
        """
        _check_params(params, self.num_params, type(self).__name__)
        points = _batched_points(points.to(params), params.shape[0])
        return self._map(params, points)

    def window_scale(self, params: Tensor) -> Tensor:
        """The linear scale of the window each ``theta`` reads: its side as a share of the
        input's (1: the whole input; 0.5: a window half as wide), shape ``(N,)``.

        Defined for the families whose window is a parallelogram, affine and attention;
        the others raise ``ValueError``.
        """
        raise ValueError(f"expected an affine or attention transform (a parallelogram window), got {self.name!r}")

    def grid(self, params: Tensor, size) -> Tensor:
        """Sampling grid ``T_theta(G)`` for an output of ``size`` (int or ``(H, W)``).

        Returns:
            ``(N, H, W, 2)`` grid for :func:`sample`.
        """
        height, width = _size_hw(size)
        _check_params(params, self.num_params, type(self).__name__)
        points = pixel_grid(height, width, dtype=params.dtype, device=params.device)
        return self.map_points(params, points).view(params.shape[0], height, width, 2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Affine(Transform):
    """``theta`` = the 2x3 matrix ``[A | t]`` flattened row by row; ``x_in = A x_out + t``."""

    name = "affine"
    num_params = 6

    def identity(self, *, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=dtype, device=device)

    def _map(self, params, points):
        theta = params.view(-1, 2, 3)
        return points @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)

    def window_scale(self, params: Tensor) -> Tensor:
        """``sqrt(|det A|)``: a rotated or sheared window of the same area counts the same.

        >>> Affine().window_scale(torch.tensor([[0.5, 0.0, 0.2, 0.0, 0.5, 0.0]]))
        tensor([0.5000])
        """
        _check_params(params, self.num_params, type(self).__name__)
        return torch.linalg.det(params.view(-1, 2, 3)[:, :, :2]).abs().sqrt()


class Attention(Transform):
    """The paper's attention form ``[[s, 0, tx], [0, s, ty]]``; parameters ``(s, tx, ty)``."""

    name = "attention"
    num_params = 3

    def identity(self, *, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor([1.0, 0.0, 0.0], dtype=dtype, device=device)

    def _map(self, params, points):
        return points * params[:, None, :1] + params[:, None, 1:]

    def window_scale(self, params: Tensor) -> Tensor:
        """``|s|``.

        >>> Attention().window_scale(torch.tensor([[0.6, 0.1, -0.2]]))
        tensor([0.6000])
        """
        _check_params(params, self.num_params, type(self).__name__)
        return params[:, 0].abs()

    @staticmethod
    def to_affine(params: Tensor) -> Tensor:
        """``(N, 3)`` attention parameters -> ``(N, 6)`` affine parameters."""
        scale, tx, ty = params.unbind(-1)
        zero = torch.zeros_like(scale)
        return torch.stack([scale, zero, tx, zero, scale, ty], dim=-1)


class Projective(Transform):
    """Homography ``H`` with ``h33 = 1``; parameters ``h11 h12 h13 h21 h22 h23 h31 h32``.

    ``(x_in, y_in) = (h11 x + h12 y + h13, h21 x + h22 y + h23) / (h31 x + h32 y + 1)``.
    """

    name = "projective"
    num_params = 8
    # Keeps the perspective divide finite for points on the horizon line (w = 0).
    min_abs_w = 1e-6

    def identity(self, *, dtype=torch.float32, device=None) -> Tensor:
        return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], dtype=dtype, device=device)

    def _map(self, params, points):
        ones = torch.ones_like(params[:, :1])
        homography = torch.cat([params, ones], dim=1).view(-1, 3, 3)
        homogeneous = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
        mapped = homogeneous @ homography.transpose(1, 2)
        w = mapped[..., 2:]
        w = torch.where(w.abs() < self.min_abs_w, torch.where(w < 0, -self.min_abs_w, self.min_abs_w), w)
        return mapped[..., :2] / w


class ThinPlateSpline(Transform):
    """Thin-plate spline through a ``K x K`` grid of control points (paper: K = 4).

    The control points sit on a regular grid over the *output*, from -1 to 1; the
    parameters are their *source* positions in the input, flattened as
    ``(x_0, y_0, x_1, y_1, ...)`` in row-major order of the grid. The spline maps each
    control point exactly to its source position and interpolates smoothly between,
    with minimal bending energy (kernel ``U(r) = r^2 log r^2``).
    """

    name = "tps"

    def __init__(self, grid_size: int = 4):
        if int(grid_size) < 2:
            raise ValueError(f"ThinPlateSpline needs grid_size >= 2, got {grid_size}")
        self.grid_size = int(grid_size)
        self.num_params = 2 * self.grid_size**2
        self.control_points = pixel_grid(self.grid_size, dtype=torch.float64) * (
            self.grid_size / (self.grid_size - 1)
        )  # (K*K, 2), spanning exactly [-1, 1]
        # Solving the spline system once: the source positions then enter linearly.
        k = self.control_points.shape[0]
        system = torch.zeros(k + 3, k + 3, dtype=torch.float64)
        system[:k, :k] = self._kernel(self.control_points, self.control_points)
        affine_part = torch.cat([torch.ones(k, 1, dtype=torch.float64), self.control_points], dim=1)
        system[:k, k:] = affine_part
        system[k:, :k] = affine_part.T
        self._solution = torch.linalg.inv(system)[:, :k]  # (K*K + 3, K*K)

    @staticmethod
    def _kernel(points: Tensor, centres: Tensor) -> Tensor:
        # x and y apart, not ``(p - c).pow(2).sum(-1)``: the same sums to the bit, without
        # a strided size-2 last dimension, which made the kernel 5x slower on a CPU.
        dx = points[..., 0, None] - centres[:, 0]
        dy = points[..., 1, None] - centres[:, 1]
        squared = dx * dx + dy * dy
        return squared * torch.log(squared.clamp_min(1e-20))

    def identity(self, *, dtype=torch.float32, device=None) -> Tensor:
        return self.control_points.reshape(-1).to(dtype=dtype, device=device)

    def _map(self, params, points):
        centres = self.control_points.to(params)
        features = torch.cat(
            [self._kernel(points, centres), torch.ones_like(points[..., :1]), points], dim=-1
        )  # (1 or N, M, K*K + 3)
        # Interpolating the displacements (not the positions) keeps the identity exact in float32.
        displacement = params.view(params.shape[0], -1, 2) - centres
        return points + features @ (self._solution.to(params) @ displacement)

    def __repr__(self) -> str:
        return f"ThinPlateSpline(grid_size={self.grid_size})"


TRANSFORM_NAMES = ("affine", "attention", "projective", "tps")


def make_transform(name: str, **options) -> Transform:
    """Transformation family by name: ``affine``, ``attention``, ``projective`` or ``tps``.

    ``tps`` takes ``grid_size`` (default 4, i.e. 16 control points).
    """
    if name == "tps":
        return ThinPlateSpline(**options)
    families = {"affine": Affine, "attention": Attention, "projective": Projective}
    if name not in families:
        raise ValueError(f"unknown transform {name!r}; expected one of {', '.join(TRANSFORM_NAMES)}")
    if options:
        raise ValueError(f"transform {name!r} takes no options, got {sorted(options)}")
    return families[name]()


def sample(images: Tensor, grid: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Bilinear sampler: ``V = U(T_theta(G))``.

    Args:
        images: ``(N, C, H_in, W_in)``.
        grid: ``(N, H_out, W_out, 2)`` from a transform's :meth:`Transform.grid`.
        padding_mode: ``"zeros"`` (outside = background 0), ``"border"`` or ``"reflection"``.

    Returns:
        ``(N, C, H_out, W_out)``.
    """
    if images.dim() != 4:
        raise ValueError(f"sample expects images of shape (N, C, H, W), got {tuple(images.shape)}")
    if grid.dim() != 4 or grid.shape[-1] != 2 or grid.shape[0] != images.shape[0]:
        raise ValueError(f"sample expects a grid of shape ({images.shape[0]}, H, W, 2), got {tuple(grid.shape)}")
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=False)


class AffineParts(NamedTuple):
    """Reading of an affine ``theta = [R(rotation) @ Shear(shear) @ diag(scale_x, scale_y) | shift]``."""

    rotation: Tensor  # degrees, counter-clockwise on screen
    scale_x: Tensor
    scale_y: Tensor  # negative when theta reflects
    shear: Tensor  # x += shear * y, applied after scaling
    shift_x: Tensor
    shift_y: Tensor


def affine_theta(rotation=0.0, scale_x=1.0, scale_y=1.0, shear=0.0, shift_x=0.0, shift_y=0.0) -> Tensor:
    """Affine ``theta`` from its parts; scalars or broadcastable tensors.

    ``theta = [R @ [[1, shear], [0, 1]] @ diag(scale_x, scale_y) | (shift_x, shift_y)]``
    with ``R`` the on-screen counter-clockwise rotation by ``rotation`` degrees
    (``[[cos, sin], [-sin, cos]]`` because ``y`` points down).

    Returns:
        ``(..., 2, 3)`` tensor (float32 unless a tensor argument says otherwise).

    >>> (affine_theta(scale_x=2.0, shift_y=0.5) + 0.0).tolist()  # + 0.0 folds -0.0
    [[2.0, 0.0, 0.0], [0.0, 1.0, 0.5]]
    """
    parts = [rotation, scale_x, scale_y, shear, shift_x, shift_y]
    reference = next((p for p in parts if isinstance(p, Tensor) and p.is_floating_point()), None)
    dtype = reference.dtype if reference is not None else torch.float32
    device = reference.device if reference is not None else None
    parts = torch.broadcast_tensors(*[torch.as_tensor(p, dtype=dtype, device=device) for p in parts])
    rotation, scale_x, scale_y, shear, shift_x, shift_y = parts
    radians = rotation * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    # R @ Shear @ diag(sx, sy), written out.
    row0 = torch.stack([cos * scale_x, (cos * shear + sin) * scale_y, shift_x], dim=-1)
    row1 = torch.stack([-sin * scale_x, (cos - sin * shear) * scale_y, shift_y], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def _as_theta(theta: Tensor) -> Tensor:
    if not isinstance(theta, Tensor) or theta.shape[-2:] != (2, 3):
        shape = tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__
        raise ValueError(f"expected an affine theta of shape (..., 2, 3), got {shape}")
    return theta


def decompose_affine(theta: Tensor) -> AffineParts:
    """Inverse of :func:`affine_theta`: read rotation, scales, shear and shift off ``theta``.

    Copes with any matrix: a reflection gives a negative ``scale_y``; a singular one gives a
    zero scale (and zero shear when ``scale_y`` is zero or too small to divide by).

    >>> parts = decompose_affine(affine_theta(rotation=30.0, scale_x=0.5, shear=0.2))
    >>> [round(float(v), 4) for v in parts]
    [30.0, 0.5, 1.0, 0.2, 0.0, 0.0]
    """
    theta = _as_theta(theta)
    a, b, tx = theta[..., 0, 0], theta[..., 0, 1], theta[..., 0, 2]
    c, d, ty = theta[..., 1, 0], theta[..., 1, 1], theta[..., 1, 2]
    scale_x = torch.hypot(a, c)
    radians = torch.atan2(-c, a)  # first column is scale_x * (cos, -sin)
    cos, sin = torch.cos(radians), torch.sin(radians)
    # R(-rotation) @ A is upper triangular: [[scale_x, shear * scale_y], [0, scale_y]].
    scale_y = sin * b + cos * d
    upper = cos * b - sin * d
    # Divide unless the quotient would overflow (scale_y zero or subnormal): then shear 0.
    # A large finite shear still rebuilds a rank-one theta exactly.
    singular = upper.abs() >= scale_y.abs() * (torch.finfo(scale_y.dtype).max / 4)
    shear = torch.where(singular, torch.zeros_like(upper), upper / torch.where(singular, torch.ones_like(scale_y), scale_y))
    return AffineParts(torch.rad2deg(radians), scale_x, scale_y, shear, tx, ty)


def invert_affine(theta: Tensor, eps: float = 1e-12) -> Tensor:
    """Inverse affine map: if ``theta`` sends ``p`` to ``q``, the result sends ``q`` to ``p``.

    Raises:
        ValueError: if any matrix is singular (``|det A| <= eps``).
    """
    theta = _as_theta(theta)
    linear, shift = theta[..., :2], theta[..., 2:]
    det = torch.linalg.det(linear)
    if bool((det.abs() <= eps).any()):
        raise ValueError("theta is singular (det of its 2x2 part is 0); it has no inverse")
    a, b = linear[..., 0, 0], linear[..., 0, 1]
    c, d = linear[..., 1, 0], linear[..., 1, 1]
    inverse_linear = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / det[..., None, None]
    return torch.cat([inverse_linear, -inverse_linear @ shift], dim=-1)


def homography_from_points(source: Tensor, target: Tensor) -> Tensor:
    """Projective parameters of the homography that maps 4 ``source`` points onto ``target``.

    Args:
        source, target: ``(N, 4, 2)`` points, no three collinear.

    Returns:
        ``(N, 8)`` parameters for :class:`Projective`.

    >>> corners = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]])
    >>> homography_from_points(corners, corners).round(decimals=6).abs().tolist()
    [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    """
    if source.shape != target.shape or source.dim() != 3 or source.shape[1:] != (4, 2):
        raise ValueError(f"expected source and target of shape (N, 4, 2), got {tuple(source.shape)} and {tuple(target.shape)}")
    x, y = source.unbind(-1)
    u, v = target.unbind(-1)
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    # u (h31 x + h32 y + 1) = h11 x + h12 y + h13, likewise v: two linear rows per point.
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], dim=-1)
    system = torch.cat([rows_u, rows_v], dim=1)  # (N, 8, 8)
    rhs = torch.cat([u, v], dim=1).unsqueeze(-1)
    return torch.linalg.solve(system, rhs).squeeze(-1)
