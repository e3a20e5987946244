"""Screenshots of STN Lab as people see it: the README's picture and the layout checks.

    python scripts/screenshots.py [--out DIR] [--readme]

Serves the app on a free local port (as ``app.launch`` does), opens it in headless Chromium
(Debian's ``/usr/bin/chromium``, driven by Playwright) at 1280x800, 1024x768 with large
text on (a projector), and 390x844 (a phone), waits until the live view has drawn its
first frame, and saves one PNG per viewport. ``--readme`` also writes the 1280x800 one to
``assets/screenshot.png``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

VIEWPORTS = {
    "desktop-1280x800": (1280, 800, False),
    "projector-1024x768-large": (1024, 768, True),
    "phone-390x844": (390, 844, False),
}


def serve() -> str:
    import app
    from stn_lab.lab import Lab

    port = free_port()
    app.launch(app.build_app(Lab()), server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/"


def wait_for_first_frame(page, timeout_ms: int = 60_000) -> None:
    page.wait_for_selector("#stn-live-view", timeout=timeout_ms)
    page.wait_for_function("() => Number(document.querySelector('#stn-live-view').dataset.frames) >= 1", timeout=timeout_ms)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--readme", action="store_true", help="also update assets/screenshot.png")
    parser.add_argument("--query", default="", help="query string to open, e.g. '?rot=120&sample=3'")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    url = serve() + args.query
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for name, (width, height, large) in VIEWPORTS.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            wait_for_first_frame(page)
            if large:
                page.get_by_text("Lecture settings and sharing").click()
                page.locator("#stn-large-text input").check()
                page.get_by_text("Lecture settings and sharing").click()
                page.wait_for_function("() => document.documentElement.classList.contains('stn-large')")
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(800)
            path = args.out / f"{name}.png"
            page.screenshot(path=str(path))
            print(path)
            page.close()
        browser.close()
    if args.readme:
        shutil.copyfile(args.out / "desktop-1280x800.png", ROOT / "assets" / "screenshot.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
