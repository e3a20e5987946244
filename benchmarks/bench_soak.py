"""Resources over a long run: the app's resident memory and temp folder over 2,000 mixed requests.

    python -m benchmarks.bench_soak [--requests 2000] [--warmup 200] [--clients 4] [--delete-every 10 --delete-age 30]

The app runs in its own process (``app.build_app`` + ``app.launch``, the shipped models,
its own ``GRADIO_TEMP_DIR``), so its memory is measured alone: ``VmRSS`` from
``/proc/PID/status``. ``--clients`` threads send plain-HTTP calls of the public API in a
fixed mix -- slider frames over Gradio's event path (``/live_frame``, with clutter and
elastic too), ``/predict`` with a fresh upload each time, and three bad requests (a NaN
slider, an unknown model, a broken file) -- across 20 sessions. (The teaching views'
events have no public API names since the page was split into views; they are not in the
mix.) Memory and the temp folder are read after ``--warmup``
requests and every 250 after that.

Uploads and output pictures are kept ``--delete-age`` seconds, checked every
``--delete-every`` seconds (the app's own default is 30 min, every 10 min, which a few
minutes of soak would never reach); the temp folder must level off instead of growing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_app import ROOT, Caller, free_port, machine_line
from stn_core.mnist import load_sample
from stn_lab.live import encode_digit

SESSIONS = 20
MODEL = "rts-st-cnn-affine"


def serve(port: int, delete_every: int, delete_age: int) -> None:
    """The app as ``python app.py`` serves it, with a shorter temp-file lifetime."""
    import app
    from stn_lab.lab import Lab

    app.limit_malloc_arenas()  # as app.main does
    app.launch(app.build_app(Lab()), delete_cache=(delete_every, delete_age), server_port=port, quiet=True)


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line")


def folder_usage(folder: Path) -> tuple[int, float]:
    """Files and MB under ``folder``, which the app's cleaner is deleting from meanwhile."""
    count, size = 0, 0
    for parent, _, names in os.walk(folder):  # os.walk skips folders that vanish
        for name in names:
            try:
                size += os.stat(os.path.join(parent, name)).st_size
                count += 1
            except FileNotFoundError:
                pass
    return count, size / 2**20


def digit_png(index: int) -> bytes:
    """A different image every time (a sample digit with a few random pixels), so every
    upload is a new file in the temp folder rather than a cached copy."""
    from PIL import Image

    from stn_core.mnist import load_sample

    images, _, _ = load_sample()
    pixels = images[index % images.shape[0]].numpy().copy()
    rng = np.random.default_rng(index)
    pixels[rng.integers(0, 28, 3), rng.integers(0, 28, 3)] = rng.integers(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def one_request(caller: Caller, index: int) -> None:
    """Request ``index`` of the fixed mix; raises when an answer is not what the page expects."""
    session = f"soak-{index % SESSIONS}"
    kind = index % 10
    rotation = float((index * 37) % 360 - 180)

    def call(api_name, data):
        return caller.call(api_name, data, session_hash=session)

    def upload() -> dict:
        return {"path": caller.upload(f"digit{index}.png", digit_png(index)), "meta": {"_type": "gradio.FileData"}}

    code = encode_digit(np.asarray(load_sample()[0][index % 1000].numpy(), np.float32) / 255.0)
    if kind in (0, 1, 2, 3):  # a slider frame over Gradio's event path (the live view's fallback)
        controls = {"rotation": rotation, "scale": 0.7 + 0.1 * kind, "elastic": 0.5 * (kind == 3), "clutter": kind == 2}
        assert call("live_frame", [code, MODEL, json.dumps(controls)])[0]["type"] == "frame", "live_frame"
    elif kind in (4, 5, 6):
        assert len(call("predict", [upload(), rotation, 1.0, 0.0, 0.0, MODEL])[0]["theta"]) == 6
    elif kind == 7:
        answer = call("live_frame", [code, MODEL, '{"rotation": NaN}'])[0]
        assert answer["type"] == "error" and "rotation must be a finite number" in answer["message"], answer
    elif kind == 8:
        assert call("live_frame", [code, "no-such-model", "{}"])[0]["type"] == "error"
    else:
        picture = digit_png(index)
        broken = {"path": caller.upload(f"broken{index}.png", picture[: len(picture) // 2]), "meta": {"_type": "gradio.FileData"}}
        try:
            call("predict", [broken, 0.0, 1.0, 0.0, 0.0, MODEL])
        except RuntimeError as error:
            assert "truncated or damaged" in str(error), str(error)[:200]
        else:
            raise AssertionError("a broken file was accepted")


def run_requests(base: str, indices: range, clients: int, failures: list) -> None:
    def worker(offset: int) -> None:
        caller = Caller(base)
        for index in indices[offset::clients]:
            try:
                one_request(caller, index)
            except Exception as error:  # counted and reported, not raised
                failures.append(f"request {index}: {error!r}"[:300])
        caller.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests after warm-up")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--delete-every", type=int, default=10)
    parser.add_argument("--delete-age", type=int, default=30)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: run the app on this port
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delete_every, args.delete_age)
        return

    temp = Path(tempfile.mkdtemp(prefix="stn-soak-"))
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(temp), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONWARNINGS": "ignore"}
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_soak",
        "--serve",
        str(port),
        "--delete-every",
        str(args.delete_every),
        "--delete-age",
        str(args.delete_age),
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            try:
                Caller(base).fetch(base + "/")
                break
            except Exception:
                if server.poll() is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.5)
        failures: list[str] = []
        run_requests(base, range(args.warmup), args.clients, failures)
        rows = [(0, resident_mb(server.pid), *folder_usage(temp), time.perf_counter())]
        for done in range(250, args.requests + 1, 250):
            run_requests(base, range(args.warmup + done - 250, args.warmup + done), args.clients, failures)
            rows.append((done, resident_mb(server.pid), *folder_usage(temp), time.perf_counter()))
        alive = Caller(base).call("live_frame", [encode_digit(np.zeros((28, 28), np.float32)), MODEL, "{}"])[0]["type"] == "frame"
    finally:
        server.terminate()
        server.wait(timeout=30)

    growth = rows[-1][1] - rows[0][1]
    print(f"## STN Lab over {args.requests:,} mixed requests ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {machine_line('cpu')}. {args.clients} client threads, {SESSIONS} sessions, shipped models; ")
    print(f"temp files kept {args.delete_age} s, checked every {args.delete_every} s. Memory = the app process's VmRSS.\n")
    print("| requests after warm-up | elapsed (s) | resident memory (MB) | growth (MB) | temp files | temp folder (MB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for done, rss, files, size, at in rows:
        print(f"| {done} | {at - rows[0][4]:.0f} | {rss:.1f} | {rss - rows[0][1]:+.1f} | {files} | {size:.2f} |")
    print(f"\nMemory growth after warm-up: {growth:+.1f} MB (target < 50 MB: {'met' if growth < 50 else 'MISSED'}). ")
    print(f"Failed requests: {len(failures)}. The app answered afterwards: {'yes' if alive else 'NO'}.")
    for failure in failures[:5]:
        print(f"- {failure}")


if __name__ == "__main__":
    main()
