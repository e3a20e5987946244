"""Serve STN Lab for the benchmarks, as ``python app.py`` serves it, plus one echo endpoint.

    GRADIO_SERVER_PORT=7861 python -m benchmarks._serve_app [--no-echo]

Does exactly what ``app.main()`` does -- ``limit_malloc_arenas()``, ``build_app(Lab())``,
``app.launch(demo)`` with its queue settings, page assets and the live WebSocket at
``/live`` -- with one difference: before launching it adds ``gr.api(echo)`` (``/echo``, a
string in, the same string out) inside ``with demo:``, so that the benchmarks can compare
the app's own endpoints with Gradio's bare per-event cost. ``app.py`` itself carries no
benchmark endpoint. ``--no-echo`` leaves even that out.

Before launching it prints one line ``STN_SERVE {json}`` (pid, torch threads, device,
default model, models) for the benchmark that started it, then blocks in ``launch``.
:func:`start` runs it in a process of its own and waits until the page answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def echo(text: str) -> str:
    """The benchmark's trivial endpoint: returns ``text`` unchanged."""
    return text


def main() -> None:
    import app

    app.limit_malloc_arenas()  # first thing, as app.main() does

    import gradio as gr
    import torch

    from stn_lab.lab import Lab

    lab = Lab()
    demo = app.build_app(lab)
    if "--no-echo" not in sys.argv[1:]:
        with demo:
            gr.api(echo, api_name="echo")
    info = {
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
        "device": str(lab.service.device),
        "model": lab.service.default_key(),
        "models": list(lab.service.choices),
        "echo": "--no-echo" not in sys.argv[1:],
    }
    print("STN_SERVE " + json.dumps(info), flush=True)
    app.launch(demo)  # blocks, as in `python app.py`


class Server:
    """A running ``benchmarks._serve_app`` process (see :func:`start`)."""

    def __init__(self, process: subprocess.Popen, log_path: Path, port: int, info: dict):
        self.process, self.log_path, self.port, self.info = process, log_path, port, info
        self.pid = process.pid
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/live"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0, keep_log: bool = False) -> None:
        """Terminate this process (only it, by its own pid), then kill it if it lingers;
        delete its log unless ``keep_log``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


def start(port: int, timeout: float = 240.0, echo_endpoint: bool = True, env: dict | None = None) -> Server:
    """Start the app in its own process on 127.0.0.1:``port``; return once ``GET /`` answers
    200. Its output goes to a temporary log file (a pipe nobody reads would fill and stall
    the server). Raises RuntimeError with the log's tail if it exits or never answers."""
    import httpx

    log_file = tempfile.NamedTemporaryFile(prefix="stn-serve-", suffix=".log", delete=False)
    log_path = Path(log_file.name)
    environment = {
        **os.environ,
        **(env or {}),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore",
    }
    command = [sys.executable, "-m", "benchmarks._serve_app"] + ([] if echo_endpoint else ["--no-echo"])
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    server = Server(process, log_path, port, {})
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode} (log: {log_path}):\n{server.log_tail()}")
        if not server.info:
            for line in server.log_tail(100_000).splitlines():
                if line.startswith("STN_SERVE "):
                    server.info = json.loads(line[len("STN_SERVE ") :])
        try:
            if server.info and httpx.get(server.base + "/", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop(keep_log=True)
    raise RuntimeError(f"the app did not answer within {timeout:.0f} s (log: {log_path}):\n{server.log_tail()}")


if __name__ == "__main__":
    main()
