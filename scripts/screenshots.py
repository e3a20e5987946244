"""Screenshots of STN Lab as people see it: the README's picture and the layout checks.

    python scripts/screenshots.py [--out DIR] [--readme]

Serves the app on a free local port (as ``app.launch`` does), opens it in headless Chromium
(Debian's ``/usr/bin/chromium``, driven by Playwright) at 1280x800, 1024x768 with large
text on (a projector), and 390x844 (a phone), waits until the live view has drawn its
first frame, and saves one PNG per viewport (``--drag``: also one in the middle of a drag of
the rotation slider, the mouse still down). ``--readme`` also writes the 1280x800 one to
``assets/screenshot.png`` (with ``--view NAME``: ``assets/screenshot-NAME.png``, the view's tab
opened and scrolled to).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORTS,
    free_port,
    open_tab,
    set_large_text,
    wait_for_frames,
)


def serve() -> str:
    import app
    from stn_lab.lab import Lab

    port = free_port()
    app.launch(app.build_app(Lab()), server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/"


def drag_slider(page, holder: str, to_fraction: float) -> None:
    """Press on the thumb of the first slider in ``holder`` and move it to ``to_fraction``
    of the track, leaving the mouse down: the screenshot shows the page mid-drag."""
    slider = page.locator(f"{holder} input[type=range]").first
    track = slider.bounding_box()
    y = track["y"] + track["height"] / 2
    low, high = (float(slider.get_attribute(name)) for name in ("min", "max"))
    value = float(slider.input_value())
    page.mouse.move(track["x"] + track["width"] * (value - low) / (high - low), y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * to_fraction, y, steps=20)
    page.wait_for_timeout(600)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--readme", action="store_true", help="also update assets/screenshot.png")
    parser.add_argument("--drag", action="store_true", help="also a screenshot of each screen mid-drag")
    parser.add_argument(
        "--drag-in", default="#stn-ctl-rotation", help="with --drag: where the dragged slider is (default: the rotation)"
    )
    parser.add_argument("--query", default="", help="query string to open, e.g. '?rot=120&sample=3'")
    parser.add_argument(
        "--view", help="a teaching view's tab name ('Several digits', ...): open it, wait for --wait-for, scroll to it"
    )
    parser.add_argument("--wait-for", default="", help="with --view: a CSS selector that shows the view has drawn")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    url = serve() + args.query
    suffix = "-" + args.view.lower().replace(" ", "-") if args.view else ""  # of each file
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for name, screen in VIEWPORTS.items():
            page = browser.new_page(viewport={"width": screen["width"], "height": screen["height"]})
            page.goto(url)
            wait_for_frames(page)
            if screen["large"]:
                set_large_text(page)
            page.evaluate("window.scrollTo(0, 0)")
            if args.view:
                open_tab(page, args.view)
                if args.wait_for:
                    page.wait_for_selector(args.wait_for, timeout=30_000)
                page.locator("#stn-views").evaluate("element => element.scrollIntoView()")
            page.wait_for_timeout(800)
            path = args.out / f"{name}{suffix}.png"
            page.screenshot(path=str(path))
            print(path)
            if args.drag:  # the same screen while a slider is being dragged
                drag_slider(page, args.drag_in, 0.9)
                path = args.out / f"{name}{suffix}-dragging.png"
                page.screenshot(path=str(path))
                page.mouse.up()
                print(path)
            page.close()
        browser.close()
    if args.readme:  # the main view's, or with --view that view's, as the README shows it
        shutil.copyfile(args.out / f"desktop-1280x800{suffix}.png", ROOT / "assets" / f"screenshot{suffix}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
