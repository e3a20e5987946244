"""Latency of the app's live path: the handler alone, then the whole HTTP round trip.

    python -m benchmarks.bench_app [--frames 300] [--requests 200] [--threads N] [--device cpu|cuda] [--no-http]

Part A (handler): ``Lab.frame(digit, controls, key)`` -- distort, run the ST-CNN and the
plain CNN, draw the sampling grid, the warped picture and the θ text -- for slider-like
updates (rotation sweeping -180...180 while scale varies) on a real sample digit, after
warm-up. Part B (HTTP, end to end): the app itself (``app.build_app`` with the queue
settings of ``app.launch``) on a free local port, called with plain HTTP the way the browser
and the documented API do: ``POST /gradio_api/call/<api_name>`` then read the SSE stream of
``GET /gradio_api/call/<api_name>/<event_id>`` until ``event: complete``. A trivial echo
endpoint, added to the same app here only, gives the framework's own cost to compare with.

Part A runs in a worker thread, as Gradio runs a synchronous handler. On a small machine
whose cores are busy with something else (a training run), torch's intra-op threads in
the *main* thread can be ~100x slower than in a worker thread (OpenMP threads waiting on
cores they do not get); ``--main-thread`` measures that case, ``--threads 1`` avoids it.

Models: ``$STN_MODEL_DIR`` if set, else the shipped ``pretrained/``. Prints Markdown
tables for the README.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from stn_lab.live import encode_digit
from tests.helpers import Caller, free_port, slider_settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained"


def model_folder() -> tuple[Path, str]:
    """Where the models come from (``$STN_MODEL_DIR``, else ``pretrained/``), and a line saying which."""
    env = os.environ.get("STN_MODEL_DIR")
    if env:
        return Path(env), f"$STN_MODEL_DIR ({env})"
    return SHIPPED, f"shipped models ({SHIPPED.relative_to(ROOT)}/)"


def summary(times_s: list[float]) -> dict:
    ms = sorted(t * 1000.0 for t in times_s)
    p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]
    return {"n": len(ms), "median": statistics.median(ms), "p95": p95, "min": ms[0]}


# -- part A: the handler ----------------------------------------------------------------------


def bench_handler(lab, key: str, frames: int, warmup: int = 20) -> dict[str, dict]:
    from stn_lab.lab import DISPLAY_SIZE
    from stn_lab.rendering import grid_svg, picture_html, theta_markdown

    digit, _ = lab.sample_digit(0)
    settings = slider_settings(frames)
    for values in settings[:warmup]:
        lab.frame(digit, lab.controls(**values), key)
    frame_times, predict_times, render_times = [], [], []
    transform = lab.service.choice(key).st.spatial_transformer.transform
    for values in settings:
        controls = lab.controls(**values)
        start = time.perf_counter()
        lab.frame(digit, controls, key)
        frame_times.append(time.perf_counter() - start)
    # Where the time goes: the models (distort + both nets) versus the three renderings.
    for values in settings:
        controls = lab.controls(**values)
        start = time.perf_counter()
        result = lab.service.predict(digit, controls, key)
        middle = time.perf_counter()
        grid_svg(result.canvas, transform, result.theta, DISPLAY_SIZE)
        picture_html(result.warped, DISPLAY_SIZE)
        theta_markdown(transform, result.theta)
        end = time.perf_counter()
        predict_times.append(middle - start)
        render_times.append(end - middle)
    return {
        "Lab.frame (whole handler)": summary(frame_times),
        "  of which: distort + ST-CNN + CNN": summary(predict_times),
        "  of which: grid + warped pictures + θ text": summary(render_times),
    }


# -- part B: HTTP end to end ------------------------------------------------------------------


def _timed(fn, count: int, warmup: int) -> dict:
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return summary(times)


def bench_http(lab, key: str, requests: int, warmup: int = 20) -> tuple[dict[str, dict], list[str]]:
    import gradio as gr
    from PIL import Image

    import app

    notes = []
    demo = app.build_app(lab)

    def echo(text: str) -> str:
        return text

    with demo:  # the benchmark's own comparison endpoint; app.py is not changed
        gr.api(echo, api_name="echo")
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    caller = Caller(f"http://127.0.0.1:{port}")
    results = {}
    try:
        digit, _ = lab.sample_digit(0)
        png = io.BytesIO()
        Image.fromarray((digit * 255).astype(np.uint8)).save(png, format="PNG")
        png = png.getvalue()
        settings = slider_settings(requests)

        def image_ref(path: str) -> dict:
            return {"path": path, "meta": {"_type": "gradio.FileData"}}

        results["echo (gr.api, same app)"] = _timed(lambda i: caller.call("echo", ["7"]), requests, warmup)

        uploaded = caller.upload("digit.png", png)

        def predict(i, path=None):
            values = settings[i % len(settings)]
            out = caller.call("predict", [image_ref(path or uploaded), values["rotation"], values["scale"], 0.0, 0.0, key])
            assert isinstance(out[0], dict) and "st_probs" in out[0], out

        results["/predict (image uploaded once)"] = _timed(predict, requests, warmup)
        results["/predict incl. its upload"] = _timed(lambda i: predict(i, caller.upload("digit.png", png)), requests, warmup)

        # The live channel's frame through Gradio's event path (the browser's fallback).
        code = encode_digit(digit)

        def slide(i):
            values = settings[i % len(settings)]
            controls = json.dumps({"rotation": values["rotation"], "scale": values["scale"]})
            out = caller.call("live_frame", [code, key, controls])
            assert out[0]["type"] == "frame", out

        results["slider frame over Gradio (/live_frame, the fallback)"] = _timed(slide, requests, warmup)
        notes.append(
            "Slider frames normally travel on the live WebSocket, not through Gradio: "
            "`python -m benchmarks.bench_lecture` measures both paths under load."
        )
    finally:
        caller.close()
        with contextlib.redirect_stdout(io.StringIO()):  # keep "Closing server ..." out of the table
            demo.close()
    return results, notes


# -- report -----------------------------------------------------------------------------------


def machine_line(device: torch.device) -> str:
    import gradio

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"device {device}, gradio {gradio.__version__}, Python {platform.python_version()}, load average {load}"
    )


def table(rows: dict[str, dict], echo: dict | None = None) -> str:
    """Markdown rows of ``summary`` results; with ``echo``, a column of median / median(echo)."""
    header = "| path | n | median (ms) | p95 (ms) | min (ms) |" + (" median / echo |" if echo else "")
    lines = [header, "|---|---:|---:|---:|---:|" + ("---:|" if echo else "")]
    for name, s in rows.items():
        ratio = f" {s['median'] / echo['median']:.1f}× |" if echo else ""
        lines.append(f"| {name} | {s['n']} | {s['median']:.1f} | {s['p95']:.1f} | {s['min']:.1f} |{ratio}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="handler calls timed (part A)")
    parser.add_argument("--requests", type=int, default=200, help="sequential HTTP requests timed per endpoint (part B)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: $STN_DEVICE, else cuda when available)")
    parser.add_argument("--no-http", action="store_true", help="part A only")
    parser.add_argument(
        "--main-thread",
        action="store_true",
        help="time part A in the main thread instead of a worker thread (see the module notes)",
    )
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    warnings.filterwarnings("ignore", message=".*(no_silent_downcasting|copy keyword).*")  # pandas 3 vs gradio's queue
    if args.threads:
        torch.set_num_threads(args.threads)

    from stn_lab.lab import Lab
    from stn_lab.service import InferenceService

    folder, source = model_folder()
    lab = Lab(InferenceService(folder, device=args.device))
    key = lab.service.default_key()

    if args.main_thread:
        handler = bench_handler(lab, key, args.frames)
    else:  # as Gradio runs a synchronous handler: in a worker thread
        with ThreadPoolExecutor(1) as worker:
            handler = worker.submit(bench_handler, lab, key, args.frames).result()
    http, notes = ({}, []) if args.no_http else bench_http(lab, key, args.requests)

    print(f"## STN Lab latency ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {machine_line(lab.service.device)}.  ")
    print(
        f"Models: {source}; model `{key}`; digit: shipped sample #0; slider-like updates: "
        "rotation -180...180°, scale 0.7...1.3.\n"
    )
    print(f"### A. Handler (in process, {'main thread' if args.main_thread else 'in a worker thread, as Gradio calls it'})\n")
    print(table(handler))
    if http:
        echo = http.get("echo (gr.api, same app)")
        print(
            "\n### B. HTTP end to end (`POST /gradio_api/call/<api>` + SSE until `complete`, "
            "sequential, one keep-alive connection)\n"
        )
        print(table(http, echo))
        predict = http.get("/predict (image uploaded once)")
        if echo and predict:
            print(f"\nmedian(/predict) / median(echo) = {predict['median'] / echo['median']:.2f}")
        for note in notes:
            print(f"\n{note}")


if __name__ == "__main__":
    main()
