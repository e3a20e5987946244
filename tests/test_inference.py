import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stn_core.controls import CONTROL_RANGES, ELASTIC_SIGMA, PERSPECTIVE_SIGMA, Controls
from stn_core.distortions import REGIMES, Distortion, distort, draw_distortion
from stn_lab.service import InferenceService


def test_service_keys_each_st_model_by_slug_and_pairs_it_with_its_regimes_cnn(lab):
    choices = lab.service.choices
    served = {"full-st-cnn-affine", "rts-st-cnn-affine", "tc-st-cnn-attention", "e-st-cnn-tps", "p-st-cnn-projective"}
    assert set(choices) == served
    assert all(choice.key == key for key, choice in choices.items())
    assert choices["rts-st-cnn-affine"].title == "RTS · ST-CNN Aff" and choices["tc-st-cnn-attention"].title == "TC · ST-CNN Att"
    assert choices["rts-st-cnn-affine"].cnn is not None and choices["e-st-cnn-tps"].cnn is None
    assert lab.service.default_key() == "rts-st-cnn-affine"
    assert all(not c.st.training for c in choices.values())


def test_the_default_model_is_a_setting_that_falls_back_when_not_shipped(lab, monkeypatch):
    import stn_lab.service as service

    monkeypatch.setenv("STN_DEFAULT_MODEL", "tc-st-cnn-attention")
    assert lab.service.default_key() == "tc-st-cnn-attention"
    monkeypatch.setenv("STN_DEFAULT_MODEL", "r-st-cnn-affine")  # not in this folder
    assert lab.service.default_key() == next(iter(lab.service.choices))
    monkeypatch.delenv("STN_DEFAULT_MODEL")
    monkeypatch.setattr(service, "DEFAULT_MODEL", "e-st-cnn-tps")  # the one line to change
    assert lab.service.default_key() == "e-st-cnn-tps"


def test_controls_are_clamped_and_non_numbers_refused():
    assert Controls(rotation=500.0, scale=0.01).checked().rotation == 180.0
    assert Controls(scale=0.01).checked().scale == CONTROL_RANGES["scale"][0]
    for bad in (math.nan, math.inf, "12", None, True):
        with pytest.raises(ValueError, match=r"rotation must be a finite number in \[-180.0, 180.0\]"):
            Controls(rotation=bad).checked()


def test_controls_drive_the_library_distortion(lab):
    digit = lab.service.sample_images[:1]
    controls = Controls(rotation=30.0, scale=0.8, shift_x=0.1, shear=0.2)
    canvas = lab.service.distort(digit, [controls], 42)
    direct = distort(digit, Distortion.create(42, rotation=30.0, scale=0.8, shift_x=0.1, shear=0.2))
    assert torch.allclose(canvas, direct)


def test_regime_controls_reproduce_the_regimes_draws_and_strengths(lab):
    """R, RTS, TC: the controls' distortion is the regime's own draw from the same seed.
    P, E: the controls' strength is the regime's noise strength."""
    for regime in ("R", "RTS", "TC"):
        controls = Controls.from_regime(regime, seed=5)
        assert controls.checked() == controls  # inside the slider ranges
        drawn = draw_distortion(regime, 1, torch.Generator().manual_seed(5), pool_size=1)
        built = controls.distortion(REGIMES[regime].canvas_size, pool_size=1)
        for name in ("rotation", "scale", "shear", "shift"):
            assert torch.allclose(getattr(built, name), getattr(drawn, name)), (regime, name)
    p = Controls.from_regime("P", 5)
    assert p.scale == 0.75 and p.perspective == pytest.approx(4 / 3)
    corner_scale, sigma, _ = REGIMES["P"].perspective  # corners: 0.75 * unit + 0.2 * z
    assert p.scale == corner_scale and p.scale * p.perspective * PERSPECTIVE_SIGMA == pytest.approx(sigma)
    e = Controls.from_regime("E", 5)
    assert e.elastic == 1.0 and e.elastic * ELASTIC_SIGMA == pytest.approx(REGIMES["E"].elastic[0])
    assert Controls.from_regime("TC", 5).clutter


def test_perspective_elastic_and_clutter_change_the_canvas(lab):
    digit = lab.service.sample_images[:1]
    plain = lab.service.distort(digit, [Controls()], 60)
    for change in ({"perspective": 1.0}, {"elastic": 1.5}, {"clutter": True}):
        changed = lab.service.distort(digit, [Controls(**change)], 60)
        assert not torch.allclose(plain, changed), change
    again = lab.service.distort(digit, [Controls(clutter=True, seed=9)], 60)
    assert torch.equal(again, lab.service.distort(digit, [Controls(clutter=True, seed=9)], 60))


def test_batched_sweep_matches_one_by_one(lab):
    digit = lab.service.sample_images[3, 0].numpy()
    key = "rts-st-cnn-affine"
    curve = lab.service.sweep(digit, 1, key, Controls(scale=0.9), "rotation", [-90.0, 0.0, 45.0])
    for value, st_prob in zip(curve["values"], curve["st"]):
        single = lab.service.predict(digit, Controls(scale=0.9, rotation=value), key)
        assert single.st_probs[1] == pytest.approx(st_prob, abs=1e-5)


def test_batch_view_runs_the_regime(lab):
    results, labels = lab.service.batch("RTS", "rts-st-cnn-affine", seed=1)
    assert len(results) == 16 and len(labels) == 16
    assert results[0].canvas.shape == (42, 42) and results[0].st_probs.shape == (10,)
    with pytest.raises(ValueError, match="canvas"):
        lab.service.batch("R", "rts-st-cnn-affine", seed=1)


def test_tampered_model_is_not_served(model_dir, tmp_path, caplog):
    import shutil

    for path in model_dir.iterdir():
        shutil.copy(path, tmp_path / path.name)
    weights = tmp_path / "rts-cnn.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with caplog.at_level("ERROR"):
        service = InferenceService(tmp_path, device="cpu")
    assert "not serving rts-cnn.safetensors" in caplog.text and "SHA-256" in caplog.text
    assert service.choices["rts-st-cnn-affine"].cnn is None


def test_device_comes_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("STN_DEVICE", "cpu")
    assert InferenceService(model_dir).device == torch.device("cpu")
    answer = InferenceService(model_dir).predict(np.zeros((28, 28), np.float32), Controls(), "e-st-cnn-tps")
    assert np.isfinite(answer.st_probs).all()


number = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.fixed_dictionaries({name: number for name in CONTROL_RANGES if name != "seed"}),
    clutter=st.booleans(),
    seed=st.integers(-(2**40), 2**40),
    canvas_size=st.sampled_from([28, 42, 60]),
)
def test_any_finite_controls_give_a_canvas_in_range(lab, values, clutter, seed, canvas_size):
    """Whatever finite numbers arrive (clamped to the ranges first), the canvas is finite,
    in [0, 1] and of the right shape."""
    controls = Controls(**values, clutter=clutter, seed=seed).checked()
    canvas = lab.service.distort(lab.service.sample_images[:1], [controls], canvas_size)
    assert canvas.shape == (1, 1, canvas_size, canvas_size)
    assert torch.isfinite(canvas).all() and canvas.min() >= 0 and canvas.max() <= 1


def test_zero_gpu_lends_the_gpu_to_the_heavy_passes_only(model_dir, monkeypatch):
    """With a ``spaces`` package (a ZeroGPU Space), the sweep and the batch view go through
    ``spaces.GPU`` and the live path does not; the answers are the same as without it."""
    import sys
    import types

    plain = InferenceService(model_dir, device="cpu")
    calls = []

    def gpu(fn):
        def lent(*args, **kwargs):
            calls.append(fn.__name__)
            return fn(*args, **kwargs)

        return lent

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.delenv("STN_DEVICE", raising=False)
    zero = InferenceService(model_dir)
    assert zero.device.type == "cpu"  # CUDA exists only inside spaces.GPU calls there
    key, digit = "rts-st-cnn-affine", plain.sample_images[0, 0].numpy()
    live = zero.predict(digit, Controls(rotation=30.0), key)
    assert calls == [] and np.allclose(live.st_probs, plain.predict(digit, Controls(rotation=30.0), key).st_probs)
    sweep = (7, key, Controls(), "rotation", [-90, 0, 90])
    assert zero.sweep(digit, *sweep) == plain.sweep(digit, *sweep)
    (lent, labels), (direct, same_labels) = zero.batch("RTS", key, seed=3), plain.batch("RTS", key, seed=3)
    assert calls == ["_run_on_lent_gpu", "_run_on_lent_gpu"] and labels == same_labels
    assert all(np.allclose(a.st_probs, b.st_probs) and np.allclose(a.warped, b.warped) for a, b in zip(lent, direct))


def test_a_batch_of_controls_is_their_own_distortions_stacked():
    from stn_core.controls import Controls, distortion_batch

    plain = [Controls(rotation=10.0, scale=0.8, shift_x=0.2), Controls(shear=-0.3, shift_y=-0.1)]
    patterned = [
        Controls(perspective=1.0, elastic=0.5, clutter=True, seed=3),
        Controls(perspective=0.5, elastic=2.0, clutter=True, seed=9),
    ]
    for group in (plain, patterned):
        batch = distortion_batch(group, 60, pool_size=1000)
        for index, controls in enumerate(group):
            alone = controls.distortion(60, pool_size=1000)
            for name in ("rotation", "scale", "shear", "shift", "corners", "elastic"):
                mine, theirs = getattr(batch, name), getattr(alone, name)
                assert (mine is None) == (theirs is None), name
                if mine is not None:
                    assert torch.equal(mine[index : index + 1], theirs), name
            assert (batch.clutter is None) == (alone.clutter is None)
            if batch.clutter is not None:
                assert torch.equal(batch.clutter.place_xy[index : index + 1], alone.clutter.place_xy)
    with pytest.raises(ValueError, match="differ in whether perspective is on"):
        distortion_batch([Controls(), Controls(perspective=1.0)], 42, pool_size=1)
    with pytest.raises(ValueError, match="at least one"):
        distortion_batch([], 42, pool_size=1)
