"""STN Lab: draw or pick a digit, distort it live, and watch a spatial transformer undo it.

    python app.py        # http://localhost:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)

Layout and event wiring only: every computation lives in :mod:`stn_lab.lab` and below.
Importing this module builds nothing and loads nothing; :func:`build_app` does.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import logging
import os
import random
import threading
import time

import gradio as gr

from stn_core.controls import CONTROL_RANGES, Controls
from stn_lab.lab import THETA_DEFAULTS, Lab, LabError

MAX_FILE_SIZE = "10mb"
MAX_BATCH = 16  # concurrent slider frames served by one forward pass
QUEUE_SIZE, CONCURRENCY = 256, 4
# Uploads and output pictures older than 30 min are deleted, checked every 10 min, so the
# temp folder holds at most ~40 min of traffic.
DELETE_CACHE = (600, 1800)
log = logging.getLogger("stn_lab")
INTRO = """# STN Lab — see a Spatial Transformer Network work
Draw a digit, upload one or pick a real MNIST digit, then **drag the sliders** to rotate, scale,
shift or bend it. The localisation net predicts **θ**, the grid generator turns θ into the
sampling grid **T<sub>θ</sub>(G)** (drawn over the input), and the sampler produces the
**warped output V** the classifier sees — upright again. Compare the ST-CNN's answer with a
plain CNN trained on the same distortions. (Jaderberg et al., *Spatial Transformer Networks*, NIPS 2015.)"""

CSS = """
.stn-large { font-size: 125% !important; }
.stn-large .prose, .stn-large label, .stn-large button { font-size: 120% !important; }
.stn-contrast { --body-text-color: #000; --block-label-text-color: #000; filter: contrast(1.25); }
.dark .stn-contrast { --body-text-color: #fff; --block-label-text-color: #fff; }
.stn-pixels img { image-rendering: pixelated; }
"""
# Toggles run in the browser alone: they change how the page looks, not what it computes.
TOGGLE_JS = "(on) => { document.querySelector('gradio-app').classList.toggle('%s', on); return on; }"
DARK_JS = "(on) => { document.body.classList.toggle('dark', on); return on; }"
LINK_JS = "(query) => { if (query) { history.replaceState(null, '', query); navigator.clipboard && navigator.clipboard.writeText(location.href); } return query; }"

PRESETS = {
    "upside-down 7": ({"rotation": 180.0}, "7", "RTS"),
    "tiny shifted 3": ({"scale": 0.7, "shift_x": 0.3, "shift_y": -0.25}, "3", "RTS"),
    "tilted 2": ({"rotation": 40.0, "shear": 0.3}, "2", "RTS"),
    "cluttered 4": ({"clutter": True, "shift_x": -0.4, "shift_y": 0.3, "seed": 3}, "4", "TC"),
}


def user_errors(handler):
    """Turn :class:`LabError` into a message in the page, leaving the app as it was."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except LabError as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapped


class LabBlocks(gr.Blocks):
    """``gr.Blocks`` whose API names the arguments a call left out. (Gradio's own message
    for this is an internal error, which users never see: they would get a bare "Error".)"""

    def validate_inputs(self, block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            names = inspect.signature(block_fn.fn).parameters
            api_names = [name for name, block in zip(names, block_fn.inputs) if not block.stateful]
            missing = ", ".join(api_names[len(inputs):]) or "a session value"
            raise gr.Error(f"/{block_fn.api_name} takes {len(api_names)} arguments ({', '.join(api_names)}); missing: {missing}", print_exception=False)
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


def build_app(lab: Lab) -> gr.Blocks:
    """The whole STN Lab page over ``lab``."""
    choices = list(lab.service.choices)
    default_model = lab.service.default_key()
    steps = lab.timelapse_steps()

    with LabBlocks(title="STN Lab") as demo:
        digit = gr.State(None)  # (28, 28) float array in [0, 1]
        label = gr.State(None)  # the true class when the digit is an MNIST sample
        sample_index = gr.State(None)
        current_tab = gr.State(None)  # the teaching view on show, for shareable links
        gr.Markdown(INTRO)

        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=330):
                with gr.Tabs():
                    with gr.Tab("Draw"):
                        sketch = gr.Sketchpad(
                            label="draw a digit", height=300, canvas_size=(280, 280), type="numpy",
                            brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
                        )
                    with gr.Tab("Upload"):
                        # gr.File, not gr.Image: our decoder (stn_core.preprocess) reads every
                        # format and explains every bad file; browsers cannot even show TIFF.
                        upload = gr.File(
                            label="upload an image (PNG, JPEG, WebP, GIF, BMP, TIFF)", type="filepath", height=240,
                            file_types=[".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"],
                        )
                    with gr.Tab("MNIST sample"):
                        gallery = gr.Gallery(
                            value=[lab.digit_picture(lab.sample_digit(i)[0], 56) for i in range(40)],
                            columns=4, height=250, allow_preview=False, label="first 40 shipped test digits",
                        )
                        with gr.Row():
                            pick = gr.Number(label="sample # (0–999)", value=0, precision=0, minimum=0, maximum=999)
                            random_pick = gr.Button("Random digit")
                digit_view = gr.Image(label="normalised 28×28 digit", height=130, interactive=False, elem_classes="stn-pixels")
                model = gr.Dropdown(choices, value=default_model, label="model (regime · architecture)")
            with gr.Column(scale=2):
                with gr.Row():
                    grid_view = gr.HTML(label="input U with the sampling grid Tθ(G)", show_label=True, container=True, min_height=350)
                    warped_view = gr.HTML(label="warped output V — what the classifier sees", show_label=True, container=True, min_height=350)
                with gr.Row():
                    st_view = gr.Label(label="ST-CNN", num_top_classes=5)
                    cnn_view = gr.Label(label="plain CNN (same regime)", num_top_classes=5)
                theta_view = gr.Markdown()

        with gr.Row():
            rotation = gr.Slider(*CONTROL_RANGES["rotation"], value=0, step=1, label="rotation (°)")
            scale = gr.Slider(*CONTROL_RANGES["scale"], value=1, step=0.01, label="scale")
            shift_x = gr.Slider(*CONTROL_RANGES["shift_x"], value=0, step=0.01, label="shift x")
            shift_y = gr.Slider(*CONTROL_RANGES["shift_y"], value=0, step=0.01, label="shift y")
        with gr.Row():
            shear = gr.Slider(*CONTROL_RANGES["shear"], value=0, step=0.01, label="shear")
            perspective = gr.Slider(*CONTROL_RANGES["perspective"], value=0, step=0.01, label="perspective")
            elastic = gr.Slider(*CONTROL_RANGES["elastic"], value=0, step=0.01, label="elastic")
            with gr.Column(min_width=160):
                clutter = gr.Checkbox(label="clutter")
                seed = gr.Number(label="pattern seed", value=0, precision=0, minimum=0)
        with gr.Row():
            regime_buttons = {regime: gr.Button(f"random {regime}", size="sm") for regime in ("R", "RTS", "P", "E", "TC")}
            reset = gr.Button("reset", size="sm", variant="stop")
        with gr.Row():
            preset_buttons = {name: gr.Button(name, size="sm", variant="secondary") for name in PRESETS}

        with gr.Tabs() as views:
            with gr.Tab("How it works", id="how") as tab_how:
                how_text = gr.Markdown()
                with gr.Row():
                    how_input = gr.HTML(label="1. input U", show_label=True, container=True)
                    how_grid = gr.HTML(label="2–3. localisation net → θ → grid Tθ(G)", show_label=True, container=True)
                    how_warped = gr.HTML(label="4. sampler → V", show_label=True, container=True)
                    how_probs = gr.Label(label="5. classifier", num_top_classes=3)
            with gr.Tab("Set θ yourself", id="theta") as tab_theta:
                gr.Markdown("Drive the **grid generator and sampler alone**: these sliders set an affine θ directly, with no localisation net.")
                with gr.Row():
                    manual = {
                        "rotation": gr.Slider(-180, 180, value=0, step=1, label="θ rotation (°)"),
                        "scale_x": gr.Slider(0.2, 2, value=1, step=0.01, label="θ scale x"),
                        "scale_y": gr.Slider(0.2, 2, value=1, step=0.01, label="θ scale y"),
                        "shear": gr.Slider(-1, 1, value=0, step=0.01, label="θ shear"),
                        "shift_x": gr.Slider(-1, 1, value=0, step=0.01, label="θ shift x"),
                        "shift_y": gr.Slider(-1, 1, value=0, step=0.01, label="θ shift y"),
                    }
                copy_theta = gr.Button("copy the net's predicted θ in")
                with gr.Row():
                    manual_grid = gr.HTML(label="input with your grid", show_label=True, container=True)
                    manual_warped = gr.HTML(label="your warped output", show_label=True, container=True)
                manual_text = gr.Markdown()
            with gr.Tab("Invariance sweep", id="sweep") as tab_sweep:
                gr.Markdown("Probability of the true class as the digit turns (−180°…180°) and grows, for the ST-CNN and the plain CNN: one batched pass per curve. Redrawn when you release a slider.")
                sweep_plot = gr.Plot()
            with gr.Tab("Batch view", id="batch") as tab_batch:
                with gr.Row():
                    batch_regime = gr.Radio(["R", "RTS", "P", "E", "TC"], value="RTS", label="regime")
                    batch_button = gr.Button("draw 16 random test digits", variant="primary")
                batch_picture = gr.Image(label="distorted inputs and rectified outputs", interactive=False)
                batch_text = gr.Markdown()
            with gr.Tab("Watch it learn", id="learn") as tab_learn:
                if steps:
                    learn_step = gr.Slider(0, len(steps) - 1, value=0, step=1, label="recorded training step (0 = identity, before training)")
                    learn_picture = gr.Image(label="16 fixed test digits (rows 1, 3) and the ST's rectified outputs (rows 2, 4)", interactive=False)
                    learn_text = gr.Markdown()
                else:
                    gr.Markdown("No training time-lapse ships with this copy (`assets/timelapse_rts_affine.npz`).")
            with gr.Tab("Cluttered", id="clutter") as tab_clutter:
                gr.Markdown("The TC model reads a 60×60 canvas with clutter; watch its grid zoom onto the digit.")
                clutter_button = gr.Button("show the current digit, cluttered, to the TC model", variant="primary")
                with gr.Row():
                    clutter_grid = gr.HTML(label="60×60 input with the sampling grid", show_label=True, container=True)
                    clutter_warped = gr.HTML(label="what the classifier sees", show_label=True, container=True)
                clutter_probs = gr.Label(label="TC ST-CNN", num_top_classes=3)

        with gr.Accordion("Lecture settings and sharing", open=False):
            with gr.Row():
                large_text = gr.Checkbox(label="large text (projector)")
                high_contrast = gr.Checkbox(label="high contrast")
                dark = gr.Checkbox(label="dark theme")
                link_button = gr.Button("copy a link to this view")
            link = gr.Textbox(label="link (query part)", interactive=False)

        # Hidden components of the public /predict endpoint (see README).
        with gr.Group(visible=False):
            api_image = gr.File(type="filepath", label="image")  # decoded by stn_core.preprocess, not Gradio
            api_numbers = [gr.Number(label=name, value=value) for name, value in (("rotation", 0), ("scale", 1), ("shift_x", 0), ("shift_y", 0))]
            api_model = gr.Textbox(label="model", value="")
            api_json = gr.JSON(label="result")
            api_warped = gr.Image(label="warped", type="pil")
            api_button = gr.Button()

        controls_inputs = [rotation, scale, shift_x, shift_y, shear, perspective, elastic, clutter, seed]
        frame_outputs = [grid_view, warped_view, theta_view, st_view, cnn_view]

        how_outputs = [how_text, how_input, how_grid, how_warped, how_probs]

        def main_view(frame) -> list:
            """A frame as ``frame_outputs`` show it."""
            return [frame.grid_html, frame.warped_html, frame.theta_text, frame.st_probs, frame.cnn_probs]

        def show(digits, model, rotation, scale, shift_x, shift_y, shear, perspective, elastic, clutter, seed):
            """The main view on every slider frame, batched: Gradio hands over the frames of
            concurrent users together (``batch=True``), each argument a list, and they share
            one forward pass. (Parameter names are the /frame API's.)"""
            sliders = zip(rotation, scale, shift_x, shift_y, shear, perspective, elastic, clutter, seed)
            frames = lab.frames(list(zip(digits, sliders, model)))
            rows = [
                # An error is shown in place of θ: a batch cannot raise for one user.
                [gr.skip(), gr.skip(), f"**{frame}**", gr.skip(), gr.skip()] if isinstance(frame, LabError) else main_view(frame)
                for frame in frames
            ]
            return [list(column) for column in zip(*rows)]

        @user_errors
        def show_all(digit_value, model_key, *control_values):
            """Main view and "How it works" from one forward pass (digit, model or slider set)."""
            if digit_value is None:
                return [None, None, "Draw, upload or pick a digit to begin.", None, None, "Pick a digit first.", None, None, None, None]
            frame = lab.frame(digit_value, lab.controls(*control_values), model_key)
            text, canvas = lab.stages(frame)
            return [*main_view(frame), text, canvas, frame.grid_html, frame.warped_html, frame.st_probs]

        @user_errors
        def sweep(digit_value, true_label, model_key, *control_values):
            if digit_value is None:
                return None
            return lab.sweep_figure(digit_value, true_label, lab.controls(*control_values), model_key)

        quiet = dict(show_progress="hidden", api_visibility="undocumented")
        live = dict(
            fn=show, inputs=[digit, model, *controls_inputs], outputs=frame_outputs, trigger_mode="always_last",
            batch=True, max_batch_size=MAX_BATCH, preprocess=False, **quiet,
        )  # preprocess=False: raw values reach Lab.frames, which clamps or names each bad one
        full = dict(fn=show_all, inputs=[digit, model, *controls_inputs], outputs=[*frame_outputs, *how_outputs], trigger_mode="always_last", **quiet)
        sweep_event = dict(fn=sweep, inputs=[digit, label, model, *controls_inputs], outputs=sweep_plot, trigger_mode="always_last", api_visibility="undocumented")

        def refresh(event):
            """After anything but a slider frame: every view catches up."""
            return event.then(**full).then(**sweep_event)

        sliders = [rotation, scale, shift_x, shift_y, shear, perspective, elastic]
        rotation.input(**{**live, "api_name": "frame", "api_visibility": "public"})
        for slider in sliders:
            if slider is not rotation:
                slider.input(**live)
            refresh(slider.release(**full))
        for switch in (clutter, seed):
            refresh(switch.input(**full))
        refresh(model.input(lambda: None, None, None, **quiet))  # a new model: every view catches up

        @user_errors
        def set_digit(new_digit, new_label=None, index=None):
            return new_digit, new_label, index, lab.digit_picture(new_digit)

        def from_sketch(value):
            if value is None or value.get("composite") is None:  # cleared, or a stroke not yet composited
                return [gr.skip()] * 4
            return set_digit(lab.digit_from_image(value))

        def from_upload(path):
            if path is None:
                return [gr.skip()] * 4
            return set_digit(lab.digit_from_image(path))

        @user_errors
        def from_sample(index):
            image, true_label = lab.sample_digit(index)
            return set_digit(image, true_label, int(index))

        def from_gallery(event: gr.SelectData):
            return from_sample(event.index)

        def from_random():
            return from_sample(random.randrange(lab.service.sample_images.shape[0]))

        digit_outputs = [digit, label, sample_index, digit_view]
        # .change, not .input: Gradio 6.31 sends the first stroke's .input without a composite.
        refresh(sketch.change(user_errors(from_sketch), sketch, digit_outputs, trigger_mode="always_last", **quiet))
        # preprocess=False here and on /predict: gr.File's preprocess leaves an empty temp file
        # behind per call (gradio 6.31); the raw payload's path is already in Gradio's cache.
        refresh(upload.change(user_errors(from_upload), upload, digit_outputs, preprocess=False, **quiet))
        refresh(gallery.select(from_gallery, None, digit_outputs, **quiet))
        refresh(pick.submit(from_sample, pick, digit_outputs, **quiet))
        refresh(random_pick.click(from_random, None, digit_outputs, **quiet))

        def to_sliders(controls: Controls):
            return [controls.rotation, controls.scale, controls.shift_x, controls.shift_y, controls.shear, controls.perspective, controls.elastic, controls.clutter, controls.seed]

        for regime, button in regime_buttons.items():
            def draw(model_key, regime=regime):
                new_seed = random.randrange(2**31 - 1)
                key = lab.model_for_regime(regime) or model_key
                return [*to_sliders(lab.random_controls(regime, new_seed)), key]

            refresh(button.click(user_errors(draw), model, [*controls_inputs, model], **quiet))
        refresh(reset.click(lambda: to_sliders(Controls()), None, controls_inputs, **quiet))

        for name, button in preset_buttons.items():
            def preset(name=name):
                values, wanted_digit, regime = PRESETS[name]
                index = int((lab.service.sample_labels == int(wanted_digit)).nonzero()[0])
                key = lab.model_for_regime(regime) or default_model
                return [*from_sample(index), *to_sliders(Controls(**values)), key]

            refresh(button.click(user_errors(preset), None, [*digit_outputs, *controls_inputs, model], **quiet))

        @user_errors
        def manual_view(digit_value, model_key, *values):
            control_values, theta_values = values[:9], values[9:]
            return lab.manual_warp(digit_value, lab.controls(*control_values), model_key, dict(zip(THETA_DEFAULTS, theta_values)))

        manual_event = dict(fn=manual_view, inputs=[digit, model, *controls_inputs, *manual.values()], outputs=[manual_grid, manual_warped, manual_text], trigger_mode="always_last", **quiet)
        for slider in manual.values():
            slider.input(**manual_event)

        @user_errors
        def copy_predicted(digit_value, model_key, *control_values):
            parts = lab.predicted_theta_parts(digit_value, lab.controls(*control_values), model_key)
            return [parts[name] for name in THETA_DEFAULTS]

        copy_theta.click(copy_predicted, [digit, model, *controls_inputs], list(manual.values()), **quiet).then(**manual_event)

        @user_errors
        def batch(regime):
            return lab.batch_view(regime, None, random.randrange(2**31 - 1))

        batch_button.click(batch, batch_regime, [batch_picture, batch_text], api_visibility="undocumented")
        tab_how.select(**full)
        tab_sweep.select(**sweep_event)

        if steps:
            learn_step.input(user_errors(lab.timelapse_frame), learn_step, [learn_picture, learn_text], trigger_mode="always_last", **quiet)

        @user_errors
        def cluttered(digit_value):
            key = lab.model_for_regime("TC")
            if key is None:
                raise LabError("no TC (cluttered) model is shipped yet")
            if digit_value is None:
                raise LabError("pick a digit first")
            controls = Controls(clutter=True, seed=random.randrange(1000), shift_x=random.uniform(-0.5, 0.5), shift_y=random.uniform(-0.5, 0.5))
            frame = lab.frame(digit_value, controls, key)
            return frame.grid_html, frame.warped_html, frame.st_probs

        clutter_button.click(cluttered, digit, [clutter_grid, clutter_warped, clutter_probs], api_visibility="undocumented")

        for tab_id, tab in {"how": tab_how, "theta": tab_theta, "sweep": tab_sweep, "batch": tab_batch, "learn": tab_learn, "clutter": tab_clutter}.items():
            tab.select(lambda tab_id=tab_id: tab_id, None, current_tab, **quiet)
        large_text.change(None, large_text, large_text, js=TOGGLE_JS % "stn-large", **quiet)
        high_contrast.change(None, high_contrast, high_contrast, js=TOGGLE_JS % "stn-contrast", **quiet)
        dark.change(None, dark, dark, js=DARK_JS, **quiet)

        @user_errors
        def make_link(index, model_key, tab, *control_values):
            return lab.query_string(lab.controls(*control_values), index, model_key, tab)

        link_button.click(make_link, [sample_index, model, current_tab, *controls_inputs], link, **quiet).then(None, link, link, js=LINK_JS, **quiet)

        def restore(request: gr.Request):
            state = lab.state_from_query(dict(request.query_params) if request else {})
            values = to_sliders(state["controls"])
            if state["sample"] is None:
                return [None, None, None, None, *values, state["model"], gr.Tabs()]
            return [*from_sample(state["sample"]), *values, state["model"], gr.Tabs(selected=state["tab"]) if state["tab"] else gr.Tabs()]

        refresh(demo.load(restore, None, [*digit_outputs, *controls_inputs, model, views], **quiet))

        @user_errors
        def predict(image, rotation, scale, shift_x, shift_y, model):
            """The /predict API (its parameter names are these)."""
            return lab.predict(image, rotation, scale, shift_x, shift_y, model)

        api_button.click(predict, [api_image, *api_numbers, api_model], [api_json, api_warped], api_name="predict", preprocess=False)
    return demo


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


def launch(demo: LabBlocks, queue_size: int = QUEUE_SIZE, concurrency: int = CONCURRENCY, delete_cache: tuple[float, float] = DELETE_CACHE, **options):
    """Queue and serve ``demo`` as STN Lab runs: bounded queue (overload gets a "busy"
    answer, not a crash), ``concurrency`` handlers at once per event, uploads capped before
    decoding, temp files older than ``delete_cache[1]`` s deleted every ``delete_cache[0]`` s.
    ``options`` go to ``Blocks.launch``."""
    every, age = delete_cache

    def delete_old_files():
        while True:
            time.sleep(every)
            try:
                demo.delete_old_files(age)
            except Exception:  # never let a cleaning error stop the cleaning
                log.exception("deleting old temp files failed")

    threading.Thread(target=delete_old_files, name="stn-delete-old-files", daemon=True).start()
    settings = dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_SIZE,
        css=CSS,
        theme=gr.themes.Soft(),
    )
    return demo.queue(max_size=queue_size, default_concurrency_limit=concurrency).launch(**{**settings, **options})


def main() -> None:
    limit_malloc_arenas()
    launch(build_app(Lab()))


if __name__ == "__main__":
    main()
