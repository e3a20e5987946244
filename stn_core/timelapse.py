"""Training time-lapse: how a spatial transformer's theta and output evolve as it trains.

``python -m stn_core.train ... --timelapse-every N`` records, every N steps from step 0 (the
identity), theta and the warped outputs of a few fixed test digits; :func:`save` and
:func:`load` are the one writer and reader of that file (compressed ``.npz``):

* ``steps``      ``(F,)`` int, the training step of each frame;
* ``theta``      ``(F, D, P)`` float32, theta of each digit at each frame;
* ``warped``     ``(F, D, out, out)`` uint8, what the classifier saw;
* ``canvases``   ``(D, S, S)`` uint8, the distorted input digits;
* ``labels``     ``(D,)`` int, their classes;
* ``batch_size`` the run's global batch (0-d), to turn steps into images seen.

>>> import tempfile, pathlib
>>> lapse = Timelapse(np.array([0, 100]), np.zeros((2, 1, 6), np.float32), np.zeros((2, 1, 42, 42), np.uint8),
...                   np.zeros((1, 42, 42), np.uint8), np.array([7]), 256)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "timelapse.npz"
>>> save(path, lapse)
>>> load(path).images_seen(1)
25600

A fine-tune that starts from a run's last weights records a time-lapse of its own; :func:`join`
appends it to the first run's, so that *Watch it learn* shows both runs as one training::

    python -m stn_core.timelapse join FIRST.npz THEN.npz --offset STEPS --out JOINED.npz

(``STEPS``: the first run's training steps, its card's ``images_seen / batch_size``.)
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Timelapse", "TimelapseError", "join", "load", "save"]

ARRAYS = ("steps", "theta", "warped", "canvases", "labels")


class TimelapseError(ValueError):
    """A time-lapse file that is missing a field or whose fields disagree; names the field."""


@dataclass(frozen=True)
class Timelapse:
    """``F`` recorded frames of ``D`` fixed digits (see the module docstring for the fields)."""

    steps: np.ndarray
    theta: np.ndarray
    warped: np.ndarray
    canvases: np.ndarray
    labels: np.ndarray
    batch_size: int

    def __post_init__(self):
        frames, digits = len(self.steps), len(self.labels)
        if self.steps.ndim != 1:
            raise TimelapseError(f"steps must be one-dimensional, got shape {self.steps.shape}")
        for name, leading in (("theta", (frames, digits)), ("warped", (frames, digits)), ("canvases", (digits,))):
            shape = getattr(self, name).shape
            if shape[: len(leading)] != leading:
                raise TimelapseError(f"{name} has shape {shape}, expected it to start with {leading} (frames, digits)")
        for name in ("warped", "canvases"):
            if getattr(self, name).dtype != np.uint8:
                raise TimelapseError(f"{name} must be uint8, got {getattr(self, name).dtype}")

    def __len__(self) -> int:
        return len(self.steps)

    def images_seen(self, frame: int) -> int:
        """Training images seen by frame ``frame``."""
        return int(self.steps[frame]) * self.batch_size


def save(path, lapse: Timelapse) -> None:
    """Write ``lapse`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, **{name: getattr(lapse, name) for name in ARRAYS}, batch_size=np.array(lapse.batch_size))
    os.replace(partial, path)


def load(path) -> Timelapse:
    """The time-lapse in ``path``; raises :class:`TimelapseError` naming a missing or bad field."""
    with np.load(path, allow_pickle=False) as saved:
        missing = [name for name in (*ARRAYS, "batch_size") if name not in saved.files]
        if missing:
            raise TimelapseError(f"{Path(path).name}: {missing[0]}: missing field")
        arrays = {name: saved[name] for name in ARRAYS}
        batch_size = int(saved["batch_size"])
    try:
        return Timelapse(**arrays, batch_size=batch_size)
    except TimelapseError as error:
        raise TimelapseError(f"{Path(path).name}: {error}") from None


def join(first: Timelapse, then: Timelapse, offset: int) -> Timelapse:
    """``first`` followed by ``then``, a run that continued from ``first``'s last weights;
    ``then``'s steps count from ``offset``, the step at which ``first``'s training ended.

    Both must follow the same digits with the same batch size, and ``offset`` must come after
    ``first``'s last frame; the error names what differs.

    >>> a = Timelapse(np.array([0, 100]), np.zeros((2, 1, 3), np.float32), np.zeros((2, 1, 4, 4), np.uint8),
    ...               np.zeros((1, 8, 8), np.uint8), np.array([7]), 256)
    >>> join(a, a, offset=150).steps.tolist()
    [0, 100, 150, 250]
    """
    if first.batch_size != then.batch_size:
        raise TimelapseError(f"batch_size: expected {first.batch_size} (the first run's), got {then.batch_size}")
    for name in ("canvases", "labels"):
        if not np.array_equal(getattr(first, name), getattr(then, name)):
            raise TimelapseError(f"{name}: the two time-lapses follow different digits")
    for name in ("theta", "warped"):
        if getattr(first, name).shape[1:] != getattr(then, name).shape[1:]:
            raise TimelapseError(
                f"{name}: expected frames of shape {getattr(first, name).shape[1:]}, got {getattr(then, name).shape[1:]}"
            )
    if len(first) and offset <= int(first.steps[-1]):
        raise TimelapseError(f"offset must come after the first run's last frame (step {int(first.steps[-1])}), got {offset}")
    return Timelapse(
        steps=np.concatenate([first.steps, then.steps + offset]),
        theta=np.concatenate([first.theta, then.theta]),
        warped=np.concatenate([first.warped, then.warped]),
        canvases=first.canvases,
        labels=first.labels,
        batch_size=first.batch_size,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stn_core.timelapse", description="Join two runs' time-lapses.")
    commands = parser.add_subparsers(dest="command", required=True)
    joining = commands.add_parser("join", help="append a continued run's time-lapse to the first run's")
    joining.add_argument("first", type=Path)
    joining.add_argument("then", type=Path)
    joining.add_argument("--offset", type=int, required=True, help="the first run's training steps")
    joining.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        joined = join(load(args.first), load(args.then), args.offset)
    except (TimelapseError, OSError) as error:
        parser.error(str(error))
    save(args.out, joined)
    print(f"{args.out}: {len(joined)} frames, steps {int(joined.steps[0])} to {int(joined.steps[-1])}")


if __name__ == "__main__":
    main()
