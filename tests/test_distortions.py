import pytest
import torch

from stn_core.distortions import (
    EVAL_SEED,
    REGIMES,
    Clutter,
    Distortion,
    add_clutter,
    as_float_images,
    distort,
    draw_distortion,
    fixed_test_set,
)

REGIME_NAMES = list(REGIMES)


@pytest.fixture(scope="module")
def digits(sample_digits):
    return sample_digits[0][:64]


def _draw(regime, n, seed):
    return draw_distortion(regime, n, torch.Generator().manual_seed(seed), pool_size=64)


@pytest.mark.parametrize("regime", REGIME_NAMES)
def test_same_seed_same_images_and_right_shape(regime, digits):
    first = distort(digits, _draw(regime, 64, 1), pool=digits)
    again = distort(digits, _draw(regime, 64, 1), pool=digits)
    other = distort(digits, _draw(regime, 64, 2), pool=digits)
    size = REGIMES[regime].canvas_size
    assert first.shape == (64, 1, size, size) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1
    assert (first.flatten(1).max(1).values > 0.5).all()  # every digit still has ink


def test_parameters_stay_in_their_documented_ranges():
    n = 4000
    rotation = _draw("R", n, 0).rotation
    assert rotation.min() >= -90 and rotation.max() <= 90 and rotation.abs().max() > 85
    rts = _draw("RTS", n, 0)
    assert rts.rotation.abs().max() <= 45 and 0.7 <= rts.scale.min() and rts.scale.max() <= 1.2
    # The scaled 28x28 frame stays on the 42x42 canvas.
    half_frame = 28 * rts.scale / 42
    assert ((rts.shift.abs() + half_frame[:, None]) <= 1 + 1e-6).all()
    perspective = _draw("P", n, 0)
    noise = perspective.corners - 0.75 * torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    assert abs(float(noise.std()) - 0.2) < 0.01
    elastic = _draw("E", n, 0).elastic
    assert elastic.shape == (n, 16, 2) and elastic.abs().max() <= 0.3 + 1e-6 and abs(float(elastic.std()) - 0.1) < 0.01
    cluttered = _draw("TC", n, 0)
    shift_px = cluttered.shift * 30
    assert torch.allclose(shift_px, shift_px.round(), atol=1e-4) and shift_px.abs().max() <= 16
    clutter = cluttered.clutter
    assert clutter.source_index.shape == (n, 6) and 0 <= clutter.source_index.min() and clutter.source_index.max() < 64
    assert clutter.crop_xy.min() >= 4 and clutter.crop_xy.max() <= 18
    assert clutter.place_xy.min() >= 0 and clutter.place_xy.max() <= 54


def test_no_distortion_is_the_identity(digits):
    assert torch.allclose(distort(digits, Distortion.create(rotation=torch.zeros(64))), digits, atol=1e-5)


def test_content_rotation_is_counter_clockwise(digits):
    turned = distort(digits[:4], Distortion.create(rotation=torch.full((4,), 90.0)))
    assert torch.allclose(turned, torch.rot90(digits[:4], 1, dims=(2, 3)), atol=1e-5)


def test_canvas_placement_and_whole_pixel_shift(digits):
    # On a 60x60 canvas a shift of k/30 moves the digit by exactly k pixels.
    shifted = distort(
        digits[:2], Distortion.create(60, shift_x=torch.tensor([3 / 30, 0.0]), shift_y=torch.tensor([0.0, -5 / 30]))
    )
    expected = torch.zeros(2, 1, 60, 60)
    expected[0, :, 16:44, 19:47] = digits[0]
    expected[1, :, 11:39, 16:44] = digits[1]
    assert torch.allclose(shifted, expected, atol=1e-5)


def test_scale_grows_the_digit(digits):
    small = distort(digits[:8], Distortion.create(42, scale=torch.full((8,), 0.7)))
    large = distort(digits[:8], Distortion.create(42, scale=torch.full((8,), 1.2)))
    ratio = large.sum() / small.sum()
    assert abs(float(ratio) - (1.2 / 0.7) ** 2) < 0.1


def test_clutter_lands_where_it_is_told():
    pool = torch.zeros(2, 1, 28, 28)
    pool[1, 0, 10:16, 12:18] = torch.arange(36.0).view(6, 6) / 36
    clutter = Clutter(torch.tensor([[1]]), torch.tensor([[[12, 10]]]), torch.tensor([[[40, 3]]]))
    canvas = add_clutter(torch.zeros(1, 1, 60, 60), pool, clutter)
    assert torch.equal(canvas[0, 0, 3:9, 40:46], pool[1, 0, 10:16, 12:18])
    assert canvas.sum() == pool.sum()


def test_clutter_needs_a_pool(digits):
    with pytest.raises(ValueError, match="pool"):
        distort(digits, _draw("TC", 64, 0))


def test_fixed_test_set_is_fixed(digits):
    first = fixed_test_set(digits, "RTS")
    assert torch.equal(first, fixed_test_set(digits, "RTS", seed=EVAL_SEED))
    assert not torch.equal(first, fixed_test_set(digits, "RTS", seed=1))
    # Chunking does not change the result.
    assert torch.equal(first, fixed_test_set(digits, "RTS", batch_size=7))


def test_slicing_a_distortion(digits):
    distortion = _draw("TC", 64, 3)
    whole = distort(digits, distortion, pool=digits)
    part = distort(digits[10:20], distortion[10:20], pool=digits)
    assert torch.equal(whole[10:20], part)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown regime"):
        draw_distortion("X", 3, torch.Generator())
    with pytest.raises(ValueError, match="uint8"):
        as_float_images(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="3 images but 2 distortions"):
        distort(torch.zeros(3, 1, 28, 28), Distortion.create(rotation=torch.zeros(2)))
