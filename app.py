"""STN Lab: pick, draw or upload a digit, distort it live, and watch a spatial transformer undo it.

    python app.py        # http://localhost:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)

The Space's entry point. It composes the page from its views (``stn_lab/views/``, one
module per view, top to bottom as on screen), adds the public API, and serves it all
with the live channel (``stn_lab/live.py``) on the same server. Importing this module
builds nothing and loads nothing; :func:`build_app` does.
"""

from __future__ import annotations

import ctypes
import inspect
import json
import logging
import os
import threading
import time
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from starlette.routing import WebSocketRoute

from stn_core.preprocess import MAX_BYTES
from stn_lab.lab import LINK_KEYS, Lab, LabError
from stn_lab.live import LiveHub, decode_digit, frame_payload, parse_frame_request, parse_message
from stn_lab.views import QUIET, addition, batch, clutter, how, learn, main_view, settings, several, sweep, theta, user_errors

STATIC = Path(__file__).resolve().parent / "stn_lab" / "static"
# The Gradio internals this file relies on (Blocks.validate_inputs, Blocks.temp_file_sets,
# Blocks.app for the live route, Blocks.server.config for the live socket's compression) were
# read in this version; another one must be re-checked.
GRADIO_CHECKED = "6.31."
QUEUE_SIZE, CONCURRENCY = 256, 4
# Uploads and output pictures older than 30 min are deleted, checked every 10 min, so the
# temp folder holds at most ~40 min of traffic.
DELETE_CACHE = (600, 1800)
LIVE_DEFLATE = False  # see launch()
TEACHING_VIEWS = (how, theta, sweep, batch, learn, clutter, several, addition)
log = logging.getLogger("stn_lab")


def check_gradio_version(version: str = gr.__version__) -> None:
    """Fail loudly, at start-up, on a Gradio whose internals we have not read."""
    if not version.startswith(GRADIO_CHECKED):
        raise RuntimeError(
            f"STN Lab relies on Gradio internals checked in Gradio {GRADIO_CHECKED}x, found {version}: "
            "re-check LabBlocks and launch() in app.py, then update GRADIO_CHECKED"
        )


class LabBlocks(gr.Blocks):
    """``gr.Blocks`` whose API names the arguments a call left out, and which deletes its
    old temp files itself (both rely on Gradio internals: see :func:`check_gradio_version`)."""

    def validate_inputs(self, block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            names = inspect.signature(block_fn.fn).parameters
            api_names = [name for name, block in zip(names, block_fn.inputs) if not block.stateful]
            missing = ", ".join(api_names[len(inputs) :]) or "a session value"
            raise gr.Error(
                f"/{block_fn.api_name} takes {len(api_names)} arguments ({', '.join(api_names)}); missing: {missing}",
                print_exception=False,
            )
        super().validate_inputs(block_fn, inputs)

    def delete_old_files(self, age: float) -> int:
        """Delete the uploads and output files of this app older than ``age`` seconds (and
        their folders); returns how many. Replaces Gradio's ``delete_cache`` task: with
        gradio 6.31 under concurrent load it stopped deleting for good (the soak benchmark's
        temp folder grew without bound); it iterates these sets while handlers add to them,
        which raises "Set changed size during iteration" and ends the task."""
        keep = set().union(*(getattr(block, "keep_in_cache", set()) for block in self.blocks.values()))
        deleted, now = 0, time.time()
        for temp_set in list(self.temp_file_sets):
            for path in list(temp_set):  # a snapshot, taken in one step under the GIL
                if path in keep:
                    continue
                try:
                    if now - os.lstat(path).st_ctime <= age:
                        continue
                    os.remove(path)
                    deleted += 1
                    os.rmdir(os.path.dirname(path))  # Gradio keeps each file in a folder of its own
                except OSError:  # gone already, or a folder still holding other files
                    pass
                temp_set.discard(path)
        return deleted


def build_app(lab: Lab) -> LabBlocks:
    """The whole STN Lab page over ``lab``; its live channel is ``demo.live_hub``."""
    with LabBlocks(title="STN Lab") as demo:
        main = main_view.build(lab)
        page = main.page
        page.current_tab = gr.State(TEACHING_VIEWS[0].ID)  # the teaching view on show (for links and refreshes)
        # wrap, not a "⋯" menu: on a projector with large text every view stays in sight.
        with gr.Tabs(elem_id="stn-views", overflow_behavior="wrap") as tabs:
            views = [module.build(lab, page) for module in TEACHING_VIEWS]
        settings.build(lab, page)

        # -- keeping every view in step --------------------------------------------------------
        # One refresh event for all teaching views: it renders the open one and skips the rest.
        inputs = [page.current_tab]
        for view in views:
            inputs += [component for component in view.inputs if component not in inputs]
        slots = [[inputs.index(component) for component in view.inputs] for view in views]
        outputs = [component for view in views for component in view.outputs]

        @user_errors
        def refresh(tab, *values):
            values = (tab, *values)
            answer = []
            for view, slot in zip(views, slots):
                if view.id == tab:
                    answer += view.render(*(values[i] for i in slot))
                else:
                    answer += [gr.skip()] * len(view.outputs)
            return answer

        refresh_event = dict(fn=refresh, inputs=inputs, outputs=outputs, trigger_mode="always_last", **QUIET)

        def changed(event):
            """After a change made in Python: the browser redraws, the open view catches up."""
            return main_view.tell_browser(page, event).then(**refresh_event)

        for event in main.changes:
            changed(event)
        for view in views:
            view.tab.select(lambda tab_id=view.id: tab_id, None, page.current_tab, **QUIET).then(**refresh_event)

        def restore(request: gr.Request):
            """Open on a link's view, or on the first sample, mildly distorted."""
            params = dict(request.query_params) if request else {}
            params = {key: value for key, value in params.items() if key in LINK_KEYS}  # not ?live=off
            state = lab.state_from_query(params)
            controls = state["controls"] if params else main_view.FIRST_CONTROLS
            if state["digit"] is not None:
                digit = main_view.digit_values(lab, state["digit"])
            else:
                sample = state["sample"] if state["sample"] is not None else (None if params else main_view.FIRST_SAMPLE)
                digit = (
                    main_view.digit_values(lab, *lab.sample_digit(sample), sample)
                    if sample is not None
                    else main_view.digit_values(lab, None)
                )
            tab = state["tab"] or TEACHING_VIEWS[0].ID
            values = [getattr(controls, name) for name in page.controls]
            return [*digit, *values, state["model"], gr.Tabs(selected=tab), tab]

        changed(demo.load(restore, None, [*main.digit_outputs, *page.control_list, page.model, tabs, page.current_tab], **QUIET))

        # -- the public API ------------------------------------------------------------------------

        def predict(
            image: FileData,
            rotation: float = 0.0,
            scale: float = 1.0,
            shift_x: float = 0.0,
            shift_y: float = 0.0,
            model: str = "",
        ) -> dict:
            """An image of one digit, distorted by rotation (degrees), scale and shift, through
            model ``model`` (a slug such as ``rts-st-cnn-affine``; empty: the default).
            Returns ``{model, theta, st_label, st_probs, cnn_label, cnn_probs, warped_png}``."""
            try:
                return lab.predict(_uploaded_path(demo, image), rotation, scale, shift_x, shift_y, model or None)
            except LabError as error:
                raise gr.Error(str(error), print_exception=False) from None

        def live_frame(digit: str, model: str, controls: str) -> dict:
            """The live channel's frame through Gradio's event path (the browser's fallback):
            ``digit`` as base64 of 28x28 uint8, ``model`` a slug, ``controls`` a JSON object."""
            try:
                message = parse_message(
                    json.dumps({"type": "frame", "model": model or None, "controls": json.loads(controls or "{}")})
                )
                key, checked = parse_frame_request(lab, message)
                result = lab.service.predict(decode_digit(digit), checked, key, fast=True)
                return frame_payload(lab, key, result)
            except (LabError, ValueError, TypeError, OverflowError, RecursionError) as error:
                return {"type": "error", "message": str(error)}

        gr.api(predict, api_name="predict")
        gr.api(live_frame, api_name="live_frame")
    demo.live_hub = LiveHub(lab)
    return demo


def _uploaded_path(demo: gr.Blocks, image) -> str:
    """The server path of an uploaded file, only if Gradio's upload cache holds it: a client
    naming any other path (``/etc/passwd``) is refused, not read."""
    path = image.get("path") if isinstance(image, dict) else getattr(image, "path", None)
    if not isinstance(path, str) or not path:
        raise LabError("no image: upload a file (PNG, JPEG, WebP, GIF, BMP or TIFF)")
    resolved = Path(path).resolve()
    cache = Path(demo.GRADIO_CACHE).resolve()
    if cache not in resolved.parents:
        raise LabError("this file was not uploaded to the app: upload it first")
    return str(resolved)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Call first thing, before any thread starts: glibc gives threads malloc arenas of their
    own (up to 8 per core), and Gradio's many worker threads leave memory stranded in them.
    Over 2,000 requests resident memory grew +62 MB with glibc's default (+141 MB when this
    was set too late, after threads had started) and +5 MB with 2 arenas
    (benchmarks/bench_soak.py). Same as ``MALLOC_ARENA_MAX=2``; a no-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def page_assets() -> dict:
    """The page's CSS and JavaScript, from their files in ``stn_lab/static/``."""
    scripts = "".join(f"<script>{(STATIC / name).read_text(encoding='utf-8')}</script>" for name in ("live.js", "sketch.js"))
    return dict(css_paths=[STATIC / "lab.css"], head=scripts)


def launch(
    demo: LabBlocks,
    queue_size: int = QUEUE_SIZE,
    concurrency: int = CONCURRENCY,
    delete_cache: tuple[float, float] = DELETE_CACHE,
    **options,
):
    """Queue and serve ``demo`` as STN Lab runs: bounded queue (overload gets a "busy"
    answer, not a crash), ``concurrency`` handlers at once per event, uploads capped before
    decoding, temp files older than ``delete_cache[1]`` s deleted every ``delete_cache[0]`` s,
    and the live channel at ``/live``. ``options`` go to ``Blocks.launch``."""
    check_gradio_version()
    every, age = delete_cache

    def delete_old_files():
        while True:
            time.sleep(every)
            try:
                demo.delete_old_files(age)
            except Exception:  # never let a cleaning error stop the cleaning
                log.exception("deleting old temp files failed")

    threading.Thread(target=delete_old_files, name="stn-delete-old-files", daemon=True).start()
    settings_ = dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_BYTES,
        theme=gr.themes.Soft(),
        **page_assets(),
    )
    # The live channel on Gradio's own server (FastAPI serves WebSockets). Gradio creates
    # its FastAPI app inside launch(); a route added afterwards is never matched, so the
    # route goes in through the app's constructor arguments.
    app_kwargs = {**options.pop("app_kwargs", {}), "routes": [WebSocketRoute("/live", demo.live_hub.endpoint)]}
    block = not options.pop("prevent_thread_lock", False)
    result = demo.queue(max_size=queue_size, default_concurrency_limit=concurrency).launch(
        **{**settings_, **options}, app_kwargs=app_kwargs, prevent_thread_lock=True
    )
    # The live socket's frames are small binary messages (about 4 kB, mostly the two
    # pictures; benchmarks/bench_live_tick.py): compressing each one (permessage-deflate,
    # which uvicorn offers by default and every browser accepts) cost the event loop about
    # a third of its time per frame in a lecture hall (py-spy, 100 students) for a few kB.
    # Uvicorn reads this setting when a connection opens, so connections from now on are
    # uncompressed.
    demo.server.config.ws_per_message_deflate = LIVE_DEFLATE
    if block:
        demo.block_thread()
    return result


def main() -> None:
    limit_malloc_arenas()
    launch(build_app(Lab()))


if __name__ == "__main__":
    main()
