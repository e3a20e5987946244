"""One student dragging the rotation slider in headless Chromium: redraws/s and input-to-redraw time.

    python -m benchmarks.bench_browser_drag [--seconds 3] [--fallback] [--json FILE]

The app runs in a process of its own exactly as ``python app.py`` serves it
(``benchmarks/_serve_app.py --no-echo``). Debian's Chromium (``/usr/bin/chromium``, or
``$STN_CHROMIUM``; ``apt-get install -y chromium``), driven by Playwright at 1280x800,
opens the page (with ``?live=off&sample=0`` under ``--fallback``: Gradio's event path
instead of the socket, on sample 0, since ``?live=off`` alone opens on no digit) and
waits -- for selectors, not for "network idle", which never comes on a Gradio page --
until ``#stn-live-view`` has drawn its first frame (``data-frames`` >= 1: the page opens
on a digit by itself). Then the mouse presses the rotation slider's thumb
(``#stn-ctl-rotation input[type=range]``) and moves it a few pixels every 1/60 s, sweeping
back and forth across the track, for ``--seconds`` s (the moves go to Chromium over CDP
without waiting for each to be handled: see :func:`drag`).

Measured in the page (instrumentation added with ``page.evaluate`` before the drag):

* input events: a capture-phase ``input`` listener on ``window`` records
  ``performance.now()`` for each input on the rotation slider. (``window``, not
  ``document``: window's capture listeners run before the page's own capture listener on
  ``document``, which sends the request, so the recorded time precedes the request.)
* requests: ``WebSocket.prototype.send`` (frame messages) and ``window.fetch`` (POSTs to
  ``gradio_api/call/live_frame``, the fallback) are wrapped to record each frame request's
  time and the number of redraws so far (``data-frames``) at that moment.
* redraws: a ``MutationObserver`` on ``#stn-live-view``'s ``data-frames`` attribute records
  each new value and the time (the observer runs right after the task that drew the
  frame); a ``requestAnimationFrame`` from there records when the next frame is painted.

Pairing: on the socket each frame carries the ``seq`` of the request it answers
(``window.stnLive.lastFrame().seq``, read by the observer; the wrapped ``send`` reads the
request's own), so redraw and request are matched by ``seq``. On the fallback path, which
keeps one request in flight, redraw number ``k`` answers the **latest request sent while
fewer than k frames were drawn** (a request sent in the same task right after drawing
frame ``k`` already sees ``k`` and is the next one). That request carries the slider value
of the **latest input event at or before it was sent**; input->redraw is the time from
that input event to the redraw. Each input event is counted once (a later redraw showing
the same input is left out of the latency figures, though it counts as a redraw). Redraws
per second count the ``data-frames`` changes inside the drag window.

Also counted during the drag (Playwright's ``page.on("request")``), from the mouse press to
just before its release: requests to ``/gradio_api/queue/join`` and ``/gradio_api/call/``
-- 0 on the live socket -- and the page's console errors and warnings. Requests in the
0.5 s after the release are reported apart (the sliders' ``release`` event is a Gradio
event by design). ``window.stnLive.stats().mode`` gives the live mode (socket or
fallback). Targets (issue 15): >= 30 redraws/s and a median input->redraw <= 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

CHROMIUM = Path(os.environ.get("STN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
SLIDER = "#stn-ctl-rotation input[type=range]"
TARGET_REDRAWS_PER_S, TARGET_MEDIAN_MS = 30.0, 30.0
# `?live=off` alone opens the page on no digit (app.py's restore() reads any query
# parameter as a shared link, and a link without a digit opens empty), so the fallback
# run names the first screen's sample too.
FALLBACK_QUERY = "?live=off&sample=0"
GRADIO_PATHS = ("/gradio_api/queue/join", "/gradio_api/call/")

INSTRUMENT_JS = """
() => {
  const view = document.getElementById("stn-live-view");
  const rec = { inputs: [], sends: [], redraws: [] };
  window.__stnDrag = rec;
  const frames = () => parseInt(view.dataset.frames || "0", 10);
  window.addEventListener("input", (event) => {
    const target = event.target;
    if (target && target.closest && target.closest("#stn-ctl-rotation")) {
      rec.inputs.push([performance.now(), parseFloat(target.value)]);
    }
  }, true);
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string" && data.indexOf('"type":"frame"') !== -1) {
      rec.sends.push([performance.now(), frames(), "socket", JSON.parse(data).seq]);
    }
    return send.call(this, data);
  };
  const fetch = window.fetch;
  window.fetch = function (resource, options) {
    const url = typeof resource === "string" ? resource : (resource && resource.url) || "";
    if (url.indexOf("gradio_api/call/live_frame") !== -1 && options && options.method === "POST") {
      rec.sends.push([performance.now(), frames(), "fetch", null]);
    }
    return fetch.apply(this, arguments);
  };
  new MutationObserver(() => {
    const shown = window.stnLive && window.stnLive.lastFrame();
    const entry = [performance.now(), frames(), null, shown ? shown.seq : null];
    rec.redraws.push(entry);
    requestAnimationFrame(() => { entry[2] = performance.now(); });
  }).observe(view, { attributes: true, attributeFilter: ["data-frames"] });
  return frames();
}
"""


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def pair(record: dict, start: float, end: float) -> dict:
    """Redraws in [start, end] (page time, ms) paired with their request and input event."""
    inputs, sends = record["inputs"], record["sends"]
    redraws = [r for r in record["redraws"] if start <= r[0] <= end]
    to_redraw, to_paint, request_to_redraw, used = [], [], [], set()
    for when, count, painted, seq in redraws:
        request = next((s for s in sends if seq is not None and s[3] == seq), None)
        if request is None:  # the fallback path: one request in flight, the latest one sent before this redraw's count
            request = next((s for s in reversed(sends) if s[1] < count and s[0] <= when), None)
        if request is None:
            continue
        request_to_redraw.append(when - request[0])
        index = next((i for i in range(len(inputs) - 1, -1, -1) if inputs[i][0] <= request[0]), None)
        if index is None or index in used or inputs[index][0] < start:
            continue
        used.add(index)
        to_redraw.append(when - inputs[index][0])
        if painted is not None:
            to_paint.append(painted - inputs[index][0])
    seconds = (end - start) / 1000.0
    inputs_in = [i for i in inputs if start <= i[0] <= end]
    return {
        "redraws": len(redraws),
        "redraws_per_s": round(len(redraws) / seconds, 1) if seconds > 0 else None,
        "input_events": len(inputs_in),
        "input_events_per_s": round(len(inputs_in) / seconds, 1) if seconds > 0 else None,
        "distinct_values": len({round(v, 3) for _, v in inputs_in}),
        "requests": sum(1 for s in sends if start <= s[0] <= end),
        "paired": len(to_redraw),
        "input_to_redraw_median_ms": _round(statistics.median(to_redraw)) if to_redraw else None,
        "input_to_redraw_p95_ms": _round(percentile(to_redraw, 0.95)),
        "input_to_redraw_max_ms": _round(max(to_redraw)) if to_redraw else None,
        "input_to_paint_median_ms": _round(statistics.median(to_paint)) if to_paint else None,
        "request_to_redraw_median_ms": _round(statistics.median(request_to_redraw)) if request_to_redraw else None,
        "request_to_redraw_p95_ms": _round(percentile(request_to_redraw, 0.95)),
    }


def _round(value):
    return None if value is None else round(value, 1)


async def drag(page, seconds: float, phase: list, selector: str = SLIDER) -> tuple[float, float, int, int]:
    """Press the thumb of the slider ``selector`` (the rotation slider) and sweep it back
    and forth, a few px every 1/60 s.

    The moves go straight to Chromium over CDP (``Input.dispatchMouseEvent``) without
    waiting for each one's acknowledgement: Chromium acknowledges a mouse move only once
    the page has handled it (moves are aligned to animation frames), so a driver that waits
    -- ``page.mouse.move`` -- sends only as many moves as the page can take, and on a busy
    machine that is far fewer than 60 a second. Moves sent faster than the page handles
    them are coalesced by Chromium, as a real mouse's are. At most 30 moves are left
    unacknowledged (past that a tick is skipped). ``phase[0]`` is set to "drag" while the
    mouse is down and moving, and to "release" just before the mouse is released. Returns
    the page times (ms) at the start and the end of the drag, the moves sent and the ticks
    skipped."""
    slider = page.locator(selector).first
    await slider.scroll_into_view_if_needed()
    box = await slider.bounding_box()
    low, high, value = [float(await slider.evaluate(f"e => e.{name}")) for name in ("min", "max", "value")]
    y = box["y"] + box["height"] / 2
    x = box["x"] + box["width"] * (value - low) / (high - low)
    left, right = box["x"] + 0.08 * box["width"], box["x"] + 0.92 * box["width"]
    speed = max(2.0, box["width"] / 90.0)  # px a frame: a sweep across the track in ~1.5 s
    cdp = await page.context.new_cdp_session(page)
    await page.mouse.move(x, y)
    start = await page.evaluate("performance.now()")
    phase[0] = "drag"
    await page.mouse.down()
    direction, tick, frame, sent, skipped = 1.0, 1.0 / 60.0, 0, 0, 0
    pending: set = set()
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        x += direction * speed
        if x >= right or x <= left:
            direction = -direction
            x = min(max(x, left), right)
        pending = {task for task in pending if not task.done()}
        if len(pending) < 30:
            move = {"type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1}
            pending.add(asyncio.ensure_future(cdp.send("Input.dispatchMouseEvent", move)))
            sent += 1
        else:
            skipped += 1
        frame += 1
        await asyncio.sleep(max(0.0, began + frame * tick - time.perf_counter()))
    end = await page.evaluate("performance.now()")
    if pending:
        await asyncio.wait(pending, timeout=10)
    await page.mouse.move(x, y)  # Playwright's own mouse position, before releasing there
    phase[0] = "release"
    await page.mouse.up()
    await cdp.detach()
    return start, end, sent, skipped


async def run(url: str, seconds: float, fallback: bool, timeout_s: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            phase, gradio_requests, on_release, console_errors = [None], [], [], []

            def on_request(request) -> None:
                if phase[0] and any(path in request.url for path in GRADIO_PATHS):
                    (gradio_requests if phase[0] == "drag" else on_release).append(f"{request.method} {request.url}")

            def on_console(message) -> None:
                if phase[0] == "drag" and message.type in ("error", "warning"):
                    console_errors.append(f"{message.type}: {message.text[:200]}")

            page.on("request", on_request)
            page.on("console", on_console)
            opened = time.perf_counter()
            await page.goto(url + (FALLBACK_QUERY if fallback else ""), wait_until="domcontentloaded", timeout=timeout_s * 1000)
            await page.wait_for_selector(SLIDER, state="visible", timeout=timeout_s * 1000)
            await page.wait_for_function(
                "() => { const v = document.getElementById('stn-live-view');"
                " return v && parseInt(v.dataset.frames || '0', 10) >= 1 && window.stnLive; }",
                timeout=timeout_s * 1000,
            )
            first_frame_s = time.perf_counter() - opened
            await page.wait_for_timeout(500)  # let the opening events settle (the first frame may be followed by another)
            await page.evaluate(INSTRUMENT_JS)
            start, end, moves, skipped = await drag(page, seconds, phase)
            await page.wait_for_timeout(500)  # the last answer lands (outside the window; not counted)
            phase[0] = None
            record = await page.evaluate("() => window.__stnDrag")
            stats = await page.evaluate("() => { const s = window.stnLive.stats(); return {mode: s.mode, redraws: s.redraws}; }")
            status = await page.evaluate(
                "() => { const s = document.getElementById('stn-status'); return s && !s.hidden ? s.textContent : ''; }"
            )
        finally:
            await browser.close()
    result = pair(record, start, end)
    result.update(
        mode=stats["mode"],
        fallback_requested=fallback,
        seconds=round((end - start) / 1000.0, 2),
        mouse_moves_per_s=round(moves / ((end - start) / 1000.0), 1),
        mouse_ticks_skipped=skipped,
        first_frame_s=round(first_frame_s, 2),
        gradio_requests_during_drag=len(gradio_requests),
        gradio_request_examples=gradio_requests[:3],
        gradio_requests_on_release=len(on_release),
        console_errors_during_drag=len(console_errors),
        console_error_examples=sorted(set(console_errors))[:5],
        status_line=status,
        meets_targets=bool(
            result["redraws_per_s"] is not None
            and result["redraws_per_s"] >= TARGET_REDRAWS_PER_S
            and result["input_to_redraw_median_ms"] is not None
            and result["input_to_redraw_median_ms"] <= TARGET_MEDIAN_MS
        ),
    )
    return result


def drag_against_app(parser, args, runner) -> tuple[dict, object, str]:
    """Check ``--seconds`` and Chromium, serve the app in a process of its own, and run the
    coroutine ``runner(url)`` against it. Returns its result, the server (for its
    ``info``) and the load average before the run, as text."""
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if not CHROMIUM.exists():
        sys.exit(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set STN_CHROMIUM)")
    from benchmarks import _serve_app
    from benchmarks.bench_app import free_port

    print("... starting the app (python -m benchmarks._serve_app --no-echo)", file=sys.stderr, flush=True)
    server = _serve_app.start(free_port(), timeout=max(args.timeout, 240.0), echo_endpoint=False)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        return asyncio.run(runner(server.base + "/")), server, load
    finally:
        server.stop()


def fmt(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of dragging")
    parser.add_argument("--fallback", action="store_true", help="open the page with ?live=off (Gradio's event path)")
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the app and the first frame")
    args = parser.parse_args()
    command = "python -m benchmarks.bench_browser_drag " + shlex.join(sys.argv[1:])
    result, server, load = drag_against_app(parser, args, lambda url: run(url, args.seconds, args.fallback, args.timeout))

    print(f"## STN Lab: dragging a slider in headless Chromium ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"Command: `{command}`  ")
    print(
        f"Machine: {os.cpu_count()} CPU cores; server torch threads {server.info.get('torch_threads')}, "
        f"device {server.info.get('device')}; load average before the run {load}; "
        f"Chromium {CHROMIUM} headless at {VIEWPORT['width']}x{VIEWPORT['height']}.  "
    )
    print(
        f"Server: `python app.py` as served by `benchmarks/_serve_app.py --no-echo`. "
        f"Drag: the rotation slider, {result['seconds']:g} s, a mouse move every 1/60 s "
        f"(sent: {result['mouse_moves_per_s']:g} a second).\n"
    )
    print("| live mode | redraws/s | input events/s | input→redraw median (ms) | p95 (ms) | max (ms) "
          "| input→paint median (ms) | request→redraw median (ms) | Gradio requests during drag |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {result['mode']} | {fmt(result['redraws_per_s'])} | {fmt(result['input_events_per_s'])} | "
        f"{fmt(result['input_to_redraw_median_ms'])} | {fmt(result['input_to_redraw_p95_ms'])} | "
        f"{fmt(result['input_to_redraw_max_ms'])} | {fmt(result['input_to_paint_median_ms'])} | "
        f"{fmt(result['request_to_redraw_median_ms'])} | {result['gradio_requests_during_drag']} |"
    )
    verdict = "met" if result["meets_targets"] else "NOT met"
    print(
        f"\nTargets (≥ {TARGET_REDRAWS_PER_S:.0f} redraws/s, median input→redraw ≤ {TARGET_MEDIAN_MS:.0f} ms): {verdict}. "
        f"{result['redraws']} redraws, {result['paired']} paired with a fresh input event; "
        f"first frame {result['first_frame_s']:.1f} s after opening the page."
    )
    if result["gradio_requests_on_release"]:
        print(
            f"\nOn releasing the mouse (after the drag, not counted above): {result['gradio_requests_on_release']} "
            "Gradio request(s) (the sliders' `release` event, which keeps the teaching views in step)."
        )
    if result["status_line"]:
        print(f"\nStatus line on the page: {result['status_line']}")
    if result["console_errors_during_drag"]:
        print(f"\nConsole errors/warnings during the drag: {result['console_errors_during_drag']}, e.g.")
        for line in result["console_error_examples"]:
            print(f"- {line}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
