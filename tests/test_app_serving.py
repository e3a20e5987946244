"""The app as a public Space serves it: a lecture hall's load, a full queue, temporary files,
the file route and internal errors. Real servers on free local ports, plain HTTP."""

import os
import threading
import time
import uuid

import httpx
import pytest

from tests.helpers import Caller, free_port, lecture

pytestmark = pytest.mark.serve


def _serve(lab, delete_cache=(600, 1800), **queue):
    import app

    demo = app.build_app(lab)
    port = free_port()
    app.launch(demo, delete_cache=delete_cache, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **queue)
    return demo, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served(lab):
    """Uploads and outputs older than 1 s are deleted every second (the app's default is 30 min)."""
    demo, base = _serve(lab, delete_cache=(1, 1))
    yield base
    demo.close()


def test_a_hundred_students_dragging_sliders(served, lab):
    """100 concurrent clients, each in its own session, send back-to-back slider frames for
    3 s over HTTP: none fails, and the app answers afterwards."""
    key = lab.service.default_key()
    row = lecture(served, key, clients=100, duration=3.0)
    print(f"\n100 clients: {row['answered']} frames, {row['per_second']:.1f}/s, p95 {row['p95_ms']:.0f} ms, {row['failed']} failed")
    assert row["failed"] == 0, row["first_failure"]
    assert row["answered"] >= 100
    caller = Caller(served)
    assert "no digit yet" in caller.call("frame", [key, 0, 1, 0, 0, 0, 0, 0, False, 0])[2]
    caller.close()


def test_a_full_queue_answers_busy_and_the_app_recovers(lab):
    demo, base = _serve(lab, queue_size=1, concurrency=1)
    try:
        with httpx.Client(timeout=60) as http:
            answers = [http.post(f"{base}/gradio_api/call/batch", json={"data": ["RTS"]}) for _ in range(12)]
        statuses = [a.status_code for a in answers]
        assert 503 in statuses and set(statuses) <= {200, 503}
        assert all("full" in a.text.lower() for a in answers if a.status_code == 503)
        time.sleep(1.0)
        caller = Caller(base)
        assert caller.call("batch", ["RTS"])[0]["path"]  # served again once the queue drained
        caller.close()
    finally:
        demo.close()


def test_uploads_and_output_pictures_are_deleted_under_load(served, lab, tmp_path):
    """Uploads, /predict's pictures and the batch view's picture disappear, folders too,
    while other clients keep the app busy (Gradio's own delete_cache task stops then)."""
    from PIL import Image, PngImagePlugin

    digit, _ = lab.sample_digit(0)
    path = tmp_path / "digit.png"
    # Gradio files a file under a folder named by its content hash: make ours unique.
    unique = PngImagePlugin.PngInfo()
    unique.add_text("test", uuid.uuid4().hex)
    Image.fromarray((digit * 255).astype("uint8")).save(path, pnginfo=unique)
    busy = threading.Thread(target=lecture, args=(served, lab.service.default_key(), 8, 4.0))
    busy.start()
    caller = Caller(served)
    made = []
    for _ in range(10):
        upload = {"path": caller.upload("digit.png", path.read_bytes()), "meta": {"_type": "gradio.FileData"}}
        made += [upload["path"], caller.call("predict", [upload, 30, 1, 0, 0, ""])[1]["path"], caller.call("batch", ["RTS"])[0]["path"]]
        time.sleep(0.3)
    caller.close()
    busy.join()
    deadline = time.monotonic() + 10
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
    response = httpx.get(served + route)
    assert response.status_code in (403, 404), response.text[:200]
    assert "root:" not in response.text and "import gradio" not in response.text and "weights_sha256" not in response.text


def test_the_file_route_serves_an_upload(served):
    caller = Caller(served)
    uploaded = caller.upload("note.png", b"\x89PNG not really")
    assert httpx.get(f"{served}/gradio_api/file={uploaded}").content == b"\x89PNG not really"
    caller.close()


def test_an_internal_error_shows_no_trace_and_no_path(served, lab, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError(f"model file missing at {ROOT}/secret/path")

    monkeypatch.setattr(lab, "batch_view", broken)
    caller = Caller(served)
    with pytest.raises(RuntimeError) as raised:
        caller.call("batch", ["RTS"])
    caller.close()
    assert '"error": null' in str(raised.value)  # Gradio shows a bare "Error" in the page
    assert "secret" not in str(raised.value) and "Traceback" not in str(raised.value)
