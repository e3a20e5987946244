""" "Batch view": 16 test digits of a regime and what the spatial transformer made of them."""

from __future__ import annotations

import random

import gradio as gr

from ..lab import Lab
from . import QUIET, Page, TeachingView, user_errors

ID, TITLE = "batch", "Batch view"


def build(lab: Lab, page: Page) -> TeachingView:
    regimes = [regime for regime in lab.regimes() if lab.model_for_regime(regime)]
    with gr.Tab(TITLE, id=ID) as tab:
        with gr.Row():
            regime = gr.Radio(regimes, value=regimes[0] if regimes else None, label="regime")
            again = gr.Button("draw 16 other test digits", variant="primary", size="sm")
        picture = gr.Image(label="distorted inputs (rows 1, 3) and rectified outputs (rows 2, 4)", interactive=False)
        text = gr.Markdown()

    def render(chosen):
        return list(lab.batch_view(chosen, None, random.randrange(2**31 - 1)))

    for event in (again.click, regime.change):
        event(user_errors(render), regime, [picture, text], **QUIET)
    return TeachingView(ID, tab, [regime], [picture, text], render)
