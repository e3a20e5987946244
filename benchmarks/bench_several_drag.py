"""One student dragging a digit in a several-digit view, in headless Chromium: pictures
redrawn per second and request-to-redraw time on the live channel.

    python -m benchmarks.bench_several_drag [--view several|addition] [--seconds 3] [--json FILE]

The app runs in a process of its own as ``python app.py`` serves it
(``benchmarks/_serve_app.py --no-echo``). Chromium (as in :mod:`benchmarks.bench_browser_drag`,
whose mouse driver this uses) opens the page at 1280x800, opens the view's tab ("Several
digits", or "Two digits summed"), waits until it shows its grids (three glimpses, or two
transformers on both channels), then presses the view's first slider (the first digit's
x, or its rotation) and sweeps it back and forth, a mouse move every 1/60 s, for
``--seconds`` s.

Measured by the page's own live client (``window.stnLive.sceneStats(kind)``): pictures drawn
during the drag, and for each the time from sending its request on the socket to drawing
its answer (one request in flight at a time; moves in between only mark the scene
dirty). Gradio queue requests during the drag are counted too (expected: 0; the
slider's release is a Gradio event by design).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time

from benchmarks.bench_browser_drag import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, drag, drag_against_app, percentile

# Per view: its tab, the slider dragged, when it has drawn, and its kind on the live channel.
VIEWS = {
    "several": (
        "Several digits",
        "#stn-several-positions input[type=range]",
        "() => document.querySelectorAll('#stn-several-canvas svg text').length === 3",
        "scene",
    ),
    "addition": (
        "Two digits summed",
        "#stn-addition-poses input[type=range]",
        "() => document.querySelectorAll('#stn-addition-channels svg text').length === 4",
        "pair",
    ),
}


async def run(url: str, view: str, seconds: float, timeout_s: float) -> dict:
    tab, slider, drawn_js, kind = VIEWS[view]
    stats = f"() => window.stnLive.sceneStats({json.dumps(kind)})"
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(timeout_s * 1000)
        phase, queued = ["open"], []
        page.on("request", lambda r: queued.append(r.url) if phase[0] == "drag" and "/gradio_api/queue/join" in r.url else None)
        await page.goto(url)
        await page.wait_for_function("() => Number(document.querySelector('#stn-live-view')?.dataset.frames || 0) >= 1")
        await page.get_by_role("tab", name=tab).click()
        await page.wait_for_function(drawn_js)
        before = await page.evaluate(stats)
        start, end, moves, skipped = await drag(page, seconds, phase, slider)
        after = await page.evaluate(stats)
        await browser.close()
    latencies = after["latencies"]  # sorted, ms; all of them come from this drag when before had none
    drawn = after["drawn"] - before["drawn"]
    return {
        "seconds": round((end - start) / 1000, 3),
        "scenes_drawn": drawn,
        "scenes_per_s": round(drawn / ((end - start) / 1000), 1),
        "request_to_redraw_median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "request_to_redraw_p95_ms": percentile(latencies, 0.95),
        "mouse_moves_per_s": round(moves / seconds, 1),
        "ticks_skipped": skipped,
        "gradio_requests_during_drag": len(queued),
        "scenes_before_drag": before["drawn"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--view", choices=list(VIEWS), default="several", help="the view whose slider is dragged")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of dragging")
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the app and the view")
    args = parser.parse_args()
    command = "python -m benchmarks.bench_several_drag " + shlex.join(sys.argv[1:])
    result, server, load = drag_against_app(parser, args, lambda url: run(url, args.view, args.seconds, args.timeout))
    print(f'## STN Lab: dragging a digit in "{VIEWS[args.view][0]}" ({time.strftime("%Y-%m-%d %H:%M")})\n')
    print(f"Command: `{command}`  ")
    print(f"Machine: {os.cpu_count()} CPU cores, device {server.info.get('device')}; load average before the run {load}.\n")
    print("| pictures drawn/s | request→redraw median (ms) | p95 (ms) | Gradio requests during drag |")
    print("|---:|---:|---:|---:|")
    p95 = result["request_to_redraw_p95_ms"]
    print(
        f"| {result['scenes_per_s']:.1f} | {result['request_to_redraw_median_ms']} | "
        f"{'–' if p95 is None else f'{p95:.1f}'} | {result['gradio_requests_during_drag']} |"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
