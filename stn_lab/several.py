"""The "Several digits" view's logic: a canvas of three digits, read glimpse by glimpse.

A :class:`Scene` is what the user builds: three digits (samples of the shipped MNIST
test sample, or the digit from the main view), where each sits, and the clutter.
:meth:`SeveralDigits.read` composes its canvas exactly as the sequence task's data does
(:func:`stn_core.multi.compose_sequence`) and runs a shipped recurrent model over it, and
the sequence CNN beside it. Nothing here knows about Gradio.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stn_core import timelapse
from stn_core.distortions import DIGIT_SIZE, add_clutter
from stn_core.geometry import Affine
from stn_core.multi import TASKS, compose_sequence, sequence_clutter, sequence_layout

from .lab import LabError, shipped_timelapse
from .rendering import GLIMPSE_COLOURS, glimpses_svg, picture_html, theta_words

TASK = TASKS["sequence"]
SLOTS = TASK.digits
ROOM = TASK.canvas_size - DIGIT_SIZE  # the highest top-left pixel a digit can have (72)
HALF = DIGIT_SIZE // 2  # a digit's centre is its top-left pixel + 14 (the view's sliders show centres)
OWN = -1  # a pick that means "the digit from the main view"
# The recurrent models, best first (the view's model menu), by slug.
RECURRENT = ("sequence-glimpse-rnn", "sequence-rnn-spn")
CNN = "sequence-cnn"


@dataclass(frozen=True)
class Scene:
    """Three digits on a 100×100 canvas.

    Attributes:
        picks: per digit, an index into the shipped sample, or :data:`OWN`.
        places: per digit, its top-left ``(x, y)`` pixel, each in ``[0, 72]``.
        clutter_seed: the seed of the clutter fragments; ``None``: no clutter.
    """

    picks: tuple[int, ...]
    places: tuple[tuple[int, int], ...]
    clutter_seed: int | None = 0


@dataclass
class Reading:
    """One model's reading of a scene."""

    canvas: np.ndarray  # (100, 100) in [0, 1]
    theta: torch.Tensor  # (K, 6) affine, one per glimpse, in order
    glimpses: np.ndarray  # (K, 28, 28): what the shared classifier head saw
    probs: np.ndarray  # (K, 10): its probabilities per glimpse
    cnn_probs: np.ndarray | None  # (3, 10) of the sequence CNN, when one ships
    truth: list[int | None]  # the digits left to right (None: the user's own digit)
    model_label: str
    scene: Scene  # what was read, and by which model: the browser's live requests start from it
    slug: str


def menu_choices(models: dict, metric: str) -> list[tuple[str, str]]:
    """``(label, slug)`` of each several-digit model, for a menu: its label and its card's
    test error by ``metric`` (``"digit"``, ``"sum"``), as ``2×ST-FCN · 5.6 % wrong``."""
    choices = []
    for slug, model in models.items():
        error = model.card.test_error.get(metric)
        choices.append((model.config.label if error is None else f"{model.config.label} · {error:.1f} % wrong", slug))
    return choices


class ShippedTask:
    """What the several-digit views share: one task's shipped models over the service's
    MNIST sample, the user's digit among the sample's, and one forward pass per batch.
    A subclass names its models, best first, and its CNNs, the first shipped one read beside."""

    TASK_WORD = ""  # "sequence", "addition": how errors name the task's models
    MODELS: tuple[str, ...] = ()
    CNNS: tuple[str, ...] = ()

    def __init__(self, service):
        self.pool = service.sample_images  # (P, 1, 28, 28)
        self.labels = service.sample_labels
        self.models = {slug: service.task_models[slug].eval() for slug in self.MODELS if slug in service.task_models}
        self.cnn = next((service.task_models[slug].eval() for slug in self.CNNS if slug in service.task_models), None)
        self.device = service.device

    def check_picks(self, picks: tuple[int, ...], own_digit: np.ndarray | None) -> None:
        """Raise :class:`LabError` for a pick that names no digit: :data:`OWN` before the
        user has one, or an index outside the sample."""
        for pick in picks:
            if pick == OWN and own_digit is None:
                raise LabError("there is no digit of yours yet: draw, upload or pick one in the main view first")
            if pick != OWN and not 0 <= pick < self.pool.shape[0]:
                raise LabError(f"sample index must be from 0 to {self.pool.shape[0] - 1}, got {pick}")

    def gather(self, picks: tuple[int, ...], own_digit: np.ndarray | None) -> torch.Tensor:
        """The picked digits, ``(len(picks), 1, 28, 28)``: only these are copied, so a live
        drag copies two or three digits per frame, not the whole sample."""
        own = None if own_digit is None else torch.as_tensor(own_digit, dtype=torch.float32).reshape(1, DIGIT_SIZE, DIGIT_SIZE)
        return torch.stack([own if p == OWN else self.pool[p] for p in picks])

    def forward(self, slug: str, inputs) -> tuple:
        """``(model, details, x, cnn_probs)``: the model ``slug`` over the batch that
        ``inputs`` (an iterable of ``(1, C, H, W)`` inputs, built only once the slug is
        known) make, and the CNN's probabilities (a ``None`` each where no CNN ships)."""
        if slug not in self.models:
            raise LabError(f"unknown {self.TASK_WORD} model {slug!r}; available: {', '.join(self.models) or 'none'}")
        x = torch.cat(list(inputs)).to(self.device)
        model = self.models[slug]
        out = model.forward_details(x)
        cnn_probs = self.cnn(x).softmax(-1).cpu().numpy() if self.cnn is not None else [None] * x.shape[0]
        return model, out, x.cpu().numpy(), cnn_probs

    def read(self, request, slug: str, own_digit: np.ndarray | None = None):
        """One request (a scene, a pair) read by the model ``slug`` (and the CNN)."""
        return self.read_many([request], slug, [own_digit])[0]


class SeveralDigits(ShippedTask):
    """The shipped sequence models over the service's MNIST sample."""

    TASK_WORD, MODELS, CNNS = "sequence", RECURRENT, (CNN,)

    def choices(self) -> list[tuple[str, str]]:
        """``(label, slug)`` of each shipped recurrent model, for a menu."""
        return menu_choices(self.models, "digit")

    def random_scene(self, seed: int) -> Scene:
        """Three sample digits laid out as the task's data lays them out, with its clutter."""
        generator = torch.Generator().manual_seed(int(seed))
        picks = torch.randint(0, self.pool.shape[0], (SLOTS,), generator=generator)
        places = sequence_layout(1, generator)[0]
        return Scene(tuple(picks.tolist()), tuple(tuple(p) for p in places.tolist()), int(seed))

    def check(self, scene: Scene, own_digit: np.ndarray | None) -> None:
        """Raise :class:`LabError` for a scene that cannot be drawn, saying why."""
        if len(scene.picks) != SLOTS or len(scene.places) != SLOTS:
            raise LabError(f"a scene has {SLOTS} digits, got {len(scene.picks)}")
        self.check_picks(scene.picks, own_digit)
        for x, y in scene.places:
            if not (0 <= x <= ROOM and 0 <= y <= ROOM):
                raise LabError(f"a digit's position must be from 0 to {ROOM} px, got ({x}, {y})")

    def canvas(self, scene: Scene, own_digit: np.ndarray | None = None) -> torch.Tensor:
        """The scene's ``(1, 1, 100, 100)`` canvas, as :func:`compose_sequence` makes it
        (clutter cut from the sample only)."""
        self.check(scene, own_digit)
        digits = self.gather(scene.picks, own_digit)  # (3, 1, 28, 28)
        canvas = compose_sequence(digits, torch.arange(SLOTS)[None], torch.tensor([scene.places]))
        if scene.clutter_seed is None:
            return canvas
        clutter = sequence_clutter(1, self.pool.shape[0], torch.Generator().manual_seed(scene.clutter_seed))
        return add_clutter(canvas, self.pool, clutter)

    def truth(self, scene: Scene) -> list[int | None]:
        """The digits left to right (ties: in slot order), as the task labels them."""
        order = sorted(range(SLOTS), key=lambda k: (scene.places[k][0], k))
        return [None if scene.picks[k] == OWN else int(self.labels[scene.picks[k]]) for k in order]

    @torch.inference_mode()
    def read_many(self, scenes: list[Scene], slug: str, own_digits: list[np.ndarray | None]) -> list[Reading]:
        """Several scenes in one forward pass per model (the live channel's batch); a scene
        that cannot be drawn raises :class:`LabError` before anything is computed."""
        model, out, canvases, cnn_probs = self.forward(slug, map(self.canvas, scenes, own_digits))
        probs, theta, glimpses = out.logits.softmax(-1).cpu().numpy(), out.theta.cpu(), out.glimpses[:, :, 0].cpu().numpy()
        canvases = canvases[:, 0]
        return [
            Reading(
                canvas=canvases[i],
                theta=theta[i],
                glimpses=glimpses[i],
                probs=probs[i],
                cnn_probs=cnn_probs[i],
                truth=self.truth(scene),
                model_label=model.config.label,
                scene=scene,
                slug=slug,
            )
            for i, scene in enumerate(scenes)
        ]


# -- pictures and words of a reading ------------------------------------------------------


def canvas_html(reading: Reading, step: int, size: int = 300) -> str:
    """The canvas with the grids of glimpses 1..``step``, numbered in their colours, in a
    wrapper whose ``data-scene`` holds what the browser needs to ask the live channel for
    this scene with the digits moved (``stn_lab/static/live.js``)."""
    scene = reading.scene
    # "half": the view's sliders show each digit's centre, its top-left pixel + half.
    data = {"model": reading.slug, "picks": list(scene.picks), "clutter_seed": scene.clutter_seed, "half": HALF}
    svg = glimpses_svg(reading.canvas, Affine(), reading.theta[: max(1, int(step))], size=size)
    return f"<div class=\"stn-scene\" data-scene='{json.dumps(data)}'>{svg}</div>"


def glimpses_html(reading: Reading, step: int) -> str:
    """The glimpses taken by ``step``, in order, each with its reading and probability;
    the ones still to come as empty frames, so the row does not jump."""
    cells = []
    for k in range(reading.glimpses.shape[0]):
        colour = GLIMPSE_COLOURS[k % len(GLIMPSE_COLOURS)]
        if k < step:
            digit = int(reading.probs[k].argmax())
            body = picture_html(reading.glimpses[k], 112, alt=f"glimpse {k + 1}")
            caption = f"<b>{k + 1}</b> reads <b>{digit}</b> · {100 * reading.probs[k, digit]:.0f}%"
        else:
            body = '<div class="stn-glimpse-empty"></div>'
            caption = f"<b>{k + 1}</b> not yet taken"
        cells.append(
            f'<figure class="stn-glimpse" style="border-color: {colour}">{body}<figcaption>{caption}</figcaption></figure>'
        )
    return f'<div class="stn-glimpses">{"".join(cells)}</div>'


def _digits(probs: np.ndarray, shown: int | None = None) -> str:
    """The digits read, left to right; past ``shown`` glimpses, "_" (not read yet)."""
    digits = [str(int(d)) for d in probs.argmax(-1)]
    return " ".join(d if shown is None or k < shown else "_" for k, d in enumerate(digits))


def readout_html(reading: Reading, step: int) -> str:
    """Both models' readings against the truth, and where the last glimpse shown looks."""
    truth = " ".join("?" if d is None else str(d) for d in reading.truth)
    cnn = f" · CNN reads <b>{_digits(reading.cnn_probs)}</b>" if reading.cnn_probs is not None else " · (no CNN ships)"
    step = max(1, int(step))
    theta = reading.theta[step - 1]
    x, y = ((float(theta[2]) + 1) * TASK.canvas_size / 2, (float(theta[5]) + 1) * TASK.canvas_size / 2)
    return (
        f'<div class="stn-readout"><p><b>{html.escape(reading.model_label)} reads {_digits(reading.probs, step)}</b>{cnn} · '
        f"truth <b>{truth}</b></p><p><small>glimpse {step}: centred at ({x:.0f}, {y:.0f}) px, "
        f"{theta_words(Affine(), theta)}</small></p></div>"
    )


# -- the recurrent model learning where to look ("Watch it learn") ------------------------

TIMELAPSE_FILE = Path(__file__).resolve().parent.parent / "assets" / "timelapse_sequence_glimpse_rnn.npz"
TIMELAPSE_SHOWN = 6  # canvases of the time-lapse drawn per frame


def sequence_timelapse() -> timelapse.Timelapse | None:
    """The shipped time-lapse of a recurrent model's training (``None`` when none ships)."""
    return shipped_timelapse(TIMELAPSE_FILE)


def timelapse_html(lapse: timelapse.Timelapse, position: int, size: int = 200) -> tuple[str, str]:
    """Frame ``position`` of ``lapse``: the first canvases with every glimpse's grid at that
    step, and a line of words (the step and the images seen by then)."""
    position = int(min(max(int(position), 0), len(lapse) - 1))
    cells = []
    for d in range(min(TIMELAPSE_SHOWN, len(lapse.labels))):
        picture = glimpses_svg(lapse.canvases[d] / 255.0, Affine(), torch.as_tensor(lapse.theta[position, d]), size=size)
        cells.append(f'<div class="stn-lapse-cell">{picture}<div>digits {" ".join(map(str, lapse.labels[d]))}</div></div>')
    words = f"step **{int(lapse.steps[position]):,}** ({lapse.images_seen(position):,} training canvases seen)"
    return f'<div class="stn-lapse">{"".join(cells)}</div>', words
