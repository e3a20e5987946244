"""Clients of the live channel (``/live``, :mod:`stn_lab.live`) for the tests: a browser's
socket, driven synchronously, and a lecture hall of them; and the same hall on the
fallback event path (the ``/live_frame`` API endpoint).

Kept apart from :mod:`tests.helpers` (ports, the plain-HTTP ``Caller``, ``python app.py``)
because these speak the live channel's protocol.
"""

from __future__ import annotations

import base64
import json
import statistics
import threading
import time

import numpy as np

from stn_lab.live import decode_message

__all__ = ["LiveSocket", "fallback_lecture", "live_lecture", "pixels", "socket_url"]


def socket_url(base: str) -> str:
    """``http://host:port/`` -> ``ws://host:port/live``."""
    return "ws" + base.rstrip("/").removeprefix("http") + "/live"


def pixels(payload: dict, name: str) -> np.ndarray:
    """A frame's ``"canvas"`` or ``"warped"`` picture as a ``(S, S)`` uint8 array."""
    size = payload["canvas_size"] if name == "canvas" else payload["warped_size"]
    return np.frombuffer(base64.b64decode(payload[name]), np.uint8).reshape(size, size)


class LiveSocket:
    """One browser's socket to ``/live`` (``websockets``' synchronous client).

    ``hello`` is the server's first message: ``{"type": "ready", ...}``, or ``busy``.
    """

    def __init__(self, base: str, timeout: float = 30.0):
        from websockets.sync.client import connect

        self.timeout = timeout
        self.socket = connect(socket_url(base), open_timeout=timeout, max_size=2**22, legacy=True)
        self.hello = self.receive()

    def send(self, message) -> None:
        """A dict (sent as JSON), or a ``str`` / ``bytes`` sent as it is."""
        self.socket.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def receive(self, timeout: float | None = None) -> dict:
        return decode_message(self.socket.recv(timeout=self.timeout if timeout is None else timeout))

    def ask(self, message) -> dict:
        """Send, and return the next message."""
        self.send(message)
        return self.receive()

    def digit(self, code: str) -> None:
        self.send({"type": "digit", "digit": code})

    def frame(self, seq: int, model: str | None = None, **controls) -> dict:
        """Request a frame and return the answer to it (answers to older requests skipped)."""
        self.send({"type": "frame", "seq": seq, "model": model, "controls": controls})
        while True:
            answer = self.receive()
            if answer.get("seq") == seq or answer.get("type") not in ("frame", "error"):
                return answer

    def close(self) -> None:
        self.socket.close()

    def drop(self) -> None:
        """Vanish as a browser tab that is killed does: the TCP connection goes, with no
        closing handshake."""
        from socket import SHUT_RDWR

        self.socket.socket.shutdown(SHUT_RDWR)
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _summary(clients: int, latencies: list, failures: list, elapsed: float) -> dict:
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


def _hall(student, clients: int, duration: float) -> dict:
    latencies, failures = [], []
    threads = [threading.Thread(target=student, args=(i, latencies, failures)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 120)
    return _summary(clients, latencies, failures, time.perf_counter() - started)


def _rotation(i: int) -> float:
    return float(round(-180 + (i * 7) % 361))


def live_lecture(base: str, key: str, digit_codes: list[str], clients: int, duration: float) -> dict:
    """``clients`` browsers on ``/live``, each dragging the rotation slider for ``duration``
    seconds (a new request as soon as the last is answered, as ``live.js`` does)."""

    def student(index, latencies, failures):
        try:
            with LiveSocket(base) as socket:
                if socket.hello.get("type") != "ready":
                    raise RuntimeError(f"not ready: {socket.hello}")
                socket.digit(digit_codes[index % len(digit_codes)])
                deadline = time.perf_counter() + duration
                seq = 0
                while time.perf_counter() < deadline:
                    seq += 1
                    started = time.perf_counter()
                    answer = socket.frame(seq, key, rotation=_rotation(seq), scale=1.0 + 0.3 * np.sin(seq / 7))
                    if answer.get("type") != "frame":
                        failures.append(str(answer)[:200])
                        continue
                    latencies.append(time.perf_counter() - started)
        except Exception as error:  # counted, not raised: the caller reports failures
            failures.append(repr(error)[:200])

    return _hall(student, clients, duration)


def fallback_lecture(base: str, key: str, digit_codes: list[str], clients: int, duration: float) -> dict:
    """The same hall on the fallback path: ``/live_frame`` through Gradio's event queue."""
    from tests.helpers import Caller

    def student(index, latencies, failures):
        caller = Caller(base)
        try:
            deadline = time.perf_counter() + duration
            seq = 0
            while time.perf_counter() < deadline:
                seq += 1
                controls = json.dumps({"rotation": _rotation(seq), "scale": 1.0 + 0.3 * np.sin(seq / 7)})
                started = time.perf_counter()
                try:
                    (answer,) = caller.call("live_frame", [digit_codes[index % len(digit_codes)], key, controls])
                    if answer.get("type") != "frame":
                        raise RuntimeError(f"unexpected answer: {str(answer)[:200]}")
                    latencies.append(time.perf_counter() - started)
                except Exception as error:
                    failures.append(repr(error)[:200])
        finally:
            caller.close()

    return _hall(student, clients, duration)
