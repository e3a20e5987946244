"""The real app in a real browser: draw a digit with the mouse, drag a slider, pick an MNIST
sample, and check that the page answers each time (Playwright driving Debian's Chromium).

Runs against untrained models (the ``lab`` fixture), so it asserts on what must change
when the input changes (the grid picture, the plain CNN's probabilities), never on what a
trained network would say. A full-page screenshot is saved to ``test-artifacts/browser.png``
(and to the test's ``tmp_path``) whether the test passes or fails.

    pytest tests/test_browser.py        # ~20 s; skipped without /usr/bin/chromium
"""

from __future__ import annotations

import os
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("STN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 20_000

if not CHROMIUM.exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set STN_CHROMIUM)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


def _wait_until_answers(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@pytest.fixture(scope="module")
def app_url(lab):
    """The whole app over the untrained test models, served on a free local port."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import app

    demo = app.build_app(lab)
    for attempt in range(3):  # the free port can be taken between probing and binding
        port = free_port()
        try:
            app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
            break
        except OSError:
            if attempt == 2:
                raise
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_answers(url)
        yield url
    finally:
        demo.close()


# -- reading the page -------------------------------------------------------------------
# Gradio gives every component a ``.block`` whose ``[data-testid=block-label]`` holds the
# label: find blocks by their label text, as a user would.

_BLOCK_JS = """
(label) => {
    for (const element of document.querySelectorAll('[data-testid="block-label"], [data-testid="block-info"]')) {
        if (element.textContent.trim() === label) return element.closest('.block');
    }
    return null;
}
"""
# A picture is an <img> (image components, HTML panels) or the <image> inside an SVG panel
# (the sampling grid); both hold the pixels as a URL.
_PICTURE_JS = """
(block) => {
    const picture = block && block.querySelector('img, svg image');
    if (!picture) return null;
    const url = picture.tagName.toLowerCase() === 'img' ? picture.src : picture.getAttribute('href');
    const loaded = picture.tagName.toLowerCase() !== 'img' || (picture.complete && picture.naturalWidth > 0);
    return loaded ? url : null;
}
"""


def _image_src(page, label: str) -> str | None:
    """URL of the picture shown in the component labelled ``label`` (None if empty)."""
    return page.evaluate(f"(label) => ({_PICTURE_JS})(({_BLOCK_JS})(label))", label)


def _label_values(page, label: str) -> list[tuple[str, str]]:
    """The (class, exact probability) pairs a ``gr.Label`` shows: full precision, unlike the rounded percentages."""
    return page.evaluate(
        f"(label) => {{ const block = ({_BLOCK_JS})(label); if (!block) return [];"
        " return [...block.querySelectorAll('meter')].map(m => [m.getAttribute('aria-label'), m.getAttribute('value')]); }",
        label,
    )


def _wait_for_image_change(page, label: str, old: str | None) -> str:
    page.wait_for_function(
        f"([label, old]) => {{ const url = ({_PICTURE_JS})(({_BLOCK_JS})(label)); return !!url && url !== old; }}",
        arg=[label, old],
        timeout=TIMEOUT_MS,
    )
    return _image_src(page, label)


def _wait_until_settled(page, label: str, quiet_ms: int = 800) -> str:
    """Wait until the picture labelled ``label`` has kept the same ``src`` for ``quiet_ms``
    (a slider drag sends several updates; let the last one land)."""
    page.wait_for_function(
        f"([label, quiet]) => {{ const src = ({_PICTURE_JS})(({_BLOCK_JS})(label));"
        " const now = performance.now(); const key = '__stn_settle_' + label;"
        " const seen = window[key]; if (!seen || seen.src !== src) { window[key] = {src, since: now}; return false; }"
        " return now - seen.since >= quiet; }",
        arg=[label, quiet_ms],
        timeout=TIMEOUT_MS,
        polling=100,
    )
    return _image_src(page, label)


def _toasts(page) -> list[str]:
    return page.locator(".toast-wrap").all_inner_texts()


def _drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


# -- the test -----------------------------------------------------------------------------

DIGIT_VIEW = "normalised 28×28 digit"
GRID_VIEW = "input U with the sampling grid Tθ(G)"
WARPED_VIEW = "warped output V — what the classifier sees"
CNN_VIEW = "plain CNN (same regime)"


def test_draw_drag_and_pick_in_the_browser(app_url, tmp_path):
    expect = sync_api.expect
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                _exercise(page, app_url, expect)
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                for path in (ARTIFACTS / "browser.png", tmp_path / "browser.png"):
                    page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    assert not errors, f"uncaught JavaScript errors in the page: {errors}"


def _exercise(page, url: str, expect) -> None:
    page.goto(url)
    expect(page.get_by_text("STN Lab — see a Spatial Transformer Network work")).to_be_visible()

    # 1. Draw a "7" on the sketchpad: pick the brush, then two real mouse strokes.
    expect(page.get_by_text("select the draw tool to start")).to_be_visible()
    page.get_by_role("button", name="Brush").click()
    canvas = page.locator("canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert _image_src(page, DIGIT_VIEW) is None
    _drag(page, (cx - 55, cy - 70), (cx + 55, cy - 70))  # the bar
    page.wait_for_timeout(300)
    _drag(page, (cx + 55, cy - 70), (cx - 10, cy + 75), steps=15)  # the stem

    _wait_for_image_change(page, DIGIT_VIEW, None)
    # The main view's θ text comes first in the page ("How it works" repeats it further down).
    theta = page.get_by_test_id("markdown").filter(has_text="θ (affine)").first
    expect(theta).to_be_visible()
    _wait_for_image_change(page, GRID_VIEW, None)
    _wait_for_image_change(page, WARPED_VIEW, None)
    grid_src = _wait_until_settled(page, GRID_VIEW)  # every stroke may send an update: take the last
    cnn_values = _label_values(page, CNN_VIEW)
    assert len(cnn_values) == 5, cnn_values
    sketch_errors = [text for text in _toasts(page) if "sketch is empty" in text]
    # Gradio 6.31's Sketchpad sends the first stroke's `input` event with an empty value
    # (composite None); the app turns that into a "sketch is empty" toast. Reported, not fatal.
    if sketch_errors:
        warnings.warn(f"drawing showed an error toast: {sketch_errors}")

    # 2. Drag the rotation slider a quarter of its track to the right (0° -> about +90°).
    slider = page.get_by_label("range slider for rotation (°)")
    slider.scroll_into_view_if_needed()
    track = slider.bounding_box()
    y = track["y"] + track["height"] / 2
    start_x = track["x"] + track["width"] / 2
    _drag(page, (start_x, y), (start_x + track["width"] / 4, y), steps=10)
    number = page.get_by_label("number input for rotation (°)")
    expect(number).not_to_have_value("0")
    assert 45 <= float(number.input_value()) <= 135, number.input_value()

    new_grid_src = _wait_for_image_change(page, GRID_VIEW, grid_src)
    assert new_grid_src != grid_src
    page.wait_for_function(
        f"([label, old]) => {{ const block = ({_BLOCK_JS})(label); if (!block) return false;"
        " const now = [...block.querySelectorAll('meter')].map(m => [m.getAttribute('aria-label'), m.getAttribute('value')]);"
        " return now.length === 5 && JSON.stringify(now) !== JSON.stringify(old); }",
        arg=[CNN_VIEW, cnn_values],
        timeout=TIMEOUT_MS,
    )
    expect(theta).to_be_visible()
    expect(theta).to_contain_text("grid rotated")
    settled_grid_src = _wait_until_settled(page, GRID_VIEW)

    # 3. Pick an MNIST sample from the gallery: the normalised digit changes.
    drawn_src = _image_src(page, DIGIT_VIEW)
    page.get_by_role("tab", name="MNIST sample").click()
    thumbnail = page.get_by_role("button", name="Thumbnail 2 of 40")
    expect(thumbnail).to_be_visible()
    thumbnail.click()
    _wait_for_image_change(page, DIGIT_VIEW, drawn_src)
    _wait_for_image_change(page, GRID_VIEW, settled_grid_src)  # the new digit, still rotated
    _wait_until_settled(page, GRID_VIEW)
    expect(theta).to_be_visible()
