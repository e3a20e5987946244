"""The live channel (``stn_lab/live.py``): one WebSocket per browser, the newest frame per
client, one batched pass per tick, every input checked.

Most tests drive :class:`~stn_lab.live.LiveHub` directly: its real ``endpoint`` on a fake
socket (:class:`FakeSocket`, what Starlette's WebSocket offers: accept, receive,
send_text, close), which is fast and exact. The ``serve`` tests at the end go through the
real server (``app.launch`` on a free port) and a real WebSocket client.
"""

import asyncio
import base64
import json
import threading
import time

import numpy as np
import pytest
import torch

from stn_core.controls import CONTROL_NAMES, CONTROL_RANGES, Controls
from stn_lab.live import (
    CLOSE_BUSY,
    MAX_MESSAGE_BYTES,
    LiveHub,
    decode_digit,
    decode_message,
    encode_digit,
    frame_messages,
    frame_payloads,
)
from stn_lab.service import DEFAULT_MODEL
from tests.helpers import ROOT
from tests.live_helpers import LiveSocket, pixels

MODEL = "rts-st-cnn-affine"


# -- a browser, without a server --------------------------------------------------------------


class FakeSocket:
    """The part of Starlette's ``WebSocket`` that :meth:`LiveHub.endpoint` uses. The test
    queues what the browser sends; what the server sends is collected in ``sent``."""

    def __init__(self):
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: list[dict] = []
        self.close_code: int | None = None
        self.gone = False

    async def accept(self):
        pass

    async def receive(self) -> dict:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        if self.gone or self.close_code is not None:
            raise RuntimeError("send on a closed socket")
        self.sent.append(decode_message(text))

    async def send_bytes(self, data: bytes) -> None:
        if self.gone or self.close_code is not None:
            raise RuntimeError("send on a closed socket")
        self.sent.append(decode_message(data))

    async def close(self, code: int = 1000) -> None:
        self.close_code = code


class Browser:
    """One client of ``hub``: its socket, and the endpoint task serving it."""

    def __init__(self, hub: LiveHub):
        self.socket = FakeSocket()
        self.task = asyncio.get_running_loop().create_task(hub.endpoint(self.socket))
        self.read = 0

    def send(self, message) -> None:
        """A dict goes as JSON text; ``str`` as text; ``bytes`` as a binary frame."""
        if isinstance(message, bytes):
            self.socket.incoming.put_nowait({"type": "websocket.receive", "bytes": message})
        else:
            text = message if isinstance(message, str) else json.dumps(message)
            self.socket.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def digit(self, code: str) -> None:
        self.send({"type": "digit", "digit": code})

    def frame(self, seq: int, model: str | None = MODEL, **controls) -> None:
        self.send({"type": "frame", "seq": seq, "model": model, "controls": controls})

    async def answer(self, timeout: float = 30.0) -> dict:
        """The next message the server sent this browser."""
        deadline = time.monotonic() + timeout
        while len(self.socket.sent) <= self.read:
            if self.task.done():
                self.task.result()  # the endpoint raised: show it
                raise AssertionError(f"the endpoint ended; it sent {self.socket.sent}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer within {timeout} s; sent so far: {self.socket.sent}")
            await asyncio.sleep(0.002)
        self.read += 1
        return self.socket.sent[self.read - 1]

    async def ask(self, message) -> dict:
        self.send(message)
        return await self.answer()

    async def hello(self) -> dict:
        return await self.answer()

    def disconnect(self) -> None:
        self.socket.gone = True
        self.socket.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})

    async def closed(self, timeout: float = 10.0) -> None:
        """Wait for the endpoint to finish; fails if it raised."""
        await asyncio.wait_for(self.task, timeout)


def run(coroutine, timeout: float = 120.0):
    """Run a test's coroutine on a fresh event loop."""

    async def bounded():
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def make_hub(lab):
    """``make_hub(**options)``: a fresh :class:`LiveHub` over the untrained test models."""
    hubs = []

    def make(target_lab=lab, **options):
        hubs.append(LiveHub(target_lab, **options))
        return hubs[-1]

    yield make
    for hub in hubs:
        hub._executor.shutdown(wait=True)


@pytest.fixture(scope="module")
def codes(lab):
    """Base64 codes of the first eight sample digits, as the page sends them."""
    return [encode_digit(lab.sample_digit(i)[0]) for i in range(8)]


async def ready_browser(hub: LiveHub, code: str) -> Browser:
    browser = Browser(hub)
    assert (await browser.hello())["type"] == "ready"
    browser.digit(code)
    return browser


# -- the protocol ------------------------------------------------------------------------------


def test_a_new_socket_is_told_the_models_and_the_message_limit(make_hub, lab):
    async def scenario():
        hello = await Browser(make_hub()).hello()
        assert hello == {"type": "ready", "models": list(lab.service.choices), "max_message_bytes": MAX_MESSAGE_BYTES}
        assert MODEL in hello["models"] and "RTS · ST-CNN Aff" not in hello["models"]  # slugs, not titles

    run(scenario())


def test_a_frame_holds_what_the_browser_draws_and_is_small(make_hub, codes):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        browser.frame(7, rotation=30, scale=0.9)
        frame = await browser.answer()
        assert set(frame) == {
            "type", "seq", "model", "transform", "canvas_size", "canvas", "warped_size", "warped",
            "theta", "theta_words", "grid", "st", "cnn",
        }  # fmt: skip
        assert (frame["type"], frame["seq"], frame["model"], frame["transform"]) == ("frame", 7, MODEL, "affine")
        assert pixels(frame, "canvas").shape == (42, 42) and pixels(frame, "warped").shape == (42, 42)
        assert len(frame["theta"]) == 6 and frame["theta_words"].startswith("grid rotated ")
        grid = np.array(frame["grid"])
        assert grid.shape == (14, 2, 2)  # 7 + 7 straight lines, each by its two ends
        assert len(frame["st"]) == 10 and sum(frame["st"]) == pytest.approx(1, abs=1e-4)
        assert len(frame["cnn"]) == 10 and sum(frame["cnn"]) == pytest.approx(1, abs=1e-4)
        assert len(json.dumps(frame)) < 8000  # two small images, 20 probabilities, θ and 28 points

    run(scenario())


def test_bending_grids_come_as_polylines_and_a_model_without_baseline_has_no_cnn(make_hub, lab, codes):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        for seq, key in enumerate(["e-st-cnn-tps", "p-st-cnn-projective", "tc-st-cnn-attention"], 1):
            browser.frame(seq, key, elastic=1.0)
            frame = await browser.answer()
            assert frame["type"] == "frame" and frame["model"] == key, frame
            lines = np.array(frame["grid"])
            assert lines.shape[0] == 14 and lines.shape[1] == (2 if key.endswith("attention") else 9)
            assert (frame["cnn"] is None) == (lab.service.choices[key].cnn is None)

    run(scenario())


def test_missing_controls_take_their_defaults_and_out_of_range_ones_are_clamped(make_hub, codes):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[1])
        defaults = {name: getattr(Controls(), name) for name in CONTROL_NAMES}
        beyond = dict(rotation=720, scale=99, shift_x=-5, shift_y=5, shear=3, perspective=9, elastic=9, seed=-4)
        at_bounds = dict(rotation=180, scale=2, shift_x=-1, shift_y=1, shear=1, perspective=2, elastic=3, seed=0)
        requests = {
            1: {"type": "frame", "seq": 1},  # no model and no controls: the default model and controls
            2: {"type": "frame", "seq": 2, "model": DEFAULT_MODEL, "controls": defaults},
            3: {"type": "frame", "seq": 3, "model": DEFAULT_MODEL, "controls": beyond},
            4: {"type": "frame", "seq": 4, "model": DEFAULT_MODEL, "controls": at_bounds},
        }
        answers = {seq: await browser.ask(request) for seq, request in requests.items()}
        assert all(answer["type"] == "frame" for answer in answers.values()), answers
        assert answers[1]["model"] == DEFAULT_MODEL
        without_seq = {seq: {k: v for k, v in answer.items() if k != "seq"} for seq, answer in answers.items()}
        assert without_seq[1] == without_seq[2]
        assert without_seq[3] == without_seq[4]

    run(scenario())


def test_a_message_of_exactly_the_size_limit_is_served(make_hub, codes):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[1])
        text = _frame_text(pad="")
        text = text[:-1] + ', "pad2": "' + "x" * (MAX_MESSAGE_BYTES - len(text) - 12) + '"}'
        assert len(text.encode()) == MAX_MESSAGE_BYTES
        assert (await browser.ask(text))["type"] == "frame"
        assert (await browser.ask(text[:-2] + 'x"}'))["type"] == "error"  # one byte more

    run(scenario())


# -- bad messages: an error on that socket, and the socket keeps serving -------------------------


def _frame_text(**fields) -> str:
    """A good frame request, as text, with ``fields`` replaced."""
    return json.dumps({"type": "frame", "seq": 5, "model": MODEL, "controls": {"rotation": 10}, **fields})


def _raw_control(literal: str) -> str:
    """A frame request whose rotation is ``literal`` as written (NaN, 1e999, ...)."""
    return '{"type": "frame", "seq": 5, "model": "%s", "controls": {"rotation": %s}}' % (MODEL, literal)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


BAD_MESSAGES = {
    "malformed JSON": '{"type": "frame", ',
    "empty text": "",
    "a JSON array": "[1, 2]",
    "JSON null": "null",
    "a JSON number": "42",
    "a JSON string": '"frame"',
    "no type": "{}",
    "an unknown type": '{"type": "hello"}',
    "a binary frame": b'{"type": "frame", "seq": 5}',
    "oversized": _frame_text(pad="x" * MAX_MESSAGE_BYTES),
    "oversized in UTF-8 bytes, not in characters": json.dumps(
        {"type": "frame", "seq": 5, "model": MODEL, "pad": "€" * (MAX_MESSAGE_BYTES // 3 + 10)}, ensure_ascii=False
    ),
    "NaN": _raw_control("NaN"),
    "Infinity": _raw_control("Infinity"),
    "-Infinity": _raw_control("-Infinity"),
    "a number past float range (1e999)": _raw_control("1e999"),
    "an integer past float range": _raw_control("1" + "0" * 400),
    "deeply nested JSON": '{"type": "frame", "seq": 5, "controls": ' + "[" * 1500 + "]" * 1500 + "}",
    "an unknown model": _frame_text(model="resnet"),
    "a model's display title instead of its slug": _frame_text(model="RTS · ST-CNN Aff"),
    "a model that is not a string": _frame_text(model=5),
    "an unknown control name": _frame_text(controls={"rotaton": 30}),
    "controls as a list": _frame_text(controls=[30, 1.0]),
    "controls as a string": _frame_text(controls="rotation=30"),
    "controls as a number": _frame_text(controls=30),
    "controls as null": _frame_text(controls=None),
    "a control as a string": _frame_text(controls={"rotation": "left"}),
    "a control as null": _frame_text(controls={"scale": None}),
    "a control as a list": _frame_text(controls={"shift_x": [1]}),
    "a control as an object": _frame_text(controls={"seed": {"a": 1}}),
    "clutter that is not a boolean": _frame_text(controls={"clutter": "yes"}),
    "seq as a string": _frame_text(seq="5"),
    "seq as a fraction": _frame_text(seq=1.5),
    "seq as a boolean": _frame_text(seq=True),
    "seq as a list": _frame_text(seq=[5]),
    "a digit that is not base64": json.dumps({"type": "digit", "digit": "!!not base64!!"}),
    "a digit in URL-safe base64": json.dumps(
        {"type": "digit", "digit": _b64(b"\xfb\xff" * 392).replace("+", "-").replace("/", "_")}
    ),
    "a digit one byte short": json.dumps({"type": "digit", "digit": _b64(bytes(783))}),
    "a digit one byte long": json.dumps({"type": "digit", "digit": _b64(bytes(785))}),
    "an empty digit": json.dumps({"type": "digit", "digit": ""}),
    "a digit of 28x28 numbers, not bytes": json.dumps({"type": "digit", "digit": [[0] * 28] * 2}),
    "a digit that is a number": json.dumps({"type": "digit", "digit": 5}),
    "a digit message without a digit": json.dumps({"type": "digit"}),
    "a digit far too long": json.dumps({"type": "digit", "digit": "A" * 3000}),
}


@pytest.mark.parametrize("bad", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_a_bad_message_gets_an_error_and_the_socket_keeps_serving(make_hub, codes, bad):
    async def scenario():
        hub = make_hub()
        browser = await ready_browser(hub, codes[2])
        error = await browser.ask(bad)
        assert error["type"] == "error" and isinstance(error["message"], str) and error["message"], error
        assert "Traceback" not in error["message"] and "/work" not in error["message"]
        browser.frame(6, rotation=20)
        frame = await browser.answer()
        assert (frame["type"], frame["seq"]) == ("frame", 6), frame
        assert not browser.task.done() and len(hub.sessions) == 1

    run(scenario())


BAD_VALUES = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity", "1e999": "1e999", "string": '"abc"'}
BAD_VALUES.update({"null": "null", "list": "[1]", "object": '{"a": 1}'})
NUMERIC_CONTROLS = [name for name in CONTROL_NAMES if name != "clutter"]


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_bad_control_value_is_answered_with_the_controls_name_and_range(make_hub, codes, bad):
    """Every numeric control sent NaN, +-Infinity, a number past float range or a wrong type
    (as a script writes it, raw): the error names the control and its range."""

    async def scenario():
        browser = await ready_browser(make_hub(), codes[3])
        for seq, name in enumerate(NUMERIC_CONTROLS, 1):
            error = await browser.ask('{"type": "frame", "seq": %d, "controls": {"%s": %s}}' % (seq, name, bad))
            low, high = CONTROL_RANGES[name]
            assert error["type"] == "error" and error["seq"] == seq, error
            assert error["message"].startswith(f"{name} must be a "), error["message"]
            assert f" in [{low}, {high}]" in error["message"], error["message"]

    run(scenario())


def test_an_error_carries_the_seq_of_the_request_it_answers(make_hub, codes):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        assert (await browser.ask(_frame_text(seq=41, model="resnet")))["seq"] == 41
        assert (await browser.ask(_frame_text(seq="41")))["seq"] is None  # a bad seq is not echoed
        answer = await browser.ask(_frame_text(seq=42, model="nope"))
        assert answer["message"].startswith("unknown model 'nope'; available: ") and MODEL in answer["message"]

    run(scenario())


def test_a_frame_before_any_digit_gets_an_error_then_the_socket_serves(make_hub, codes):
    async def scenario():
        browser = Browser(make_hub())
        await browser.hello()
        browser.frame(1)
        error = await browser.answer()
        assert error == {"type": "error", "seq": 1, "message": "no digit yet: send a digit message first"}
        browser.digit(codes[0])
        browser.frame(2)
        assert (await browser.answer())["type"] == "frame"

    run(scenario())


def test_a_bad_digit_keeps_the_digit_before_it(make_hub, codes):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[4])
        browser.frame(1)
        before = await browser.answer()
        assert (await browser.ask({"type": "digit", "digit": "!!"}))["type"] == "error"
        browser.frame(2)
        after = await browser.answer()
        assert after["canvas"] == before["canvas"] and after["st"] == before["st"]

    run(scenario())


def test_digits_travel_as_784_bytes_and_anything_else_is_refused():
    digit = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.float32) / 255
    code = encode_digit(digit)
    assert len(base64.b64decode(code)) == 784 and np.array_equal(decode_digit(code), digit)
    with pytest.raises(ValueError, match=r"\(28, 28\)"):
        encode_digit(np.zeros((27, 28)))
    from stn_lab.lab import LabError

    for bad in (None, 5, "", "!!", _b64(bytes(783)), "A" * 5000):
        with pytest.raises(LabError, match="digit"):
            decode_digit(bad)


# -- load: floods, many sockets, vanishing clients --------------------------------------------


def test_a_flooding_client_is_read_no_faster_than_the_limit(make_hub, codes):
    """A client sending hundreds of messages as fast as it can is read at about
    ``max_messages_per_s``: over 2 s after its first second, at most 20 % more than the limit
    allows (every message here gets an error answer, so answers count the messages read)."""
    limit = 40

    async def scenario():
        browser = await ready_browser(make_hub(max_messages_per_s=limit), codes[0])
        for _ in range(600):
            browser.send("{}")
        started = time.monotonic()
        counts = {}
        for at in (1.0, 3.0):
            await asyncio.sleep(started + at - time.monotonic())
            counts[at] = len(browser.socket.sent)
        read = counts[3.0] - counts[1.0]
        assert read <= 1.2 * limit * 2.0, f"read {read} messages in 2 s with a limit of {limit}/s"
        assert read >= 0.3 * limit * 2.0, f"read only {read} messages in 2 s: throttled to a stop"
        assert counts[3.0] < 600  # the rest waits in the client's queue (back-pressure)

    run(scenario(), timeout=60)


def test_other_clients_are_served_while_one_floods(make_hub, codes):
    async def scenario():
        hub = make_hub(max_messages_per_s=20)
        flooder = await ready_browser(hub, codes[0])
        for seq in range(800):
            flooder.frame(seq, rotation=seq % 360 - 180)
        others = [await ready_browser(hub, code) for code in codes[1:4]]
        started = time.monotonic()
        for round_ in range(5):
            for seq, browser in enumerate(others):
                browser.frame(100 * round_ + seq, rotation=10 * round_)
            for seq, browser in enumerate(others):
                answer = await browser.answer(timeout=10)
                assert (answer["type"], answer["seq"]) == ("frame", 100 * round_ + seq)
        assert time.monotonic() - started < 10
        assert len(flooder.socket.sent) < 200  # the flooder is still being read slowly

    run(scenario())


def test_past_max_connections_a_socket_is_told_busy_and_closed_with_1013(make_hub, codes):
    async def scenario():
        hub = make_hub(max_connections=2)
        first, second = [await ready_browser(hub, code) for code in codes[:2]]
        third = Browser(hub)
        busy = await third.hello()
        assert busy["type"] == "busy" and "busy" in busy["message"]
        await third.closed()
        assert third.socket.close_code == CLOSE_BUSY == 1013
        assert len(hub.sessions) == 2
        first.frame(1)
        assert (await first.answer())["type"] == "frame"  # the two admitted are served
        second.disconnect()
        await second.closed()
        fourth = await ready_browser(hub, codes[3])  # a freed place is taken again
        fourth.frame(2)
        assert (await fourth.answer())["type"] == "frame"

    run(scenario())


def test_a_disconnect_in_the_middle_of_a_frame_leaks_nothing(make_hub, codes, caplog):
    """The browser goes while its frame is being computed: its session is gone, nothing is
    sent to it, nothing is logged, and the worker goes on serving the others."""

    async def scenario():
        hub = make_hub()
        computing, release = threading.Event(), threading.Event()
        compute = hub.compute

        def slow_compute(requests):
            computing.set()
            release.wait(10)
            return compute(requests)

        hub.compute = slow_compute
        leaving = await ready_browser(hub, codes[0])
        staying = await ready_browser(hub, codes[1])
        leaving.frame(1)
        while not computing.is_set():
            await asyncio.sleep(0.002)
        leaving.disconnect()
        await leaving.closed()  # the endpoint ended without an exception
        release.set()
        assert [s for s in hub.sessions if s.socket is leaving.socket] == []
        staying.frame(2)
        assert (await staying.answer())["type"] == "frame"
        assert hub.frames_computed == 2 and not hub._worker.done()
        assert [m for m in leaving.socket.sent if m["type"] == "frame"] == []
        staying.disconnect()
        await staying.closed()
        assert hub.sessions == set() and hub.stats()["connections"] == 0

    with caplog.at_level("WARNING"):
        run(scenario())
    assert caplog.records == []


def test_many_clients_that_vanish_leave_no_session_behind(make_hub, codes):
    async def scenario():
        hub = make_hub()
        for round_ in range(4):
            browsers = [await ready_browser(hub, codes[i % len(codes)]) for i in range(50)]
            for seq, browser in enumerate(browsers):
                browser.frame(seq, rotation=seq)
                if seq % 2:
                    browser.disconnect()  # half go at once, their frame pending
            await asyncio.sleep(0)
            for browser in browsers:
                browser.disconnect()
            await asyncio.gather(*(browser.closed() for browser in browsers))
            assert hub.sessions == set(), round_
        survivor = await ready_browser(hub, codes[0])
        survivor.frame(1)
        assert (await survivor.answer())["type"] == "frame" and not hub._worker.done()

    run(scenario())


def test_a_socket_that_fails_on_send_does_not_stop_the_others(make_hub, codes):
    async def scenario():
        hub = make_hub()
        broken = await ready_browser(hub, codes[0])
        fine = await ready_browser(hub, codes[1])
        broken.socket.gone = True  # every send now raises, as on a socket torn down mid-write
        broken.frame(1)
        fine.frame(2)
        assert (await fine.answer())["seq"] == 2
        fine.frame(3)
        assert (await fine.answer())["seq"] == 3 and not hub._worker.done()

    run(scenario())


def test_an_internal_error_is_answered_without_trace_or_path_and_the_channel_recovers(make_hub, codes, monkeypatch, caplog):
    async def scenario():
        hub = make_hub()
        predict_many = hub.lab.service.predict_many
        calls = []

        def broken(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("model file missing at /work/secret/path")
            return predict_many(*args, **kwargs)

        monkeypatch.setattr(hub.lab.service, "predict_many", broken)
        browser = await ready_browser(hub, codes[0])
        browser.frame(1)
        error = await browser.answer()
        assert error == {"type": "error", "seq": 1, "message": "the server could not compute this frame"}
        browser.frame(2)
        assert (await browser.answer())["type"] == "frame"

    with caplog.at_level("ERROR"):
        run(scenario())
    assert "live batch failed" in caplog.text  # logged on the server, not sent to the browser


# -- the newest frame only; one batch for many clients -----------------------------------------


def test_only_the_newest_frame_per_client_is_computed(make_hub, codes):
    """50 requests sent without waiting for answers (each read by the server as it comes,
    while the worker computes an earlier one): far fewer than 50 are computed, and the last
    answer is the last request's."""

    async def scenario():
        hub = make_hub()
        browser = await ready_browser(hub, codes[0])
        for seq in range(1, 51):
            browser.frame(seq, rotation=seq)
            for _ in range(3):  # let the endpoint read it, and the worker start on it
                await asyncio.sleep(0)
        answers = [await browser.answer()]
        while answers[-1]["seq"] != 50:
            answers.append(await browser.answer())
        await asyncio.sleep(0.3)
        assert len(browser.socket.sent) == browser.read  # nothing after the newest
        seqs = [answer["seq"] for answer in answers]
        assert seqs == sorted(seqs) and seqs[-1] == 50
        assert all(answer["type"] == "frame" for answer in answers)
        assert hub.frames_computed == len(answers) <= 10, seqs

    run(scenario())


def test_frames_of_several_clients_are_computed_in_one_batch(make_hub, codes):
    async def scenario():
        hub = make_hub()
        browsers = [await ready_browser(hub, code) for code in codes]
        models = [MODEL, "tc-st-cnn-attention", MODEL, "e-st-cnn-tps", MODEL, MODEL, "p-st-cnn-projective", MODEL]
        for round_ in range(3):
            for i, (browser, key) in enumerate(zip(browsers, models)):
                browser.frame(10 * round_ + i, key, rotation=5 * i)
            for i, (browser, key) in enumerate(zip(browsers, models)):
                answer = await browser.answer()
                assert (answer["type"], answer["seq"], answer["model"]) == ("frame", 10 * round_ + i, key)
        assert hub.frames_computed == 24
        assert hub.ticks <= 6 < hub.frames_computed  # requests that arrive together share a tick

    run(scenario())


def test_a_batch_gives_each_request_what_it_gets_alone(make_hub, lab, codes):
    hub = make_hub()
    requests = [
        (1, MODEL, lab.controls(rotation=30), decode_digit(codes[0])),
        (2, "tc-st-cnn-attention", lab.controls(clutter=True, seed=3), decode_digit(codes[1])),
        (3, MODEL, lab.controls(elastic=1.0, seed=2), decode_digit(codes[2])),  # another distortion shape
        (4, "p-st-cnn-projective", lab.controls(perspective=1.0), decode_digit(codes[3])),
    ]
    together = [decode_message(message) for message in hub.compute(requests)]
    for request, frame in zip(requests, together):
        (alone,) = map(decode_message, hub.compute([request]))
        assert frame["seq"] == request[0]
        assert np.abs(pixels(frame, "canvas").astype(int) - pixels(alone, "canvas")).max() <= 1
        assert frame["theta"] == pytest.approx(alone["theta"], abs=1e-5)
        assert frame["st"] == pytest.approx(alone["st"], abs=1e-5)
        assert np.abs(pixels(frame, "warped").astype(int) - pixels(alone, "warped")).max() <= 1


def test_a_binary_frame_reads_back_as_exactly_the_json_payload(lab, codes):
    """The socket's binary frames carry what ``/live_frame``'s JSON carries, to the digit:
    pictures, θ, probabilities, and the grid's 4 decimals (through float32)."""
    for key, controls in [(MODEL, lab.controls(rotation=-77, scale=1.2)), ("e-st-cnn-tps", lab.controls(elastic=1.0, seed=2))]:
        results = lab.service.predict_many([decode_digit(codes[0])], [controls], key, fast=True)
        (message,) = frame_messages(lab, key, results, [9])
        (payload,) = frame_payloads(lab, key, results, [9])
        assert isinstance(message, bytes) and len(message) < 0.8 * len(json.dumps(payload))
        assert decode_message(message) == payload
        header = decode_message(message, header_only=True)
        assert header["grid_shape"] == [14, len(payload["grid"][0])] and header["seq"] == 9
    with pytest.raises(ValueError, match="bytes, got"):
        decode_message(message[:-1])


# -- the frames are the library's own computation ----------------------------------------------

LIBRARY_CASES = [
    ("rts-st-cnn-affine", dict(rotation=30.0, scale=0.9, shift_x=0.1, shift_y=-0.05)),
    ("rts-st-cnn-affine", dict(rotation=-120.0, scale=1.3, shear=0.3, perspective=0.8, elastic=1.2, seed=5)),
    ("tc-st-cnn-attention", dict(clutter=True, shift_x=-0.4, shift_y=0.3, seed=3)),
    ("p-st-cnn-projective", dict(perspective=1.0, scale=0.75, seed=4)),
    ("e-st-cnn-tps", dict(elastic=1.0, seed=2)),
]


def _library_frame(key: str, code: str, controls: dict, pool: torch.Tensor) -> dict:
    """The same frame, computed by ``stn_core`` alone from the shipped files."""
    import stn_core
    from stn_core.distortions import distort
    from stn_core.fast import fast_copy

    # The live path runs the stn_core.fast copies of the shipped models.
    model = fast_copy(stn_core.load(ROOT / "pretrained" / f"{key}.safetensors"))
    cnn = fast_copy(stn_core.load(ROOT / "pretrained" / f"{key.split('-st-')[0]}-cnn.safetensors"))
    digit = torch.from_numpy(np.frombuffer(base64.b64decode(code), np.uint8).astype(np.float32) / 255.0).reshape(1, 1, 28, 28)
    distortion = Controls(**controls).checked().distortion(model.config.canvas_size, pool.shape[0])
    canvas = distort(digit, distortion, pool=pool)
    with torch.inference_mode():
        details = model.forward_details(canvas)
        cnn_probs = cnn(canvas).softmax(1)[0]
    transform = model.model.spatial_transformer.transform
    return {
        "canvas": canvas[0, 0].numpy(),
        "warped": details.warped[0, 0].numpy(),
        "theta": details.theta[0].double(),
        "st": details.logits.softmax(1)[0].numpy(),
        "cnn": cnn_probs.numpy(),
        "transform": transform,
    }


def _quantised(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def test_live_frames_are_the_librarys_own_computation(shipped_lab, make_hub):
    """Five clients on five shipped models (every transform, clutter, perspective, elastic),
    computed in one tick: each frame equals ``stn_core`` run by hand on the same digit and
    controls (probabilities to 1e-4, θ to 1e-5, pictures after uint8 quantisation to ±1, the
    grid to the lattice mapped by the model's own transform)."""
    from stn_core.mnist import load_sample

    images, _, _ = load_sample()
    pool = images.unsqueeze(1).float().div(255.0)
    codes = [encode_digit(shipped_lab.sample_digit(i)[0]) for i in (0, 4, 7, 11, 18)]

    async def scenario():
        hub = make_hub(shipped_lab)
        browsers = [await ready_browser(hub, code) for code in codes]
        for seq, (browser, (key, controls)) in enumerate(zip(browsers, LIBRARY_CASES)):
            browser.frame(seq, key, **controls)
        frames = [await browser.answer() for browser in browsers]
        return hub, frames

    hub, frames = run(scenario())
    assert hub.ticks == 1
    for code, frame, (key, controls) in zip(codes, frames, LIBRARY_CASES):
        expected = _library_frame(key, code, controls, pool)
        assert frame["type"] == "frame" and frame["model"] == key, frame
        assert frame["transform"] == expected["transform"].name
        assert np.abs(pixels(frame, "canvas").astype(int) - _quantised(expected["canvas"])).max() <= 1, key
        assert np.abs(pixels(frame, "warped").astype(int) - _quantised(expected["warped"])).max() <= 1, key
        assert np.allclose(frame["theta"], expected["theta"].numpy(), atol=1e-5), key
        assert np.allclose(frame["st"], expected["st"], atol=1e-4) and np.allclose(frame["cnn"], expected["cnn"], atol=1e-4)
        # The grid: the output lattice's lines (7 per direction) mapped by T_theta.
        grid = np.array(frame["grid"])
        lines, samples = grid.shape[0] // 2, grid.shape[1]
        ticks, along = torch.linspace(-1, 1, lines, dtype=torch.float64), torch.linspace(-1, 1, samples, dtype=torch.float64)
        level, position = torch.meshgrid(ticks, along, indexing="ij")
        lattice = torch.cat([torch.stack([position, level], -1), torch.stack([level, position], -1)]).reshape(-1, 2)
        mapped = expected["transform"].map_points(expected["theta"].reshape(1, -1), lattice)[0].reshape(grid.shape)
        assert np.allclose(grid, mapped.numpy(), atol=2e-4), key
        assert int(np.argmax(frame["st"])) == int(np.argmax(expected["st"]))


# -- through the real server -------------------------------------------------------------------


@pytest.fixture
def live_server(served_app):
    """The served app; its hub's limits are restored after each test."""
    hub = served_app.hub
    saved = (hub.max_connections, hub.max_messages_per_s)
    yield served_app
    hub.max_connections, hub.max_messages_per_s = saved


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


REAL_BAD_MESSAGES = {
    "malformed JSON": "{not json",
    "a binary frame": b"\x00\x01binary",
    "64 KiB of text": "x" * (64 * 1024),
    "NaN": _raw_control("NaN"),
    "-Infinity": _raw_control("-Infinity"),
    "an integer past float range": _raw_control("1" + "0" * 400),
    "deeply nested JSON": '{"type": "frame", "controls": ' + "[" * 1500 + "]" * 1500 + "}",
    "an unknown model": _frame_text(model="resnet"),
    "an unknown control name": _frame_text(controls={"rotaton": 3}),
    "controls as a list": _frame_text(controls=[3]),
    "a bad seq": _frame_text(seq="x"),
    "a digit that is not base64": json.dumps({"type": "digit", "digit": "!!"}),
    "a digit of 700 bytes": json.dumps({"type": "digit", "digit": _b64(bytes(700))}),
}


@pytest.mark.serve
@pytest.mark.parametrize("bad", REAL_BAD_MESSAGES.values(), ids=REAL_BAD_MESSAGES.keys())
def test_over_a_real_socket_a_bad_message_gets_an_error_and_the_socket_keeps_serving(live_server, codes, bad):
    from websockets.exceptions import ConnectionClosed

    with LiveSocket(live_server.url) as socket:
        assert socket.hello["type"] == "ready"
        socket.digit(codes[0])
        try:
            answer = socket.ask(bad)
        except ConnectionClosed as closed:
            pytest.fail(f"the server closed the socket ({closed}) instead of answering an error")
        assert answer["type"] == "error", answer
        assert socket.frame(2, MODEL, rotation=12)["type"] == "frame"
    with LiveSocket(live_server.url) as again:  # and the server takes new sockets
        assert again.hello["type"] == "ready"


@pytest.mark.serve
def test_over_a_real_socket_frames_are_binary_and_uncompressed(live_server, codes):
    """The client offers permessage-deflate, as browsers do; ``app.launch`` declines it, and
    a frame arrives as one binary message that reads back as a whole frame."""
    with LiveSocket(live_server.url) as socket:
        assert socket.socket.request.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
        assert socket.socket.response.headers.get("Sec-WebSocket-Extensions") is None
        socket.digit(codes[0])
        socket.send({"type": "frame", "seq": 1, "model": MODEL, "controls": {"rotation": 40}})
        raw = socket.socket.recv(timeout=30)
        assert isinstance(raw, bytes)
        frame = decode_message(raw)
        assert frame["seq"] == 1 and pixels(frame, "canvas").shape == (42, 42) and len(frame["grid"]) == 14


@pytest.mark.serve
def test_over_a_real_socket_a_frame_before_any_digit_is_an_error(live_server, codes):
    with LiveSocket(live_server.url) as socket:
        assert socket.frame(1, MODEL)["message"] == "no digit yet: send a digit message first"
        socket.digit(codes[0])
        assert socket.frame(2, MODEL)["type"] == "frame"


@pytest.mark.serve
def test_past_max_connections_the_server_answers_busy_and_closes_with_1013(live_server, codes):
    from websockets.exceptions import ConnectionClosed

    hub = live_server.hub
    assert _wait_for(lambda: not hub.sessions)
    hub.max_connections = 2
    first, second = LiveSocket(live_server.url), LiveSocket(live_server.url)
    try:
        assert first.hello["type"] == second.hello["type"] == "ready"
        third = LiveSocket(live_server.url)
        assert third.hello["type"] == "busy" and "busy" in third.hello["message"]
        with pytest.raises(ConnectionClosed) as closed:
            third.receive(timeout=10)
        assert closed.value.rcvd.code == CLOSE_BUSY == 1013
        first.digit(codes[0])
        assert first.frame(1, MODEL)["type"] == "frame"  # the admitted ones are served
        second.close()
        assert _wait_for(lambda: len(hub.sessions) == 1)
        with LiveSocket(live_server.url) as fourth:
            assert fourth.hello["type"] == "ready"
    finally:
        first.close()
        second.close()


@pytest.mark.serve
def test_over_a_real_socket_clients_vanishing_mid_frame_leave_no_session(live_server, codes):
    hub = live_server.hub
    assert _wait_for(lambda: not hub.sessions)
    for i in range(30):
        socket = LiveSocket(live_server.url)
        socket.digit(codes[i % len(codes)])
        socket.send({"type": "frame", "seq": 1, "model": MODEL, "controls": {"rotation": i}})
        if i % 3 == 0:
            socket.drop()  # the TCP connection goes, without a closing handshake
        else:
            socket.close()
    assert _wait_for(lambda: not hub.sessions), hub.stats()
    with LiveSocket(live_server.url) as survivor:
        survivor.digit(codes[0])
        assert survivor.frame(1, MODEL)["type"] == "frame"
    assert not hub._worker.done()


@pytest.mark.serve
def test_over_a_real_socket_only_the_newest_frame_is_computed(live_server, codes):
    hub = live_server.hub
    with LiveSocket(live_server.url) as socket:
        socket.digit(codes[1])
        before = hub.frames_computed
        for seq in range(1, 51):
            socket.send({"type": "frame", "seq": seq, "model": MODEL, "controls": {"rotation": seq}})
        answers = [socket.receive()]
        while answers[-1]["seq"] != 50:
            answers.append(socket.receive())
        with pytest.raises(TimeoutError):
            socket.receive(timeout=0.5)  # nothing comes after the newest
    seqs = [answer["seq"] for answer in answers]
    assert seqs == sorted(seqs) and all(answer["type"] == "frame" for answer in answers)
    assert hub.frames_computed - before == len(answers) < 25, seqs


@pytest.mark.serve
def test_over_real_sockets_concurrent_clients_share_batches(live_server, codes):
    hub = live_server.hub
    ticks, frames = hub.ticks, hub.frames_computed
    errors = []

    def client(index):
        try:
            with LiveSocket(live_server.url) as socket:
                socket.digit(codes[index % len(codes)])
                for seq in range(1, 16):
                    answer = socket.frame(seq, MODEL, rotation=seq * 10 - 80)
                    if answer["type"] != "frame":
                        errors.append(answer)
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    computed, passes = hub.frames_computed - frames, hub.ticks - ticks
    assert computed == 12 * 15 and passes < computed, (passes, computed)


@pytest.mark.serve
def test_a_flooding_real_client_does_not_starve_the_others(live_server, codes):
    hub = live_server.hub
    hub.max_messages_per_s = 50
    stop = threading.Event()

    def flood():
        socket = LiveSocket(live_server.url)
        socket.digit(codes[0])
        seq = 0
        while not stop.is_set() and seq < 1000:
            seq += 1
            socket.send({"type": "frame", "seq": seq, "model": MODEL, "controls": {"rotation": seq % 360 - 180}})
        stop.wait(30)
        socket.drop()

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        time.sleep(0.5)
        with LiveSocket(live_server.url) as socket:
            socket.digit(codes[1])
            latencies = []
            for seq in range(1, 21):
                started = time.perf_counter()
                assert socket.frame(seq, MODEL, rotation=seq)["type"] == "frame"
                latencies.append(time.perf_counter() - started)
        assert sorted(latencies)[len(latencies) // 2] < 1.0, latencies
    finally:
        stop.set()
        flooder.join(30)


@pytest.mark.serve
def test_live_frame_endpoint_returns_the_sockets_payload(live_server, codes):
    """The fallback path (``/live_frame``, through Gradio's queue) and the socket give the
    same frame for the same inputs, and the same error for the same mistake."""
    from tests.helpers import Caller

    caller = Caller(live_server.url)
    cases = [
        (codes[0], MODEL, {"rotation": 30, "scale": 0.9}),
        (codes[1], "tc-st-cnn-attention", {"clutter": True, "seed": 3, "shift_x": 0.3}),
        (codes[2], "e-st-cnn-tps", {"elastic": 1.5, "seed": 7}),
        (codes[3], "", {}),  # the default model, default controls
    ]
    try:
        with LiveSocket(live_server.url) as socket:
            for seq, (code, key, controls) in enumerate(cases, 1):
                socket.digit(code)
                over_socket = socket.frame(seq, key or None, **controls)
                (over_http,) = caller.call("live_frame", [code, key, json.dumps(controls)])
                assert over_socket["type"] == "frame" and over_socket["seq"] == seq
                assert over_http == {**over_socket, "seq": None}
            for key, controls in [("resnet", {}), (MODEL, {"rotaton": 1}), (MODEL, {"scale": "big"})]:
                over_socket = socket.frame(99, key, **controls)
                (over_http,) = caller.call("live_frame", [codes[0], key, json.dumps(controls)])
                assert over_socket["type"] == over_http["type"] == "error"
                assert over_http == {"type": "error", "message": over_socket["message"]}
        for bad in (["!!", MODEL, "{}"], [codes[0], MODEL, "not json"], [codes[0], MODEL, "[1]"], [_b64(bytes(9)), "", ""]):
            (answer,) = caller.call("live_frame", bad)
            assert answer["type"] == "error" and set(answer) == {"type", "message"}, answer
    finally:
        caller.close()


# -- "Several digits" scenes on the same channel ------------------------------------------------

SCENE_MODEL = "sequence-glimpse-rnn"


def _scene(seq: int, **fields) -> dict:
    message = {"type": "scene", "seq": seq, "model": SCENE_MODEL, "picks": [5, 6, 7]}
    message |= {"places": [[0, 10], [36, 40], [72, 20]], "clutter_seed": 3, "step": 3}
    return message | fields


def test_a_scene_is_answered_with_the_views_pictures_as_the_gradio_path_draws_them(make_hub, lab, codes):
    from stn_lab.several import Scene, canvas_html, glimpses_html, readout_html

    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        answer = await browser.ask(_scene(4, step=2))
        reading = lab.several.read(Scene((5, 6, 7), ((0, 10), (36, 40), (72, 20)), 3), SCENE_MODEL)
        assert answer == {
            "type": "scene",
            "seq": 4,
            "canvas_html": canvas_html(reading, 2),
            "glimpses_html": glimpses_html(reading, 2),
            "readout_html": readout_html(reading, 2),
        }
        # a pick of -1 is this socket's digit
        own = await browser.ask(_scene(5, picks=[-1, 6, 7]))
        expected = lab.several.read(Scene((-1, 6, 7), ((0, 10), (36, 40), (72, 20)), 3), SCENE_MODEL, decode_digit(codes[0]))
        assert own["canvas_html"] == canvas_html(expected, 3)

    run(scenario())


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model": "rts-st-cnn-affine"}, '"model" must be one of'),
        ({"picks": [5, 6]}, '"picks" must be a list of 3'),
        ({"picks": [5, 6, 1000]}, "a pick must be a whole number from -1 to 999, got 1000"),
        ({"places": [[0, 0], [0, 0], [73, 0]]}, "x must be a whole number from 0 to 72, got 73"),
        ({"places": [[0, 0], [0, 0], [0.5, 0]]}, "x must be a whole number from 0 to 72, got 0.5"),
        ({"places": "left"}, '"places" must be a list of 3 [x, y] pairs'),
        ({"clutter_seed": -1}, '"clutter_seed" must be a whole number'),
        ({"step": 4}, '"step" must be a whole number from 1 to 3, got 4'),
        ({"step": True}, '"step" must be a whole number from 1 to 3, got True'),
    ],
)
def test_a_bad_scene_gets_an_error_naming_the_field_and_the_socket_keeps_serving(make_hub, codes, fields, message):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        error = await browser.ask(_scene(9, **fields))
        assert error["type"] == "error" and error["seq"] == 9 and error["view"] == "scene"
        assert message in error["message"]
        assert (await browser.ask(_scene(10)))["type"] == "scene"

    run(scenario())


def test_a_scene_with_your_digit_before_any_digit_is_refused(make_hub):
    async def scenario():
        browser = Browser(make_hub())
        await browser.hello()
        error = await browser.ask(_scene(1, picks=[-1, 6, 7]))
        assert error["type"] == "error" and "no digit of yours yet" in error["message"]

    run(scenario())


def test_scenes_of_several_clients_share_one_pass_and_only_the_newest_is_computed(make_hub, codes):
    async def scenario():
        hub = make_hub()
        browsers = [await ready_browser(hub, code) for code in codes[:4]]
        for browser in browsers:  # each sends three before the worker runs: only the third counts
            for seq in (1, 2, 3):
                browser.send(_scene(seq, places=[[seq, 0], [36, 0], [72, 0]]))
        answers = [await browser.answer() for browser in browsers]
        assert [a["seq"] for a in answers] == [3, 3, 3, 3]
        assert hub.frames_computed == 4 and hub.ticks <= 2

    run(scenario())


# -- "Two digits summed" pairs on the same channel ----------------------------------------------

PAIR_MODEL = "addition-2st-fcn-sum"


def _pair(seq: int, **fields) -> dict:
    message = {"type": "pair", "seq": seq, "model": PAIR_MODEL, "picks": [5, 6]}
    message |= {"poses": [[10, 0.9, -0.5, 0.25], [-20, 1.1, 0.5, 0]]}
    return message | fields


def test_a_pair_is_answered_with_the_views_pictures_as_the_gradio_path_draws_them(make_hub, lab, codes):
    from stn_lab.addition import Pair, channels_html, outputs_html, sum_html

    poses = ((10.0, 0.9, -0.5, 0.25), (-20.0, 1.1, 0.5, 0.0))

    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        answer = await browser.ask(_pair(4))
        reading = lab.addition.read(Pair((5, 6), poses), PAIR_MODEL)
        assert answer == {
            "type": "pair",
            "seq": 4,
            "channels_html": channels_html(reading),
            "outputs_html": outputs_html(reading),
            "sum_html": sum_html(reading),
        }
        own = await browser.ask(_pair(5, picks=[6, -1]))  # a pick of -1 is this socket's digit
        expected = lab.addition.read(Pair((6, -1), poses), PAIR_MODEL, decode_digit(codes[0]))
        assert own["sum_html"] == sum_html(expected) and own["channels_html"] == channels_html(expected)

    run(scenario())


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model": "sequence-rnn-spn"}, '"model" must be one of'),
        ({"picks": [5]}, '"picks" must be a list of 2'),
        ({"picks": [5, -2]}, "a pick must be a whole number from -1 to"),
        ({"poses": [[0, 1, 0, 0]]}, '"poses" must be a list of 2 [rotation, scale, x, y] lists'),
        ({"poses": [[0, 1, 0, 0], [0, 1, 0]]}, '"poses" must be a list of 2'),
        ({"poses": [[46, 1, 0, 0], [0, 1, 0, 0]]}, "rotation must be a number from -45 to 45, got 46"),
        ({"poses": [[0, 1, 0, 0], [0, 2, 0, 0]]}, "scale must be a number from 0.7 to 1.2, got 2"),
        ({"poses": [[0, 1, "left", 0], [0, 1, 0, 0]]}, "x must be a number from -1 to 1, got 'left'"),
        ({"poses": [[0, 1, 0, False], [0, 1, 0, 0]]}, "y must be a number from -1 to 1, got False"),
    ],
)
def test_a_bad_pair_gets_an_error_naming_the_field_and_the_socket_keeps_serving(make_hub, codes, fields, message):
    async def scenario():
        browser = await ready_browser(make_hub(), codes[0])
        error = await browser.ask(_pair(9, **fields))
        assert error["type"] == "error" and error["seq"] == 9 and error["view"] == "pair"
        assert message in error["message"]
        assert (await browser.ask(_pair(10)))["type"] == "pair"

    run(scenario())


def test_a_pair_with_your_digit_before_any_digit_is_refused(make_hub):
    async def scenario():
        browser = Browser(make_hub())
        await browser.hello()
        error = await browser.ask(_pair(1, picks=[-1, 6]))
        assert error["type"] == "error" and error["view"] == "pair" and "no digit of yours yet" in error["message"]

    run(scenario())


def test_pairs_scenes_and_frames_of_several_clients_are_each_batched_and_only_the_newest_counts(make_hub, codes):
    async def scenario():
        hub = make_hub()
        browsers = [await ready_browser(hub, code) for code in codes[:4]]
        for browser in browsers[:2]:  # each sends three pairs before the worker runs: only the third counts
            for seq in (1, 2, 3):
                browser.send(_pair(seq, poses=[[seq, 1, 0, 0], [0, 1, 0, 0]]))
        for browser in browsers[2:]:
            browser.send(_scene(7))
        answers = [await browser.answer() for browser in browsers]
        assert [(a["type"], a["seq"]) for a in answers] == [("pair", 3), ("pair", 3), ("scene", 7), ("scene", 7)]
        assert hub.frames_computed == 4 and hub.ticks <= 2

    run(scenario())
