import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stn_core.geometry import (
    Affine,
    Attention,
    Projective,
    ThinPlateSpline,
    affine_theta,
    decompose_affine,
    homography_from_points,
    invert_affine,
    make_transform,
    pixel_grid,
    sample,
)

FAMILIES = [Affine(), Attention(), Projective(), ThinPlateSpline(4), ThinPlateSpline(3)]
IDS = ["affine", "attention", "projective", "tps4", "tps3"]


def _homogeneous(theta):
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=theta.dtype).expand(*theta.shape[:-2], 1, 3)
    return torch.cat([theta, bottom], dim=-2)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@pytest.mark.parametrize("size", [(28, 28), (42, 42), (7, 11)])
def test_identity_parameters_reproduce_the_input(family, size):
    images = torch.rand(3, 2, *size)
    params = family.identity().expand(3, -1)
    warped = sample(images, family.grid(params, size))
    assert (warped - images).abs().max() < 1e-5


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_parameter_counts_and_identity_shapes(family):
    expected = {"affine": 6, "attention": 3, "projective": 8, "tps": 2 * getattr(family, "grid_size", 0) ** 2}
    assert family.num_params == expected[family.name]
    assert family.identity().shape == (family.num_params,)


def test_affine_grid_matches_torch_affine_grid():
    theta = affine_theta(torch.tensor([10.0, -130.0]), 0.7, 1.3, 0.3, 0.2, -0.1).double()
    ours = Affine().grid(theta.reshape(2, 6), (5, 7))
    theirs = F.affine_grid(theta, (2, 1, 5, 7), align_corners=False)
    assert torch.allclose(ours, theirs, atol=1e-12)


def test_attention_is_the_matching_affine():
    params = torch.tensor([[0.5, 0.2, -0.3], [1.5, 0.0, 0.1]])
    assert torch.allclose(Attention().grid(params, 9), Affine().grid(Attention.to_affine(params), 9))


def test_build_then_decompose_round_trips():
    generator = torch.Generator().manual_seed(0)
    n = 500
    parts = {
        "rotation": torch.rand(n, generator=generator) * 358 - 179,
        "scale_x": torch.rand(n, generator=generator) * 2 + 0.1,
        "scale_y": (torch.rand(n, generator=generator) * 2 + 0.1) * torch.where(torch.rand(n, generator=generator) < 0.5, -1, 1),
        "shear": torch.rand(n, generator=generator) * 2 - 1,
        "shift_x": torch.rand(n, generator=generator) * 2 - 1,
        "shift_y": torch.rand(n, generator=generator) * 2 - 1,
    }
    parts = {k: v.double() for k, v in parts.items()}
    recovered = decompose_affine(affine_theta(**parts))._asdict()
    for name, value in parts.items():
        assert torch.allclose(recovered[name], value, atol=1e-9), name


def test_decompose_copes_with_singular_and_reflected_matrices():
    singular = torch.zeros(2, 3)
    rank_one = torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]])
    mirror = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for theta in (singular, rank_one, mirror):
        parts = decompose_affine(theta)
        assert all(torch.isfinite(v).all() for v in parts)
        assert torch.allclose(affine_theta(*parts), theta, atol=1e-6)
    assert float(decompose_affine(mirror).scale_y) < 0  # a reflection shows as a negative scale


def test_rotation_by_90_degrees_is_rot90():
    image = torch.rand(1, 1, 6, 6)
    # The content turns counter-clockwise on screen by sampling with the inverse rotation.
    theta = invert_affine(affine_theta(rotation=90.0)).reshape(1, 6)
    turned = sample(image, Affine().grid(theta, 6))
    assert torch.allclose(turned, torch.rot90(image, 1, dims=(2, 3)), atol=1e-5)
    assert not torch.allclose(turned, torch.rot90(image, -1, dims=(2, 3)), atol=1e-2)


def test_inverse_composed_with_theta_is_the_identity():
    theta = affine_theta(torch.tensor([33.0, -100.0]), 0.6, 1.7, -0.4, 0.3, 0.5).double()
    product = _homogeneous(invert_affine(theta)) @ _homogeneous(theta)
    assert torch.allclose(product, torch.eye(3, dtype=torch.float64).expand(2, 3, 3), atol=1e-12)


def test_invert_refuses_a_singular_theta():
    with pytest.raises(ValueError, match="singular"):
        invert_affine(torch.zeros(2, 3))


def test_projective_identity_and_corner_fit():
    points = torch.rand(50, 2) * 2 - 1
    identity = Projective().identity().unsqueeze(0)
    assert torch.allclose(Projective().map_points(identity, points)[0], points, atol=1e-6)
    source = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]], dtype=torch.float64)
    target = source * 0.7 + torch.tensor([[[0.1, -0.05], [0.0, 0.1], [-0.1, 0.0], [0.05, 0.05]]], dtype=torch.float64)
    homography = homography_from_points(source, target)
    assert torch.allclose(Projective().map_points(homography, source[0]), target, atol=1e-10)


def test_tps_with_unmoved_control_points_is_the_identity_and_fits_its_control_points():
    tps = ThinPlateSpline(4)
    points = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    identity = tps.identity(dtype=torch.float64).unsqueeze(0)
    assert torch.allclose(tps.map_points(identity, points)[0], points, atol=1e-10)
    moved = identity + 0.2 * torch.randn(1, tps.num_params, dtype=torch.float64)
    assert torch.allclose(tps.map_points(moved, tps.control_points)[0], moved.view(-1, 2), atol=1e-10)
    assert tps.control_points.min() == -1 and tps.control_points.max() == 1


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_gradcheck_through_grid_and_sampler(family):
    torch.manual_seed(0)
    image = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    # Off the identity, so no sample lands exactly on a pixel centre (a kink of bilinear).
    params = family.identity(dtype=torch.float64).expand(2, -1) + 0.05 * torch.randn(2, family.num_params, dtype=torch.float64)
    params.requires_grad_(True)
    image.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, u: sample(u, family.grid(p, 5)), (params, image))


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_grid_keeps_dtype_and_batch(family):
    params = family.identity(dtype=torch.float64).expand(4, -1)
    grid = family.grid(params, (3, 5))
    assert grid.shape == (4, 3, 5, 2) and grid.dtype == torch.float64


def test_window_scale_is_the_side_of_the_window_whatever_its_turn_or_shear():
    turned = affine_theta(rotation=70.0, scale_x=0.5, scale_y=0.5, shift_x=0.3, shift_y=-0.1).reshape(1, 6)
    assert Affine().window_scale(turned).item() == pytest.approx(0.5)
    sheared = torch.tensor([[0.6, 0.6, 0.0, 0.0, 0.6, 0.0]])  # same area as a 0.6 square
    assert Affine().window_scale(sheared).item() == pytest.approx(0.6)
    assert Attention().window_scale(torch.tensor([[-0.4, 0.0, 0.0]])).item() == pytest.approx(0.4)  # mirrored
    with pytest.raises(ValueError, match="expected an affine or attention"):
        Projective().window_scale(Projective().identity().unsqueeze(0))
    with pytest.raises(ValueError):
        Attention().window_scale(torch.zeros(1, 6))


def test_pixel_grid_holds_pixel_centres():
    grid = pixel_grid(4)
    assert torch.allclose(grid[:4, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(grid[::4, 1], torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(N, 6\)"):
        Affine().grid(torch.zeros(2, 5), 4)
    with pytest.raises(TypeError, match="float"):
        Affine().grid(torch.zeros(2, 6, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="unknown transform"):
        make_transform("spiral")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        sample(torch.zeros(4, 4), torch.zeros(1, 4, 4, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 3\)"):
        decompose_affine(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="grid_size"):
        ThinPlateSpline(1)


def test_sampler_padding_is_background():
    image = torch.ones(1, 1, 8, 8)
    zoomed_out = affine_theta(scale_x=2.0, scale_y=2.0).reshape(1, 6)
    warped = sample(image, Affine().grid(zoomed_out, 8))
    assert warped[0, 0, 0, 0] == 0 and warped[0, 0, 4, 4] == 1
    assert math.isclose(float(sample(image, Affine().grid(zoomed_out, 8), padding_mode="border").min()), 1.0)


# -- properties (hypothesis): any finite parameters in range give a finite warp in [0, 1] ---------

finite = dict(allow_nan=False, allow_infinity=False, width=32)
images = hnp.arrays(np.float32, (1, 1, 12, 12), elements=st.floats(0, 1, width=32))


def _warp_is_an_image(family, params, image):
    grid = family.grid(params.reshape(1, -1), 12)
    warped = sample(torch.from_numpy(image), grid)
    assert grid.shape == (1, 12, 12, 2) and torch.isfinite(grid).all()
    assert warped.shape == (1, 1, 12, 12) and torch.isfinite(warped).all()
    # Bilinear weights are convex and padding is 0: the warp stays in [0, 1].
    assert warped.min() >= 0 and warped.max() <= 1 + 1e-6


@settings(max_examples=100, deadline=None)
@given(
    rotation=st.floats(-180, 180, **finite),
    scale_x=st.floats(-3, 3, **finite),
    scale_y=st.floats(-3, 3, **finite),
    shear=st.floats(-1, 1, **finite),
    shift=st.tuples(st.floats(-2, 2, **finite), st.floats(-2, 2, **finite)),
    image=images,
)
def test_any_affine_parts_give_a_finite_image(rotation, scale_x, scale_y, shear, shift, image):
    theta = affine_theta(rotation, scale_x, scale_y, shear, *shift)
    _warp_is_an_image(Affine(), theta, image)


@settings(max_examples=100, deadline=None)
@given(offsets=hnp.arrays(np.float64, 8, elements=st.floats(-0.4, 0.4)), image=images)
def test_any_moved_corners_give_a_finite_projective_image(offsets, image):
    """Corners moved by up to 0.4 (the app's strongest perspective is ~0.4 at 1 sigma)."""
    corners = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]])
    homography = homography_from_points(corners, corners + torch.from_numpy(offsets).float().view(1, 4, 2))
    _warp_is_an_image(Projective(), homography, image)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), image=images)
def test_any_moved_control_points_give_a_finite_tps_image(data, image):
    family = ThinPlateSpline(4)
    offsets = data.draw(hnp.arrays(np.float64, family.num_params, elements=st.floats(-0.5, 0.5)))
    _warp_is_an_image(family, family.identity() + torch.from_numpy(offsets).float(), image)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, (2, 3), elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False)))
def test_decompose_affine_reads_any_matrix(matrix):
    """Singular and reflecting matrices included: the parts are finite, and rebuild the
    matrix whenever the matrix is invertible."""
    theta = torch.from_numpy(matrix)
    parts = decompose_affine(theta)
    assert all(torch.isfinite(p) for p in parts)
    determinant = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
    if abs(determinant) > 1e-6:
        assert torch.allclose(affine_theta(*parts), theta, atol=1e-6 * max(1.0, float(np.abs(matrix).max()) ** 2))
