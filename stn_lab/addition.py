"""The "Two digits summed" view's logic: MNIST addition read by parallel spatial transformers.

A :class:`Pair` is what the user builds: two digits (samples of the shipped MNIST test
sample, or the digit from the main view), each in its own 42×42 channel with its own RTS
pose (rotation, scale and where it sits, within the ranges the task's data draws from).
:meth:`Addition.read` composes the two channels as the task's data does and runs a
shipped parallel-transformer model over them, and the addition CNN beside it. Nothing
here knows about Gradio.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import numpy as np
import torch

from stn_core.distortions import REGIMES, Distortion, distort, frame_room
from stn_core.geometry import Affine
from stn_core.multi import TASKS

from .lab import LabError
from .rendering import GLIMPSE_COLOURS, glimpses_svg, picture_html, theta_words
from .several import OWN, ShippedTask, menu_choices

TASK = TASKS["addition"]
REGIME = REGIMES["RTS"]  # each channel's digit is an RTS digit (stn_core.multi's addition data)
# Each digit's pose, as the view's sliders give it: the ranges the task's data draws from.
# x and y say where the digit sits in the room its scale leaves (-1: left or top edge).
POSE_RANGES = {"rotation": REGIME.rotation, "scale": REGIME.scale, "x": (-1.0, 1.0), "y": (-1.0, 1.0)}
POSE_NAMES = tuple(POSE_RANGES)
# The parallel-transformer models, best first (the view's menu), and the CNN beside them, by slug.
PARALLEL = ("addition-2st-fcn-sum", "addition-1st-fcn-sum", "addition-2st-fcn")
CNNS = ("addition-cnn-sum", "addition-cnn")


@dataclass(frozen=True)
class Pair:
    """Two digits, one per channel.

    Attributes:
        picks: per digit, an index into the shipped sample, or :data:`OWN`.
        poses: per digit, ``(rotation, scale, x, y)`` within :data:`POSE_RANGES`.
    """

    picks: tuple[int, int]
    poses: tuple[tuple[float, float, float, float], tuple[float, float, float, float]]


@dataclass
class PairReading:
    """One model's reading of a pair."""

    channels: np.ndarray  # (2, 42, 42) in [0, 1]
    theta: torch.Tensor  # (K, 6): each transformer's affine theta
    glimpses: np.ndarray  # (K, 2, 42, 42): each transformer's warp of both channels
    probs: np.ndarray  # (19,) the sum's probabilities
    digit_probs: np.ndarray | None  # (2, 10) a digit-sum head's two readings
    cnn_probs: np.ndarray | None  # (19,) of the addition CNN, when one ships
    cnn_label: str
    truth: list[int | None]  # the two digits (None: the user's own digit)
    model_label: str
    pair: Pair  # what was read, and by which model: the browser's live requests start from it
    slug: str


class Addition(ShippedTask):
    """The shipped addition models over the service's MNIST sample."""

    TASK_WORD, MODELS, CNNS = "addition", PARALLEL, CNNS

    def choices(self) -> list[tuple[str, str]]:
        """``(label, slug)`` of each shipped parallel-transformer model, for a menu."""
        return menu_choices(self.models, "sum")

    def random_pair(self, seed: int) -> Pair:
        """Two sample digits, each posed as the task's data poses it."""
        generator = torch.Generator().manual_seed(int(seed))
        picks = torch.randint(0, self.pool.shape[0], (2,), generator=generator).tolist()
        u = lambda low, high: float(torch.empty(()).uniform_(low, high, generator=generator))  # noqa: E731
        # round(..., 2) + 0.0: two decimals as the sliders show them, and never "-0.0"
        poses = tuple(
            (round(u(*POSE_RANGES["rotation"])) + 0.0, *(round(u(*POSE_RANGES[name]), 2) + 0.0 for name in ("scale", "x", "y")))
            for _ in picks
        )
        return Pair(tuple(picks), poses)

    def check(self, pair: Pair, own_digit: np.ndarray | None) -> None:
        """Raise :class:`LabError` for a pair that cannot be drawn, saying why."""
        if len(pair.picks) != 2 or len(pair.poses) != 2:
            raise LabError(f"a pair has 2 digits, got {len(pair.picks)}")
        self.check_picks(pair.picks, own_digit)
        for pose in pair.poses:
            if len(pose) != len(POSE_NAMES):
                raise LabError(f"a pose has {len(POSE_NAMES)} numbers ({', '.join(POSE_NAMES)}), got {len(pose)}")
            for name, value in zip(POSE_NAMES, pose):
                low, high = POSE_RANGES[name]
                if not (isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high):
                    raise LabError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")

    def channels(self, pair: Pair, own_digit: np.ndarray | None = None) -> torch.Tensor:
        """The pair's ``(1, 2, 42, 42)`` input: each digit warped onto its channel by the
        same :func:`~stn_core.distortions.distort` the task's data uses."""
        self.check(pair, own_digit)
        digits = self.gather(pair.picks, own_digit)  # (2, 1, 28, 28)
        rotation, scale, x, y = (torch.tensor(values, dtype=torch.float32) for values in zip(*pair.poses))
        room = frame_room(scale, TASK.canvas_size)
        distortion = Distortion.create(TASK.canvas_size, rotation=rotation, scale=scale, shift_x=x * room, shift_y=y * room)
        return distort(digits, distortion).reshape(1, 2, TASK.canvas_size, TASK.canvas_size)

    def truth(self, pair: Pair) -> list[int | None]:
        return [None if pick == OWN else int(self.labels[pick]) for pick in pair.picks]

    @torch.inference_mode()
    def read_many(self, pairs: list[Pair], slug: str, own_digits: list[np.ndarray | None]) -> list[PairReading]:
        """Several pairs in one forward pass per model (the live channel's batch); a pair
        that cannot be drawn raises :class:`LabError` before anything is computed."""
        model, out, x, cnn = self.forward(slug, map(self.channels, pairs, own_digits))
        digits = out.digits.softmax(-1).cpu().numpy() if out.digits is not None else [None] * len(pairs)
        probs, theta, glimpses = out.logits.softmax(-1).cpu().numpy(), out.theta.cpu(), out.glimpses.cpu().numpy()
        return [
            PairReading(
                channels=x[i],
                theta=theta[i],
                glimpses=glimpses[i],
                probs=probs[i],
                digit_probs=digits[i],
                cnn_probs=cnn[i],
                cnn_label="" if self.cnn is None else self.cnn.config.label,
                truth=self.truth(pair),
                model_label=model.config.label,
                pair=pair,
                slug=slug,
            )
            for i, pair in enumerate(pairs)
        ]


# -- pictures and words of a reading ------------------------------------------------------


def channels_html(reading: PairReading, size: int = 220) -> str:
    """Both channels, each with every transformer's sampling grid (transformer ``k`` in
    ``GLIMPSE_COLOURS[k]``, numbered): each transformer reads, and warps, both channels. The
    wrapper's ``data-pair`` holds what the browser needs to ask the live channel for this
    pair with the digits moved (``stn_lab/static/live.js``)."""
    data = {"model": reading.slug, "picks": list(reading.pair.picks)}
    cells = [
        f'<figure class="stn-channel">{glimpses_svg(reading.channels[c], Affine(), reading.theta, size=size)}'
        f"<figcaption>channel {c + 1}</figcaption></figure>"
        for c in range(reading.channels.shape[0])
    ]
    return f"<div class=\"stn-channels stn-pair\" data-pair='{json.dumps(data)}'>{''.join(cells)}</div>"


def outputs_html(reading: PairReading, size: int = 96) -> str:
    """Each transformer's output, both warped channels side by side, framed in its colour."""
    cells = []
    for k in range(reading.glimpses.shape[0]):
        colour = GLIMPSE_COLOURS[k % len(GLIMPSE_COLOURS)]
        pictures = "".join(
            picture_html(reading.glimpses[k, c], size, alt=f"transformer {k + 1}, channel {c + 1}") for c in range(2)
        )
        words = theta_words(Affine(), reading.theta[k])
        cells.append(
            f'<figure class="stn-glimpse stn-pair-output" style="border-color: {colour}"><div class="stn-pair-pictures">'
            f"{pictures}</div><figcaption><b>{k + 1}</b> <small>{html.escape(words)}</small></figcaption></figure>"
        )
    return f'<div class="stn-glimpses">{"".join(cells)}</div>'


def sum_html(reading: PairReading) -> str:
    """The predicted sum against the CNN's and the truth; a digit-sum head's two readings."""
    total = int(reading.probs.argmax())
    line = f"<b>{html.escape(reading.model_label)}: sum {total}</b> · {100 * reading.probs[total]:.0f}%"
    if reading.digit_probs is not None:
        a, b = (int(p.argmax()) for p in reading.digit_probs)
        line += f" <small>(read as {a} + {b})</small>"
    if reading.cnn_probs is not None:
        cnn = int(reading.cnn_probs.argmax())
        line += f" · {html.escape(reading.cnn_label)}: sum <b>{cnn}</b> · {100 * reading.cnn_probs[cnn]:.0f}%"
    known = [d for d in reading.truth if d is not None]
    if len(known) == 2:
        truth = f"truth <b>{known[0]} + {known[1]} = {sum(known)}</b>"
    else:
        truth = "truth: <b>?</b> (your own digit: the page does not know its class)"
    return f'<div class="stn-readout"><p>{line}</p><p>{truth}</p></div>'
