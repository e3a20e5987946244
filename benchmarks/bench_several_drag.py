"""One student dragging a digit in the "Several digits" view, in headless Chromium:
scenes redrawn per second and request-to-redraw time on the live channel.

    python -m benchmarks.bench_several_drag [--seconds 3] [--json FILE]

The app runs in a process of its own as ``python app.py`` serves it
(``benchmarks/_serve_app.py --no-echo``). Chromium (as in :mod:`benchmarks.bench_browser_drag`,
whose mouse driver this uses) opens the page at 1280x800, opens the "Several digits" tab,
waits until its canvas shows three glimpse grids, then presses the first digit's x slider
(``#stn-several-positions input[type=range]``) and sweeps it back and forth, a mouse move
every 1/60 s, for ``--seconds`` s.

Measured by the page's own live client (``window.stnLive.sceneStats()``): scenes drawn
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

SLIDER = "#stn-several-positions input[type=range]"
GRIDS = "() => document.querySelectorAll('#stn-several-canvas svg text').length === 3"


async def run(url: str, seconds: float, timeout_s: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(timeout_s * 1000)
        phase, queued = ["open"], []
        page.on("request", lambda r: queued.append(r.url) if phase[0] == "drag" and "/gradio_api/queue/join" in r.url else None)
        await page.goto(url)
        await page.wait_for_function("() => Number(document.querySelector('#stn-live-view')?.dataset.frames || 0) >= 1")
        await page.get_by_role("tab", name="Several digits").click()
        await page.wait_for_function(GRIDS)
        before = await page.evaluate("() => window.stnLive.sceneStats()")
        start, end, moves, skipped = await drag(page, seconds, phase, SLIDER)
        after = await page.evaluate("() => window.stnLive.sceneStats()")
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
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of dragging")
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the app and the view")
    args = parser.parse_args()
    command = "python -m benchmarks.bench_several_drag " + shlex.join(sys.argv[1:])
    result, server, load = drag_against_app(parser, args, lambda url: run(url, args.seconds, args.timeout))
    print(f'## STN Lab: dragging a digit in "Several digits" ({time.strftime("%Y-%m-%d %H:%M")})\n')
    print(f"Command: `{command}`  ")
    print(f"Machine: {os.cpu_count()} CPU cores, device {server.info.get('device')}; load average before the run {load}.\n")
    print("| scenes drawn/s | request→redraw median (ms) | p95 (ms) | Gradio requests during drag |")
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
