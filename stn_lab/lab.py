"""The app's handlers as plain functions: what each panel of STN Lab shows for a given
input. ``app.py`` only lays out components and wires events to these, so everything here
is testable without a browser or a server.

Every handler takes plain values (numpy digits, floats, strings) and returns plain values
(PIL pictures, Markdown, ``{class: probability}`` dicts). Bad input raises
:class:`LabError`, whose message is meant for the user.
"""

from __future__ import annotations

import base64
import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import torch
from PIL import Image

from stn_core import timelapse
from stn_core.controls import CONTROL_RANGES, Controls
from stn_core.distortions import REGIMES
from stn_core.geometry import Affine, Attention, affine_theta, decompose_affine, sample
from stn_core.preprocess import ImageInputError, decode_image, prepare_digit

from .rendering import grid_svg, picture_html, png_data_url, theta_markdown, to_picture
from .service import InferenceService

__all__ = ["DISPLAY_SIZE", "LabError", "Lab", "Frame"]

DISPLAY_SIZE = 336
ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The shipped single-digit training time-lapses ("Watch it learn"), by name, first = default:
# what each shows, and its file.
TIMELAPSES = {
    "rts": ("RTS affine ST-CNN: learning to undo rotation and scale", ASSETS / "timelapse_rts_affine.npz"),
    "tc": ("TC attention ST-CNN: learning to zoom onto the digit", ASSETS / "timelapse_tc_attention.npz"),
}


THETA_DEFAULTS = {"rotation": 0.0, "scale_x": 1.0, "scale_y": 1.0, "shear": 0.0, "shift_x": 0.0, "shift_y": 0.0}
# The "Set θ yourself" sliders: (low, high, step) of each affine part.
THETA_RANGES = {
    "rotation": (-180, 180, 1),
    "scale_x": (0.2, 2.0, 0.01),
    "scale_y": (0.2, 2.0, 0.01),
    "shear": (-1.0, 1.0, 0.01),
    "shift_x": (-1.0, 1.0, 0.01),
    "shift_y": (-1.0, 1.0, 0.01),
}


class LabError(ValueError):
    """Bad input for a handler; the message is meant for the user."""


@dataclass
class Frame:
    """Everything the main view shows for one input."""

    canvas: np.ndarray  # (S, S): the distorted input U
    warped: np.ndarray  # (out, out): V, what the classifier sees
    grid_html: str  # U with T_theta(G) drawn over it (inline SVG)
    warped_html: str  # V, upscaled crisply
    theta_text: str  # Markdown
    st_probs: dict[str, float]  # for gr.Label
    cnn_probs: dict[str, float] | None
    theta: list[float]
    st_label: int
    cnn_label: int | None


SHEET_TILE = 84


@functools.lru_cache(maxsize=4)
def shipped_timelapse(path: Path) -> timelapse.Timelapse | None:
    """The time-lapse in ``path``, read once (``None`` when it does not ship)."""
    return timelapse.load(path) if path.exists() else None


def _contact_sheet(inputs, outputs) -> Image.Image:
    """16 inputs above their outputs, 8 per row: rows 1 and 3 the inputs, 2 and 4 the outputs."""
    tile = SHEET_TILE
    sheet = Image.new("RGB", (tile * 8, tile * 4), (40, 40, 40))
    for i, (above, below) in enumerate(zip(inputs, outputs)):
        row, col = 2 * (i // 8), i % 8
        sheet.paste(to_picture(above, tile - 4), (col * tile + 2, row * tile + 2))
        sheet.paste(to_picture(below, tile - 4), (col * tile + 2, (row + 1) * tile + 2))
    return sheet


def _probs(values: np.ndarray | None) -> dict[str, float] | None:
    return None if values is None else {str(digit): float(p) for digit, p in enumerate(values)}


class Lab:
    """Handlers of STN Lab over one :class:`~stn_lab.service.InferenceService`."""

    def __init__(self, service: InferenceService | None = None):
        self.service = service or InferenceService()

    @functools.cached_property
    def several(self):
        """The "Several digits" logic (:class:`stn_lab.several.SeveralDigits`) over this service."""
        from .several import SeveralDigits  # it imports this module

        return SeveralDigits(self.service)

    @functools.cached_property
    def addition(self):
        """The "Two digits summed" logic (:class:`stn_lab.addition.Addition`) over this service."""
        from .addition import Addition  # it imports this module

        return Addition(self.service)

    # -- inputs ---------------------------------------------------------------------------

    def digit_from_image(self, image) -> np.ndarray:
        """A drawn or uploaded image (array, path, bytes, PIL, a Gradio file payload
        ``{"path": ...}`` or a sketchpad value) -> normalised ``(28, 28)`` digit."""
        if image is None:
            raise LabError("no image: draw a digit, upload one or pick a sample")
        if isinstance(image, dict) and "path" in image:  # an upload, already in Gradio's cache
            image = image["path"]
        elif isinstance(image, dict):  # a sketchpad's value: the composite of its layers
            image = image.get("composite")
            if image is None:
                raise LabError("no digit found: the sketch is empty")
        try:
            return prepare_digit(image)
        except ImageInputError as error:
            raise LabError(str(error)) from None

    def sample_digit(self, index: int) -> tuple[np.ndarray, int]:
        """Digit ``index`` of the shipped MNIST sample, with its label."""
        count = self.service.sample_images.shape[0]
        if isinstance(index, bool) or not isinstance(index, (int, float)) or not 0 <= index < count or int(index) != index:
            raise LabError(f"sample index must be a whole number from 0 to {count - 1}, got {index!r}")
        index = int(index)
        return self.service.sample_images[index, 0].numpy(), int(self.service.sample_labels[index])

    def digit_picture(self, digit: np.ndarray, size: int = 112) -> Image.Image:
        return to_picture(np.asarray(digit), size)

    # -- the main view --------------------------------------------------------------------

    @staticmethod
    def controls(
        rotation=0.0, scale=1.0, shift_x=0.0, shift_y=0.0, shear=0.0, perspective=0.0, elastic=0.0, clutter=False, seed=0
    ) -> Controls:
        """Slider values as checked :class:`Controls` (clamped to their ranges).

        Raises:
            LabError: naming the control and its range, for a missing or non-numeric value.
        """
        values = dict(
            rotation=rotation,
            scale=scale,
            shift_x=shift_x,
            shift_y=shift_y,
            shear=shear,
            perspective=perspective,
            elastic=elastic,
            seed=seed,
        )
        for name, value in values.items():
            low, high = CONTROL_RANGES[name]
            try:
                values[name] = float(value)
            except (TypeError, ValueError, OverflowError):
                raise LabError(f"{name} must be a number in [{low}, {high}], got {str(value)[:40]}") from None
        if not math.isfinite(values["seed"]):
            raise LabError(f"seed must be a whole number in [0, {CONTROL_RANGES['seed'][1]}], got {seed!r}")
        values["seed"] = int(min(max(values["seed"], 0), CONTROL_RANGES["seed"][1]))
        if clutter not in (True, False, None):  # 0 and 1 compare equal to False and True
            raise LabError(f"clutter must be true or false, got {clutter!r}")
        try:
            return Controls(**values, clutter=bool(clutter)).checked()
        except ValueError as error:
            raise LabError(str(error)) from None

    def model_key(self, key: str | None) -> str:
        key = key or self.service.default_key()
        if key not in self.service.choices:
            available = ", ".join(self.service.choices) or "none"
            raise LabError(f"unknown model {key!r}; available: {available}")
        return key

    def frame(self, digit: np.ndarray | None, controls: Controls, key: str | None = None) -> Frame:
        """Distort ``digit`` by ``controls`` and run it through model ``key`` (default: RTS affine)."""
        frame = self.frames([(digit, controls, key)])[0]
        if isinstance(frame, LabError):
            raise frame
        return frame

    def frames(self, requests: list[tuple]) -> list[Frame | LabError]:
        """Many ``(digit, controls, key)`` requests, one forward pass per model: the frames
        of concurrent users are computed together. ``controls`` is a :class:`Controls` or the
        sliders' raw values. A bad request gets its :class:`LabError` in its place and leaves
        the others alone."""
        answers: list[Frame | LabError | None] = [None] * len(requests)
        by_model: dict[str, list[int]] = {}
        checked = []
        for index, (digit, controls, key) in enumerate(requests):
            try:
                if digit is None:
                    raise LabError("no digit yet: draw one, upload one or pick a sample")
                key = self.model_key(key)
                if isinstance(controls, Controls):
                    try:
                        controls = controls.checked()
                    except ValueError as error:
                        raise LabError(str(error)) from None
                else:  # the sliders' raw values, in the order of :meth:`controls`
                    controls = self.controls(*controls)
            except LabError as error:
                answers[index] = error
                checked.append(None)
                continue
            checked.append((digit, controls))
            by_model.setdefault(key, []).append(index)
        for key, members in by_model.items():
            transform = self.service.choice(key).st.spatial_transformer.transform
            results = self.service.predict_many([checked[i][0] for i in members], [checked[i][1] for i in members], key)
            for index, result in zip(members, results):
                answers[index] = Frame(
                    canvas=result.canvas,
                    warped=result.warped,
                    grid_html=grid_svg(result.canvas, transform, result.theta, DISPLAY_SIZE),
                    warped_html=picture_html(result.warped, DISPLAY_SIZE, "warped output V"),
                    theta_text=theta_markdown(transform, result.theta),
                    st_probs=_probs(result.st_probs),
                    cnn_probs=_probs(result.cnn_probs),
                    theta=[round(float(v), 6) for v in result.theta],
                    st_label=int(result.st_probs.argmax()),
                    cnn_label=None if result.cnn_probs is None else int(result.cnn_probs.argmax()),
                )
        return answers

    @staticmethod
    def stages(frame: Frame) -> tuple[str, str]:
        """For the "How it works" view: the four stages in words, and the input U as HTML."""
        text = (
            "1. The input **U** (the distorted canvas).\n"
            f"2. The **localisation net** reads U and regresses **θ** ({len(frame.theta)} numbers).\n"
            "3. The **grid generator** maps every output pixel through T<sub>θ</sub> to the input location it "
            "samples: the grid drawn on U.\n"
            "4. The **sampler** reads U bilinearly at those points, giving the output **V**.\n"
            "5. The **classifier** sees only V.\n\n" + frame.theta_text
        )
        return text, picture_html(frame.canvas, DISPLAY_SIZE, "input U")

    def predict(self, image, rotation=0.0, scale=1.0, shift_x=0.0, shift_y=0.0, model: str | None = None) -> dict:
        """The public ``/predict`` endpoint: an image file and a distortion by name ->
        ``{model, theta, st_label, st_probs, cnn_label, cnn_probs, warped_png}`` (the warped
        output V as a ``data:`` URL of a PNG at its own size)."""
        digit = self.digit_from_image(image)
        controls = self.controls(rotation=rotation, scale=scale, shift_x=shift_x, shift_y=shift_y)
        key = self.model_key(model or None)
        frame = self.frame(digit, controls, key)
        result = {
            "model": key,
            "theta": frame.theta,
            "st_label": frame.st_label,
            "st_probs": [frame.st_probs[str(d)] for d in range(10)],
            "cnn_label": frame.cnn_label,
            "cnn_probs": None if frame.cnn_probs is None else [frame.cnn_probs[str(d)] for d in range(10)],
        }
        result["warped_png"] = png_data_url(frame.warped)
        return result

    def random_controls(self, regime: str, seed: int) -> Controls:
        """A random distortion of ``regime`` as slider values (the regime's own draw)."""
        if regime not in REGIMES:
            raise LabError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
        return Controls.from_regime(regime, int(seed))

    def regimes(self) -> list[str]:
        """The regimes some shipped model was trained on, in the order of :data:`REGIMES`."""
        trained = {choice.regime for choice in self.service.choices.values()}
        return [name for name in REGIMES if name in trained]

    def first_sample_of(self, digit_class: int) -> int:
        """Index of the first shipped sample digit of class ``digit_class``."""
        return int((self.service.sample_labels == int(digit_class)).nonzero()[0])

    @staticmethod
    def has_ink(image) -> bool:
        """Whether a sketch holds any stroke (a blank canvas is one flat colour)."""
        pixels = np.asarray(image)
        return pixels.size > 0 and float(pixels.max()) - float(pixels.min()) > 8

    @staticmethod
    def decode_upload(image) -> np.ndarray:
        """An uploaded file (a path, bytes or a Gradio payload ``{"path": ...}``) decoded
        once, to ``(H, W)`` greyscale in ``[0, 1]``; :class:`LabError` for a file that is no
        image. Both the preview and :meth:`digit_from_image` take the result."""
        try:
            return decode_image(image["path"] if isinstance(image, dict) else image)
        except ImageInputError as error:
            raise LabError(str(error)) from None

    @staticmethod
    def upload_preview(gray: np.ndarray, size: int = 160) -> Image.Image:
        """A decoded upload as the user sent it (greyscale, at most ``size`` px), to show
        beside its normalised 28x28 version."""
        picture = Image.fromarray((np.clip(gray, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L")
        picture.thumbnail((size, size))
        return picture

    def model_for_regime(self, regime: str, transform: str = "affine") -> str | None:
        """The shipped ST-CNN for ``regime``, preferring ``transform``."""
        matches = [c for c in self.service.choices.values() if c.regime == regime]
        for choice in matches:
            if choice.transform == transform:
                return choice.key
        return matches[0].key if matches else None

    # -- set theta yourself ---------------------------------------------------------------

    def manual_warp(
        self, digit: np.ndarray | None, controls: Controls, key: str | None, theta_parts: dict
    ) -> tuple[str, str, str]:
        """Grid generator and sampler alone: the distorted input warped by a hand-set affine theta.

        ``theta_parts`` holds ``rotation``, ``scale_x``, ``scale_y``, ``shear``, ``shift_x``, ``shift_y``.
        """
        if digit is None:
            raise LabError("no digit yet: draw one, upload one or pick a sample")
        key = self.model_key(key)
        parts = {name: float(theta_parts.get(name, default)) for name, default in THETA_DEFAULTS.items()}
        if not all(np.isfinite(list(parts.values()))):
            raise LabError("theta parts must be finite numbers")
        choice = self.service.choice(key)
        canvas = self.service.distort(
            torch.as_tensor(np.asarray(digit, np.float32)).reshape(1, 1, 28, 28), [controls.checked()], choice.canvas_size
        )
        theta = affine_theta(**parts).reshape(1, 6).double()
        grid = Affine().grid(theta, choice.st.spatial_transformer.output_size)
        warped = sample(canvas.double().cpu(), grid)[0, 0].numpy()
        canvas_np = canvas[0, 0].cpu().numpy()
        return (
            grid_svg(canvas_np, Affine(), theta[0], DISPLAY_SIZE),
            picture_html(warped, DISPLAY_SIZE, "warped output V"),
            theta_markdown(Affine(), theta[0]),
        )

    def predicted_theta_parts(self, digit: np.ndarray | None, controls: Controls, key: str | None) -> dict:
        """The localisation net's theta for this input, as affine parts (for the sliders)."""
        frame_theta = torch.tensor(self.frame(digit, controls, key).theta, dtype=torch.float64)
        transform = self.service.choice(self.model_key(key)).transform
        if transform == "attention":
            frame_theta = Attention.to_affine(frame_theta.reshape(1, 3))[0]
        elif transform != "affine":
            raise LabError("only affine and attention thetas can be copied into the affine sliders")
        parts = decompose_affine(frame_theta.reshape(2, 3))._asdict()
        # Values the sliders can hold: on their steps, inside their ranges.
        fitted = {}
        for name, (low, high, step) in THETA_RANGES.items():
            value = round(round(float(parts[name]) / step) * step, 6)
            fitted[name] = int(value) if isinstance(step, int) else min(max(value, low), high)
            fitted[name] = min(max(fitted[name], low), high)
        return fitted

    # -- invariance sweep -----------------------------------------------------------------

    def true_class(self, digit: np.ndarray, label: int | None, key: str | None) -> int:
        """The sample's label, else what the ST-CNN reads on the undistorted digit."""
        if label is not None:
            return int(label)
        return self.frame(digit, Controls(), key).st_label

    def sweep_figure(self, digit: np.ndarray | None, label: int | None, controls: Controls, key: str | None):
        """Matplotlib figure: probability of the true class against rotation and against
        scale (the other controls as set), ST-CNN versus CNN; one batched pass each."""
        # matplotlib only here: this view redraws on slider release, never per frame.
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if digit is None:
            raise LabError("no digit yet: draw one, upload one or pick a sample")
        key = self.model_key(key)
        controls = controls.checked()
        target = self.true_class(digit, label, key)
        low, high = CONTROL_RANGES["scale"]
        sweeps = [
            ("rotation", np.linspace(-180, 180, 73), "rotation (°)"),
            ("scale", np.linspace(max(low, 0.4), min(high, 1.6), 49), "scale"),
        ]
        # Type large enough for a projector: the picture is shown about as wide as it is drawn.
        with plt.rc_context({"font.size": 13}):
            figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
            for axis, (name, values, title) in zip(axes, sweeps):
                curve = self.service.sweep(digit, target, key, controls, name, values)
                axis.plot(curve["values"], curve["st"], color="#1f77b4", linewidth=2.5, label="ST-CNN")
                if curve["cnn"] is not None:
                    axis.plot(curve["values"], curve["cnn"], color="#d62728", linewidth=2, linestyle="--", label="CNN")
                axis.axvline(getattr(controls, name), color="gray", linewidth=1)
                axis.set_xlabel(title)
                axis.set_ylabel(f"P(class {target})")
                axis.set_ylim(-0.02, 1.02)
                axis.grid(alpha=0.3)
            axes[0].legend(loc="lower center")
            title = self.service.choice(key).title  # the menu's name, not the slug
            figure.suptitle(f"How sure each model is of the true class {target} as the digit turns and grows ({title})")
        plt.close(figure)
        return figure

    # -- batch view -----------------------------------------------------------------------

    def batch_view(self, regime: str, key: str | None, seed: int) -> tuple[Image.Image, str]:
        """16 sample digits distorted by ``regime`` above their rectified versions, and a
        Markdown line of both models' predictions (the paper's figure 1, live)."""
        key = self.model_for_regime(regime) if key is None else self.model_key(key)
        if key is None:
            raise LabError(f"no model trained on regime {regime} is shipped")
        try:
            results, labels = self.service.batch(regime, key, int(seed))
        except ValueError as error:
            raise LabError(str(error)) from None
        sheet = _contact_sheet([r.canvas for r in results], [r.warped for r in results])
        st_right = sum(int(r.st_probs.argmax()) == y for r, y in zip(results, labels))
        cells = []
        for result, truth in zip(results, labels):
            st = int(result.st_probs.argmax())
            cnn = None if result.cnn_probs is None else int(result.cnn_probs.argmax())
            cells.append(
                f"{truth}: ST {st}{'' if st == truth else ' ✗'}"
                + ("" if cnn is None else f", CNN {cnn}{'' if cnn == truth else ' ✗'}")
            )
        cnn_line = ""
        if results[0].cnn_probs is not None:
            cnn_right = sum(int(r.cnn_probs.argmax()) == y for r, y in zip(results, labels))
            cnn_line = f", CNN {cnn_right}/16"
        text = (
            f"**{regime}**, model {self.service.choice(key).title}: ST-CNN {st_right}/16 right{cnn_line}. "
            "Rows 1 and 3: distorted inputs U; rows 2 and 4: rectified outputs V.\n\n" + " · ".join(cells)
        )
        return sheet, text

    # -- watch it learn -------------------------------------------------------------------

    @staticmethod
    def _timelapse(name: str) -> timelapse.Timelapse | None:
        return shipped_timelapse(TIMELAPSES[name][1])

    def timelapses(self) -> list[tuple[str, str]]:
        """``(what it shows, name)`` of each shipped time-lapse, for a menu."""
        return [(words, name) for name, (words, _) in TIMELAPSES.items() if self._timelapse(name) is not None]

    def timelapse_steps(self, name: str = "rts") -> list[int]:
        """Training steps recorded in time-lapse ``name`` (empty if it does not ship)."""
        lapse = self._timelapse(name) if name in TIMELAPSES else None
        return [] if lapse is None else lapse.steps.tolist()

    def timelapse_frame(self, position: int, name: str = "rts") -> tuple[Image.Image, str]:
        """The 16 fixed test digits as the model of time-lapse ``name`` warped them at
        recorded frame ``position`` (0 = the identity, before training), and a line of
        words: the step, and what θ does on average (|rotation| for affine, the zoom for
        attention)."""
        lapse = self._timelapse(name) if name in TIMELAPSES else None
        if lapse is None:
            raise LabError(f"no training time-lapse {name!r} is shipped in assets/")
        steps = lapse.steps
        position = int(min(max(int(position), 0), len(steps) - 1))
        warped, canvases, theta = lapse.warped[position], lapse.canvases, lapse.theta[position]
        sheet = _contact_sheet(canvases / 255.0, warped / 255.0)
        step = int(steps[position])
        if theta.shape[-1] == 3:  # attention: (scale, x, y)
            summary = f"mean scale of θ over the 16 digits: {theta[:, 0].mean():.2f} (1 = the whole canvas)"
        else:
            angles = decompose_affine(torch.as_tensor(theta, dtype=torch.float64).reshape(-1, 2, 3)).rotation.numpy()
            summary = f"mean |rotation| of θ over the 16 digits: {np.abs(angles).mean():.1f}°"
        text = f"step **{step:,}** ({lapse.images_seen(position):,} training images seen); {summary}"
        return sheet, text

    # -- links that restore a view --------------------------------------------------------

    def state_from_query(self, params: dict) -> dict:
        """Read a view back from URL query parameters; anything unreadable keeps its default.

        Returns:
            ``{"controls": Controls, "sample": int | None, "digit": (28, 28) array | None,
            "model": str, "tab": str | None}``.
        """
        values = {}
        for short, name in QUERY_KEYS.items():
            try:
                value = float(params[short])
            except (KeyError, TypeError, ValueError):
                continue
            values[name] = int(value) if name == "seed" else value
        values["clutter"] = str(params.get("clutter", "0")).lower() in ("1", "true", "yes", "on")
        try:
            controls = Controls(**values).checked()
        except ValueError:
            controls = Controls()
        try:
            sample = int(params["sample"])
            self.sample_digit(sample)
        except (KeyError, TypeError, ValueError):
            sample = None
        digit = None
        if sample is None and params.get("digit"):
            try:
                digit = unpack_digit(params["digit"])
            except LabError:
                digit = None
        model = params.get("model")
        model = model if model in self.service.choices else self.service.default_key()
        tab = params.get("tab") if params.get("tab") in TABS else None
        return {"controls": controls, "sample": sample, "digit": digit, "model": model, "tab": tab}

    def query_string(self, controls: Controls, sample: int | None, model: str | None, tab: str | None, digit=None) -> str:
        """``?...`` that :meth:`state_from_query` turns back into this view: a sample by its
        number, any other digit (drawn or uploaded) packed into the link itself."""
        controls = controls.checked()
        params = {short: round(getattr(controls, name), 4) for short, name in QUERY_KEYS.items()}
        params["clutter"] = int(controls.clutter)
        if sample is not None:
            params["sample"] = int(sample)
        elif digit is not None:
            params["digit"] = pack_digit(digit)
        if model:
            params["model"] = model
        if tab in TABS:
            params["tab"] = tab
        return "?" + urlencode(params)


QUERY_KEYS = {
    "rot": "rotation",
    "scale": "scale",
    "sx": "shift_x",
    "sy": "shift_y",
    "shear": "shear",
    "persp": "perspective",
    "elastic": "elastic",
    "seed": "seed",
}
TABS = ("explore", "how", "theta", "sweep", "batch", "learn", "clutter", "several", "addition")
# The query parameters a link may carry (anything else, such as ?live=off, is not a view).
LINK_KEYS = (*QUERY_KEYS, "clutter", "sample", "digit", "model", "tab")


def pack_digit(digit: np.ndarray) -> str:
    """A ``(28, 28)`` digit in [0, 1] as a short URL-safe text (uint8, zlib, base64url):
    about 300 characters for a drawn digit, as most of its pixels are background.

    >>> digit = np.zeros((28, 28), np.float32); digit[10:18, 13:15] = 1.0
    >>> bool(np.array_equal(unpack_digit(pack_digit(digit)), digit))
    True
    """
    pixels = (np.clip(np.asarray(digit, np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    if pixels.shape != (28, 28):
        raise LabError(f"expected a (28, 28) digit, got {pixels.shape}")
    return base64.urlsafe_b64encode(zlib.compress(pixels.tobytes(), 9)).decode("ascii").rstrip("=")


def unpack_digit(text: str) -> np.ndarray:
    """:func:`pack_digit`'s text back to a ``(28, 28)`` float32 digit; :class:`LabError` otherwise."""
    if not isinstance(text, str) or len(text) > 2000:
        raise LabError("the digit in this link is not readable")
    try:
        raw = zlib.decompressobj().decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), 28 * 28 + 1)
    except (ValueError, zlib.error):
        raise LabError("the digit in this link is not readable") from None
    if len(raw) != 28 * 28:
        raise LabError("the digit in this link is not readable")
    return np.frombuffer(raw, np.uint8).reshape(28, 28).astype(np.float32) / 255.0
