import base64
import io
import types
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stn_core.controls import Controls
from stn_core.geometry import affine_theta
from stn_lab.lab import DISPLAY_SIZE, TABS, THETA_RANGES, LabError, pack_digit, unpack_digit


def _drawn_seven() -> bytes:
    image = Image.new("RGB", (200, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.line([(40, 40), (160, 40), (90, 170)], fill="black", width=14)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_frame_holds_every_panel(lab):
    digit, _ = lab.sample_digit(0)
    frame = lab.frame(digit, Controls(rotation=45.0), None)
    assert frame.grid_html.startswith("<svg") and f'width="{DISPLAY_SIZE}"' in frame.warped_html
    assert frame.canvas.shape == (42, 42) and frame.warped.shape == (42, 42)
    assert "θ (affine)" in frame.theta_text
    assert set(frame.st_probs) == {str(d) for d in range(10)} and sum(frame.st_probs.values()) == pytest.approx(1, abs=1e-5)
    assert frame.cnn_probs is not None and frame.cnn_label == int(max(frame.cnn_probs, key=frame.cnn_probs.get))
    assert len(frame.theta) == 6


def test_drawn_and_uploaded_images_become_digits(lab):
    digit = lab.digit_from_image(_drawn_seven())
    assert digit.shape == (28, 28) and digit.max() == pytest.approx(1.0)
    sketch = {"background": None, "layers": [], "composite": np.asarray(Image.open(io.BytesIO(_drawn_seven())).convert("RGBA"))}
    assert np.allclose(lab.digit_from_image(sketch), digit, atol=1e-5)


@pytest.mark.parametrize("bad", [None, {"composite": None}, b"not an image", np.zeros((50, 50, 4), np.uint8)])
def test_bad_images_get_a_message(lab, bad):
    with pytest.raises(LabError) as error:
        lab.digit_from_image(bad)
    assert "/" not in str(error.value)  # no server paths


def test_slider_values_are_checked(lab):
    assert lab.controls(rotation="30", scale=5).scale == 2.0
    with pytest.raises(LabError, match=r"rotation must be a number in \[-180.0, 180.0\]"):
        lab.controls(rotation="left")
    with pytest.raises(LabError, match="rotation must be a finite number"):
        lab.controls(rotation=float("nan"))
    with pytest.raises(LabError, match="seed"):
        lab.controls(seed=float("inf"))


def test_unknown_model_and_missing_digit(lab):
    digit, _ = lab.sample_digit(1)
    with pytest.raises(LabError, match="unknown model 'nope'"):
        lab.frame(digit, Controls(), "nope")
    # Models are addressed by slug; a display title is not a key.
    with pytest.raises(LabError, match=r"unknown model 'RTS · ST-CNN Aff'; available: .*rts-st-cnn-affine"):
        lab.frame(digit, Controls(), "RTS · ST-CNN Aff")
    with pytest.raises(LabError, match="no digit yet"):
        lab.frame(None, Controls(), None)
    for index in (-1, 1000, 2.5, "3", True):
        with pytest.raises(LabError, match="sample index"):
            lab.sample_digit(index)


def test_every_model_kind_renders(lab):
    digit, _ = lab.sample_digit(2)
    for key in lab.service.choices:
        frame = lab.frame(digit, Controls(rotation=20.0, elastic=1.0, perspective=0.5), key)
        assert frame.grid_html.count("<polyline") == 14
    assert lab.frame(digit, Controls(), "e-st-cnn-tps").cnn_probs is None


def test_regime_buttons_pick_their_model(lab):
    assert lab.model_for_regime("TC") == "tc-st-cnn-attention"
    assert lab.model_for_regime("R") is None
    assert lab.random_controls("RTS", 3) == lab.random_controls("RTS", 3)
    with pytest.raises(LabError):
        lab.random_controls("Q", 1)


def test_manual_theta_drives_grid_and_sampler_alone(lab):
    digit, _ = lab.sample_digit(4)
    grid, warped, text = lab.manual_warp(digit, Controls(), None, {"rotation": 90.0})
    identity_grid, identity_warped, _ = lab.manual_warp(digit, Controls(), None, {})
    assert "+90.0°" in text and grid.startswith("<svg")
    assert warped != identity_warped and grid != identity_grid
    parts = lab.predicted_theta_parts(digit, Controls(), None)
    assert parts == pytest.approx({"rotation": 0, "scale_x": 1, "scale_y": 1, "shear": 0, "shift_x": 0, "shift_y": 0}, abs=1e-3)


def _on_its_slider(name, value):
    low, high, step = THETA_RANGES[name]
    steps = value / step
    return low <= value <= high and abs(steps - round(steps)) < 1e-6 and (not isinstance(step, int) or isinstance(value, int))


def test_copied_theta_fits_the_sliders_steps_and_ranges(lab, monkeypatch):
    """ "Copy θ" puts values the "Set θ yourself" sliders can hold: -3.7251° becomes -4 on the
    rotation slider (step 1), a scale of 2.5 becomes the slider's maximum 2.0."""
    theta = affine_theta(rotation=-3.7251, scale_x=2.5, scale_y=0.7342, shear=0.0, shift_x=1.4, shift_y=-0.256)
    monkeypatch.setattr(lab, "frame", lambda *args: types.SimpleNamespace(theta=theta.reshape(6).tolist()))
    parts = lab.predicted_theta_parts(np.zeros((28, 28), np.float32), Controls(), "rts-st-cnn-affine")
    assert parts["rotation"] == -4 and isinstance(parts["rotation"], int)
    assert parts["scale_x"] == 2.0 and parts["scale_y"] == pytest.approx(0.73, abs=1e-9)
    assert parts["shift_x"] == 1.0 and parts["shift_y"] == pytest.approx(-0.26, abs=1e-9)
    assert all(_on_its_slider(name, value) for name, value in parts.items()), parts


def test_copied_theta_of_a_trained_net_fits_the_sliders(shipped_lab):
    digit, _ = shipped_lab.sample_digit(4)
    for controls in (Controls(rotation=30.0, scale=0.9, shift_x=0.1), Controls(rotation=-40.0, scale=1.2, shear=0.2)):
        for key in ("rts-st-cnn-affine", "tc-st-cnn-attention"):
            parts = shipped_lab.predicted_theta_parts(digit, controls, key)
            assert set(parts) == set(THETA_RANGES) and all(_on_its_slider(n, v) for n, v in parts.items()), (key, parts)
    with pytest.raises(LabError, match="only affine and attention"):
        shipped_lab.predicted_theta_parts(digit, Controls(), "rts-st-cnn-tps")


def test_how_it_works_shows_the_five_stages_as_a_numbered_list(lab):
    digit, _ = lab.sample_digit(5)
    frame = lab.frame(digit, Controls(rotation=10.0), None)
    text, canvas = lab.stages(frame)
    steps = [line for line in text.splitlines() if line[:2] in {f"{n}." for n in range(1, 6)}]
    assert [line[0] for line in steps] == list("12345")  # one line each: Markdown numbers them
    assert "localisation net" in steps[1] and "sampler" in steps[3] and frame.theta_text in text
    assert canvas.startswith("<img") and "pixelated" in canvas


def test_sweep_figure_and_batch_view(lab):
    digit, label = lab.sample_digit(6)
    figure = lab.sweep_figure(digit, label, Controls(), None)
    assert len(figure.axes) == 2 and len(figure.axes[0].lines) == 3  # ST, CNN, current-value marker
    sheet, text = lab.batch_view("RTS", None, seed=2)
    assert sheet.size == (84 * 8, 84 * 4) and "/16" in text
    with pytest.raises(LabError, match="no model trained on regime R"):
        lab.batch_view("R", None, seed=2)


def _state_of(lab, query: str) -> dict:
    from urllib.parse import parse_qsl

    return lab.state_from_query(dict(parse_qsl(query.removeprefix("?"))))


def test_links_round_trip_and_survive_garbage(lab):
    controls = Controls(rotation=33.0, scale=0.8, clutter=True, seed=7)
    query = lab.query_string(controls, 12, "tc-st-cnn-attention", "sweep")
    state = _state_of(lab, query)
    assert state == {"controls": controls, "sample": 12, "digit": None, "model": "tc-st-cnn-attention", "tab": "sweep"}
    junk = lab.state_from_query({"rot": "nan", "scale": "big", "sample": "9999", "model": "x", "tab": "<script>", "digit": "%%%"})
    assert junk == {"controls": Controls(), "sample": None, "digit": None, "model": lab.service.default_key(), "tab": None}
    assert "sweep" in TABS
    # A display title in an old link is not a model any more: the default is used.
    assert lab.state_from_query({"model": "TC · ST-CNN Att"})["model"] == lab.service.default_key()


def test_a_link_carries_a_drawn_digit_itself(lab):
    drawn = lab.digit_from_image(_drawn_seven())
    query = lab.query_string(Controls(rotation=20.0), None, "rts-st-cnn-affine", None, digit=drawn)
    assert len(query) < 1000  # short enough to share
    state = _state_of(lab, query)
    assert state["sample"] is None and state["controls"] == Controls(rotation=20.0) and state["model"] == "rts-st-cnn-affine"
    assert state["digit"].shape == (28, 28) and state["digit"].dtype == np.float32
    assert np.abs(state["digit"] - drawn).max() <= 0.5 / 255 + 1e-7  # the 28x28 digit, to uint8 precision
    # A sample travels by its number, not its pixels.
    sample_query = lab.query_string(Controls(), 5, None, None, digit=lab.sample_digit(5)[0])
    assert "digit=" not in sample_query and _state_of(lab, sample_query)["sample"] == 5


@pytest.mark.parametrize(
    "text",
    ["", "!!!", "eJw", "A" * 3000, None, 5, pack_digit(np.eye(28)[::-1] * np.arange(28) / 27)[:12]]
    + [base64.urlsafe_b64encode(zlib.compress(bytes(n))).decode() for n in (783, 785, 10**6)],
    ids=["empty", "not-base64", "truncated-zlib", "too-long", "none", "number", "cut-short"]
    + ["783-bytes", "785-bytes", "zip-bomb"],
)
def test_an_unreadable_digit_in_a_link_is_refused_by_name(text):
    with pytest.raises(LabError, match="the digit in this link is not readable"):
        unpack_digit(text)


def test_packed_digits_round_trip_exactly_at_uint8_precision():
    digit = np.random.default_rng(1).integers(0, 256, (28, 28)).astype(np.float32) / 255
    assert np.array_equal(unpack_digit(pack_digit(digit)), digit)
    with pytest.raises(LabError, match=r"\(28, 28\)"):
        pack_digit(np.zeros((28, 29)))


def test_predict_returns_one_dict_with_the_warped_output_as_a_png_data_url(lab):
    from PIL import Image

    result = lab.predict(_drawn_seven(), rotation=30, scale=0.9, shift_x=0.1, model="tc-st-cnn-attention")
    assert set(result) == {"model", "theta", "st_label", "st_probs", "cnn_label", "cnn_probs", "warped_png"}
    assert result["model"] == "tc-st-cnn-attention" and len(result["theta"]) == 3
    assert result["st_label"] == int(np.argmax(result["st_probs"])) and sum(result["st_probs"]) == pytest.approx(1, abs=1e-5)
    header, data = result["warped_png"].split(",", 1)
    assert header == "data:image/png;base64"
    warped = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
    controls = lab.controls(rotation=30, scale=0.9, shift_x=0.1)
    frame = lab.frame(lab.digit_from_image(_drawn_seven()), controls, "tc-st-cnn-attention")
    assert warped.shape == frame.warped.shape == (30, 30)
    assert np.abs(warped.astype(int) - (np.clip(frame.warped, 0, 1) * 255 + 0.5).astype(int)).max() <= 1
    assert lab.predict(_drawn_seven())["model"] == lab.service.default_key()  # an empty model: the default


def test_watch_it_learn_starts_at_the_identity(lab):
    steps = lab.timelapse_steps()
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 10
    first, first_text = lab.timelapse_frame(0)
    last, last_text = lab.timelapse_frame(len(steps) - 1)
    assert first.size == (84 * 8, 84 * 4)
    assert "step **0**" in first_text and "0.0°" in first_text
    assert np.asarray(first).tolist() != np.asarray(last).tolist()
    assert lab.timelapse_frame(10_000)[1] == last_text  # positions past the end show the last frame


def test_batched_frames_equal_one_by_one_and_isolate_bad_requests(lab):
    digits = [lab.sample_digit(i)[0] for i in range(5)]
    requests = [
        (digits[0], Controls(rotation=30.0), None),
        (digits[1], Controls(rotation=-50.0, scale=0.8), "rts-st-cnn-affine"),
        (digits[2], Controls(elastic=1.0), None),  # a different distortion shape: its own batch
        (None, Controls(), None),  # no digit
        (digits[3], Controls(), "tc-st-cnn-attention"),  # another model in the same call
        (digits[4], Controls(rotation=float("nan")), None),
    ]
    frames = lab.frames(requests)
    assert isinstance(frames[3], LabError) and "no digit" in str(frames[3])
    assert isinstance(frames[5], LabError) and "rotation" in str(frames[5])
    for (digit, controls, key), frame in zip(requests, frames):
        if isinstance(frame, LabError):
            continue
        alone = lab.frame(digit, controls, key)
        assert frame.theta == pytest.approx(alone.theta, abs=1e-5)
        assert frame.st_probs == pytest.approx(alone.st_probs, abs=1e-5)
        assert np.allclose(frame.warped, alone.warped, atol=1e-5)


def test_frames_take_raw_slider_values_too(lab):
    digit, _ = lab.sample_digit(8)
    raw, bad = lab.frames(
        [(digit, (25, 0.9, 0, 0, 0, 0, 0, False, 0), None), (digit, ("left", 1, 0, 0, 0, 0, 0, False, 0), None)]
    )
    assert raw.theta == pytest.approx(lab.frame(digit, Controls(rotation=25.0, scale=0.9), None).theta, abs=1e-6)
    assert isinstance(bad, LabError) and "rotation must be a number" in str(bad)


def test_an_attention_timelapse_is_summarised_by_its_zoom_and_a_missing_one_is_not_offered(lab, tmp_path, monkeypatch):
    from stn_core import timelapse
    from stn_lab import lab as lab_module

    theta = np.array([[[1.0, 0.0, 0.0]] * 16, [[0.5, 0.1, 0.0]] * 16], np.float32)  # (F, D, 3): scale, x, y
    lapse = timelapse.Timelapse(
        np.array([0, 25]), theta, np.zeros((2, 16, 30, 30), np.uint8), np.zeros((16, 60, 60), np.uint8), np.arange(16) % 10, 256
    )
    path = tmp_path / "timelapse_tc.npz"
    timelapse.save(path, lapse)
    monkeypatch.setitem(lab_module.TIMELAPSES, "tc", ("TC attention", path))
    monkeypatch.setitem(lab_module.TIMELAPSES, "gone", ("not shipped", tmp_path / "missing.npz"))
    assert [name for _, name in lab.timelapses()] == ["rts", "tc"]
    assert lab.timelapse_steps("tc") == [0, 25] and lab.timelapse_steps("gone") == []
    assert "mean scale of θ over the 16 digits: 0.50" in lab.timelapse_frame(1, "tc")[1]
    with pytest.raises(LabError, match="no training time-lapse 'gone'"):
        lab.timelapse_frame(0, "gone")
