""" "Cluttered": the current digit on a 60×60 canvas with clutter, read by the TC model."""

from __future__ import annotations

import random

import gradio as gr

from stn_core.controls import Controls

from ..lab import Lab
from . import NO_DIGIT, QUIET, Page, TeachingView, user_errors

ID, TITLE = "clutter", "Cluttered"


def build(lab: Lab, page: Page) -> TeachingView:
    key = lab.model_for_regime("TC")
    with gr.Tab(TITLE, id=ID) as tab:
        gr.Markdown(
            "The TC model reads a 60×60 canvas with fragments of other digits. Its attention transformer picks the "
            "window its classifier reads: compare where the grid sits with where the digit is."
        )
        again = gr.Button("new clutter and position", size="sm")
        with gr.Row(elem_id="stn-clutter-pictures", elem_classes="stn-two-a-row"):
            grid_view = gr.HTML(label="60×60 input with the sampling grid", show_label=True, container=True)
            warped_view = gr.HTML(label="what the classifier sees", show_label=True, container=True)
            probs = gr.Label(label="TC ST-CNN", num_top_classes=3)
        text = gr.Markdown()

    def render(digit, label, model, *controls):
        if key is None:
            return [None, None, None, "No TC (cluttered) model ships with this copy."]
        if digit is None:
            return [None, None, None, NO_DIGIT]
        placed = Controls(
            clutter=True, seed=random.randrange(1000), shift_x=random.uniform(-0.5, 0.5), shift_y=random.uniform(-0.5, 0.5)
        )
        frame = lab.frame(digit, placed, key)
        return [frame.grid_html, frame.warped_html, frame.st_probs, frame.theta_text]

    outputs = [grid_view, warped_view, probs, text]
    again.click(user_errors(render), page.inputs, outputs, **QUIET)
    return TeachingView(ID, tab, page.inputs, outputs, render)
