""" "Several digits": three digits on one canvas, read by a recurrent spatial transformer
one glimpse at a time (the sequence task of :mod:`stn_core.multi`).

Top to bottom as on screen: a line of words; the toolbar (a random canvas, the model,
clutter, where the main view's digit goes); the canvas with each glimpse's grid beside
the glimpses, the readings, the step slider and "play"; the key; each digit's centre.
"""

from __future__ import annotations

import math
import random
import time

import gradio as gr

from ..lab import Lab, LabError
from ..several import HALF, OWN, ROOM, SLOTS, Scene, canvas_html, glimpses_html, readout_html
from . import QUIET, Page, TeachingView, menu, several_digit_toolbar, user_errors

ID, TITLE = "several", "Several digits"
FIRST_SEED = 7  # the scene the view opens on: three clear digits, readable by every model
# The three digits are named by letter, not by order: moved, they may change places.
PLACES = ("A", "B", "C")
# The menu of where the main view's digit goes: (words, value).
MINE = [("your digit: unused", "none")] + [(f"your digit as {place}", place) for place in PLACES]
PLAY_PAUSE_S = 0.8  # between glimpses when playing


def build(lab: Lab, page: Page) -> TeachingView:
    several = lab.several
    choices = several.choices()
    with gr.Tab(TITLE, id=ID) as tab:
        if not choices:
            gr.Markdown("No recurrent sequence model ships with this copy.")
            return TeachingView(ID, tab, [], [], lambda: [])
        first = several.random_scene(FIRST_SEED)
        row, again, model = several_digit_toolbar(
            ID,
            "A **recurrent spatial transformer** reads left to right, one glimpse per step: a numbered window, "
            "warped to 28×28 and read by one shared classifier.",
            "random canvas",
            choices,
        )
        with row:
            clutter = gr.Checkbox(value=True, label="clutter", container=False, scale=1, elem_id="stn-several-clutter")
            mine = menu(MINE, min_width=180, scale=3, elem_id="stn-several-mine")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=240):
                canvas_view = gr.HTML(elem_id="stn-several-canvas")
            with gr.Column(scale=5, min_width=300):
                glimpse_view = gr.HTML(elem_id="stn-several-glimpses")
                readout = gr.HTML(elem_id="stn-several-readout")
                with gr.Row():
                    step = gr.Slider(
                        1, SLOTS, value=SLOTS, step=1, label="glimpses shown", elem_id="stn-several-step", buttons=[]
                    )
                    play = gr.Button("▶ play the glimpses", size="sm", elem_id="stn-several-play", min_width=120)
        gr.Markdown(
            "The sliders below move the digits **A, B and C** (their centres, in px); the numbered windows "
            "**1, 2, 3** are the glimpses, in the order the network takes them. The truth reads the digits left "
            "to right, and **?** is your own digit, whose class the page does not know.",
            elem_id="stn-several-key",
        )
        with gr.Row(elem_id="stn-several-positions"):
            positions = []
            for k in range(SLOTS):  # each digit's centre, in canvas pixels
                for axis, value in zip("xy", first.places[k]):
                    label = f"{PLACES[k]} {axis}"
                    positions.append(
                        gr.Slider(HALF, ROOM + HALF, value=value + HALF, step=1, label=label, min_width=110, buttons=[])
                    )
        picks = gr.State(first.picks)
        clutter_seed = gr.State(first.clutter_seed)
        reading = gr.State(None)

    def scene_of(picks_, seed, clutter_on, mine_, *xy) -> Scene:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in xy):
            raise LabError(f"a digit's centre must be a number of pixels from {HALF} to {ROOM + HALF}")
        chosen = list(picks_)
        if mine_ in PLACES:
            chosen[PLACES.index(mine_)] = OWN
        places = tuple((int(xy[2 * k]) - HALF, int(xy[2 * k + 1]) - HALF) for k in range(SLOTS))
        return Scene(tuple(chosen), places, int(seed) if clutter_on else None)

    def render(digit, picks_, seed, clutter_on, mine_, slug, step_, *xy):
        """Read the scene again and draw it; a scene that cannot be drawn says why and keeps the last picture."""
        try:
            result = several.read(scene_of(picks_, seed, clutter_on, mine_, *xy), slug, digit)
        except LabError as error:
            gr.Warning(str(error))
            return [gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        return [result, canvas_html(result, step_), glimpses_html(result, step_), readout_html(result, step_)]

    def show(result, step_):
        if result is None:
            return [gr.skip()] * 3
        return [canvas_html(result, step_), glimpses_html(result, step_), readout_html(result, step_)]

    def play_glimpses(result):
        """Glimpse 1, then 2, then 3, as the network takes them."""
        if result is None:
            return
        for k in range(1, result.glimpses.shape[0] + 1):
            if k > 1:
                time.sleep(PLAY_PAUSE_S)
            yield [k, *show(result, k)]

    def new_scene():
        scene = several.random_scene(random.randrange(1_000_000))
        return [scene.picks, scene.clutter_seed, *[v + HALF for place in scene.places for v in place]]

    inputs = [page.digit, picks, clutter_seed, clutter, mine, model, step, *positions]
    outputs = [reading, canvas_view, glimpse_view, readout]
    shown = [canvas_view, glimpse_view, readout]
    # Dragging a digit is drawn by the live channel (stn_lab/static/live.js sends the scene
    # on every slider input); its release, a Gradio event, reads the final scene here, so
    # the step slider and "play" work on what is on screen (and without the socket, a
    # drag is drawn when it ends).
    for control in positions:
        control.release(render, inputs, outputs, trigger_mode="always_last", **QUIET)
    for control in (clutter, mine, model):
        control.change(render, inputs, outputs, trigger_mode="always_last", **QUIET)
    step.input(user_errors(show), [reading, step], shown, trigger_mode="always_last", **QUIET)
    play.click(play_glimpses, reading, [step, *shown], **QUIET)
    again.click(new_scene, None, [picks, clutter_seed, *positions], **QUIET).then(render, inputs, outputs, **QUIET)
    return TeachingView(ID, tab, inputs, outputs, render)
