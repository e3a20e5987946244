""" "How it works": the five stages of a spatial transformer, for the current digit."""

from __future__ import annotations

import gradio as gr

from ..lab import Lab
from . import NO_DIGIT, Page, TeachingView

ID, TITLE = "how", "How it works"


def build(lab: Lab, page: Page) -> TeachingView:
    with gr.Tab(TITLE, id=ID) as tab:
        text = gr.Markdown(NO_DIGIT)
        with gr.Row(elem_id="stn-how-stages", elem_classes="stn-two-a-row"):
            input_view = gr.HTML(label="1. input U", show_label=True, container=True)
            grid_view = gr.HTML(label="2–3. localisation net → θ → grid Tθ(G)", show_label=True, container=True)
            warped_view = gr.HTML(label="4. sampler → V", show_label=True, container=True)
            probs = gr.Label(label="5. classifier", num_top_classes=3)

    def render(digit, label, model, *controls):
        if digit is None:
            return [NO_DIGIT, None, None, None, None]
        frame = lab.frame(digit, lab.controls(*controls), model)
        words, canvas = lab.stages(frame)
        return [words, canvas, frame.grid_html, frame.warped_html, frame.st_probs]

    return TeachingView(ID, tab, page.inputs, [text, input_view, grid_view, warped_view, probs], render)
