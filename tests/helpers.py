"""Helpers shared by the tests (and reused by the benchmarks): free ports, a plain-HTTP
client of the app's API, a lecture hall's load, and ``python app.py`` with the network off.

Tests import them from here (``from tests.helpers import free_port``), never from
``benchmarks/``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "ROOT",
    "Caller",
    "free_port",
    "lecture",
    "offline_env",
    "slider_settings",
    "start_app",
    "student",
]

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Caller:
    """Plain-HTTP client of Gradio's documented ``/gradio_api/call`` API (one keep-alive connection)."""

    def __init__(self, base: str):
        import httpx

        self.base = base.rstrip("/")
        self.http = httpx.Client(timeout=60.0)

    def upload(self, name: str, data: bytes, mime: str = "image/png") -> str:
        response = self.http.post(f"{self.base}/gradio_api/upload", files={"files": (name, data, mime)})
        response.raise_for_status()
        return response.json()[0]

    def call(self, api_name: str, data: list, session_hash: str | None = None) -> list:
        body = {"data": data}
        if session_hash:
            body["session_hash"] = session_hash
        # json.dumps, unlike httpx's json=, writes NaN and Infinity as Python scripts do.
        response = self.http.post(
            f"{self.base}/gradio_api/call/{api_name}", content=json.dumps(body), headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        event_id = response.json()["event_id"]
        event = None
        with self.http.stream("GET", f"{self.base}/gradio_api/call/{api_name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line[5:].strip()
                    if event == "error":
                        raise RuntimeError(f"/{api_name} failed: {payload}")
                    return json.loads(payload)
        raise RuntimeError(f"/{api_name}: the stream ended without a complete event")

    def fetch(self, url: str) -> int:
        response = self.http.get(url)
        response.raise_for_status()
        return len(response.content)

    def close(self) -> None:
        self.http.close()


# -- a lecture hall: N students dragging sliders at once ---------------------------------------


def slider_settings(count: int) -> list[dict]:
    """Rotation sweeping -180...180 while the scale breathes between 0.7 and 1.3."""
    return [
        {"rotation": float(r), "scale": round(1.0 + 0.3 * math.sin(i / 7.0), 2)}
        for i, r in enumerate(np.linspace(-180.0, 180.0, count).round())
    ]


def student(base: str, key: str, duration: float, latencies: list, failures: list, max_requests: int = 10_000) -> None:
    """One client in its own session: picks a sample digit, then sends back-to-back slider
    frames for ``duration`` seconds; appends each latency, and each failure's message."""
    caller = Caller(base)
    session = uuid.uuid4().hex[:11]
    settings = slider_settings(200)
    try:
        caller.call("from_sample", [hash(session) % 1000], session_hash=session)
        deadline = time.perf_counter() + duration
        for i in range(max_requests):
            if time.perf_counter() >= deadline:
                break
            values = settings[i % len(settings)]
            started = time.perf_counter()
            try:
                out = caller.call(
                    "frame", [key, values["rotation"], values["scale"], 0.0, 0.0, 0.0, 0.0, 0.0, False, 0], session_hash=session
                )
                if not str(out[0]).startswith("<svg"):
                    raise RuntimeError(f"unexpected answer: {str(out)[:200]}")
                latencies.append(time.perf_counter() - started)
            except Exception as error:  # counted, not raised: the caller reports failures
                failures.append(repr(error)[:200])
    finally:
        caller.close()


def lecture(base: str, key: str, clients: int, duration: float) -> dict:
    """``clients`` concurrent :func:`student` s for ``duration`` seconds: answered, rate, latency, failures."""
    latencies, failures = [], []
    threads = [threading.Thread(target=student, args=(base, key, duration, latencies, failures)) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 120)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "answered": len(latencies),
        "per_second": len(latencies) / elapsed,
        "median_ms": 1000 * statistics.median(ordered) if ordered else float("nan"),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan"),
        "failed": len(failures),
        "first_failure": failures[0] if failures else "",
    }


# -- python app.py with every connection off this machine refused -------------------------------

# Loaded by every Python process whose path holds this file's folder.
NO_NETWORK = """
import ipaddress, socket

_connect = socket.socket.connect


def _loopback_only(sock, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise OSError(f"network disabled for this test: connect to {host}")
    return _connect(sock, address)


socket.socket.connect = _loopback_only
"""


def offline_env() -> dict[str, str]:
    """The environment of a process that cannot reach anything beyond loopback."""
    folder = Path(tempfile.mkdtemp(prefix="stn-offline-"))
    (folder / "sitecustomize.py").write_text(NO_NETWORK)
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}


def start_app(env: dict[str, str], timeout: float = 120.0) -> tuple[subprocess.Popen, str, float]:
    """``python app.py`` on a free port; returns the process, its URL and the seconds it took
    to answer HTTP 200. Raises RuntimeError (with the app's output) if it never does."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={**env, "GRADIO_SERVER_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{process.stdout.read()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process, url, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{process.communicate()[0][-3000:]}")


# Debian's Chromium, as the browser tests and scripts/screenshots.py drive it. The
# background-networking flags keep it from dialling out (this machine's network is closed).
CHROMIUM = Path(os.environ.get("STN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
