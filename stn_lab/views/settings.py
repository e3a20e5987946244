"""Lecture settings (large text, high contrast, dark theme) and links that restore a view.

The switches only change how the page looks, so they run in the browser alone (the CSS
they switch on is in ``stn_lab/static/lab.css``). A link carries the sliders, the model,
the open tab and the digit: a sample's number, or a drawn or uploaded digit itself
(28×28, compressed into the URL: :func:`stn_lab.lab.pack_digit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..lab import Lab
from . import QUIET, Page, user_errors

# The classes live on <html>, so that they reach everything, Gradio's own variables included.
TOGGLE_JS = "(on) => { document.documentElement.classList.toggle('%s', on); return on; }"
DARK_JS = "(on) => { document.body.classList.toggle('dark', on); return on; }"
COPY_JS = """async (query) => {
  if (!query) return [query, ""];
  history.replaceState(null, "", query);
  const url = location.href;
  try {
    await navigator.clipboard.writeText(url);
    return [url, "✓ Link copied to the clipboard."];
  } catch (error) {
    return [url, "Copy the link from the box (this browser did not allow copying)."];
  }
}"""


@dataclass
class Settings:
    link_query: gr.Textbox


def build(lab: Lab, page: Page) -> Settings:
    with gr.Accordion("Lecture settings and sharing", open=False):
        # Phones wrap it (lab.css): in one row "large text (projector)" and "dark theme" were cut off.
        with gr.Row(elem_id="stn-settings-row"):
            large_text = gr.Checkbox(label="large text (projector)", elem_id="stn-large-text")
            high_contrast = gr.Checkbox(label="high contrast", elem_id="stn-high-contrast")
            dark = gr.Checkbox(label="dark theme", elem_id="stn-dark")
            link_button = gr.Button("copy a link to this view", size="sm")
        link = gr.Textbox(label="link", interactive=False, elem_id="stn-link")
        confirmation = gr.Markdown(elem_id="stn-link-copied")
        query = gr.Textbox(visible=True, elem_classes="stn-hidden", show_label=False, container=False)

    large_text.change(None, large_text, large_text, js=TOGGLE_JS % "stn-large", **QUIET)
    high_contrast.change(None, high_contrast, high_contrast, js=TOGGLE_JS % "stn-contrast", **QUIET)
    dark.change(None, dark, dark, js=DARK_JS, **QUIET)

    @user_errors
    def make_link(digit, index, model, tab, *controls):
        return lab.query_string(lab.controls(*controls), index, model, tab, digit=digit)

    link_inputs = [page.digit, page.sample_index, page.model, page.current_tab, *page.control_list]
    link_button.click(make_link, link_inputs, query, **QUIET).then(None, query, [link, confirmation], js=COPY_JS, **QUIET)
    return Settings(query)
