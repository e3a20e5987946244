""" "Watch it learn": the shipped training time-lapses, from the identity to the end: a
single-digit ST-CNN learning its warp (the RTS affine model undoing rotation, or the TC
attention model learning to zoom), then, when it ships, the glimpse RNN learning where on
a three-digit canvas to look."""

from __future__ import annotations

import gradio as gr

from ..lab import Lab
from ..several import sequence_timelapse, timelapse_html
from . import QUIET, Page, TeachingView, user_errors

ID, TITLE = "learn", "Watch it learn"


def build(lab: Lab, page: Page) -> TeachingView:
    lapses = lab.timelapses()
    sequence = sequence_timelapse()
    with gr.Tab(TITLE, id=ID) as tab:
        if not lapses:
            gr.Markdown("No training time-lapse ships with this copy.")
            return TeachingView(ID, tab, [], [], lambda: [])
        which = gr.Radio(lapses, value=lapses[0][1], label="which model learning", visible=len(lapses) > 1)
        longest = max(len(lab.timelapse_steps(name)) for _, name in lapses)
        position = gr.Slider(
            0, longest - 1, value=0, step=1, label="training snapshot (0 = identity, before training; its step is said below)"
        )
        # Captions above the pictures, not Gradio's image labels, which sit over the picture's top row.
        with gr.Row():
            with gr.Column():
                gr.Markdown("**At this step**")
                now = gr.Image(show_label=False, interactive=False, buttons=[])
            with gr.Column():
                gr.Markdown("**At the end of training**")
                final = gr.Image(show_label=False, interactive=False, buttons=[])
        text = gr.Markdown()
        glimpse_outputs = []
        if sequence is not None:
            gr.Markdown(
                "**Several digits: the glimpse RNN learning where to look.** At step 0 its three windows are the "
                "initial crops (left, middle, right); as it trains they wander, then settle on the digits."
            )
            glimpse_position = gr.Slider(
                0, len(sequence) - 1, value=0, step=1, label="training snapshot of the glimpse RNN (its step is said below)"
            )
            glimpse_frame = gr.HTML(elem_id="stn-learn-glimpses")
            glimpse_text = gr.Markdown()
            glimpse_outputs = [glimpse_frame, glimpse_text]

    def render(name, at, *glimpse_at):
        """Frame ``at`` of time-lapse ``name`` beside its last frame (a lapse with fewer
        frames shows its last one), then the glimpse RNN's frame when it ships."""
        picture, words = lab.timelapse_frame(at, name)
        last, last_words = lab.timelapse_frame(len(lab.timelapse_steps(name)) - 1, name)
        rows = "Rows 1 and 3: 16 fixed test digits; rows 2 and 4: what the ST made of them."
        answer = [picture, last, f"{rows}\n\nAt this step: {words}\n\nAt the end: {last_words}"]
        if glimpse_at:
            answer += list(timelapse_html(sequence, glimpse_at[0]))
        return answer

    single = [which, position]
    for control in (which, position):
        control.input(user_errors(render), single, [now, final, text], trigger_mode="always_last", **QUIET)
    inputs, outputs = single, [now, final, text]
    if sequence is not None:
        glimpse_position.input(
            lambda at: list(timelapse_html(sequence, at)), glimpse_position, glimpse_outputs, trigger_mode="always_last", **QUIET
        )
        inputs, outputs = [*single, glimpse_position], outputs + glimpse_outputs
    return TeachingView(ID, tab, inputs, outputs, render)
