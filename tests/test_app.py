"""The app module and its public API, through a real server on a free local port."""

import functools
import importlib
import math
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import free_port

pytestmark = pytest.mark.serve  # the app's server, on a free local port


def test_importing_app_builds_and_loads_nothing():
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert callable(app.build_app) and callable(app.launch) and callable(app.main)
    # No page, no service and no model exist until build_app / main is called.
    assert not any(type(v).__name__ in ("Blocks", "InferenceService", "Lab", "STClassifier") for v in vars(app).values())


@pytest.fixture(scope="module")
def served(lab):
    import app

    demo = app.build_app(lab)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served, verbose=False)


def _digit_file(lab, index, tmp_path):
    digit, label = lab.sample_digit(index)
    path = tmp_path / f"digit{index}.png"
    Image.fromarray((digit * 255).astype(np.uint8)).save(path)
    return path, label


def test_predict_endpoint_returns_theta_probabilities_and_the_warped_image(client, lab, tmp_path):
    from gradio_client import handle_file

    path, _ = _digit_file(lab, 0, tmp_path)
    result, warped = client.predict(image=handle_file(str(path)), rotation=30, scale=0.9, shift_x=0.1, api_name="/predict")
    assert result["model"] == "RTS · ST-CNN Aff"
    assert len(result["theta"]) == 6 and len(result["st_probs"]) == 10 and len(result["cnn_probs"]) == 10
    assert result["st_label"] == int(np.argmax(result["st_probs"])) and abs(sum(result["cnn_probs"]) - 1) < 1e-4
    assert Image.open(warped).size == (336, 336)
    expected = lab.frame(lab.digit_from_image(str(path)), lab.controls(rotation=30, scale=0.9, shift_x=0.1), None)
    assert np.allclose(result["st_probs"], [expected.st_probs[str(d)] for d in range(10)], atol=1e-5)


def test_predict_names_bad_arguments(client, lab, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path, _ = _digit_file(lab, 1, tmp_path)
    with pytest.raises(AppError, match="unknown model 'resnet'"):
        client.predict(handle_file(str(path)), 0, 1, 0, 0, "resnet", api_name="/predict")
    with pytest.raises(AppError, match="rotation must be a finite number"):
        client.predict(handle_file(str(path)), "inf", 1, 0, 0, "", api_name="/predict")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(AppError, match="could not read this file as an image"):
        client.predict(handle_file(str(text)), 0, 1, 0, 0, "", api_name="/predict")
    # The app still answers afterwards.
    result, _ = client.predict(handle_file(str(path)), 0, 1, 0, 0, "TC · ST-CNN Att", api_name="/predict")
    assert len(result["theta"]) == 3


@pytest.fixture(scope="module")
def shipped_client():
    """The app over the shipped models, as a user runs it."""
    import app
    from gradio_client import Client

    from stn_lab.service import InferenceService
    from stn_lab.lab import Lab

    demo = app.build_app(Lab(InferenceService(device="cpu")))
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


def test_shipped_st_cnn_keeps_its_answer_when_the_digit_turns(shipped_client, lab, tmp_path):
    """Through /predict, on 40 real test digits from assets/: upright digits are read
    correctly, and turning them by 60 degrees (beyond RTS's +-45) leaves the ST-CNN's answer
    alone more often than the plain CNN's. Measured with the shipped RTS pair (30 epochs):
    upright, ST-CNN 40/40 and CNN 39/40 right; at 60 degrees the ST-CNN kept its answer for
    40/40 digits, the CNN for 35/40."""
    from gradio_client import handle_file

    upright_right, st_kept, cnn_kept = 0, 0, 0
    for index in range(40):
        path, label = _digit_file(lab, index, tmp_path)
        upright, _ = shipped_client.predict(handle_file(str(path)), 0, 1, 0, 0, "", api_name="/predict")
        turned, _ = shipped_client.predict(handle_file(str(path)), 60, 1, 0, 0, "", api_name="/predict")
        upright_right += upright["st_label"] == label
        st_kept += turned["st_label"] == upright["st_label"]
        cnn_kept += turned["cnn_label"] == upright["cnn_label"]
    assert upright_right >= 38
    assert st_kept >= 36
    assert st_kept >= cnn_kept + 3


def test_live_frame_endpoint_serves_a_sessions_digit(client):
    """`/frame` is the slider event (batched): it reads the session's digit, set here the
    way the gallery sets it."""
    key = "RTS · ST-CNN Aff"
    controls = [30, 0.9, 0.1, 0, 0, 0, 0, False, 0]
    grid, warped, theta, st, cnn = client.predict(key, *controls, api_name="/frame")
    assert "no digit yet" in theta  # answered, not crashed, before any digit is chosen
    client.predict(3, api_name="/from_sample")
    grid, warped, theta, st, cnn = client.predict(key, *controls, api_name="/frame")
    assert grid.startswith("<svg") and warped.startswith("<img") and "θ (affine)" in theta
    assert st["label"] in [str(d) for d in range(10)] and cnn["label"] in [str(d) for d in range(10)]


def test_upload_tab_explains_a_broken_image(client, lab, tmp_path):
    """The Upload tab hands files to our decoder: a truncated PNG gets its own message and a
    good file becomes the digit."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path, _ = _digit_file(lab, 2, tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(AppError, match="truncated or damaged"):
        client.predict(handle_file(str(broken)), api_name="/from_upload")
    picture = client.predict(handle_file(str(path)), api_name="/from_upload")  # states stay on the server
    assert Image.open(picture).size == (112, 112)  # the normalised digit, shown



@pytest.fixture(scope="module")
def raw(served):
    """Plain HTTP on Gradio's documented API, as a script that bypasses the sliders calls it:
    ``raw(api_name, data)`` in one session whose digit is sample 3."""
    from tests.helpers import Caller

    caller = Caller(served)
    caller.call("from_sample", [3], session_hash="raw-session")
    call = functools.partial(caller.call, session_hash="raw-session")
    call.upload = caller.upload
    yield call
    caller.close()


FRAME = ["RTS · ST-CNN Aff", 30, 0.9, 0.1, 0, 0, 0, 0, False, 0]
FRAME_NAMES = ["model", "rotation", "scale", "shift_x", "shift_y", "shear", "perspective", "elastic", "clutter", "seed"]
BAD_VALUES = [math.nan, math.inf, -math.inf, "abc", None, [1], {"a": 1}]
BAD_IDS = ["nan", "inf", "-inf", "str", "null", "list", "dict"]


@pytest.mark.parametrize("name", FRAME_NAMES[1:8] + ["seed"])
@pytest.mark.parametrize("bad", BAD_VALUES, ids=BAD_IDS)
def test_frame_api_names_a_bad_number(raw, name, bad):
    """Every numeric parameter of the live /frame endpoint, sent NaN, +-inf or a wrong type
    as raw JSON: the answer names the parameter and its range; the pictures stay as they were."""
    data = list(FRAME)
    data[FRAME_NAMES.index(name)] = bad
    grid, warped, theta, st, cnn = raw("frame", data)
    assert theta.startswith(f"**{name} must be a ") and " in [" in theta
    assert grid.get("__type__") == "update" and warped.get("__type__") == "update"


def test_frame_api_clamps_out_of_range_numbers_and_names_other_bad_values(raw):
    clamped = raw("frame", ["RTS · ST-CNN Aff", 720, 99, -5, 5, 3, 9, 9, False, -4])
    at_bounds = raw("frame", ["RTS · ST-CNN Aff", 180, 2, -1, 1, 1, 2, 3, False, 0])
    assert clamped[2] == at_bounds[2] and "θ (affine)" in clamped[2]
    assert "unknown model 'resnet'; available: " in raw("frame", ["resnet", *FRAME[1:]])[2]
    assert "clutter must be true or false, got 'yes'" in raw("frame", [*FRAME[:8], "yes", 0])[2]


@pytest.mark.parametrize(
    "api_name, data, missing",
    [
        ("frame", FRAME[:3], "shift_x, shift_y, shear, perspective, elastic, clutter, seed"),
        ("frame", FRAME[:1], "rotation, scale, shift_x"),
        ("predict", [None, 0], "scale, shift_x, shift_y, model"),
    ],
)
def test_missing_arguments_are_named(raw, api_name, data, missing):
    with pytest.raises(RuntimeError, match=f"/{api_name} takes .*; missing: {missing}"):
        raw(api_name, data)


@pytest.mark.parametrize("name", ["rotation", "scale", "shift_x", "shift_y"])
@pytest.mark.parametrize("bad", BAD_VALUES, ids=BAD_IDS)
def test_predict_api_names_a_bad_number(raw, lab, tmp_path, name, bad):
    path, _ = _digit_file(lab, 4, tmp_path)
    image = {"path": raw.upload("digit.png", path.read_bytes()), "meta": {"_type": "gradio.FileData"}}
    data = [image, 0, 1, 0, 0, ""]
    data[["rotation", "scale", "shift_x", "shift_y"].index(name) + 1] = bad
    with pytest.raises(RuntimeError, match=rf"{name} must be a (finite )?number in \["):
        raw("predict", data)
