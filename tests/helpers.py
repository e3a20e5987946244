"""Helpers shared by the tests (and reused by the benchmarks): free ports, a plain-HTTP
client of the app's API, slider-like values, Chromium's path, and ``python app.py`` with the network off
(the live socket's client and lecture halls are in ``tests/live_helpers.py``).

Tests import them from here (``from tests.helpers import free_port``), never from
``benchmarks/``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "VIEWPORTS",
    "ROOT",
    "Caller",
    "free_port",
    "offline_env",
    "open_tab",
    "slider_settings",
    "set_large_text",
    "start_app",
    "wait_for_frames",
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


# -- slider-like values ---------------------------------------


def slider_settings(count: int) -> list[dict]:
    """Rotation sweeping -180...180 while the scale breathes between 0.7 and 1.3."""
    return [
        {"rotation": float(r), "scale": round(1.0 + 0.3 * math.sin(i / 7.0), 2)}
        for i, r in enumerate(np.linspace(-180.0, 180.0, count).round())
    ]


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


# The three screens the page is built for: a laptop, a projector with large text on, a phone.
VIEWPORTS = {
    "desktop-1280x800": dict(width=1280, height=800, large=False),
    "projector-1024x768-large": dict(width=1024, height=768, large=True),
    "phone-390x844": dict(width=390, height=844, large=False),
}


def wait_for_frames(page, count: int = 1, timeout_ms: int = 60_000) -> None:
    """Wait until the live view has drawn ``count`` frames (its ``data-frames`` attribute)."""
    page.wait_for_function(
        "(n) => { const v = document.querySelector('#stn-live-view'); return v && Number(v.dataset.frames) >= n; }",
        arg=count,
        timeout=timeout_ms,
    )


def set_large_text(page) -> None:
    """Switch large text on as a lecturer does (the lecture settings' checkbox), back at the top."""
    page.get_by_text("Lecture settings and sharing").click()
    page.locator("#stn-large-text input").check()
    page.get_by_text("Lecture settings and sharing").click()
    page.wait_for_function("() => document.documentElement.classList.contains('stn-large')")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)


def open_tab(page, name: str) -> None:
    """Open the teaching view ``name`` as a person does: its tab, or, on a narrow screen
    where Gradio folds tabs away, the "More tabs" menu and then the view's entry."""
    tab = page.get_by_role("tab", name=name)
    if tab.count():
        tab.click()
    else:
        page.locator("#stn-views .overflow-menu > button").click()
        page.locator("#stn-views .overflow-dropdown button", has_text=name).click()
    page.wait_for_selector(f"#stn-views [role=tab][aria-selected=true]:text-is('{name}')")
