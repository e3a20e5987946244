""" "Invariance sweep": how sure each model stays as the digit turns and grows."""

from __future__ import annotations

import gradio as gr

from ..lab import Lab
from . import NO_DIGIT, Page, TeachingView

ID, TITLE = "sweep", "Invariance sweep"


def build(lab: Lab, page: Page) -> TeachingView:
    with gr.Tab(TITLE, id=ID) as tab:
        note = gr.Markdown(
            "Probability of the true class as the digit turns (−180°…180°) and grows, for the ST-CNN and the plain CNN: "
            "one batched pass per curve, redrawn when you release a slider."
        )
        plot = gr.Plot(show_label=False)

    def render(digit, label, model, *controls):
        if digit is None:
            return [NO_DIGIT, None]
        return [gr.skip(), lab.sweep_figure(digit, label, lab.controls(*controls), model)]

    return TeachingView(ID, tab, page.inputs, [note, plot], render)
