""" "Watch it learn": the shipped training time-lapses, from the identity to the end: the
RTS affine ST-CNN learning to undo a distortion, then (when it ships) the glimpse RNN
learning where on a three-digit canvas to look."""

from __future__ import annotations

import gradio as gr

from ..lab import Lab
from ..several import sequence_timelapse, timelapse_html
from . import QUIET, Page, TeachingView, user_errors

ID, TITLE = "learn", "Watch it learn"


def build(lab: Lab, page: Page) -> TeachingView:
    steps = lab.timelapse_steps()
    lapse = sequence_timelapse()
    with gr.Tab(TITLE, id=ID) as tab:
        if not steps:
            gr.Markdown("No training time-lapse ships with this copy.")
            return TeachingView(ID, tab, [], [], lambda: [])
        position = gr.Slider(0, len(steps) - 1, value=0, step=1, label="recorded training step (0 = identity, before training)")
        with gr.Row():
            now = gr.Image(
                label="at this step: 16 fixed test digits (rows 1, 3) and the ST's outputs (rows 2, 4)", interactive=False
            )
            final = gr.Image(label="at the end of training", interactive=False)
        text = gr.Markdown()
        glimpse_outputs = []
        if lapse is not None:
            gr.Markdown(
                "**Several digits: the glimpse RNN learning where to look.** At step 0 its three windows are the "
                "initial crops (left, middle, right); as it trains they wander, then settle on the digits."
            )
            glimpse_position = gr.Slider(0, len(lapse) - 1, value=0, step=1, label="recorded training step of the glimpse RNN")
            glimpse_frame = gr.HTML(elem_id="stn-learn-glimpses")
            glimpse_text = gr.Markdown()
            glimpse_outputs = [glimpse_frame, glimpse_text]

    def render(at, *glimpse_at):
        picture, words = lab.timelapse_frame(at)
        last, last_words = lab.timelapse_frame(len(steps) - 1)
        answer = [picture, last, f"{words}\n\nAt the end: {last_words}"]
        if glimpse_at:
            answer += list(timelapse_html(lapse, glimpse_at[0]))
        return answer

    def render_glimpses(at):
        return list(timelapse_html(lapse, at))

    position.input(user_errors(render), position, [now, final, text], trigger_mode="always_last", **QUIET)
    inputs, outputs = [position], [now, final, text]
    if lapse is not None:
        glimpse_position.input(render_glimpses, glimpse_position, glimpse_outputs, trigger_mode="always_last", **QUIET)
        inputs, outputs = [position, glimpse_position], outputs + glimpse_outputs
    return TeachingView(ID, tab, inputs, outputs, render)
