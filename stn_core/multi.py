"""Several digits at once: the tasks, their data, and models that take several glimpses.

Two tasks, defined as data beside the single-digit regimes (:data:`TASKS`):

* ``addition`` (Jaderberg et al. 2015, appendix A.4): two 42x42 channels, each holding its
  own MNIST digit distorted independently with the RTS regime; the label is their sum,
  0-18 (19 classes).
* ``sequence`` (Sønderby et al. 2015, arXiv 1509.05329, section 3): three MNIST digits
  pasted left to right on a 100x100 canvas, with random gaps between them and a random
  slope, and eight 9x9 fragments of other digits as clutter; the label is the three digits,
  left to right.

Models (each takes a :class:`MultiConfig`; :func:`build_multi_model` builds one):

* ``parallel-st`` (addition): ``K`` spatial transformers side by side, each reading both
  channels and warping both; their outputs are concatenated for one classifier (the
  paper's 2xST-FCN with ``K = 2``; ``K = 1`` is its single ST-FCN).
* ``rnn-spn`` (sequence, Sønderby et al.): a convolutional encoder of the canvas feeds a
  GRU; at step ``k`` the GRU's state gives one affine ``theta_k``; each glimpse goes
  through one shared classifier head, one digit per step.
* ``glimpse-rnn`` (sequence; the course material's proposal): the recurrence runs through
  the whole spatial transformer: the GRU's input at step ``k`` is the canvas encoding
  *and* an encoding of glimpse ``k - 1`` (the warped output), so where to look next
  depends on what was just seen.
* ``cnn`` / ``fcn``: baselines without a transformer (for sequences, a CNN with three
  output heads).

Identity-like start: every regression layer from features to ``theta`` starts with zero
weights. A parallel transformer's bias is the identity (each sees a whole channel); a
recurrent model's step ``k`` adds its initial crop (:func:`initial_crops`: the identity
scaled to ``crop_scale`` and centred in the ``k``-th of ``K`` equal slots across the
canvas) to its regressor's output, which starts at zero. So a new recurrent model's
glimpses read left, middle and right.

Interfaces other tools rely on: an addition model maps ``(N, 2, 42, 42)`` floats in [0, 1]
to logits ``(N, 19)``, a sequence model ``(N, 1, 100, 100)`` to ``(N, 3, 10)`` (digits left
to right); ``forward_details`` also gives, per glimpse, ``theta`` ``(N, K, 6)``, the grids
``(N, K, h, w, 2)`` and the warped glimpses ``(N, K, C, h, w)``.

>>> model = build_multi_model(MultiConfig("sequence", "rnn-spn"))
>>> out = model.forward_details(torch.rand(2, 1, 100, 100))
>>> out.logits.shape, out.theta.shape, out.glimpses.shape
(torch.Size([2, 3, 10]), torch.Size([2, 3, 6]), torch.Size([2, 3, 1, 28, 28]))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .distortions import DIGIT_SIZE, Clutter, add_clutter, distort, draw_clutter, draw_distortion
from .geometry import make_transform, sample
from .models import Normalize

__all__ = [
    "MULTI_MODELS",
    "TASKS",
    "MultiConfig",
    "MultiOutput",
    "Task",
    "build_multi_model",
    "compose_sequence",
    "digit_sum",
    "draw_task",
    "fixed_task_test_set",
    "initial_crops",
    "sequence_clutter",
    "sequence_layout",
    "task_errors",
]


# -- the tasks, as data -----------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One several-digit task: what an input and its label are.

    Attributes:
        name: ``"addition"`` or ``"sequence"``; the ``task`` field of a model card.
        canvas_size: side of each channel in pixels.
        channels: channels of an input.
        digits: MNIST digits in one input.
        classes: classes per output head (19 sums; 10 digits).
        heads: output heads (1 sum; one per digit of a sequence).
        description: one line, for people.
        paper: where the task comes from.
        published: the published test errors (%), by model label (``"2×ST-FCN"``): the
            sum's error for addition, the per-digit error for sequences.
    """

    name: str
    canvas_size: int
    channels: int
    digits: int
    classes: int
    heads: int
    description: str
    paper: str
    published: dict[str, float]
    # sequence layout: the widest gap between neighbouring digits (px), the steepest slope
    # (vertical px per horizontal px), and the clutter (fragments, side)
    max_gap: int = 0
    max_slope: float = 0.0
    clutter: tuple[int, int] | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The errors a model of this task is measured by (the keys of its card's
        ``test_error``): ``sum`` wrong; or each ``digit`` wrong, and a whole ``sequence``
        with any digit wrong."""
        return ("sum",) if self.heads == 1 else ("digit", "sequence")


TASKS = {
    task.name: task
    for task in (
        Task(
            "addition",
            42,
            2,
            2,
            19,
            1,
            "two 42×42 channels, each an RTS-distorted digit; the label is their sum (0–18)",
            "Jaderberg et al. 2015, appendix A.4",
            {"FCN": 47.7, "CNN": 14.7, "ST-FCN": 18.5, "2×ST-FCN": 5.8},
        ),
        Task(
            "sequence",
            100,
            1,
            3,
            10,
            3,
            "three digits left to right on 100×100 with random gaps and slope, eight 9×9 clutter fragments",
            "Sønderby et al. 2015, table 1",
            {"CNN": 2.9, "ST-CNN": 2.0, "RNN-SPN": 1.5},
            max_gap=8,
            max_slope=0.3,
            clutter=(8, 9),
        ),
    )
}
TEST_SEED = 20151209  # the fixed test sets' seed (as the regimes' EVAL_SEED: fixed forever)


def _task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def _addition(images: Tensor, labels: Tensor, picks: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    channels = [distort(images[picks[:, k]], draw_distortion("RTS", picks.shape[0], generator, pool_size=1)) for k in range(2)]
    return torch.cat(channels, 1), labels[picks].sum(1)


def sequence_layout(n: int, generator: torch.Generator, task: Task = TASKS["sequence"]) -> Tensor:
    """Top-left ``(x, y)`` pixels of each digit of ``n`` sequences, ``(n, digits, 2)`` long.

    Gaps between neighbours are uniform whole pixels in ``[0, max_gap]``; the row starts
    anywhere that keeps it on the canvas; the digits' tops follow one line of slope uniform
    in ``[-max_slope, max_slope]``, placed anywhere that keeps every digit on the canvas.
    """
    room = task.canvas_size - DIGIT_SIZE
    gaps = torch.randint(0, task.max_gap + 1, (n, task.digits - 1), generator=generator)
    steps = torch.cat([torch.zeros(n, 1, dtype=torch.long), (DIGIT_SIZE + gaps).cumsum(1)], 1)  # x of each digit from the first
    start = (torch.rand(n, generator=generator) * (room - steps[:, -1] + 1)).long().clamp(max=room)
    x = start[:, None] + steps
    slope = (torch.rand(n, generator=generator) * 2 - 1) * task.max_slope
    rise = (slope[:, None] * steps).round().long()  # y of each digit from the first's
    low, high = (-rise.min(1).values), room - rise.max(1).values
    first = low + (torch.rand(n, generator=generator) * (high - low + 1)).long().clamp(max=high - low)
    return torch.stack([x, first[:, None] + rise], -1)


def compose_sequence(pool: Tensor, picks: Tensor, places: Tensor, clutter: Clutter | None = None) -> Tensor:
    """Sequence canvases ``(N, 1, 100, 100)``: digit ``pool[picks[i, k]]`` pasted with its
    top-left pixel at ``places[i, k]`` (``(x, y)``), then the ``clutter`` fragments (cut
    from ``pool`` too), all max-composited at whole pixels, so every digit stays crisp.

    Args:
        pool: ``(P, 1, 28, 28)`` float digits in [0, 1].
        picks: ``(N, D)`` long indices into ``pool``.
        places: ``(N, D, 2)`` long top-left pixels, each within ``[0, 72]``.

    >>> pool = torch.zeros(1, 1, 28, 28); pool[0, 0, 14, 14] = 1.0
    >>> canvas = compose_sequence(pool, torch.zeros(1, 1, dtype=torch.long), torch.tensor([[[50, 10]]]))
    >>> canvas[0, 0].nonzero().tolist()  # (row, column) = (y + 14, x + 14)
    [[24, 64]]
    """
    side = TASKS["sequence"].canvas_size
    room = side - DIGIT_SIZE
    if places.shape != (*picks.shape, 2) or places.min() < 0 or places.max() > room:
        raise ValueError(f"places must be (N, D, 2) = {(*picks.shape, 2)} whole pixels in [0, {room}], got {tuple(places.shape)}")
    canvas = torch.zeros(picks.shape[0], 1, side, side, device=pool.device)
    digits = Clutter(picks, torch.zeros_like(places), places, DIGIT_SIZE)
    canvas = add_clutter(canvas, pool, digits)
    return canvas if clutter is None else add_clutter(canvas, pool, clutter)


def sequence_clutter(n: int, pool_size: int, generator: torch.Generator, task: Task = TASKS["sequence"]) -> Clutter:
    """The task's random clutter for ``n`` canvases (fragments cut from a pool of ``pool_size``)."""
    fragments, side = task.clutter
    return draw_clutter(n, task.canvas_size, pool_size, generator, fragments=fragments, size=side)


def _sequence(images: Tensor, labels: Tensor, picks: Tensor, generator: torch.Generator, task: Task) -> tuple[Tensor, Tensor]:
    places = sequence_layout(picks.shape[0], generator, task)
    canvas = compose_sequence(images, picks, places, sequence_clutter(picks.shape[0], images.shape[0], generator, task))
    return canvas, labels[picks]


def draw_task(task: str, images: Tensor, labels: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` random inputs of ``task`` built from ``images`` ``(P, 1, 28, 28)`` and ``labels``.

    Returns:
        ``(inputs, targets)``: addition ``(n, 2, 42, 42)`` and sums ``(n,)``; sequence
        ``(n, 1, 100, 100)`` and digits ``(n, 3)``, left to right.
    """
    spec = _task(task)
    picks = torch.randint(0, images.shape[0], (n, spec.digits), generator=generator)
    if spec.name == "addition":
        return _addition(images, labels, picks, generator)
    return _sequence(images, labels, picks, generator, spec)


def fixed_task_test_set(
    task: str, images: Tensor, labels: Tensor, seed: int = TEST_SEED, count: int | None = None
) -> tuple[Tensor, Tensor]:
    """The fixed test set of ``task``: one input per test digit ``i``, made of digit ``i``
    and the next ones of a seeded permutation (every test digit appears once in each
    position), so ``N`` test digits give ``N`` inputs, identical for the same seed.
    ``count``: only the first ``count`` of those inputs (the same ones, built faster)."""
    spec = _task(task)
    generator = torch.Generator().manual_seed(seed)
    n = images.shape[0]
    order = torch.randperm(n, generator=generator)
    picks = torch.stack([torch.arange(n)] + [order.roll(-k) for k in range(spec.digits - 1)], 1)
    chunks = []
    for start in range(0, n if count is None else min(n, count), 2000):
        part = picks[start : start + 2000]
        chunks.append(
            _addition(images, labels, part, generator)
            if spec.name == "addition"
            else _sequence(images, labels, part, generator, spec)
        )
    return torch.cat([c[0] for c in chunks])[:count], torch.cat([c[1] for c in chunks])[:count]


@torch.inference_mode()
def task_errors(model: nn.Module, inputs: Tensor, targets: Tensor, batch_size: int = 500) -> dict[str, float]:
    """Test error (%) of a several-digit ``model`` on ``inputs``, one number per
    :attr:`Task.metrics`: ``{"sum": e}`` (addition) or ``{"digit": e, "sequence": e}``.

    >>> model = build_multi_model(MultiConfig("sequence", "cnn"))
    >>> sorted(task_errors(model, torch.rand(4, 1, 100, 100), torch.zeros(4, 3, dtype=torch.long)))
    ['digit', 'sequence']
    """
    device = next(model.parameters()).device
    wrong = torch.cat(
        [
            (model(inputs[i : i + batch_size].to(device)).argmax(-1).cpu() != targets[i : i + batch_size]).reshape(
                min(batch_size, inputs.shape[0] - i), -1
            )
            for i in range(0, inputs.shape[0], batch_size)
        ]
    )  # (N, heads)
    if wrong.shape[1] == 1:
        return {"sum": 100.0 * wrong.float().mean().item()}
    return {"digit": 100.0 * wrong.float().mean().item(), "sequence": 100.0 * wrong.any(1).float().mean().item()}


# -- the models -------------------------------------------------------------------------------

MULTI_MODELS = {"addition": ("parallel-st", "cnn", "fcn"), "sequence": ("rnn-spn", "glimpse-rnn", "cnn")}
HEADS = ("classes", "digit-sum")


def digit_sum(digit_logits: Tensor) -> Tensor:
    """The log-probabilities ``(N, 19)`` of the sum of two independent digits, from their
    logits ``(N, 2, 10)``: ``log P(s) = logsumexp over a + b = s of log p1(a) + log p2(b)``.

    Why an addition model may end in this: with the paper's head the classifier must learn
    19 sums from the sum alone, and on 2 CPU cores that starts slowly (77.95 % sum error
    after 6 epochs). Read as two digits, every training sum teaches both readings at once;
    the only labels are still the sums. Log-probabilities are valid logits: their softmax
    is the distribution itself, so the training loss and ``argmax`` need no change.

    >>> sure = torch.full((1, 2, 10), -30.0)
    >>> sure[0, 0, 3] = sure[0, 1, 4] = 30.0  # certainly a 3 and a 4
    >>> digit_sum(sure).argmax(-1).item()
    7
    """
    if digit_logits.dim() != 3 or digit_logits.shape[1:] != (2, 10):
        raise ValueError(f"expected digit logits of shape (N, 2, 10), got {tuple(digit_logits.shape)}")
    first, second = digit_logits.log_softmax(-1).unbind(1)
    pairs = (first[:, :, None] + second[:, None, :]).flatten(1)  # (N, 100): pair (a, b) at 10 a + b
    return torch.logsumexp(pairs[:, None, :] + _SUM_MASK.to(pairs), -1)


# _SUM_MASK[s, 10 a + b] is 0 where a + b = s, else -inf: row s of the pairs that add to s
_SUM_MASK = torch.where(torch.arange(10)[:, None] + torch.arange(10)[None, :] == torch.arange(19)[:, None, None], 0.0, -torch.inf)
_SUM_MASK = _SUM_MASK.flatten(1)


@dataclass(frozen=True)
class MultiConfig:
    """Everything :func:`build_multi_model` needs, validated on creation.

    Attributes:
        task: a key of :data:`TASKS`.
        model: one of ``MULTI_MODELS[task]``.
        transformers: ``parallel-st`` only: spatial transformers side by side (2 = 2xST).
        classifier: ``parallel-st`` only: ``"fcn"`` (the paper's) or ``"cnn"``.
        head: addition only: ``"classes"`` (the paper's: 19 logits, one per sum) or
            ``"digit-sum"`` (20 logits read as two digits' distributions, whose sum's
            distribution is the output; see :func:`digit_sum`).
        glimpse_size: side of each warped glimpse (recurrent models; default 28).
        crop_scale: recurrent models: the initial crops' scale (default 0.3: 30 px of 100).
        hidden: the GRU's state size (recurrent models).
    """

    task: str
    model: str
    transformers: int = 2
    classifier: str = "fcn"
    head: str = "classes"
    glimpse_size: int = DIGIT_SIZE
    crop_scale: float = 0.3
    hidden: int = 256

    def __post_init__(self):
        spec = _task(self.task)
        if self.model not in MULTI_MODELS[spec.name]:
            raise ValueError(
                f"model: {self.model!r} is not a {self.task} model; expected one of {', '.join(MULTI_MODELS[spec.name])}"
            )
        if not (isinstance(self.transformers, int) and 1 <= self.transformers <= 4):
            raise ValueError(f"transformers must be an integer from 1 to 4, got {self.transformers!r}")
        if self.classifier not in ("fcn", "cnn"):
            raise ValueError(f"classifier must be 'fcn' or 'cnn', got {self.classifier!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.head != "classes" and (spec.name != "addition" or self.model not in ("parallel-st", "cnn", "fcn")):
            raise ValueError(f"head {self.head!r} is for addition models only, got a {self.task} {self.model}")
        if not (isinstance(self.glimpse_size, int) and 16 <= self.glimpse_size <= spec.canvas_size):
            raise ValueError(f"glimpse_size must be an integer from 16 to {spec.canvas_size}, got {self.glimpse_size!r}")
        if not (isinstance(self.crop_scale, float) and 0.05 <= self.crop_scale <= 1.0):
            raise ValueError(f"crop_scale must be a number from 0.05 to 1, got {self.crop_scale!r}")

    @property
    def spec(self) -> Task:
        return TASKS[self.task]

    @property
    def canvas_size(self) -> int:
        return self.spec.canvas_size

    @property
    def kind(self) -> str:
        """The published name of the model kind, the key of :attr:`Task.published`:
        ``2×ST-FCN``, ``ST-FCN``, ``RNN-SPN``, ``glimpse RNN``, ``CNN``, ``FCN``."""
        if self.model == "parallel-st":
            count = f"{self.transformers}×" if self.transformers > 1 else ""
            return f"{count}ST-{self.classifier.upper()}"
        return {"rnn-spn": "RNN-SPN", "glimpse-rnn": "glimpse RNN"}.get(self.model, self.model.upper())

    @property
    def label(self) -> str:
        """:attr:`kind`, and the head where it is not the paper's: ``2×ST-FCN (digit-sum
        head)``. The one place a multi-digit label is made."""
        return self.kind + (" (digit-sum head)" if self.head == "digit-sum" else "")

    @property
    def slug(self) -> str:
        """The stable key: ``TASK-KIND`` (``addition-2st-fcn``, ``sequence-rnn-spn``)."""
        kind = f"{self.transformers}st-{self.classifier}" if self.model == "parallel-st" else self.model
        return f"{self.task}-{kind}" + ("-sum" if self.head == "digit-sum" else "")

    def to_dict(self) -> dict:
        """The architecture record of a model card: only the fields that apply to this kind."""
        names = ["task", "model"]
        if self.model == "parallel-st":
            names += ["transformers", "classifier"]
        if self.head != "classes":  # older cards have no head field: they are "classes"
            names += ["head"]
        if self.model in ("rnn-spn", "glimpse-rnn"):
            names += ["glimpse_size", "crop_scale", "hidden"]
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_dict(cls, record: dict) -> "MultiConfig":
        """The config of an architecture record; a missing ``task`` or ``model``, an unknown
        key or a bad value raises ``ValueError`` naming the field."""
        if not isinstance(record, dict):
            raise ValueError(f"an architecture record must be a JSON object, got {type(record).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(record) - set(known))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field (expected some of {', '.join(known)})")
        for name in ("task", "model"):
            if record.get(name) is None:
                raise ValueError(f"{name}: missing field")
        return cls(**{k: v for k, v in record.items() if v is not None})

    @property
    def glimpses(self) -> int:
        """``K``: transformers side by side, or recurrent steps (one per digit)."""
        if self.model == "parallel-st":
            return self.transformers
        return self.spec.digits if self.model in ("rnn-spn", "glimpse-rnn") else 0


class MultiOutput(NamedTuple):
    logits: Tensor  # (N, 19) for addition, (N, 3, 10) for sequences
    theta: Tensor | None  # (N, K, 6); None without transformers
    grids: Tensor | None  # (N, K, h, w, 2) in input coordinates
    glimpses: Tensor | None  # (N, K, C, h, w): what each step's classifier saw
    digits: Tensor | None = None  # (N, 2, 10): a digit-sum head's two readings (logits)


def initial_crops(glimpses: int, scale: float) -> Tensor:
    """``(K, 6)`` affine ``theta`` of the initial crops: the identity scaled by ``scale``,
    centred in each of ``K`` equal slots across the canvas (left to right), at mid-height.

    >>> initial_crops(3, 0.3)[:, 2].tolist()  # the crops' centres, x in [-1, 1]
    [-0.6666666865348816, 0.0, 0.6666666865348816]
    """
    span = 1.0 - 1.0 / glimpses  # the centres of K equal slots across [-1, 1]
    centres = torch.linspace(-span, span, glimpses)
    crops = torch.zeros(glimpses, 6)
    crops[:, 0] = crops[:, 4] = scale
    crops[:, 2] = centres
    return crops


LARGE_CANVAS = 64  # from this side on, a trunk gets a third stage


def _conv_trunk(channels: int, size: int, width: int = 32, halve: bool = False) -> tuple[nn.Sequential, int]:
    """Two conv (5x5) + max-pool stages (three on canvases of :data:`LARGE_CANVAS` px and
    more) and a flatten; returns the trunk and its output size. Why the third stage: on
    100x100 two stages leave 22x22 maps, and the first linear layer after them alone would
    hold about 4 M weights, a 16 MB file; the third stage brings that to 10x10.

    ``halve``: max-pool the input 2x2 first. The recurrent models' canvas encoder uses it:
    it has to say *where* the digits are, not read them (the glimpses are read at full
    resolution), and on 100x100 the halving makes the encoder about 4x cheaper, which is
    what lets these models train on one CPU thread."""
    layers = [Normalize()] + ([nn.MaxPool2d(2)] if halve else [])
    layers += [nn.Conv2d(channels, width, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(width, width, 5)]
    layers += [nn.MaxPool2d(2), nn.ReLU()]
    if (size // 2 if halve else size) >= LARGE_CANVAS:
        layers += [nn.Conv2d(width, width, 3), nn.MaxPool2d(2), nn.ReLU()]
    trunk = nn.Sequential(*layers, nn.Flatten())
    with torch.no_grad():
        return trunk, trunk(torch.zeros(1, channels, size, size)).numel()


def _classifier(kind: str, channels: int, size: int, classes: int, width: int = 64) -> nn.Module:
    if kind == "cnn":
        trunk, flat = _conv_trunk(channels, size, width)
        return nn.Sequential(trunk, nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, classes))
    width = channels * size * size
    return nn.Sequential(
        Normalize(), nn.Flatten(), nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes)
    )


def _regressor(features: int, start: Tensor) -> nn.Linear:
    """Features -> theta, starting at ``start`` for every input (zero weights)."""
    layer = nn.Linear(features, 6)
    nn.init.zeros_(layer.weight)
    with torch.no_grad():
        layer.bias.copy_(start)
    return layer


def _outputs(config: MultiConfig) -> int:
    """Outputs of a model's last layer: two digits' logits for a digit-sum head."""
    return 2 * 10 if config.head == "digit-sum" else config.spec.classes * config.spec.heads


def _head(config: MultiConfig, outputs: Tensor, thetas, grids, glimpses) -> MultiOutput:
    if config.head == "digit-sum":
        digits = outputs.unflatten(1, (2, 10))
        return MultiOutput(digit_sum(digits), thetas, grids, glimpses, digits)
    return MultiOutput(outputs, thetas, grids, glimpses)


def _check(x: Tensor, spec: Task) -> None:
    expected = (spec.channels, spec.canvas_size, spec.canvas_size)
    if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected {spec.name} inputs of shape (N, {', '.join(map(str, expected))}), got {shape}")


class ParallelST(nn.Module):
    """``K`` spatial transformers side by side (addition): each reads both channels and
    warps both; the ``K`` warped pairs are concatenated channel-wise for one classifier."""

    def __init__(self, config: MultiConfig):
        super().__init__()
        spec, self.config = config.spec, config
        self.affine = make_transform("affine")
        self.localisers = nn.ModuleList()
        self.regressors = nn.ModuleList()
        for _ in range(config.transformers):
            trunk, flat = _conv_trunk(spec.channels, spec.canvas_size, 20)
            self.localisers.append(nn.Sequential(trunk, nn.Linear(flat, 50), nn.ReLU()))
            self.regressors.append(_regressor(50, self.affine.identity()))
        self.classifier = _classifier(config.classifier, spec.channels * config.transformers, spec.canvas_size, _outputs(config))

    def forward_details(self, x: Tensor) -> MultiOutput:
        _check(x, self.config.spec)
        size = self.config.spec.canvas_size
        thetas = torch.stack([regress(locate(x)) for locate, regress in zip(self.localisers, self.regressors)], 1)
        grids = self.affine.grid(thetas.flatten(0, 1), size).unflatten(0, thetas.shape[:2])
        glimpses = torch.stack([sample(x, grids[:, k]) for k in range(thetas.shape[1])], 1)
        return _head(self.config, self.classifier(glimpses.flatten(1, 2)), thetas, grids, glimpses)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_details(x).logits


class RecurrentST(nn.Module):
    """The recurrent spatial transformers (sequence): ``rnn-spn`` feeds the GRU the canvas
    encoding at every step; ``glimpse-rnn`` also feeds it the encoding of the previous
    glimpse (zeros before the first)."""

    def __init__(self, config: MultiConfig):
        super().__init__()
        spec, self.config = config.spec, config
        self.affine = make_transform("affine")
        self.feedback = config.model == "glimpse-rnn"
        self.encoder, flat = _conv_trunk(1, spec.canvas_size, 32, halve=True)
        self.encode = nn.Sequential(nn.Linear(flat, config.hidden), nn.ReLU())
        inputs = config.hidden
        if self.feedback:
            self.glimpse_encoder, glimpse_flat = _conv_trunk(1, config.glimpse_size, 32)
            self.glimpse_encode = nn.Sequential(nn.Linear(glimpse_flat, config.hidden), nn.ReLU())
            inputs += config.hidden
        self.gru = nn.GRUCell(inputs, config.hidden)
        self.regressor = _regressor(config.hidden, torch.zeros(6))
        # Step k's theta = regressor(state_k) + crop_k: the regressor starts at zero, so the
        # first glimpses are exactly the documented crops.
        self.register_buffer("crops", initial_crops(spec.digits, config.crop_scale))
        self.head = _classifier("cnn", 1, config.glimpse_size, spec.classes, 32)

    def forward_details(self, x: Tensor) -> MultiOutput:
        _check(x, self.config.spec)
        n, size = x.shape[0], self.config.glimpse_size
        context = self.encode(self.encoder(x))
        state = torch.zeros(n, self.config.hidden, device=x.device, dtype=x.dtype)
        glimpse = torch.zeros(n, 1, size, size, device=x.device, dtype=x.dtype)
        thetas, grids, glimpses = [], [], []
        for step in range(self.crops.shape[0]):
            inputs = torch.cat([context, self.glimpse_encode(self.glimpse_encoder(glimpse))], 1) if self.feedback else context
            state = self.gru(inputs, state)
            theta = self.regressor(state) + self.crops[step]
            grid = self.affine.grid(theta, size)
            glimpse = sample(x, grid)
            thetas.append(theta), grids.append(grid), glimpses.append(glimpse)
        glimpses_ = torch.stack(glimpses, 1)
        logits = self.head(glimpses_.flatten(0, 1)).unflatten(0, (n, len(glimpses)))
        return MultiOutput(logits, torch.stack(thetas, 1), torch.stack(grids, 1), glimpses_)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_details(x).logits


class PlainMulti(nn.Module):
    """Baselines without a transformer: a CNN or FCN of the whole input, with one output of
    19 sums (addition) or three heads of 10 digits (sequence)."""

    def __init__(self, config: MultiConfig):
        super().__init__()
        spec, self.config = config.spec, config
        # 32 channels on large canvases: at 64 the 100x100 CNN costs ~27 min an epoch on one
        # CPU thread, twice the recurrent models, for a baseline.
        width = 32 if spec.canvas_size >= LARGE_CANVAS else 64
        self.net = _classifier(config.model, spec.channels, spec.canvas_size, _outputs(config), width)

    def forward_details(self, x: Tensor) -> MultiOutput:
        _check(x, self.config.spec)
        logits = self.net(x)
        if self.config.spec.heads > 1:
            logits = logits.unflatten(1, (self.config.spec.heads, self.config.spec.classes))
        return _head(self.config, logits, None, None, None)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_details(x).logits


def build_multi_model(config: MultiConfig) -> nn.Module:
    """The model of ``config`` with fresh weights; the config is kept as ``model.config``."""
    if config.model == "parallel-st":
        return ParallelST(config)
    if config.model in ("rnn-spn", "glimpse-rnn"):
        return RecurrentST(config)
    return PlainMulti(config)
