"""The app module and its public API (``/predict``, ``/live_frame``), mostly through a real
server on a free local port (``serve``); the presets and the page's assets without one."""

import base64
import functools
import importlib
import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stn_core.checkpoints import read_card
from stn_lab.live import decode_digit, encode_digit
from tests.helpers import free_port


def test_importing_app_builds_and_loads_nothing():
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert callable(app.build_app) and callable(app.launch) and callable(app.main)
    # No page, no service and no model exist until build_app / main is called.
    assert not any(type(v).__name__ in ("Blocks", "InferenceService", "Lab", "STClassifier") for v in vars(app).values())


def test_an_unchecked_gradio_version_fails_loudly():
    import gradio as gr

    import app

    app.check_gradio_version(gr.__version__)  # the installed one was checked
    with pytest.raises(RuntimeError, match=r"checked in Gradio 6\.31\.x, found 7\.0\.0"):
        app.check_gradio_version("7.0.0")


def test_the_pages_script_and_style_are_files_under_version_control():
    import app

    assets = app.page_assets()
    assert [path.name for path in assets["css_paths"]] == ["lab.css"] and all(path.is_file() for path in assets["css_paths"])
    assert (app.STATIC / "live.js").read_text(encoding="utf-8") in assets["head"]


# -- through the server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(served_app):
    return served_app.url


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served, verbose=False)


def _digit_file(lab, index, tmp_path):
    digit, label = lab.sample_digit(index)
    path = tmp_path / f"digit{index}.png"
    Image.fromarray((digit * 255).astype(np.uint8)).save(path)
    return path, label


def _png(data_url: str) -> np.ndarray:
    header, data = data_url.split(",", 1)
    assert header == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def _quantised(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.mark.serve
def test_predict_endpoint_returns_one_dict_with_theta_probabilities_and_the_warped_image(client, lab, tmp_path):
    from gradio_client import handle_file

    path, _ = _digit_file(lab, 0, tmp_path)
    result = client.predict(image=handle_file(str(path)), rotation=30, scale=0.9, shift_x=0.1, api_name="/predict")
    assert set(result) == {"model", "theta", "st_label", "st_probs", "cnn_label", "cnn_probs", "warped_png"}
    assert result["model"] == "rts-st-cnn-affine"
    assert len(result["theta"]) == 6 and len(result["st_probs"]) == 10 and len(result["cnn_probs"]) == 10
    assert result["st_label"] == int(np.argmax(result["st_probs"])) and abs(sum(result["cnn_probs"]) - 1) < 1e-4
    expected = lab.frame(lab.digit_from_image(str(path)), lab.controls(rotation=30, scale=0.9, shift_x=0.1), None)
    assert np.allclose(result["st_probs"], [expected.st_probs[str(d)] for d in range(10)], atol=1e-5)
    warped = _png(result["warped_png"])  # V at its own size, to be scaled by whoever shows it
    assert warped.shape == expected.warped.shape == (42, 42)
    assert np.abs(warped.astype(int) - _quantised(expected.warped)).max() <= 1


@pytest.mark.serve
def test_predict_names_bad_arguments(client, lab, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path, _ = _digit_file(lab, 1, tmp_path)
    with pytest.raises(AppError, match="unknown model 'resnet'"):
        client.predict(handle_file(str(path)), 0, 1, 0, 0, "resnet", api_name="/predict")
    with pytest.raises(AppError, match="unknown model 'TC · ST-CNN Att'; available: .*tc-st-cnn-attention"):
        client.predict(handle_file(str(path)), 0, 1, 0, 0, "TC · ST-CNN Att", api_name="/predict")  # a title is no key
    with pytest.raises(AppError, match="rotation must be a finite number"):
        client.predict(handle_file(str(path)), "inf", 1, 0, 0, "", api_name="/predict")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(AppError, match="could not read this file as an image"):
        client.predict(handle_file(str(text)), 0, 1, 0, 0, "", api_name="/predict")
    # The app still answers afterwards.
    result = client.predict(handle_file(str(path)), 0, 1, 0, 0, "tc-st-cnn-attention", api_name="/predict")
    assert len(result["theta"]) == 3 and result["model"] == "tc-st-cnn-attention"


@pytest.fixture(scope="module")
def shipped_client(shipped_lab):
    """The app over the shipped models, as a user runs it."""
    from gradio_client import Client

    import app

    demo = app.build_app(shipped_lab)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


@pytest.mark.serve
def test_shipped_st_cnn_keeps_its_answer_when_the_digit_turns(shipped_client, lab, tmp_path):
    """Through /predict, on 40 real test digits from assets/: upright digits are read
    correctly, and turning them by 60 degrees (beyond RTS's +-45) leaves the ST-CNN's answer
    alone more often than the plain CNN's. Measured with the shipped RTS pair (30 epochs):
    upright, ST-CNN 40/40 and CNN 39/40 right; at 60 degrees the ST-CNN kept its answer for
    40/40 digits, the CNN for 35/40; after the pair's 12 epochs with sketches (2026-12-04),
    38/40 and 36/40. Forty digits tell two answers apart by little, so the lead is also
    checked where it is measured on all 10,000 test digits: the cards' error at 60 degrees
    (4.36 % against 9.37 %)."""
    from gradio_client import handle_file

    upright_right, st_kept, cnn_kept = 0, 0, 0
    for index in range(40):
        path, label = _digit_file(lab, index, tmp_path)
        upright = shipped_client.predict(handle_file(str(path)), 0, 1, 0, 0, "rts-st-cnn-affine", api_name="/predict")
        turned = shipped_client.predict(handle_file(str(path)), 60, 1, 0, 0, "rts-st-cnn-affine", api_name="/predict")
        upright_right += upright["st_label"] == label
        st_kept += turned["st_label"] == upright["st_label"]
        cnn_kept += turned["cnn_label"] == upright["cnn_label"]
    assert upright_right >= 38
    assert st_kept >= 36
    assert st_kept > cnn_kept
    pretrained = Path(__file__).resolve().parents[1] / "pretrained"
    st, cnn = (read_card(pretrained / f"{slug}.safetensors").angle_error["60"] for slug in ("rts-st-cnn-affine", "rts-cnn"))
    assert st <= cnn / 2, f"at 60 degrees the ST-CNN misreads {st} %, the CNN {cnn} %"


@pytest.mark.serve
def test_live_frame_endpoint_answers_a_digit_with_a_frame_and_a_mistake_with_an_error(client, lab):
    """``/live_frame`` is the live channel's fallback through Gradio's event path: a digit
    (base64 of 28x28 uint8), a model slug and the controls as JSON give the socket's frame;
    anything wrong gives ``{"type": "error", "message": ...}``, not a crash."""
    code = encode_digit(lab.sample_digit(3)[0])
    controls = json.dumps({"rotation": 30, "scale": 0.9, "shift_x": 0.1})
    frame = client.predict(code, "rts-st-cnn-affine", controls, api_name="/live_frame")
    assert frame["type"] == "frame" and frame["model"] == "rts-st-cnn-affine" and frame["transform"] == "affine"
    assert len(frame["st"]) == 10 and len(frame["cnn"]) == 10 and len(frame["theta"]) == 6 and frame["seq"] is None
    expected = lab.frame(decode_digit(code), lab.controls(rotation=30, scale=0.9, shift_x=0.1), "rts-st-cnn-affine")
    assert np.allclose(frame["st"], [expected.st_probs[str(d)] for d in range(10)], atol=1e-4)
    no_digit = client.predict("", "rts-st-cnn-affine", controls, api_name="/live_frame")
    assert no_digit == {"type": "error", "message": "digit must be 28x28 = 784 bytes, got 0"}  # answered, not crashed
    assert client.predict(code, "", "{}", api_name="/live_frame")["model"] == lab.service.default_key()


@pytest.mark.serve
def test_upload_tab_explains_a_broken_image(client, lab, tmp_path):
    """The Upload tab hands files to our decoder: a truncated PNG gets its own message under
    the upload (no toast, no picture, the digit kept) and a good file (a photo-like 7: dark
    ink on white) becomes the digit, in the code the browser draws from, and is shown beside
    its normalised 28x28 version."""
    from gradio_client import handle_file
    from PIL import ImageDraw

    path = tmp_path / "seven.png"
    photo = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(photo).line([(40, 40), (160, 40), (90, 170)], fill="black", width=14)
    photo.save(path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    *kept, shown, normalised, note = client.predict(handle_file(str(broken)), api_name="/from_upload")
    # the digit (its code and its sample number) is skipped, so kept
    assert kept == [{"__type__": "update"}] * 2 and shown is None and normalised is None
    assert "truncated or damaged" in note and "keeps its digit" in note
    outputs = client.predict(handle_file(str(path)), api_name="/from_upload")  # states stay on the server
    digit = lab.digit_from_image(str(path))
    files = [value for value in outputs if isinstance(value, str) and os.path.isfile(value)]
    codes = [value for value in outputs if isinstance(value, str) and value and value not in files]  # "": no note
    assert len(codes) == 1 and np.abs(decode_digit(codes[0]) - digit).max() <= 0.5 / 255 + 1e-6
    # Pictures travel as lossy WebP: compared on average, to a few grey levels.
    pictures = [np.asarray(Image.open(value).convert("L")) for value in files]
    shrunk = [np.asarray(Image.fromarray(p).resize((28, 28), Image.Resampling.NEAREST)).astype(int) for p in pictures]
    like_the_digit = [np.abs(p - _quantised(digit)).mean() < 4 for p in shrunk]
    assert len(pictures) == 2 and like_the_digit == [False, True], [p.shape for p in pictures]  # as sent, normalised


@pytest.mark.serve
def test_a_blank_photo_says_no_digit_found_beside_the_picture_and_keeps_the_digit(client, tmp_path):
    """An image with no digit in it is no error toast: the Upload tab shows the picture and
    says "no digit found" under it, and the digit stays the one uploaded before."""
    from gradio_client import handle_file
    from PIL import ImageDraw

    seven, blank = tmp_path / "seven.png", tmp_path / "blank.png"
    photo = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(photo).line([(40, 40), (160, 40), (90, 170)], fill="black", width=14)
    photo.save(seven)
    Image.new("RGB", (120, 90), (200, 200, 200)).save(blank)
    code = client.predict(handle_file(str(seven)), api_name="/from_upload")[0]
    outputs = client.predict(handle_file(str(blank)), api_name="/from_upload")
    *kept, shown, normalised, note = outputs
    assert kept == [{"__type__": "update"}] * 2 and code  # skipped (code, sample number): the browser keeps the seven
    assert os.path.isfile(shown) and np.asarray(Image.open(shown).convert("L")).std() < 2  # the grey picture, as sent
    assert normalised is None and "no digit found" in note and "keeps its digit" in note


@pytest.mark.serve
def test_an_upload_path_that_was_not_uploaded_is_refused(served):
    """A script naming a server file (``/etc/passwd``) as its upload gets an error, and no
    part of the file."""
    from tests.helpers import Caller

    caller = Caller(served)
    try:
        for api_name, data in [
            ("from_upload", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}]),
            ("predict", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, 0, 1, 0, 0, ""]),
        ]:
            with pytest.raises(RuntimeError) as refused:
                caller.call(api_name, data, session_hash="passwd")
            assert "root:" not in str(refused.value)
    finally:
        caller.close()


@pytest.fixture(scope="module")
def raw(served, lab):
    """Plain HTTP on Gradio's documented API, as a script that bypasses the sliders calls it:
    ``raw(api_name, data)``; ``raw.code`` is sample 3 as the live channel's digit code."""
    from tests.helpers import Caller

    caller = Caller(served)
    call = functools.partial(caller.call, session_hash="raw-session")
    call.upload = caller.upload
    call.code = encode_digit(lab.sample_digit(3)[0])
    yield call
    caller.close()


def _live_frame(raw, model="rts-st-cnn-affine", **controls) -> dict:
    (answer,) = raw("live_frame", [raw.code, model, json.dumps(controls)])  # json.dumps writes NaN as a script does
    return answer


CONTROLS = dict(rotation=30, scale=0.9, shift_x=0.1, shift_y=0, shear=0, perspective=0, elastic=0, clutter=False, seed=0)
NUMERIC = ["rotation", "scale", "shift_x", "shift_y", "shear", "perspective", "elastic", "seed"]
BAD_VALUES = [math.nan, math.inf, -math.inf, "abc", None, [1], {"a": 1}]
BAD_IDS = ["nan", "inf", "-inf", "str", "null", "list", "dict"]


@pytest.mark.serve
@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("bad", BAD_VALUES, ids=BAD_IDS)
def test_live_frame_api_names_a_bad_number(raw, name, bad):
    """Every numeric control of /live_frame, sent NaN, +-inf or a wrong type as raw JSON: the
    answer is an error naming the control and its range, and no frame."""
    answer = _live_frame(raw, **{**CONTROLS, name: bad})
    assert answer["type"] == "error" and set(answer) == {"type", "message"}, answer
    assert answer["message"].startswith(f"{name} must be a ") and " in [" in answer["message"], answer["message"]


@pytest.mark.serve
def test_live_frame_api_clamps_out_of_range_numbers_and_names_other_bad_values(raw):
    clamped = _live_frame(
        raw, rotation=720, scale=99, shift_x=-5, shift_y=5, shear=3, perspective=9, elastic=9, clutter=False, seed=-4
    )
    at_bounds = _live_frame(
        raw, rotation=180, scale=2, shift_x=-1, shift_y=1, shear=1, perspective=2, elastic=3, clutter=False, seed=0
    )
    assert clamped == at_bounds and clamped["type"] == "frame" and clamped["transform"] == "affine"
    assert _live_frame(raw, "resnet", **CONTROLS)["message"].startswith("unknown model 'resnet'; available: ")
    assert "clutter must be true or false, got 'yes'" in _live_frame(raw, **{**CONTROLS, "clutter": "yes"})["message"]
    assert "unknown controls ['rotaton']" in _live_frame(raw, rotaton=3)["message"]


@pytest.mark.serve
@pytest.mark.parametrize(
    "api_name, data, missing",
    [
        ("live_frame", ["AAAA", "rts-st-cnn-affine"], "controls"),
        ("live_frame", ["AAAA"], "model, controls"),
        ("predict", [None, 0], "scale, shift_x, shift_y, model"),
    ],
)
def test_missing_arguments_are_named(raw, api_name, data, missing):
    with pytest.raises(RuntimeError, match=f"/{api_name} takes .*; missing: {missing}"):
        raw(api_name, data)


@pytest.mark.serve
@pytest.mark.parametrize("name", ["rotation", "scale", "shift_x", "shift_y"])
@pytest.mark.parametrize("bad", BAD_VALUES, ids=BAD_IDS)
def test_predict_api_names_a_bad_number(raw, lab, tmp_path, name, bad):
    path, _ = _digit_file(lab, 4, tmp_path)
    image = {"path": raw.upload("digit.png", path.read_bytes()), "meta": {"_type": "gradio.FileData"}}
    data = [image, 0, 1, 0, 0, ""]
    data[["rotation", "scale", "shift_x", "shift_y"].index(name) + 1] = bad
    with pytest.raises(RuntimeError, match=rf"{name} must be a (finite )?number in \["):
        raw("predict", data)
