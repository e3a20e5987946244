"""The main view: the live picture (input U with the sampling grid, warped output V, both
models' answers and θ in words), where the digit comes from, the model, and the sliders.

The live picture itself is drawn in the browser by ``stn_lab/static/live.js`` from frames
the server computes (:mod:`stn_lab.live`); this module only lays it out and keeps the
browser told of the session's digit and model (:func:`tell_browser`).
"""

from __future__ import annotations

import html
import json
import random
from dataclasses import dataclass

import gradio as gr

from stn_core.controls import CONTROL_NAMES, CONTROL_RANGES, Controls, trained_ranges
from stn_core.sketch import BRUSH, SKETCH_CANVAS

from ..lab import Lab, LabError
from ..live import encode_digit
from . import QUIET, Page, user_errors

INTRO = """# STN Lab — watch a Spatial Transformer Network work
Drag a slider: the localisation net predicts **θ**, the grid **T<sub>θ</sub>(G)** shows where the sampler looks,
and the output **V** is the digit in the pose its classifier learned.
([Jaderberg et al., NIPS 2015](https://arxiv.org/abs/1506.02025))"""

# The first screen: a real test digit, mildly distorted, so everything shows before a click.
FIRST_SAMPLE = 0
FIRST_CONTROLS = Controls(rotation=30.0, scale=0.9, shift_x=0.1, shift_y=-0.05)

# Slider steps: the "Set θ yourself" view rounds copied values to these.
STEPS = {"rotation": 1, "scale": 0.01, "shift_x": 0.01, "shift_y": 0.01, "shear": 0.01, "perspective": 0.01, "elastic": 0.01}
LABELS = {
    "rotation": "rotation (°)",
    "scale": "scale",
    "shift_x": "shift x",
    "shift_y": "shift y",
    "shear": "shear",
    "perspective": "perspective",
    "elastic": "elastic",
}
MAIN_SLIDERS = ("rotation", "scale", "shift_x", "shift_y")
MORE_SLIDERS = ("shear", "perspective", "elastic")

# Each preset: controls, the sample it uses, and the regime of the model it shows. Every
# preset shows the spatial transformer succeeding (tests/test_presets.py asserts it),
# except the one marked as a lesson.
PRESETS = {
    "upside-down 7": (dict(rotation=180.0), 7, "FULL"),
    "turned 4": (dict(rotation=-40.0), 4, None),
    "small, off-centre 3": (dict(scale=0.72, shift_x=0.3, shift_y=-0.25), 3, None),
    "big, tilted 2": (dict(rotation=35.0, scale=1.15), 2, None),
    "cluttered 4": (dict(clutter=True, shift_x=-0.4, shift_y=0.3, seed=0), 4, "TC"),  # the seed with most clutter near it
}
# The lesson: the same upside-down 7 on the RTS model, trained on ±45° only.
LESSON_PRESET = "±45° model at 180° (outside its trained range)"
LESSONS = {LESSON_PRESET: (dict(rotation=180.0), 7, "RTS")}

LIVE_VIEW = """
<div id="stn-live-view" class="stn-empty" data-frames="0" data-ranges="{ranges}">
  <div class="stn-panel">
    <p class="stn-caption">input U with the sampling grid T<sub>θ</sub>(G)</p>
    <div class="stn-pic">
      <canvas id="stn-input" width="42" height="42" role="img" aria-label="distorted input with the sampling grid"></canvas>
      <svg id="stn-grid" viewBox="-1 -1 2 2" preserveAspectRatio="none" aria-hidden="true"></svg></div>
  </div>
  <div class="stn-panel">
    <p class="stn-caption">warped output V: what the classifier sees</p>
    <div class="stn-pic"><canvas id="stn-warped" width="42" height="42" role="img" aria-label="warped output"></canvas></div>
  </div>
  <div class="stn-panel stn-answers" aria-live="polite">
    <div id="stn-answer-st"><p class="stn-caption">ST-CNN reads</p><div class="stn-top">–</div><div class="stn-bars"></div></div>
    <div id="stn-answer-cnn">
      <p class="stn-caption">plain CNN reads</p><div class="stn-top">–</div><div class="stn-bars"></div>
    </div>
  </div>
  <p id="stn-theta" class="stn-theta">Loading the first digit…</p>
  <p id="stn-range-note" class="stn-note" aria-live="polite"></p>
  <p id="stn-status" class="stn-status" role="status" hidden></p>
</div>
"""

# After Python changes the digit or the model, the browser asks for a fresh frame.
# The controls go along: the "more distortions" ones are not in the page until their
# accordion is first opened (Gradio mounts its contents then), so live.js could not read
# a preset's clutter or a random P's perspective from the page.
TELL_BROWSER_JS = (
    "(code, model, ...values) => { const names = " + json.dumps(CONTROL_NAMES) + ";"
    " if (window.stnLive) window.stnLive.set(code, model, Object.fromEntries(names.map((n, i) => [n, values[i]]))); }"
)


@dataclass
class MainView:
    page: Page
    digit_outputs: list  # what every digit source sets
    regime_buttons: dict
    preset_buttons: dict
    reset: gr.Button
    # Every event after which the browser and the open teaching view catch up: a new digit,
    # model or slider value set by Python, a released slider, a flipped switch.
    changes: list


def preset_model(lab: Lab, regime: str | None) -> str:
    """The model a preset shows: the shipped ST-CNN of its regime, else the default."""
    return (lab.model_for_regime(regime) if regime else None) or lab.service.default_key()


def _slider(name: str) -> gr.Slider:
    """The slider of control ``name``: its range, default and step; ``live.js`` finds it by id."""
    return gr.Slider(
        *CONTROL_RANGES[name],
        value=getattr(Controls(), name),
        step=STEPS[name],
        label=LABELS[name],
        elem_id=f"stn-ctl-{name}",
        elem_classes="stn-control",
        min_width=150,
    )


def digit_values(lab: Lab, digit, label=None, index=None) -> list:
    """Values of :attr:`MainView.digit_outputs` for a new digit (``None``: no digit). The
    sample number box gets ``index`` too: it names the sample on screen and is empty beside
    a drawn, uploaded or linked digit (it kept saying "0" there)."""
    if digit is None:
        return [None, None, None, "", None]
    return [digit, label, index, encode_digit(digit), index]


def tell_browser(page: Page, event):
    """Chain onto ``event``: hand the browser the (possibly new) digit, model and controls."""
    return event.then(None, [page.digit_code, page.model, *page.control_list], None, js=TELL_BROWSER_JS, **QUIET)


def build(lab: Lab) -> MainView:
    """Lay out the main view (call inside ``gr.Blocks``) and wire its own events."""
    service = lab.service
    ranges = {key: trained_ranges(choice.regime) for key, choice in service.choices.items()}
    gr.Markdown(INTRO, elem_classes="stn-intro")
    with gr.Row(equal_height=False, elem_id="stn-main"):
        with gr.Column(scale=3, min_width=320):
            gr.HTML(LIVE_VIEW.format(ranges=html.escape(json.dumps(ranges))), elem_id="stn-live-html", padding=False)
        with gr.Column(scale=1, min_width=250):
            with gr.Tabs(elem_id="stn-source", overflow_behavior="wrap"):
                with gr.Tab("Sample"):
                    gallery = gr.Gallery(
                        value=[lab.digit_picture(lab.sample_digit(i)[0], 56) for i in range(24)],
                        columns=6,
                        rows=2,
                        height=130,
                        allow_preview=False,
                        label="real MNIST test digits",
                        show_label=False,
                        object_fit="contain",
                        buttons=[],
                        elem_id="stn-gallery",
                    )
                    with gr.Row():
                        pick = gr.Number(
                            label="sample # (0–999)",
                            show_label=False,
                            elem_id="stn-pick",
                            placeholder="sample # 0–999",
                            value=FIRST_SAMPLE,
                            precision=0,
                            minimum=0,
                            maximum=999,
                            min_width=90,
                        )
                        random_pick = gr.Button("random digit", size="sm", min_width=90)
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(
                        label="draw a digit",
                        height=240,
                        canvas_size=(SKETCH_CANVAS, SKETCH_CANVAS),
                        type="numpy",
                        show_label=False,
                        elem_id="stn-sketch",
                        brush=gr.Brush(default_size=BRUSH, colors=["#000000"], color_mode="fixed"),
                    )
                    drawn_view = gr.Image(  # its size: .stn-preview in lab.css
                        label="normalised 28×28",
                        width=72,
                        interactive=False,
                        elem_classes=["stn-pixels", "stn-preview", "stn-preview-small"],
                        buttons=[],
                    )
                with gr.Tab("Upload"):
                    # gr.File, not gr.Image: our decoder (stn_core.preprocess) reads every
                    # format and explains every bad file; browsers cannot even show TIFF.
                    upload = gr.File(
                        label="a photo or scan of one digit",
                        elem_id="stn-upload",
                        type="filepath",
                        height=110,
                        file_types=[".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"],
                    )
                    with gr.Row():
                        # Their size: .stn-preview in lab.css (a label that wraps on a projector
                        # must not take the picture's room).
                        uploaded_view = gr.Image(
                            label="your image", interactive=False, buttons=[], min_width=100, elem_classes="stn-preview"
                        )
                        normalised_view = gr.Image(
                            label="28×28",
                            interactive=False,
                            elem_classes=["stn-pixels", "stn-preview"],
                            buttons=[],
                            min_width=100,
                        )
                    # Why an upload gave no digit, beside the picture itself (a toast is gone
                    # in seconds, and on a projector nobody reads it).
                    upload_note = gr.Markdown("", elem_id="stn-upload-note", elem_classes="stn-note")
            model = gr.Dropdown(
                [(choice.title, key) for key, choice in service.choices.items()],
                value=service.default_key(),
                label="model (regime · architecture)",
                elem_id="stn-model",
            )

    page = Page(
        digit=gr.State(None),
        label=gr.State(None),
        sample_index=gr.State(None),
        digit_code=gr.Textbox(visible=True, elem_classes="stn-hidden", show_label=False, container=False),
        model=model,
    )
    with gr.Row(elem_id="stn-sliders"):
        for name in MAIN_SLIDERS:
            page.controls[name] = _slider(name)
    with gr.Accordion("more distortions: shear, perspective, elastic, clutter", open=False):
        with gr.Row():
            for name in MORE_SLIDERS:
                page.controls[name] = _slider(name)
            with gr.Column(min_width=150):
                page.controls["clutter"] = gr.Checkbox(label="clutter", elem_id="stn-ctl-clutter", elem_classes="stn-control")
                page.controls["seed"] = gr.Number(
                    label="pattern seed", value=0, precision=0, minimum=0, elem_id="stn-ctl-seed", elem_classes="stn-control"
                )
    with gr.Row():
        preset_buttons = {name: gr.Button(name, size="sm", variant="secondary", min_width=100) for name in PRESETS}
        preset_buttons.update({name: gr.Button(name, size="sm", variant="secondary", min_width=100) for name in LESSONS})
    with gr.Row():
        regime_buttons = {regime: gr.Button(f"random {regime}", size="sm", min_width=80) for regime in lab.regimes()}
        reset = gr.Button("reset sliders", size="sm", min_width=80)

    # -- where the digit comes from --------------------------------------------------------------

    digit_outputs = [page.digit, page.label, page.sample_index, page.digit_code, pick]

    def set_digit(new_digit, new_label=None, index=None):
        return digit_values(lab, new_digit, new_label, index)

    def from_sketch(value):
        # Cleared, or nothing drawn: the digit is gone, and so is every result for it.
        if value is None or value.get("composite") is None or not lab.has_ink(value["composite"]):
            return [*set_digit(None), None]
        try:
            digit = lab.digit_from_image(value)
        except LabError:
            return [*set_digit(None), None]
        return [*set_digit(digit), lab.digit_picture(digit, 72)]

    def from_upload(path):
        if path is None:
            return [*set_digit(None), None, None, ""]

        def refused(preview, error):
            # Said under the upload, where the eye is, replacing whatever the last upload left
            # there; the digit outputs are skipped, so the view keeps its digit.
            return [*[gr.skip()] * len(digit_outputs), preview, None, f"**{error}**. The view keeps its digit."]

        try:
            gray = lab.decode_upload(path)
        except LabError as error:  # no image at all: nothing to show
            return refused(None, error)
        preview = lab.upload_preview(gray)
        try:
            digit = lab.digit_from_image(gray)
        except LabError as error:  # an image, but no digit in it: show it as sent
            return refused(preview, error)
        return [*set_digit(digit), preview, lab.digit_picture(digit, 110), ""]

    @user_errors
    def from_sample(index):
        image, true_label = lab.sample_digit(index)
        return set_digit(image, true_label, int(index))

    def from_gallery(event: gr.SelectData):
        return from_sample(event.index)

    def from_random():
        return from_sample(random.randrange(service.sample_images.shape[0]))

    # .change, not .input: Gradio 6.31 sends the first stroke's .input without a composite.
    changes = [
        sketch.change(from_sketch, sketch, [*digit_outputs, drawn_view], trigger_mode="always_last", **QUIET),
        # preprocess=False: gr.File's preprocess leaves an empty temp file behind per call
        # (gradio 6.31); the raw payload's path is already in Gradio's cache.
        upload.change(
            user_errors(from_upload),
            upload,
            [*digit_outputs, uploaded_view, normalised_view, upload_note],
            preprocess=False,
            **QUIET,
        ),
        gallery.select(from_gallery, None, digit_outputs, **QUIET),
        pick.submit(from_sample, pick, digit_outputs, **QUIET),
        random_pick.click(from_random, None, digit_outputs, **QUIET),
    ]

    # -- the sliders ---------------------------------------------------------------------------------

    # A drag is the live channel's (no Gradio event per frame); Python hears only the release.
    changes += [page.controls[name].release(lambda: None, None, None, **QUIET) for name in (*MAIN_SLIDERS, *MORE_SLIDERS)]
    changes += [page.controls[name].input(lambda: None, None, None, **QUIET) for name in ("clutter", "seed")]
    changes.append(model.input(lambda: None, None, None, **QUIET))

    def to_sliders(controls: Controls) -> list:
        return [getattr(controls, name) for name in page.controls]

    for regime, button in regime_buttons.items():

        def draw(model_key, regime=regime):
            key = lab.model_for_regime(regime) or model_key
            return [*to_sliders(lab.random_controls(regime, random.randrange(2**31 - 1))), key]

        changes.append(button.click(user_errors(draw), page.model, [*page.controls.values(), page.model], **QUIET))
    changes.append(reset.click(lambda: to_sliders(Controls()), None, list(page.controls.values()), **QUIET))

    for name, button in preset_buttons.items():

        def preset(name=name):
            values, wanted_digit, regime = {**PRESETS, **LESSONS}[name]
            key = preset_model(lab, regime)
            return [*from_sample(lab.first_sample_of(wanted_digit)), *to_sliders(Controls(**values)), key]

        changes.append(button.click(user_errors(preset), None, [*digit_outputs, *page.controls.values(), page.model], **QUIET))

    return MainView(page, digit_outputs, regime_buttons, preset_buttons, reset, changes)
