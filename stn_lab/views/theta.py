""" "Set θ yourself": the grid generator and sampler alone, driven by a hand-set affine θ.

The view opens on the localisation net's own θ for the current digit (rounded to the
sliders' steps and clamped to their ranges), so that moving a slider starts from what the
network did.
"""

from __future__ import annotations

import gradio as gr

from ..lab import THETA_DEFAULTS, THETA_RANGES, Lab, LabError
from . import NO_DIGIT, QUIET, Page, TeachingView, user_errors

ID, TITLE = "theta", "Set θ yourself"
LABELS = {
    "rotation": "θ rotation (°)",
    "scale_x": "θ scale x",
    "scale_y": "θ scale y",
    "shear": "θ shear",
    "shift_x": "θ shift x",
    "shift_y": "θ shift y",
}


def build(lab: Lab, page: Page) -> TeachingView:
    with gr.Tab(TITLE, id=ID) as tab:
        gr.Markdown(
            "Drive the **grid generator and sampler alone**: these sliders set an affine θ directly, "
            "with no localisation net. They start from the net's own θ for this digit."
        )
        with gr.Row(elem_id="stn-theta-sliders"):
            manual = {
                name: gr.Slider(low, high, value=THETA_DEFAULTS[name], step=step, label=LABELS[name], min_width=130)
                for name, (low, high, step) in THETA_RANGES.items()
            }
        copy_theta = gr.Button("copy the net's predicted θ in again", size="sm")
        with gr.Row():
            grid_view = gr.HTML(label="input with your grid", show_label=True, container=True)
            warped_view = gr.HTML(label="your warped output", show_label=True, container=True)
        text = gr.Markdown(NO_DIGIT)

    def warp(digit, model, *values):
        controls, theta = values[: len(page.controls)], values[len(page.controls) :]
        if digit is None:
            return [None, None, NO_DIGIT]
        return list(lab.manual_warp(digit, lab.controls(*controls), model, dict(zip(THETA_DEFAULTS, theta))))

    def render(digit, label, model, *controls):
        if digit is None:
            return [*[gr.skip()] * len(manual), None, None, NO_DIGIT]
        try:
            parts = lab.predicted_theta_parts(digit, lab.controls(*controls), model)
        except LabError as error:  # a projective or TPS model has no affine θ to copy
            parts = dict(THETA_DEFAULTS)
            note = f"({error}; starting from the identity.)"
        else:
            note = ""
        values = [parts[name] for name in THETA_DEFAULTS]
        grid, warped, words = warp(digit, model, *controls, *values)
        return [*values, grid, warped, f"{words}\n\n{note}".strip()]

    manual_inputs = [page.digit, page.model, *page.control_list, *manual.values()]
    for slider in manual.values():
        slider.input(user_errors(warp), manual_inputs, [grid_view, warped_view, text], trigger_mode="always_last", **QUIET)
    outputs = [*manual.values(), grid_view, warped_view, text]
    copy_theta.click(user_errors(render), page.inputs, outputs, **QUIET)
    return TeachingView(ID, tab, page.inputs, outputs, render)
