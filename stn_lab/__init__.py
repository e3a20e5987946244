"""STN Lab, the web page: everything that knows of Gradio, the browser or serving.

The library (:mod:`stn_core`) knows nothing of this package. Here:
:mod:`~stn_lab.service` (loads the shipped models, batches requests, the ZeroGPU glue),
:mod:`~stn_lab.lab` (what each panel shows, as plain values), :mod:`~stn_lab.rendering`
(pictures, SVG grids, θ in words) and :mod:`~stn_lab.live` (the WebSocket channel that
serves slider frames). ``app.py`` at the repository root composes the page.
"""
