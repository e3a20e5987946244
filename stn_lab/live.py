"""The live channel: slider frames over one WebSocket per browser, batched across students.

Why not Gradio's events: every Gradio event goes through its per-event queue and event
stream, which on 2 cores tops out at about 90-180 events/s in all (a trivial echo endpoint
included), far below a lecture hall dragging sliders. Here each browser keeps one socket
open; the server keeps only the **newest** frame request per socket (a stale one is
replaced, never computed) and a single worker turns all pending requests into one batched
forward pass per tick, on the service's device (the GPU when there is one).

Protocol (JSON text messages, and binary frames; see ``stn_lab/static/live.js`` for the
client):

* client -> server
  - ``{"type": "digit", "digit": B64}``: the session's digit, 28x28 uint8 (784 bytes,
    base64, row-major, ink bright on 0), as :func:`encode_digit` writes it.
  - ``{"type": "frame", "seq": INT, "model": SLUG, "controls": {NAME: NUMBER, ...}}``:
    the nine controls of :class:`stn_core.controls.Controls` (missing ones take their
    defaults; values out of range are clamped, as every other input of the app).
  - ``{"type": "scene", "seq": INT, "model": SLUG, "picks": [3 INT], "places": [[X, Y] x 3],
    "clutter_seed": INT or null, "step": INT}``: the "Several digits" view while a digit is
    dragged (:class:`stn_lab.several.Scene`; a pick of -1 is the session's digit).
  - ``{"type": "pair", "seq": INT, "model": SLUG, "picks": [2 INT], "poses": [[ROTATION,
    SCALE, X, Y] x 2]}``: the "Two digits summed" view while a digit is moved
    (:class:`stn_lab.addition.Pair`).
* server -> client
  - ``{"type": "ready", "models": [...], "max_message_bytes": N}`` on connect;
  - a binary message: a frame answering a request, :func:`frame_payloads`' payload in the
    layout of :func:`frame_messages` (JSON header, then the grid and the two pictures);
  - ``{"type": "scene", "seq": ..., "canvas_html", "glimpses_html", "readout_html"}``: the
    view's three pictures for a scene request (:func:`scene_payloads`); for a pair request
    ``{"type": "pair", "seq": ..., "channels_html", "outputs_html", "sum_html"}``
    (:func:`pair_payloads`);
  - ``{"type": "error", "seq": ... or null, "message": TEXT}``: a bad message (with
    ``"view": "scene"`` or ``"pair"`` when it was a view's request); the socket stays open
    and keeps serving;
  - ``{"type": "busy", "message": TEXT}`` then close (code 1013) when the server already
    holds :attr:`LiveHub.max_connections` sockets.

The same payload is served by the ``/live_frame`` Gradio API endpoint, so a browser whose
proxy blocks WebSockets falls back to Gradio's event path and draws the same thing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import orjson  # a dependency of Gradio's; encodes a frame's header ~10x faster than json
import torch

from stn_core.controls import CONTROL_NAMES, CONTROL_RANGES, Controls

from . import addition
from .lab import Lab, LabError
from .rendering import grid_lines, theta_words_many
from .several import OWN, ROOM, SLOTS, Scene, canvas_html, glimpses_html, readout_html

__all__ = [
    "LiveHub",
    "decode_digit",
    "decode_message",
    "encode_digit",
    "frame_messages",
    "frame_payload",
    "frame_payloads",
    "parse_frame_request",
    "parse_scene_request",
    "scene_payloads",
]

log = logging.getLogger(__name__)

DIGIT_SIDE = 28
GRID_LINES = 7  # lattice lines per direction drawn over the input (edges included)
MAX_MESSAGE_BYTES = 4096  # a digit message is ~1.1 kB, a frame request ~0.3 kB
MAX_CONNECTIONS = 400
# A browser sends at most one request per answer; a client sending far faster than that is
# flooding. Past this rate its socket is read more slowly (back-pressure), not closed.
MAX_MESSAGES_PER_S = 200
CLOSE_BUSY = 1013  # "try again later"


def encode_digit(digit: np.ndarray) -> str:
    """``(28, 28)`` float digit in [0, 1] -> base64 of its 784 uint8 pixels.

    >>> decode_digit(encode_digit(np.eye(28, dtype=np.float32)))[3, 3]
    np.float32(1.0)
    """
    pixels = (np.clip(np.asarray(digit, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if pixels.shape != (DIGIT_SIDE, DIGIT_SIDE):
        raise ValueError(f"expected a (28, 28) digit, got {pixels.shape}")
    return base64.b64encode(pixels.tobytes()).decode("ascii")


def decode_digit(code) -> np.ndarray:
    """Base64 of 784 uint8 pixels -> ``(28, 28)`` float32 digit in [0, 1].

    Raises:
        LabError: for anything that is not exactly that.
    """
    if not isinstance(code, str) or len(code) > 2 * DIGIT_SIDE * DIGIT_SIDE:
        raise LabError("digit must be base64 of 28x28 = 784 bytes")
    try:
        raw = base64.b64decode(code, validate=True)
    except (binascii.Error, ValueError):
        raise LabError("digit is not valid base64") from None
    if len(raw) != DIGIT_SIDE * DIGIT_SIDE:
        raise LabError(f"digit must be 28x28 = 784 bytes, got {len(raw)}")
    return np.frombuffer(raw, np.uint8).reshape(DIGIT_SIDE, DIGIT_SIDE).astype(np.float32) / 255.0


def _quantised(images: list[np.ndarray]) -> np.ndarray:
    """``(N, H, W)`` uint8 of ``N`` float images in [0, 1] (rounded to nearest)."""
    return (np.clip(np.stack(images), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass
class _FrameBatch:
    """One model's results made ready to send, in one numpy pass per field: see
    :func:`frame_payloads` for what each field is."""

    key: str
    transform: str
    canvases: np.ndarray  # (N, S, S) uint8
    warped: np.ndarray  # (N, W, W) uint8
    grids: np.ndarray  # (N, lines, points, 2) float, rounded to 4 decimals
    thetas: list  # N lists of floats, rounded to 5 decimals
    words: list[str]
    st: list
    cnn: list  # N lists, or N times None without a baseline

    def header(self, i: int, seq) -> dict:
        """Frame ``i``'s fields other than its pictures and its grid."""
        return {
            "type": "frame",
            "seq": seq,
            "model": self.key,
            "transform": self.transform,
            "canvas_size": self.canvases.shape[-1],
            "warped_size": self.warped.shape[-1],
            "theta": self.thetas[i],
            "theta_words": self.words[i],
            "st": self.st[i],
            "cnn": self.cnn[i],
        }


def _frame_batch(lab: Lab, key: str, results: list) -> _FrameBatch:
    transform = lab.service.choice(key).st.spatial_transformer.transform
    thetas = torch.stack([result.theta for result in results])
    # Straight lines need only their ends; projective and TPS grids bend.
    samples = 2 if transform.name in ("affine", "attention") else 9
    st = np.round(np.stack([r.st_probs for r in results]), 5).tolist()
    cnn = [None] * len(results)
    if results[0].cnn_probs is not None:
        cnn = np.round(np.stack([r.cnn_probs for r in results]), 5).tolist()
    return _FrameBatch(
        key=key,
        transform=transform.name,
        canvases=_quantised([r.canvas for r in results]),
        warped=_quantised([r.warped for r in results]),
        grids=np.round(grid_lines(transform, thetas, GRID_LINES, samples), 4),
        thetas=np.round(thetas.double().numpy(), 5).tolist(),
        words=theta_words_many(transform, thetas),
        st=st,
        cnn=cnn,
    )


def frame_payloads(lab: Lab, key: str, results: list, seqs: list) -> list[dict]:
    """What the browser needs to draw each frame, and nothing it would have to compute:
    the results of one model, their grids and θ readings made in one pass for the batch.

    Each payload is ``{"type": "frame", "seq", "model", "transform", "canvas_size",
    "canvas" (base64 uint8, row-major), "warped_size", "warped", "theta" (list),
    "theta_words", "grid" (list of polylines of [x, y] in the input's normalised
    coordinates, x right, y down, [-1, 1]; the first and last of each half are the
    outline), "st" and "cnn" (10 probabilities each; "cnn" null without a baseline)}``.
    This is the ``/live_frame`` endpoint's answer; the socket sends the same frame as
    binary (:func:`frame_messages`).
    """
    batch = _frame_batch(lab, key, results)
    grids = batch.grids.tolist()
    return [
        {
            **batch.header(i, seq),
            "canvas": base64.b64encode(batch.canvases[i].tobytes()).decode("ascii"),
            "warped": base64.b64encode(batch.warped[i].tobytes()).decode("ascii"),
            "grid": grids[i],
        }
        for i, seq in enumerate(seqs)
    ]


def frame_messages(lab: Lab, key: str, results: list, seqs: list) -> list[bytes]:
    """The socket's form of :func:`frame_payloads`: one binary message per frame.

    Layout (little-endian)::

        uint32 H | H bytes: UTF-8 JSON header, space-padded so that 4 + H is a multiple of 4
                 | float32 grid (lines x points x 2) | uint8 canvas (S x S) | uint8 warped (W x W)

    The header is the payload without ``canvas``, ``warped`` and ``grid``, plus
    ``"grid_shape": [lines, points]``. Why binary: as JSON (base64 pictures, the grid as
    decimal text) a frame of the default model is 5.7 kB, and encoding it was a quarter of
    the server's work under the GIL in a lecture hall (``py-spy --gil``, 100 students);
    this is 4.2 kB (``python -m benchmarks.bench_live_tick``),
    made with one ``tobytes`` per part. :func:`decode_message` reads it back into exactly
    the payload :func:`frame_payloads` gives (the grid's 4 decimals survive float32).
    """
    batch = _frame_batch(lab, key, results)
    grids = batch.grids.astype("<f4")
    shape = list(grids.shape[1:3])
    messages = []
    for i, seq in enumerate(seqs):
        header = orjson.dumps({**batch.header(i, seq), "grid_shape": shape})
        header += b" " * (-(4 + len(header)) % 4)
        pictures = batch.canvases[i].tobytes() + batch.warped[i].tobytes()
        messages.append(b"".join((struct.pack("<I", len(header)), header, grids[i].tobytes(), pictures)))
    return messages


def decode_message(data, header_only: bool = False) -> dict:
    """A server message as the dict it stands for: JSON text as it is, a binary frame
    (:func:`frame_messages`) as the payload of :func:`frame_payloads` (for tests and the
    benchmarks' clients; ``live.js`` reads the same layout). ``header_only``: a frame's
    header alone, with its ``grid_shape``, after checking the message's length."""
    if isinstance(data, str):
        return json.loads(data)
    data = bytes(data)
    (size,) = struct.unpack_from("<I", data)
    frame = json.loads(data[4 : 4 + size])
    lines, points = frame["grid_shape"] if header_only else frame.pop("grid_shape")
    grid_start = 4 + size
    canvas_start = grid_start + 8 * lines * points
    warped_start = canvas_start + frame["canvas_size"] ** 2
    expected = warped_start + frame["warped_size"] ** 2
    if len(data) != expected:
        raise ValueError(f"a frame of this header is {expected} bytes, got {len(data)}")
    if header_only:
        return frame
    grid = np.frombuffer(data, "<f4", lines * points * 2, grid_start).reshape(lines, points, 2)
    frame["canvas"] = base64.b64encode(data[canvas_start:warped_start]).decode("ascii")
    frame["warped"] = base64.b64encode(data[warped_start:]).decode("ascii")
    frame["grid"] = np.round(grid.astype(np.float64), 4).tolist()
    return frame


def frame_payload(lab: Lab, key: str, result, seq=None) -> dict:
    """:func:`frame_payloads` of one result (the ``/live_frame`` endpoint's answer)."""
    return frame_payloads(lab, key, [result], [seq])[0]


def parse_message(text) -> dict:
    """A client's message as a dict; :class:`LabError` for anything else.

    JSON's NaN and Infinity are read as numbers here, so that the control they were sent
    for is named in the error (with its range) by :func:`parse_frame_request`."""
    if isinstance(text, (bytes, bytearray)):
        raise LabError("send JSON text messages, not binary ones")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise LabError(f"message too long: {size} bytes, at most {MAX_MESSAGE_BYTES}")
    try:
        message = json.loads(text)
    except RecursionError:  # deeply nested arrays: not a message of ours
        raise LabError("not a JSON message: nested too deeply") from None
    except ValueError as error:
        raise LabError(f"not a JSON message: {error}") from None
    if not isinstance(message, dict) or message.get("type") not in ("digit", "frame", *VIEW_TYPES):
        raise LabError('a message is a JSON object with "type" "digit", "frame", "scene" or "pair"')
    return message


def _whole(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LabError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_scene_request(lab: Lab, message: dict) -> tuple[str, Scene, int]:
    """``(model slug, scene, glimpses shown)`` of a scene request; :class:`LabError` naming
    the bad field otherwise (the scene itself is checked when it is read)."""
    several = lab.several
    model = message.get("model")
    if model not in several.models:
        raise LabError(f'"model" must be one of {list(several.models)}, got {model!r}')
    picks, places = message.get("picks"), message.get("places")
    if not isinstance(picks, list) or len(picks) != SLOTS:
        raise LabError(f'"picks" must be a list of {SLOTS} sample indices (-1: your digit)')
    if not isinstance(places, list) or len(places) != SLOTS or not all(isinstance(p, list) and len(p) == 2 for p in places):
        raise LabError(f'"places" must be a list of {SLOTS} [x, y] pairs')
    picks = tuple(_whole(p, "a pick", OWN, several.pool.shape[0] - 1) for p in picks)
    places = tuple((_whole(x, "x", 0, ROOM), _whole(y, "y", 0, ROOM)) for x, y in places)
    seed = message.get("clutter_seed")
    seed = None if seed is None else _whole(seed, '"clutter_seed"', 0, 2**31 - 1)
    step = _whole(message.get("step", SLOTS), '"step"', 1, SLOTS)
    return model, Scene(picks, places, seed), step


def scene_payloads(readings: list, steps: list[int], seqs: list) -> list[dict]:
    """The "Several digits" view's pictures for each reading, as the Gradio path draws them."""
    return [
        {
            "type": "scene",
            "seq": seq,
            "canvas_html": canvas_html(reading, step),
            "glimpses_html": glimpses_html(reading, step),
            "readout_html": readout_html(reading, step),
        }
        for reading, step, seq in zip(readings, steps, seqs)
    ]


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise LabError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def parse_pair_request(lab: Lab, message: dict) -> tuple[str, addition.Pair, None]:
    """``(model slug, pair, None)`` of a pair request; :class:`LabError` naming the bad field
    otherwise (the pair's digits are checked when it is read)."""
    adder = lab.addition
    model = message.get("model")
    if model not in adder.models:
        raise LabError(f'"model" must be one of {list(adder.models)}, got {model!r}')
    picks, poses = message.get("picks"), message.get("poses")
    if not isinstance(picks, list) or len(picks) != 2:
        raise LabError('"picks" must be a list of 2 sample indices (-1: your digit)')
    count = len(addition.POSE_NAMES)
    if not isinstance(poses, list) or len(poses) != 2 or not all(isinstance(p, list) and len(p) == count for p in poses):
        raise LabError(f'"poses" must be a list of 2 [{", ".join(addition.POSE_NAMES)}] lists')
    picks = tuple(_whole(p, "a pick", addition.OWN, adder.pool.shape[0] - 1) for p in picks)
    poses = tuple(
        tuple(_number(v, name, *addition.POSE_RANGES[name]) for name, v in zip(addition.POSE_NAMES, pose)) for pose in poses
    )
    return model, addition.Pair(picks, poses), None


def pair_payloads(readings: list, extras: list, seqs: list) -> list[dict]:
    """The "Two digits summed" view's pictures for each reading, as the Gradio path draws them."""
    return [
        {
            "type": "pair",
            "seq": seq,
            "channels_html": addition.channels_html(reading),
            "outputs_html": addition.outputs_html(reading),
            "sum_html": addition.sum_html(reading),
        }
        for reading, seq in zip(readings, seqs)
    ]


@dataclass(frozen=True)
class ViewChannel:
    """A teaching view served over the socket while one of its sliders is dragged: how its
    requests are parsed (``(slug, request, extra)``), checked against the session's digit
    before they wait (so a bad one is answered at once), and answered, one forward pass per
    model (``answer(lab, slug, requests, own_digits, extras, seqs)`` -> payloads)."""

    parse: Callable
    check: Callable
    answer: Callable


VIEW_CHANNELS = {
    "scene": ViewChannel(
        parse_scene_request,
        lambda lab, scene, digit: lab.several.check(scene, digit),
        lambda lab, slug, scenes, digits, steps, seqs: scene_payloads(lab.several.read_many(scenes, slug, digits), steps, seqs),
    ),
    "pair": ViewChannel(
        parse_pair_request,
        lambda lab, pair, digit: lab.addition.check(pair, digit),
        lambda lab, slug, pairs, digits, extras, seqs: pair_payloads(lab.addition.read_many(pairs, slug, digits), extras, seqs),
    ),
}
VIEW_TYPES = tuple(VIEW_CHANNELS)


def parse_frame_request(lab: Lab, message: dict) -> tuple[str, Controls]:
    """``(model slug, checked controls)`` of a frame request; :class:`LabError` naming the
    bad field otherwise."""
    controls = message.get("controls", {})
    if not isinstance(controls, dict):
        raise LabError('"controls" must be an object of control values')
    unknown = sorted(set(controls) - set(CONTROL_NAMES))
    if unknown:
        raise LabError(f"unknown controls {unknown}; expected some of {list(CONTROL_NAMES)}")
    for name, value in controls.items():
        if isinstance(value, float) and not math.isfinite(value) and name in CONTROL_RANGES:
            low, high = CONTROL_RANGES[name]
            raise LabError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
    model = message.get("model")
    if model is not None and not isinstance(model, str):
        raise LabError('"model" must be a model name')
    key = lab.model_key(model)
    defaults = Controls()
    values = [controls.get(name, getattr(defaults, name)) for name in CONTROL_NAMES]
    return key, lab.controls(*values)


@dataclass(eq=False)
class _Session:
    """One connected browser: its digit, and its newest unanswered frame request."""

    socket: object  # Starlette's WebSocket: send_text for JSON, send_bytes for frames
    digit: np.ndarray | None = None
    pending: tuple | None = None  # (seq, key, controls, digit)
    # per view channel (VIEW_CHANNELS), its newest unanswered request: (seq, slug, request, extra, digit)
    pending_views: dict = field(default_factory=dict)
    closed: bool = False
    window_start: float = field(default_factory=lambda: time.monotonic() - 1.0)


class LiveHub:
    """Serves the live channel: one :class:`_Session` per socket, one batched pass per tick.

    Args:
        lab: the handlers (and through them the models) the frames come from.
        max_connections: sockets served at once; one more gets a "busy" answer.
    """

    def __init__(self, lab: Lab, max_connections: int = MAX_CONNECTIONS, max_messages_per_s: int = MAX_MESSAGES_PER_S):
        self.lab = lab
        self.max_connections = max_connections
        self.max_messages_per_s = max_messages_per_s
        self.sessions: set[_Session] = set()
        self.frames_computed = 0
        self.ticks = 0
        # One compute thread: batches are computed one after another, and torch uses the
        # cores inside each (intra-op threads) rather than batches competing for them.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stn-live")
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._lock = threading.Lock()

    # -- the socket -------------------------------------------------------------------------

    async def endpoint(self, websocket) -> None:
        """The Starlette WebSocket route: ``app.add_api_websocket_route("/live", hub.endpoint)``."""
        from starlette.websockets import WebSocketDisconnect

        await websocket.accept()
        if len(self.sessions) >= self.max_connections:
            await websocket.send_text(
                json.dumps({"type": "busy", "message": "the live view is busy: too many students at once; try again in a minute"})
            )
            await websocket.close(CLOSE_BUSY)
            return
        session = _Session(websocket)
        self.sessions.add(session)
        self._ensure_worker()
        try:
            await websocket.send_text(
                json.dumps({"type": "ready", "models": list(self.lab.service.choices), "max_message_bytes": MAX_MESSAGE_BYTES})
            )
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self.receive(session, message.get("text") if message.get("text") is not None else message.get("bytes"))
        except WebSocketDisconnect:
            pass
        finally:
            session.closed = True
            session.pending = None
            session.pending_views.clear()
            self.sessions.discard(session)

    async def receive(self, session: _Session, text) -> None:
        """Handle one message of ``session`` (exposed for tests without a server)."""
        self._ensure_worker()
        await self._throttle(session)
        seq, message = None, None
        try:
            message = parse_message(text)
            seq = message.get("seq")
            if not (seq is None or (isinstance(seq, int) and not isinstance(seq, bool))):
                seq = None
                raise LabError('"seq" must be an integer')
            if message["type"] == "digit":
                session.digit = decode_digit(message.get("digit"))
                return
            if message["type"] in VIEW_CHANNELS:
                channel = VIEW_CHANNELS[message["type"]]
                slug, request, extra = channel.parse(self.lab, message)
                channel.check(self.lab, request, session.digit)
                session.pending_views[message["type"]] = (seq, slug, request, extra, session.digit)  # replaces a stale one
                self._wake.set()
                return
            key, controls = parse_frame_request(self.lab, message)
            if session.digit is None:
                raise LabError("no digit yet: send a digit message first")
            session.pending = (seq, key, controls, session.digit)  # replaces a stale request
            self._wake.set()
        except LabError as error:
            view = message.get("type") if isinstance(message, dict) and message.get("type") in VIEW_CHANNELS else None
            await self._send(session, {"type": "error", "seq": seq, "message": str(error), **({"view": view} if view else {})})

    async def _throttle(self, session: _Session) -> None:
        """Read a socket no faster than :attr:`max_messages_per_s` on average: each message
        costs ``1 / max`` s of budget, and a client over budget waits for it (its sends
        back up in its own socket buffer)."""
        now = time.monotonic()
        interval = 1.0 / self.max_messages_per_s
        # window_start is the time at which this session's budget is next free; a burst of
        # up to one second's worth is allowed.
        session.window_start = max(session.window_start, now - 1.0) + interval
        if session.window_start > now:
            await asyncio.sleep(session.window_start - now)

    async def _send(self, session: _Session, payload: dict | bytes) -> None:
        """A dict as JSON text; bytes (a frame, :func:`frame_messages`) as a binary message."""
        if session.closed:
            return
        try:
            if isinstance(payload, bytes):
                await session.socket.send_bytes(payload)
            else:
                await session.socket.send_text(json.dumps(payload, separators=(",", ":")))
        except Exception:  # the socket went away between the check and the send
            session.closed = True

    # -- the batching worker ----------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            frames, views = [], []  # views: (session, (type, request))
            for session in list(self.sessions):
                if session.closed:
                    continue
                if session.pending is not None:
                    frames.append((session, session.pending))
                    session.pending = None
                views += [(session, item) for item in session.pending_views.items()]
                session.pending_views.clear()
            if not frames and not views:
                continue
            try:
                answers = await loop.run_in_executor(
                    self._executor, self.compute_all, [request for _, request in frames], [item for _, item in views]
                )
            except Exception:  # never let one bad batch stop the channel
                log.exception("live batch failed")
                answers = [
                    {"type": "error", "seq": request[0], "message": "the server could not compute this frame"}
                    for _, request in frames
                ] + [
                    {"type": "error", "seq": request[0], "view": kind, "message": "the server could not compute this view"}
                    for _, (kind, request) in views
                ]
            self.ticks += 1
            # One after another, not gathered: uvicorn's send only appends to the socket's
            # write buffer and never waits on the client, and a hundred tasks a tick cost
            # the event loop more than the sends themselves.
            for (session, _), answer in zip(frames + views, answers):
                await self._send(session, answer)

    def compute_all(self, frames: list[tuple], views: list[tuple] = ()) -> list[dict | bytes]:
        """One tick's answers: the frame requests', then the views' ``(type, request)``, in order."""
        answers = self.compute(frames) if frames else []
        view_answers: list[dict | None] = [None] * len(views)
        for kind in VIEW_CHANNELS:
            members = [i for i, (k, _) in enumerate(views) if k == kind]
            if members:
                for i, answer in zip(members, self.compute_views(kind, [views[i][1] for i in members])):
                    view_answers[i] = answer
        return answers + view_answers

    def compute(self, requests: list[tuple]) -> list[bytes]:
        """``(seq, key, controls, digit)`` requests -> their binary frames
        (:func:`frame_messages`), one forward pass per model."""

        def answer(key, group):
            results = self.lab.service.predict_many([r[3] for r in group], [r[2] for r in group], key, fast=True)
            return frame_messages(self.lab, key, results, [r[0] for r in group])

        return self._per_model(requests, answer)

    def compute_views(self, kind: str, requests: list[tuple]) -> list[dict]:
        """``(seq, slug, request, extra, digit)`` requests of view channel ``kind`` -> their
        payloads, one forward pass per model (each request was checked when it arrived)."""
        channel = VIEW_CHANNELS[kind]

        def answer(slug, group):
            requests_, digits, extras, seqs = ([r[i] for r in group] for i in (2, 4, 3, 0))
            return channel.answer(self.lab, slug, requests_, digits, extras, seqs)

        return self._per_model(requests, answer)

    def _per_model(self, requests: list[tuple], answer) -> list[dict]:
        """Group requests by their model (field 1), answer each group with one call of
        ``answer(model, group)``, and return the answers in the requests' order."""
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request[1], []).append(index)
        answers: list[dict | None] = [None] * len(requests)
        for model, members in groups.items():
            for index, payload in zip(members, answer(model, [requests[i] for i in members])):
                answers[index] = payload
        with self._lock:
            self.frames_computed += len(requests)
        return answers

    def stats(self) -> dict:
        return {"connections": len(self.sessions), "frames": self.frames_computed, "ticks": self.ticks}
