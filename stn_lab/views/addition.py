""" "Two digits summed": MNIST addition read by two spatial transformers side by side (the
addition task of :mod:`stn_core.multi`, the paper's appendix A.4).

Top to bottom as on screen: a line of words; the toolbar (a random pair, the model, where
the main view's digit goes); the two channels with each transformer's grid beside each
transformer's output and the sums read; each digit's pose.
"""

from __future__ import annotations

import random

import gradio as gr

from ..addition import OWN, POSE_NAMES, POSE_RANGES, Pair, channels_html, outputs_html, sum_html
from ..lab import Lab, LabError
from . import QUIET, Page, TeachingView, menu, several_digit_toolbar

ID, TITLE = "addition", "Two digits summed"
FIRST_SEED = 3  # the pair the view opens on: two clear digits, summed right by every model
MINE = [("your digit: unused", "none"), ("your digit as digit 1", "0"), ("your digit as digit 2", "1")]
POSE_WORDS = {"rotation": "turn", "scale": "scale", "x": "x", "y": "y"}
POSE_STEPS = {"rotation": 1, "scale": 0.01, "x": 0.01, "y": 0.01}


def build(lab: Lab, page: Page) -> TeachingView:
    addition = lab.addition
    choices = addition.choices()
    # Hidden while no addition model ships: an empty tab would only say so.
    with gr.Tab(TITLE, id=ID, visible=bool(choices)) as tab:
        if not choices:
            gr.Markdown("No addition model ships with this copy.")
            return TeachingView(ID, tab, [], [], lambda: [])
        first = addition.random_pair(FIRST_SEED)
        row, again, model = several_digit_toolbar(
            ID,
            "Each channel holds one digit; the label is only their **sum**. Two **spatial transformers** side by side "
            "each read both channels and warp both (grid 1 orange, grid 2 blue); one classifier reads their outputs.",
            "random pair",
            choices,
        )
        with row:
            mine = menu(MINE, min_width=160, scale=2, elem_id="stn-addition-mine")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=300):
                channels_view = gr.HTML(elem_id="stn-addition-channels")
            with gr.Column(scale=4, min_width=260):
                outputs_view = gr.HTML(elem_id="stn-addition-outputs")
                readout = gr.HTML(elem_id="stn-addition-readout")
        with gr.Row(elem_id="stn-addition-poses"):
            poses = []
            for k in range(2):
                for name, value in zip(POSE_NAMES, first.poses[k]):
                    low, high = POSE_RANGES[name]
                    label = f"{k + 1} {POSE_WORDS[name]}"
                    slider = gr.Slider(low, high, value=value, step=POSE_STEPS[name], label=label, min_width=100, buttons=[])
                    poses.append(slider)
        picks = gr.State(first.picks)

    def pair_of(picks_, mine_, *values) -> Pair:
        chosen = list(picks_)
        if mine_ in ("0", "1"):
            chosen[int(mine_)] = OWN
        count = len(POSE_NAMES)
        return Pair(tuple(chosen), tuple(tuple(values[k * count : (k + 1) * count]) for k in range(2)))

    def render(digit, picks_, mine_, slug, *values):
        """Read the pair again and draw it; a pair that cannot be drawn says why and keeps the last picture."""
        try:
            result = addition.read(pair_of(picks_, mine_, *values), slug, digit)
        except LabError as error:
            gr.Warning(str(error))
            return [gr.skip()] * 3
        return [channels_html(result), outputs_html(result), sum_html(result)]

    def new_pair():
        pair = addition.random_pair(random.randrange(1_000_000))
        return [pair.picks, *[v for pose in pair.poses for v in pose]]

    inputs = [page.digit, picks, mine, model, *poses]
    outputs = [channels_view, outputs_view, readout]
    for control in poses:
        control.release(render, inputs, outputs, trigger_mode="always_last", **QUIET)
    for control in (mine, model):
        control.change(render, inputs, outputs, trigger_mode="always_last", **QUIET)
    again.click(new_pair, None, [picks, *poses], **QUIET).then(render, inputs, outputs, **QUIET)
    return TeachingView(ID, tab, inputs, outputs, render)
