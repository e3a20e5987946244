"""The page in a real browser (Debian's Chromium, driven by Playwright), as people use it.

One server (the app over the small test models) and one browser for the module; each test
opens its own page. What is asserted is what a person sees: element rectangles on screen,
pictures drawn, requests sent, colours computed.
"""

from __future__ import annotations

import os
import time
import urllib.request

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, VIEWPORTS, free_port, open_tab, set_large_text, wait_for_frames

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000

if not CHROMIUM.exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set STN_CHROMIUM)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


@pytest.fixture(scope="module")
def app_url(lab):
    """The whole app over the test models, served as app.launch serves it, on a free port."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import app

    demo = app.build_app(lab)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, app_url):
    """``open_page(query="", width=1280, height=800)``: a page on the app, its first frame drawn."""
    pages, errors = [], []

    def opener(query: str = "", width: int = 1280, height: int = 800):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(app_url + query)
        wait_for_frames(page, 1, TIMEOUT_MS)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    assert not errors, f"uncaught JavaScript errors in the page: {errors}"


def open_screen(open_page, name: str):
    """A page on one of :data:`VIEWPORTS` (large text on where that screen has it), and the
    screen's settings."""
    settings = VIEWPORTS[name]
    page = open_page(width=settings["width"], height=settings["height"])
    if settings["large"]:
        set_large_text(page)
    return page, settings


def frames_drawn(page) -> int:
    return int(page.evaluate("() => Number(document.querySelector('#stn-live-view').dataset.frames || 0)"))


def rect(page, selector: str) -> dict:
    box = page.evaluate(
        "(s) => { const e = document.querySelector(s); if (!e) return null; const r = e.getBoundingClientRect();"
        " return {x: r.left, y: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height}; }",
        selector,
    )
    assert box is not None, f"{selector} is not on the page"
    return box


# The main view's parts that must be on screen at once.
PICTURES = ("#stn-input", "#stn-warped")
ON_SCREEN = (*PICTURES, "#stn-answer-st .stn-top", "#stn-answer-cnn .stn-top", "#stn-theta")
SLIDERS = tuple(f"#stn-ctl-{name} input[type=range]" for name in ("rotation", "scale", "shift_x", "shift_y"))


@pytest.mark.parametrize("viewport", list(VIEWPORTS), ids=list(VIEWPORTS))
def test_main_view_fits_one_screen_and_no_label_covers_a_picture(open_page, viewport):
    page, settings = open_screen(open_page, viewport)
    width, height = settings["width"], settings["height"]
    phone = width < 600
    wanted = (*ON_SCREEN, *SLIDERS) if not phone else (*PICTURES, "#stn-answer-st .stn-top", SLIDERS[0])
    for selector in wanted:
        box = rect(page, selector)
        assert box["width"] > 0 and box["height"] > 0, f"{selector} has no size at {viewport}"
        assert box["x"] >= 0 and box["y"] >= 0 and box["right"] <= width + 0.5 and box["bottom"] <= height + 0.5, (
            f"{selector} at {box} is not inside the {width}x{height} screen"
        )
    # No label or caption overlaps a picture (the old panels' labels covered their tops).
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#stn-live-view .stn-caption, [data-testid=block-label]')]"
        ".filter(e => e.offsetParent !== null).map(e => { const r = e.getBoundingClientRect();"
        " return {text: e.textContent.trim(), x: r.left, y: r.top, right: r.right, bottom: r.bottom}; })"
    )
    for picture in PICTURES:
        p = rect(page, picture)
        for label in labels:
            overlap = (
                min(p["right"], label["right"]) - max(p["x"], label["x"]) > 1
                and min(p["bottom"], label["bottom"]) - max(p["y"], label["y"]) > 1
            )
            assert not overlap, f"label {label['text']!r} covers {picture} at {viewport}"
    # The model menu's name ends before its arrow (at 1024 px with large text it ran under it).
    menu = page.evaluate(
        "() => { const input = document.querySelector('#stn-model input'); const s = getComputedStyle(input);"
        " const ctx = document.createElement('canvas').getContext('2d');"
        " ctx.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;"
        " const arrow = input.closest('.wrap-inner').querySelector('.icon-wrap, svg').getBoundingClientRect();"
        " const end = input.getBoundingClientRect().left + ctx.measureText(input.value).width;"
        " return {text: input.value, end, arrow: arrow.left}; }"
    )
    assert menu["end"] <= menu["arrow"], f"the model menu's {menu['text']!r} runs under its arrow at {viewport}: {menu}"
    # The digit-source tabs share one row (on a projector "Upload" wrapped under "Sample").
    tabs = page.evaluate(
        "() => [...document.querySelectorAll('#stn-source [role=tab]')]"
        ".map(e => [e.textContent.trim(), Math.round(e.getBoundingClientRect().top)])"
    )
    assert len(tabs) == 3 and len({top for _, top in tabs}) == 1, f"the digit-source tabs wrap at {viewport}: {tabs}"
    if phone:  # the slider being dragged stays on screen while the page scrolls
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(300)
        box = rect(page, SLIDERS[0])
        assert 0 <= box["y"] and box["bottom"] <= height, f"the rotation slider scrolls away on a phone: {box}"


# Pairs (label, picture) where a component's label overlaps a picture of its own block.
_COVERED = """() => {
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
      && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const found = [];
  for (const label of document.querySelectorAll('[data-testid=block-label]')) {
    if (!label.getClientRects().length) continue;
    const box = label.getBoundingClientRect();
    for (const picture of label.closest('.block').querySelectorAll('img, canvas, svg')) {
      if (label.contains(picture) || !picture.getClientRects().length) continue;
      const rect = picture.getBoundingClientRect();
      if (rect.width > 30 && overlap(box, rect)) found.push([label.textContent.trim(), picture.tagName]);
    }
  }
  return found;
}"""


# Pictures cut off by their own block (a fixed-height block whose label, once above the
# picture, took the picture's room). The sample gallery scrolls: its rows may run past it.
_CLIPPED = """() => {
  const found = [];
  for (const block of document.querySelectorAll('.block:not(#stn-gallery)')) {
    if (!block.getClientRects().length) continue;
    const box = block.getBoundingClientRect();
    for (const picture of block.querySelectorAll('img, canvas, svg')) {
      if (!picture.getClientRects().length || picture.closest('[data-testid=block-label], .icon-button-wrapper')) continue;
      const rect = picture.getBoundingClientRect();
      if (rect.width > 30 && (rect.bottom > box.bottom + 1 || rect.top < box.top - 1 || rect.right > box.right + 1))
        found.push([block.textContent.trim().slice(0, 30), picture.tagName, Math.round(rect.bottom - box.bottom)]);
    }
  }
  return found;
}"""


@pytest.mark.parametrize("viewport", ["desktop-1280x800", "projector-1024x768-large", "phone-390x844"])
def test_no_label_covers_or_cuts_off_a_picture_in_the_teaching_views_or_the_digit_previews(open_page, viewport, tmp_path):
    from PIL import Image, ImageDraw

    page, _ = open_screen(open_page, viewport)
    covered, clipped = {}, {}
    page.get_by_role("tab", name="Draw").click()
    page.mouse.move(1, 1)
    covered["Draw"], clipped["Draw"] = page.evaluate(_COVERED), page.evaluate(_CLIPPED)
    photo = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(photo).line([(40, 40), (160, 40), (90, 170)], fill="black", width=14)
    photo.save(tmp_path / "seven.png")
    page.get_by_role("tab", name="Upload").click()
    page.locator("input[type=file]").last.set_input_files(str(tmp_path / "seven.png"))
    shown = """() => [...document.querySelectorAll('[data-testid=block-label]')].some(
        label => label.textContent.trim() == 'your image' && label.closest('.block').querySelector('img'))"""
    page.wait_for_function(shown, timeout=30_000)  # the photo as sent (its 28x28 version comes with it)
    page.wait_for_timeout(500)
    covered["Upload"], clipped["Upload"] = page.evaluate(_COVERED), page.evaluate(_CLIPPED)
    # ...and the uploaded file's name shows whole (on a projector it showed as ".png").
    stem = page.evaluate(
        "() => { const e = document.querySelector('#stn-upload .stem'); return [e.scrollWidth, e.clientWidth]; }"
    )
    assert stem[0] <= stem[1] and stem[1] > 0, f"the file name 'seven' is cut to {stem[1]} of {stem[0]} px at {viewport}"
    for name in ("How it works", "Set θ yourself", "Batch view", "Cluttered"):
        open_tab(page, name)
        page.wait_for_function("() => document.querySelectorAll('#stn-views [role=tabpanel] :is(img, svg)').length > 0")
        page.wait_for_timeout(500)
        covered[name], clipped[name] = page.evaluate(_COVERED), page.evaluate(_CLIPPED)
    assert not any(covered.values()), f"labels covering pictures at {viewport}: {covered}"
    assert not any(clipped.values()), f"pictures cut off by their blocks at {viewport}: {clipped}"
    # ...and rows of pictures keep them big enough to see (on a phone, all in one row once
    # left them a few pixels wide, which the overlap check above cannot see).
    for name, row, least in (("How it works", "#stn-how-stages", 3), ("Cluttered", "#stn-clutter-pictures", 2)):
        open_tab(page, name)
        page.wait_for_selector(f"{row} .html-container :is(img, svg)")
        pictures = f"{row} .html-container :is(img, svg)"
        widths = page.evaluate("(s) => [...document.querySelectorAll(s)].map(e => e.getBoundingClientRect().width)", pictures)
        assert len(widths) >= least and min(widths) >= 120, f"{name}: pictures {widths} px wide at {viewport}"


def test_a_preset_with_clutter_shows_it_live_while_its_accordion_is_still_closed(open_page, lab):
    """The "more distortions" controls are not in the page until their accordion is opened;
    the live view still draws a preset's clutter, exactly as the library computes it."""
    import numpy as np

    from stn_core.controls import Controls
    from stn_lab.views.main_view import PRESETS, preset_model

    page = open_page()
    assert page.locator("#stn-ctl-clutter").count() == 0  # not mounted yet
    values, digit_class, regime = PRESETS["cluttered 4"]
    model = preset_model(lab, regime)
    digit, _ = lab.sample_digit(lab.first_sample_of(digit_class))

    def quantised(controls):
        canvas = lab.service.predict(digit, controls.checked(), model, fast=True).canvas
        return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)

    expected, clean = quantised(Controls(**values)), quantised(Controls(**{**values, "clutter": False}))
    assert not np.array_equal(expected, clean)
    page.get_by_role("button", name="cluttered 4").click()
    deadline, shown = time.monotonic() + 30, None
    while time.monotonic() < deadline:  # frames of the preset's steps arrive one after another
        frame = page.evaluate("() => { const f = window.stnLive.lastFrame(); return {model: f.model, canvas: [...f.canvas]}; }")
        if frame["model"] == model:
            shown = np.array(frame["canvas"], dtype=np.uint8).reshape(expected.shape)
            if np.array_equal(shown, expected):
                break
        page.wait_for_timeout(250)
    assert shown is not None and np.array_equal(shown, expected), "the live view never drew the preset's clutter"


@pytest.mark.parametrize("viewport", ["desktop-1280x800", "projector-1024x768-large"])
def test_the_out_of_range_note_does_not_move_the_slider_being_dragged(open_page, viewport):
    page, _ = open_screen(open_page, viewport)
    slider = page.locator(SLIDERS[0])
    before = rect(page, SLIDERS[0])
    assert page.locator("#stn-range-note").inner_text() == ""
    slider.focus()
    slider.press("End")  # 180°: outside every model's trained range but the full-range one
    page.wait_for_function("() => document.querySelector('#stn-range-note').textContent.includes('Outside')")
    after = rect(page, SLIDERS[0])
    assert abs(after["y"] - before["y"]) < 0.5, f"the rotation slider moved from y={before['y']} to y={after['y']}"


def test_first_screen_shows_a_digit_grid_and_predictions_without_a_click(open_page):
    page = open_page()
    frame = page.evaluate("() => window.stnLive.lastFrame()")
    assert frame["canvas_size"] > 0 and len(frame["st"]) == 10 and len(frame["grid"]) == 14
    ink = page.evaluate(
        "() => { const c = document.querySelector('#stn-input');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / 255; }"
    )
    assert ink > 20, "the input picture is blank"
    assert page.locator("#stn-grid polyline").count() == 14
    assert page.locator("#stn-answer-st .stn-top").inner_text().split(" · ")[0].isdigit()
    assert "grid rotated" in page.locator("#stn-theta").inner_text()
    assert page.evaluate("() => window.stnLive.stats().mode") == "socket"


def test_dragging_a_slider_redraws_the_grid_live_without_gradio_queue_requests(open_page):
    page = open_page()
    gradio_requests = []
    page.on(
        "request",
        lambda request: (
            gradio_requests.append(request.url) if ("/queue/join" in request.url or "/call/" in request.url) else None
        ),
    )
    slider = rect(page, SLIDERS[0])
    y = slider["y"] + slider["height"] / 2
    before = frames_drawn(page)
    page.mouse.move(slider["x"] + slider["width"] * 0.55, y)
    page.mouse.down()
    started = time.monotonic()
    step = 0
    while time.monotonic() - started < 1.0:  # one second of dragging, back and forth
        step += 1
        x = slider["x"] + slider["width"] * (0.5 + 0.4 * ((step % 40) / 40 - 0.5) * 2 * (1 if (step // 40) % 2 == 0 else -1))
        page.mouse.move(x, y)
        page.wait_for_timeout(8)
    during = list(gradio_requests)
    page.mouse.up()
    redraws = frames_drawn(page) - before
    assert redraws >= 10, f"only {redraws} grid redraws in a one-second drag"
    assert not during, f"the drag went through Gradio's queue: {during[:3]}"


def test_every_teaching_view_is_non_empty_when_opened(open_page):
    page = open_page(width=1280, height=1000)
    shown = """() => { const panel = [...document.querySelectorAll('[role=tabpanel]')].filter(e => e.offsetParent !== null).pop();
        return panel ? panel.querySelectorAll('img, svg image, canvas, .js-plotly-plot').length : 0; }"""
    for tab in (
        "Set θ yourself",
        "Invariance sweep",
        "Batch view",
        "Watch it learn",
        "Cluttered",
        "Several digits",
        "How it works",
    ):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_function(shown)
        panel_text = page.evaluate(
            "() => [...document.querySelectorAll('[role=tabpanel]')].filter(e => e.offsetParent !== null).pop().textContent"
        )
        assert "Pick a sample" not in panel_text, f"{tab} opened without the current digit"
    assert not page.locator(".toast-wrap .toast-body.error").count(), "a teaching view raised an error toast"


def _contrast(page, dark: bool) -> list[dict]:
    """Contrast of every visible text of the page against its background, and of slider
    tracks and outlines, computed from the browser's own computed styles."""
    return page.evaluate(
        """(dark) => {
        const parse = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
        const lum = ([r, g, b]) => {
            const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
        const background = (e) => { for (let n = e; n; n = n.parentElement) {
            const c = parse(getComputedStyle(n).backgroundColor);
            if (c.length < 4 || c[3] > 0.9) return c.slice(0, 3); } return dark ? [0, 0, 0] : [255, 255, 255]; };
        const out = [];
        for (const e of document.querySelectorAll('gradio-app *')) {
            if (e.offsetParent === null || e.closest('.stn-pic') || e.closest('[aria-hidden=true]')) continue;
            const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
            const colour = parse(getComputedStyle(e).color).slice(0, 3);
            if (own) out.push({kind: 'text', what: e.textContent.trim().slice(0, 40), ratio: ratio(colour, background(e))});
        }
        for (const e of document.querySelectorAll('#stn-sliders input[type=range]')) {
            const accent = parse(getComputedStyle(e).accentColor);
            out.push({kind: 'track', what: e.closest('.stn-control').id, ratio: ratio(accent.slice(0, 3), background(e))});
        }
        return out;
    }""",
        dark,
    )


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_high_contrast_meets_wcag_aa(open_page, dark):
    page = open_page()
    if dark:
        page.evaluate("() => document.body.classList.add('dark')")
    page.evaluate("() => document.documentElement.classList.add('stn-contrast')")
    # Colours change through CSS transitions: measure once they have all finished, not
    # after a fixed wait (a busy machine measured half-faded buttons).
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    measured = _contrast(page, dark)
    texts = [m for m in measured if m["kind"] == "text"]
    tracks = [m for m in measured if m["kind"] == "track"]
    assert len(texts) > 20 and len(tracks) == 4
    low_text = [m for m in texts if m["ratio"] < 4.5]
    low_tracks = [m for m in tracks if m["ratio"] < 3.0]
    assert not low_text, f"text below 4.5:1: {low_text[:5]}"
    assert not low_tracks, f"slider tracks below 3:1: {low_tracks}"


# Declarations of the lecture settings' rules (".stn-large X", ".stn-contrast X") that lose the
# cascade: on an element the rule matches, the computed value changes once every such rule
# is made !important (in its own order, so that one setting's rule may still override
# another's, as dark over light does). Gradio's container-scoped copy of a plain rule
# outranks a class of <html>: high contrast's 0 % bars were drawn solid black, like full ones.
_LOSING_SETTING_RULES = """() => {
  const ours = [...document.styleSheets].flatMap(sheet => { try { return [...sheet.cssRules]; } catch (e) { return []; } })
    .filter(r => r instanceof CSSStyleRule && /^(html)?\\.stn-(large|contrast)\\b/.test(r.selectorText));
  const declarations = r => [...r.style].filter(p => !p.startsWith('--'));
  const matched = ours.flatMap(rule => [...document.querySelectorAll(rule.selectorText)]
    .filter(e => e.getClientRects().length).flatMap(e => declarations(rule).map(p => [rule.selectorText, e, p])));
  const before = matched.map(([, e, p]) => getComputedStyle(e).getPropertyValue(p));
  const probe = new CSSStyleSheet();
  // From the rule's text: a shorthand holding a var() has no longhand values to read.
  const important = r => r.style.cssText.split(';').map(d => d.trim()).filter(d => d && !d.startsWith('--'))
    .map(d => d.endsWith('!important') ? d : d + ' !important').join('; ');
  probe.replaceSync(ours.map(r => r.selectorText + ' {' + important(r) + '}').join('\\n'));
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, probe];
  const lost = matched.map(([rule, e, p], i) => [rule, p, before[i], getComputedStyle(e).getPropertyValue(p)])
    .filter(([, , was, is]) => was !== is);
  document.adoptedStyleSheets = document.adoptedStyleSheets.filter(s => s !== probe);
  return [...new Set(lost.map(l => JSON.stringify(l)))].map(s => JSON.parse(s));
}"""


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_rule_of_large_text_and_high_contrast_takes_effect(open_page, dark):
    page = open_page(width=1024, height=768)
    if dark:
        page.evaluate("() => document.body.classList.add('dark')")
    set_large_text(page)
    page.evaluate("() => document.documentElement.classList.add('stn-contrast')")
    page.wait_for_selector("#stn-answer-st .stn-bar-track")
    views = ((None, None), ("Several digits", "#stn-several-glimpses .stn-glimpse"), ("Two digits summed", ".stn-pair-output"))
    for view, drawn in views:
        if view:
            open_tab(page, view)
            page.wait_for_selector(drawn)
        page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
        lost = page.evaluate(_LOSING_SETTING_RULES)
        assert not lost, f"lecture-setting rules overridden (rule, property, computed, the rule's own value): {lost}"
    # What a person sees of it: a bar's empty part is the page's colour, not the bar's.
    track = page.evaluate("() => getComputedStyle(document.querySelector('#stn-answer-st .stn-bar-track')).backgroundColor")
    page_colour = "rgb(0, 0, 0)" if dark else "rgb(255, 255, 255)"
    assert track == page_colour, f"a probability bar's empty part is {track} on a page of {page_colour}"


# Every element of the main screen (and of the open teaching view) that holds text itself
# (SVG labels excepted: they scale with their picture) (not only through its children),
# with its font size, in document order; form fields count by their value.
_TEXT_SIZES = """() => [...document.querySelectorAll('#stn-main *, #stn-sliders *, #stn-views *')]
    .filter(el => el.getClientRects().length && !el.closest('svg') && (el.matches('input[type=number], input[type=text]')
        || [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())))
    .map(el => [el.id || el.className.toString().slice(0, 30) || el.tagName,
                (el.value ?? el.textContent).trim().slice(0, 20), parseFloat(getComputedStyle(el).fontSize)])"""


def test_large_text_enlarges_every_piece_of_text_on_the_main_screen_and_the_open_view(open_page):
    page = open_page()
    open_tab(page, "Several digits")
    page.wait_for_selector("#stn-several-canvas svg")
    before = page.evaluate(_TEXT_SIZES)
    set_large_text(page)
    after = page.evaluate(_TEXT_SIZES)
    # Some texts give way on a projector (the Several digits key, each glimpse's θ in words):
    # compare the ones on screen both times.
    sizes = {(kind, text): px for kind, text, px in before}
    pairs = [(kind, text, sizes[kind, text], px) for kind, text, px in after if (kind, text) in sizes]
    assert len(before) > 60 and len(pairs) >= 0.9 * len(before), (len(before), len(pairs))
    # Sub- and superscripts (the θ of T_θ) are smaller by design: they only have to grow.
    floor = {"SUB": 0, "SUP": 0}
    small = [pair for pair in pairs if pair[3] < 1.15 * pair[2] or pair[3] < floor.get(pair[0], 14)]
    assert not small, f"text not enlarged (element, text, px before, px after): {small[:8]}"


def test_a_link_with_a_drawn_digit_round_trips(open_page, browser, app_url):
    page = open_page()
    page.get_by_role("tab", name="Draw").click()
    pad = page.locator("#stn-sketch canvas").first
    pad.wait_for()
    page.wait_for_timeout(600)  # the brush is picked for the user
    box = pad.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = frames_drawn(page)
    page.mouse.move(cx - 35, cy - 45)
    page.mouse.down()
    page.mouse.move(cx + 35, cy - 45, steps=8)
    page.mouse.move(cx - 5, cy + 55, steps=8)
    page.mouse.up()
    page.wait_for_function("(n) => Number(document.querySelector('#stn-live-view').dataset.frames) > n", arg=before)
    page.wait_for_timeout(1500)  # the last stroke's frame
    drawn = page.evaluate("() => Array.from(window.stnLive.lastFrame().canvas)")
    page.get_by_text("Lecture settings and sharing").click()
    page.get_by_role("button", name="copy a link to this view").click()
    page.wait_for_function("() => document.querySelector('#stn-link textarea, #stn-link input').value.includes('digit=')")
    link = page.evaluate("() => document.querySelector('#stn-link textarea, #stn-link input').value")
    assert (
        "Link copied" in page.locator("#stn-link-copied").inner_text()
        or "Copy the link" in page.locator("#stn-link-copied").inner_text()
    )
    other = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        other.goto(link)
        wait_for_frames(other, 1)
        other.wait_for_timeout(500)
        assert other.evaluate("() => Array.from(window.stnLive.lastFrame().canvas)") == drawn
        # No sample number beside a digit that is no sample (it said "0").
        other.wait_for_function("() => document.querySelector('#stn-pick input').value === ''")
    finally:
        other.close()


def test_the_sample_number_box_follows_the_sample_on_screen(open_page):
    page = open_page()
    page.locator("#stn-gallery .thumbnail-item").nth(5).click()
    page.wait_for_function("() => document.querySelector('#stn-pick input').value === '5'")
    page.get_by_role("button", name="random digit").click()
    page.wait_for_function("() => !['', '5'].includes(document.querySelector('#stn-pick input').value)")


def test_clearing_the_sketch_clears_the_view(open_page):
    page = open_page()
    page.get_by_role("tab", name="Draw").click()
    pad = page.locator("#stn-sketch canvas").first
    pad.wait_for()
    page.wait_for_timeout(600)
    box = pad.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy - 50)
    page.mouse.down()
    page.mouse.move(cx, cy + 50, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => window.stnLive.lastFrame() && document.querySelector('#stn-answer-st .stn-top').textContent !== '–'"
    )
    page.wait_for_selector(".stn-preview-small img")
    drawn = rect(page, ".stn-preview-small")
    page.locator('#stn-sketch button[aria-label="Clear canvas"]').click()
    page.wait_for_function("() => document.querySelector('#stn-answer-st .stn-top').textContent === '–'")
    assert "pick a digit" in page.locator("#stn-theta").inner_text().lower()
    # The empty preview keeps the drawn one's size (it grew by 165 px, pushing the model menu
    # to the bottom of the screen).
    page.wait_for_function("() => !document.querySelector('.stn-preview-small img')")
    cleared = rect(page, ".stn-preview-small")
    assert abs(cleared["height"] - drawn["height"]) <= 2, (
        f"the preview is {drawn['height']} px drawn, {cleared['height']} px empty"
    )


def test_without_the_socket_frames_come_through_gradio_and_the_page_says_so(open_page):
    page = open_page("?live=off")
    assert page.evaluate("() => window.stnLive.stats().mode") == "fallback"
    assert "Gradio's slower event path" in page.locator("#stn-status").inner_text()
    before = frames_drawn(page)
    slider = rect(page, SLIDERS[0])
    page.mouse.click(slider["x"] + slider["width"] * 0.7, slider["y"] + slider["height"] / 2)
    wait_for_frames(page, before + 1)


def drag_view_slider(page, sliders: str, counter: str) -> list:
    """Drag the first slider under ``sliders`` across its track until the live channel has
    drawn 3 frames into ``#counter`` (its ``data-frames``); the Gradio queue requests the
    page made meanwhile (there should be none: drags go over the socket)."""
    gradio_requests = []
    page.on("request", lambda r: gradio_requests.append(r.url) if "/gradio_api/queue/join" in r.url else None)
    slider = page.locator(f"{sliders} input[type=range]").first.bounding_box()
    y = slider["y"] + slider["height"] / 2
    page.mouse.move(slider["x"] + 4, y)
    page.mouse.down()
    for i in range(30):
        page.mouse.move(slider["x"] + slider["width"] * (0.05 + 0.03 * i), y)
        page.wait_for_timeout(20)
    page.wait_for_function(f"() => Number(document.querySelector('#{counter}').dataset.frames || 0) >= 3")
    during = list(gradio_requests)
    page.mouse.up()
    return during


# -- "Several digits" ----------------------------------------------------------------------

GLIMPSE_GRIDS = "() => document.querySelectorAll('#stn-several-canvas svg text').length"
GLIMPSES_TAKEN = "() => document.querySelectorAll('#stn-several-glimpses .stn-glimpse img').length"


def _open_several(page):
    open_tab(page, "Several digits")
    page.wait_for_function(f"() => ({GLIMPSE_GRIDS})() === 3")
    page.locator("#stn-views").evaluate("element => element.scrollIntoView()")
    page.wait_for_timeout(300)


def test_several_digits_opens_on_a_canvas_with_every_glimpse_read(open_page):
    page = open_page()
    _open_several(page)
    assert page.evaluate(GLIMPSES_TAKEN) == 3
    readout = page.locator("#stn-several-readout").inner_text()
    assert "reads" in readout and "truth" in readout and "CNN reads" in readout
    assert not page.locator(".toast-wrap .toast-body.error").count()


def test_the_step_slider_and_play_show_the_glimpses_one_at_a_time(open_page):
    page = open_page()
    _open_several(page)
    page.locator("#stn-several-step input[type=range]").press("Home")  # glimpses shown: 1
    page.wait_for_function(f"() => ({GLIMPSE_GRIDS})() === 1 && ({GLIMPSES_TAKEN})() === 1")
    assert page.locator("#stn-several-glimpses").inner_text().count("not yet taken") == 2
    page.locator("#stn-several-play").click()
    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (len(seen) < 3 or 3 not in seen):
        seen.add(page.evaluate(GLIMPSE_GRIDS))
        page.wait_for_timeout(100)
    assert {1, 2, 3} <= seen, f"playing showed grids {sorted(seen)}, expected 1, then 2, then 3"
    page.wait_for_function(f"() => ({GLIMPSES_TAKEN})() === 3")


def test_dragging_a_digit_redraws_live_over_the_socket_and_release_syncs_the_view(open_page):
    page = open_page()
    _open_several(page)
    before = page.locator("#stn-several-canvas .stn-scene").inner_html()
    during = drag_view_slider(page, "#stn-several-positions", "stn-several-canvas")
    assert not during, f"the drag went through Gradio's queue: {during[:3]}"
    assert page.locator("#stn-several-canvas .stn-scene").inner_html() != before
    stats = page.evaluate("() => window.stnLive.sceneStats()")
    assert stats["drawn"] >= 3, stats
    # the release is a Gradio event: the glimpse stepping then works on the scene on screen
    page.wait_for_timeout(1500)
    moved = page.locator("#stn-several-canvas .stn-scene").inner_html()
    page.locator("#stn-several-step input[type=range]").press("Home")
    page.wait_for_function(f"() => ({GLIMPSE_GRIDS})() === 1")
    page.locator("#stn-several-step input[type=range]").press("End")
    page.wait_for_function(f"() => ({GLIMPSE_GRIDS})() === 3")
    assert page.locator("#stn-several-canvas .stn-scene").inner_html() == moved
    page.locator("#stn-several-random").click()
    page.wait_for_function("(moved) => document.querySelector('#stn-several-canvas .stn-scene').innerHTML !== moved", arg=moved)
    assert not page.locator(".toast-wrap .toast-body.error").count()


def test_on_a_phone_the_slider_bar_slides_away_below_the_main_view_and_comes_back(open_page):
    page = open_page(width=390, height=844)
    bar_top = "() => document.getElementById('stn-sliders').getBoundingClientRect().top"
    page.wait_for_function(f"() => ({bar_top})() < 844")  # on screen with the picture
    page.locator("#stn-views").evaluate("element => element.scrollIntoView()")
    page.wait_for_function(f"() => ({bar_top})() >= 844")  # gone: it covers no teaching view
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function(f"() => ({bar_top})() < 844")


def test_on_a_phone_the_slider_bar_stays_above_the_sketchpads_tools(open_page):
    """The sketchpad's tool bars (Gradio's z-index 1000) drew over the bar's sliders."""
    page = open_page(width=390, height=844)
    page.get_by_role("tab", name="Draw").click()
    page.wait_for_selector("#stn-sketch canvas")
    page.evaluate("() => document.querySelector('#stn-sketch').scrollIntoView({block: 'end'})")
    page.wait_for_timeout(300)
    covered = page.evaluate(
        "() => { const bar = document.querySelector('#stn-sliders'); const r = bar.getBoundingClientRect(); const out = [];"
        " for (let i = 1; i < 12; i++) for (let j = 1; j < 5; j++) {"
        "   const x = r.left + r.width * i / 12, y = r.top + r.height * j / 5; const e = document.elementFromPoint(x, y);"
        "   if (e && !bar.contains(e)) out.push([Math.round(x), Math.round(y), e.className.toString().slice(0, 40)]); }"
        " return out; }"
    )
    assert not covered, f"points of the slider bar covered by something else: {covered}"


def test_on_a_phone_the_lecture_switches_show_their_whole_labels(open_page):
    page = open_page(width=390, height=844)
    page.get_by_text("Lecture settings and sharing").click()
    page.wait_for_selector("#stn-large-text label")
    cut = page.evaluate(
        "() => ['#stn-large-text', '#stn-high-contrast', '#stn-dark'].map(id => {"
        " const block = document.querySelector(id); const range = document.createRange();"
        " range.selectNodeContents(block.querySelector('label')); const text = range.getBoundingClientRect();"
        " const box = block.getBoundingClientRect();"
        " return [id, block.textContent.trim(), Math.round(text.right - box.right)]; }).filter(([, , over]) => over > 1)"
    )
    assert not cut, f"switch labels running out of their blocks on a phone (id, label, px over): {cut}"


def test_a_typed_value_out_of_a_sliders_range_is_put_inside_it_without_an_error(open_page):
    page = open_page()
    _open_several(page)
    box = page.locator("#stn-several-positions input[type=number]").first
    for typed, expected in (("-5", "14"), ("999", "86"), ("", None)):  # None: any value in range
        box.fill(typed)
        box.press("Enter")
        page.wait_for_timeout(600)
        shown = box.input_value()
        assert shown == expected if expected else 14 <= float(shown) <= 86, f"typed {typed!r}: the box shows {shown!r}"
        assert page.locator("#stn-several-positions input[type=range]").first.input_value() == shown
    page.wait_for_timeout(800)
    assert not page.locator(".toast-wrap .toast-body.error").count(), "a typo raised an error toast"


def test_a_sample_number_out_of_range_is_put_inside_it_without_an_error(open_page):
    page = open_page()
    box = page.locator("#stn-pick input[type=number]")
    for typed, expected in (("5000", "999"), ("-3", "0"), ("12.7", "13")):
        before = frames_drawn(page)
        box.fill(typed)
        box.press("Enter")
        page.wait_for_function("(n) => Number(document.querySelector('#stn-live-view').dataset.frames) > n", arg=before)
        assert box.input_value() == expected, f"typed {typed!r}: the box shows {box.input_value()!r}"
    page.wait_for_timeout(800)
    assert not page.locator(".toast-wrap .toast-body.error").count(), "a typo raised an error toast"


def test_the_several_digits_key_spans_the_view_below_the_pictures(open_page):
    page = open_page()
    _open_several(page)
    key, canvas = page.locator("#stn-several-key").bounding_box(), page.locator("#stn-several-canvas").bounding_box()
    assert key["width"] > 600 and key["y"] > canvas["y"] + canvas["height"] - 1, (key, canvas)


# -- "Two digits summed" -------------------------------------------------------------------

PAIR_GRIDS = "() => document.querySelectorAll('#stn-addition-channels svg text').length"


def _open_addition(page):
    open_tab(page, "Two digits summed")
    page.wait_for_function(f"() => ({PAIR_GRIDS})() === 4")  # grids 1 and 2 on both channels
    page.locator("#stn-views").evaluate("element => element.scrollIntoView()")
    page.wait_for_timeout(300)


def test_two_digits_summed_opens_on_a_pair_with_both_transformers_outputs_and_the_sums(open_page):
    page = open_page()
    _open_addition(page)
    assert page.locator("#stn-addition-outputs img").count() == 4  # two transformers × two channels
    readout = page.locator("#stn-addition-readout").inner_text()
    assert "sum" in readout and "read as" in readout and "truth" in readout and "CNN" in readout
    assert not page.locator(".toast-wrap .toast-body.error").count()


def test_dragging_a_pose_redraws_the_pair_live_over_the_socket_and_a_random_pair_replaces_it(open_page):
    page = open_page()
    _open_addition(page)
    before = page.locator("#stn-addition-channels .stn-pair").inner_html()
    during = drag_view_slider(page, "#stn-addition-poses", "stn-addition-channels")
    assert not during, f"the drag went through Gradio's queue: {during[:3]}"
    assert page.locator("#stn-addition-channels .stn-pair").inner_html() != before
    assert page.evaluate("() => window.stnLive.sceneStats('pair')")["drawn"] >= 3
    page.wait_for_timeout(1500)  # the release, a Gradio event, reads the final pair
    moved = page.locator("#stn-addition-channels .stn-pair").inner_html()
    page.locator("#stn-addition-random").click()
    page.wait_for_function("(moved) => document.querySelector('#stn-addition-channels .stn-pair').innerHTML !== moved", arg=moved)
    assert not page.locator(".toast-wrap .toast-body.error").count()


# Per several-digit view: how to open it, and what must be on screen below its intro.
SEVERAL_DIGIT_VIEWS = {
    "several": (
        lambda page: _open_several(page),
        ["#stn-several-canvas svg", "#stn-several-glimpses", "#stn-several-readout", "#stn-several-step"]
        + ["#stn-several-play", "#stn-several-random", "#stn-several-positions"],
    ),
    "addition": (
        lambda page: _open_addition(page),
        ["#stn-addition-channels svg", "#stn-addition-outputs", "#stn-addition-readout", "#stn-addition-random"]
        + ["#stn-addition-poses"],
    ),
}


# Each slider of a panel (a CSS selector): its value, the room its value box leaves for text
# and the text's width, whether its track stays inside the panel, and how far the value box
# sits below the label's top.
_SLIDER_BOXES = """(panel) => [...document.querySelectorAll(panel + ' input[type=number]')].map(input => {
  const s = getComputedStyle(input); const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
  const block = input.closest('.block'), box = document.querySelector(panel).getBoundingClientRect();
  const track = block.querySelector('input[type=range]').getBoundingClientRect();
  const label = block.querySelector('[data-testid=block-info], label span, span').getBoundingClientRect();
  return {value: input.value, room: input.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight),
          text: ctx.measureText(input.value).width, inside: track.left >= box.left - 1 && track.right <= box.right + 1,
          below: input.getBoundingClientRect().top - label.top};
})"""


def whole_slider_values(page, panel: str, count: int, screen: str) -> list[dict]:
    """:data:`_SLIDER_BOXES` of ``panel``, after asserting that it has ``count`` sliders and
    that every value box shows its whole value."""
    boxes = page.evaluate(_SLIDER_BOXES, panel)
    assert len(boxes) == count, f"{len(boxes)} sliders in {panel}, expected {count}"
    cut = [b for b in boxes if b["text"] > b["room"] + 0.5]
    assert not cut, f"values cut off in {panel} on {screen}: {cut}"
    return boxes


def test_on_a_phone_every_pose_value_of_two_digits_summed_is_readable(open_page):
    """Eight pose sliders in one row left each value box 16 px wide, showing nothing."""
    page = open_page(width=390, height=844)
    open_tab(page, "Two digits summed")
    page.wait_for_selector(".stn-pair-output")
    boxes = whole_slider_values(page, "#stn-addition-poses", 8, "a phone")
    outside = [b for b in boxes if not b["inside"]]
    assert not outside, f"pose sliders running out of their panel on a phone: {outside}"


@pytest.mark.parametrize("viewport", list(VIEWPORTS), ids=list(VIEWPORTS))
def test_set_theta_yourself_shows_every_value_whole_and_on_a_wide_screen_beside_its_label(open_page, viewport):
    """At 1280 px the rotation's value box dropped under its label; with large text the
    shear's "-0.02" was cut to "-0.0"."""
    page, settings = open_screen(open_page, viewport)
    open_tab(page, "Set θ yourself")
    page.wait_for_selector("#stn-theta-sliders input[type=number]")
    boxes = whole_slider_values(page, "#stn-theta-sliders", 6, viewport)
    if settings["width"] > 700:
        dropped = [b for b in boxes if b["below"] > 12]
        assert not dropped, f"value boxes under their labels at {viewport}: {dropped}"


@pytest.mark.parametrize("name", ["desktop-1280x800", "projector-1024x768-large"])
@pytest.mark.parametrize("view", list(SEVERAL_DIGIT_VIEWS))
def test_a_several_digit_view_fits_on_one_screen(open_page, view, name):
    page, screen = open_screen(open_page, name)
    open_view, parts = SEVERAL_DIGIT_VIEWS[view]
    open_view(page)
    page.locator(f"#stn-{view}-intro").evaluate("element => element.scrollIntoView()")
    for selector in parts:
        box = page.locator(selector).first.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= screen["height"] + 1, (
            f"{selector} is not fully on the {name} screen: {box}"
        )


# Every piece of text in a several-digit view's toolbar, and how far it runs out of its box
# (px): a checkbox's label against its block, a menu's chosen words against their input; and
# a button whose words wrap onto several lines.
TOOLBAR_TEXT_CUT = """async ([toolbar, menuName]) => {
  await document.fonts.ready;  // measured in the page's own font, not the fallback shown before it loads
  // The model menu shows the shipped models' names (these tests serve small test models,
  // whose names are shorter): the longest shipped name must fit it.
  const menu = document.querySelector(`${toolbar} input:not([type=checkbox])`);
  menu.value = menuName;
  const cut = [];
  for (const label of document.querySelectorAll(`${toolbar} label`)) {
    if (!label.querySelector('input[type=checkbox]')) continue;
    const range = document.createRange(); range.selectNodeContents(label);
    const over = range.getBoundingClientRect().right - label.closest('.block').getBoundingClientRect().right;
    if (over > 1) cut.push([label.textContent.trim(), Math.round(over)]);
  }
  for (const button of document.querySelectorAll(`${toolbar} button`)) {  // its words on one line
    const range = document.createRange(); range.selectNodeContents(button);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    if (lines > 1) cut.push([button.textContent.trim(), `${lines} lines`]);
  }
  for (const input of document.querySelectorAll(`${toolbar} input:not([type=checkbox])`)) {
    const over = input.scrollWidth - input.clientWidth;
    if (over > 1) cut.push([input.value, over]);
  }
  return cut;
}"""


@pytest.mark.parametrize("name", list(VIEWPORTS))
@pytest.mark.parametrize("view", list(SEVERAL_DIGIT_VIEWS))
def test_every_word_of_a_several_digit_views_toolbar_shows_whole(open_page, shipped_lab, view, name):
    """On a phone the Several digits "clutter" checkbox read "clutte" (Gradio gives a
    checkbox no minimum width), with large text Two digits summed's menu "your digit: unus…",
    Several digits' "random canvas" button wrapped in two lines, and on a phone the shipped
    menu name "2×ST-FCN (digit-sum head) · 5.7 % wrong" ended in "wr…"."""
    page, _ = open_screen(open_page, name)
    SEVERAL_DIGIT_VIEWS[view][0](page)
    toolbar = f"#stn-{'several' if view == 'several' else 'addition'}-toolbar"
    assert page.locator(f"{toolbar} input:not([type=checkbox])").count() == 2  # the model menu and "your digit"
    longest = max((label for label, _ in getattr(shipped_lab, view).choices()), key=len)
    cut = page.evaluate(TOOLBAR_TEXT_CUT, [toolbar, longest])
    assert not cut, f"{view} toolbar words cut off at {name} (words, px over): {cut}"
