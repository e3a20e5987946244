"""The app as a public Space serves it: a lecture hall's load, a full queue, temporary files,
the file route and internal errors. Real servers on free local ports, plain HTTP."""

import io
import json
import os
import threading
import time
import types
import uuid

import httpx
import pytest

from stn_lab.live import encode_digit
from tests.helpers import Caller, free_port
from tests.live_helpers import LiveSocket, fallback_lecture, live_lecture

pytestmark = pytest.mark.serve


def batch_api_name(demo) -> str:
    """The API name Gradio gave the batch view's button (it has no name of its own)."""
    names = [
        fn.api_name
        for fn in demo.fns.values()
        if fn.fn is not None
        and fn.fn.__name__ == "render"
        and len(fn.outputs) == 2
        and str(fn.outputs[0].label).startswith("distorted inputs")
    ]
    assert names, "the batch view's event was not found"
    return names[0]


def _serve(lab, delete_cache=(600, 1800), **queue):
    import app

    demo = app.build_app(lab)
    port = free_port()
    app.launch(
        demo, delete_cache=delete_cache, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **queue
    )
    return demo, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served(lab):
    """Uploads and outputs older than 5 s are deleted every second (the app's default is 30
    min); 5 s, not less: on a busy 2-core machine an upload can wait that long in the queue."""
    demo, base = _serve(lab, delete_cache=(1, 5))
    base_url = types.SimpleNamespace(base=base, batch=batch_api_name(demo))
    yield base_url
    demo.close()


@pytest.fixture(scope="module")
def codes(lab):
    return [encode_digit(lab.sample_digit(i)[0]) for i in range(20)]


def test_a_hundred_students_dragging_sliders_on_the_live_channel(served, lab, codes):
    """100 concurrent browsers, each on its own socket, drag a slider for 3 s (a new frame as
    soon as the last is answered): none fails, and the app answers afterwards."""
    key = lab.service.default_key()
    row = live_lecture(served.base, key, codes, clients=100, duration=3.0)
    print(f"\n100 live clients: {row['answered']} frames, {row['per_second']:.1f}/s, ", end="")
    print(f"p95 {row['p95_ms']:.0f} ms, {row['failed']} failed")
    assert row["failed"] == 0, row["first_failure"]
    assert row["answered"] >= 100
    with LiveSocket(served.base) as socket:
        assert socket.frame(1, key)["message"].startswith("no digit yet")
        socket.digit(codes[0])
        assert socket.frame(2, key)["type"] == "frame"


def test_a_hundred_students_on_the_fallback_event_path(served, lab, codes):
    """The same hall where WebSockets are blocked: /live_frame through Gradio's queue, 100
    concurrent HTTP clients for 3 s: none fails, and the app answers afterwards."""
    key = lab.service.default_key()
    row = fallback_lecture(served.base, key, codes, clients=100, duration=3.0)
    print(f"\n100 fallback clients: {row['answered']} frames, {row['per_second']:.1f}/s, ", end="")
    print(f"p95 {row['p95_ms']:.0f} ms, {row['failed']} failed")
    assert row["failed"] == 0, row["first_failure"]
    assert row["answered"] >= 100
    caller = Caller(served.base)
    assert caller.call("live_frame", ["", key, "{}"])[0]["message"].startswith("digit must be 28x28")
    caller.close()


def test_a_full_queue_answers_busy_and_the_app_recovers(lab):
    demo, base = _serve(lab, queue_size=1, concurrency=1)
    batch = batch_api_name(demo)
    try:
        with httpx.Client(timeout=60) as http:
            answers = [http.post(f"{base}/gradio_api/call/{batch}", json={"data": ["RTS"]}) for _ in range(12)]
        statuses = [a.status_code for a in answers]
        assert 503 in statuses and set(statuses) <= {200, 503}
        assert all("full" in a.text.lower() for a in answers if a.status_code == 503)
        time.sleep(1.0)
        caller = Caller(base)
        assert caller.call(batch, ["RTS"])[0]["path"]  # served again once the queue drained
        caller.close()
    finally:
        demo.close()


def test_uploads_and_output_pictures_are_deleted_under_load(served, lab, codes):
    """Uploads, the upload tab's pictures and the batch view's picture disappear, folders
    too, while other clients keep the app busy (Gradio's own delete_cache task stops then).
    /predict writes no file at all: its warped output comes inline."""
    from PIL import Image, PngImagePlugin

    digit, _ = lab.sample_digit(0)

    def unique_png() -> bytes:
        # Gradio files a file under a folder named by its content hash, and keeps an older
        # file of the same content: make each upload unique.
        info = PngImagePlugin.PngInfo()
        info.add_text("test", uuid.uuid4().hex)
        buffer = io.BytesIO()
        Image.fromarray((digit * 255).astype("uint8")).save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()

    busy = threading.Thread(target=fallback_lecture, args=(served.base, lab.service.default_key(), codes, 8, 4.0))
    busy.start()
    caller = Caller(served.base)
    made = []
    for i in range(10):
        # Each upload used at once: files older than 5 s go.
        upload = {"path": caller.upload("digit.png", unique_png()), "meta": {"_type": "gradio.FileData"}}
        pictures = [
            v["path"]
            for v in caller.call("from_upload", [upload], session_hash=f"upload-{i}")
            if isinstance(v, dict) and "path" in v
        ]
        assert pictures  # the upload and its normalised digit, as pictures in the temp folder
        second = {"path": caller.upload("digit.png", unique_png()), "meta": {"_type": "gradio.FileData"}}
        predicted = caller.call("predict", [second, 30, 1, 0, 0, ""])[0]
        assert predicted["warped_png"].startswith("data:image/png;base64,") and "path" not in json.dumps(predicted)
        made += [upload["path"], second["path"], *pictures, caller.call(served.batch, ["RTS"])[0]["path"]]
        time.sleep(0.3)
    caller.close()
    busy.join()
    deadline = time.monotonic() + 20
    while any(os.path.exists(p) for p in made) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not [p for p in made if os.path.exists(p)]
    assert not [p for p in made if os.path.exists(os.path.dirname(p))]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAVERSALS = [
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../../../etc/passwd",
    "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=/tmp/gradio/../../etc/passwd",
    "/gradio_api/file=app.py",
    f"/gradio_api/file={ROOT}/app.py",
    f"/gradio_api/file={ROOT}/pretrained/rts-cnn.json",
    "/gradio_api/file=pretrained/rts-cnn.safetensors",
    "/file=/etc/passwd",
    "/static/../app.py",
    "/assets/../../app.py",
    "/gradio_api/file=~/.bashrc",
]


@pytest.mark.parametrize("route", TRAVERSALS)
def test_the_file_route_serves_nothing_outside_the_temp_folder(served, route):
    response = httpx.get(served.base + route)
    assert response.status_code in (403, 404), response.text[:200]
    assert "root:" not in response.text and "import gradio" not in response.text and "weights_sha256" not in response.text


def test_the_file_route_serves_an_upload(served):
    caller = Caller(served.base)
    uploaded = caller.upload("note.png", b"\x89PNG not really")
    assert httpx.get(f"{served.base}/gradio_api/file={uploaded}").content == b"\x89PNG not really"
    caller.close()


def test_an_internal_error_shows_no_trace_and_no_path(served, lab, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError(f"model file missing at {ROOT}/secret/path")

    monkeypatch.setattr(lab, "batch_view", broken)
    monkeypatch.setattr(lab.service, "predict", broken)  # under /live_frame
    caller = Caller(served.base)
    for api_name, data in [(served.batch, ["RTS"]), ("live_frame", [encode_digit(lab.sample_digit(0)[0]), "", "{}"])]:
        with pytest.raises(RuntimeError) as raised:
            caller.call(api_name, data)
        assert '"error": null' in str(raised.value)  # Gradio shows a bare "Error" in the page
        assert "secret" not in str(raised.value) and "Traceback" not in str(raised.value)
    caller.close()
