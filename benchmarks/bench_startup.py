"""Start-up time of ``python app.py``, with every connection off this machine refused.

    python -m benchmarks.bench_startup [--runs 5]

Each run starts ``python app.py`` as a user does (a fresh process, a free port) and times
it until the page answers HTTP 200. The process gets a ``sitecustomize`` that makes any
socket connection to a non-loopback address fail, so the app provably starts with no
network: weights, digits and the time-lapse come from the repository. Target (issue 5):
within 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.bench_app import ROOT, free_port, machine_line

# Loaded by every Python process whose path holds this file's folder.
NO_NETWORK = '''
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
'''


def offline_env() -> dict[str, str]:
    """The environment of a process that cannot reach anything beyond loopback."""
    folder = Path(tempfile.mkdtemp(prefix="stn-offline-"))
    (folder / "sitecustomize.py").write_text(NO_NETWORK)
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}


def start_app(env: dict[str, str], timeout: float = 120.0) -> tuple[subprocess.Popen, str, float]:
    """``python app.py`` on a free port; returns the process, its URL and the seconds it took
    to answer HTTP 200. Raises RuntimeError (with the app's output) if it never does."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env={**env, "GRADIO_SERVER_PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = offline_env()
    times = []
    for _ in range(args.runs):
        process, _, seconds = start_app(env)
        times.append(seconds)
        process.terminate()
        process.wait(timeout=30)
    print(f"## `python app.py` start-up, network disabled ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {machine_line('cpu')}.\n")
    print(f"{args.runs} runs until HTTP 200: median {statistics.median(times):.1f} s, max {max(times):.1f} s "
          f"(target 15 s: {'met' if max(times) <= 15 else 'MISSED'}); each: {', '.join(f'{t:.1f}' for t in times)} s.")


if __name__ == "__main__":
    main()
