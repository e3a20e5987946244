""" "Watch it learn": the shipped training time-lapse, from the identity to the end."""

from __future__ import annotations

import gradio as gr

from ..lab import Lab
from . import QUIET, Page, TeachingView, user_errors

ID, TITLE = "learn", "Watch it learn"


def build(lab: Lab, page: Page) -> TeachingView:
    steps = lab.timelapse_steps()
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

    def render(at):
        picture, words = lab.timelapse_frame(at)
        last, last_words = lab.timelapse_frame(len(steps) - 1)
        return [picture, last, f"{words}\n\nAt the end: {last_words}"]

    position.input(user_errors(render), position, [now, final, text], trigger_mode="always_last", **QUIET)
    return TeachingView(ID, tab, [position], [now, final, text], render)
