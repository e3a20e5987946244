"""The page, one module per view, in the order they appear on screen.

* :mod:`.main_view`: the live view (input with its sampling grid, warped output, both
  models' answers, θ in words), the digit sources, the model and the sliders;
* the teaching views, one tab each: :mod:`.how`, :mod:`.theta`, :mod:`.sweep`,
  :mod:`.batch`, :mod:`.learn`, :mod:`.clutter`;
* :mod:`.settings`: lecture settings and shareable links.

Each module creates its own components and wires its own events. What they share is a
:class:`Page`: the session's digit, the model and the controls. A teaching view is a
:class:`TeachingView`: its components, and a ``render`` that fills them for the current
digit, model and controls (``app.py`` calls it when the view is opened and after every
change while it is open).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import gradio as gr

from stn_core.controls import CONTROL_NAMES

from ..lab import LabError

# Events that draw nothing of their own: no spinner, not in the API docs.
QUIET = dict(show_progress="hidden", api_visibility="undocumented")
NO_DIGIT = "Pick a sample, draw or upload a digit first."


def user_errors(handler):
    """Turn :class:`LabError` into Gradio's error message, leaving the app as it was."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except LabError as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapped


def menu(choices: list[tuple[str, str]], min_width: int, scale: int, elem_id: str | None = None) -> gr.Dropdown:
    """A toolbar's menu: no label (its choices say what it is), opened on the first choice."""
    return gr.Dropdown(
        choices, value=choices[0][1], show_label=False, container=False, min_width=min_width, scale=scale, elem_id=elem_id
    )


def several_digit_toolbar(view_id: str, intro: str, button: str, choices: list[tuple[str, str]]) -> tuple:
    """The top of a several-digit view: its line of words, then a toolbar opened with a
    "random" button and the model menu (the caller adds the rest of the row inside the
    returned ``gr.Row``): ``(row, button, model menu)``."""
    gr.Markdown(intro, elem_id=f"stn-{view_id}-intro")
    row = gr.Row(elem_id=f"stn-{view_id}-toolbar", equal_height=True)
    with row:
        again = gr.Button(button, size="sm", elem_id=f"stn-{view_id}-random", min_width=120, scale=1)
        model = menu(choices, min_width=220, scale=4)
    return row, again, model


@dataclass
class Page:
    """Components every view reads: the session's digit, its label, the model, the controls."""

    digit: gr.State  # (28, 28) float array in [0, 1], or None
    label: gr.State  # the true class when the digit is an MNIST sample
    sample_index: gr.State
    digit_code: gr.Textbox  # the digit as base64 (stn_lab.live.encode_digit), for the browser
    model: gr.Dropdown
    controls: dict[str, gr.components.Component] = field(default_factory=dict)
    current_tab: gr.State | None = None

    @property
    def control_list(self) -> list:
        """The controls in :data:`~stn_core.controls.CONTROL_NAMES` order (how handlers take them)."""
        return [self.controls[name] for name in CONTROL_NAMES]

    @property
    def inputs(self) -> list:
        """``[digit, label, model, *controls]``: what a teaching view's ``render`` takes."""
        return [self.digit, self.label, self.model, *self.control_list]


@dataclass
class TeachingView:
    """A tab below the main view: ``render(*inputs)`` fills ``outputs`` (by default the
    inputs are :attr:`Page.inputs`: digit, label, model, then the controls)."""

    id: str
    tab: gr.Tab
    inputs: list
    outputs: list
    render: Callable[..., list]
