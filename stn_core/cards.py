"""Model cards: the one type that writes, reads and validates a model's card.

A card (``NAME.json`` beside ``NAME.safetensors``) says what the model is (its
:class:`~stn_core.models.ModelConfig`, stored as ``architecture``), what it was trained for
(``regime``), how well it does (test error per regime on the fixed test sets, and on the
1,000 shipped digits), what training cost and the command that made it, plus the SHA-256
of the weights. :class:`ModelCard` is the only code that turns a card into JSON or back:
a card with a missing field, an unknown field or a value of the wrong type is refused with
a :class:`CardError` naming the field (``training.epochs: missing field``).

Keys: a model's ``name`` is its stable slug (``rts-st-cnn-affine``, see :func:`model_slug`),
also the stem of its files; ``label`` (``ST-CNN Aff``) is derived from the config, never
stored on its own.

>>> from stn_core.models import ModelConfig
>>> config = ModelConfig("st-cnn", canvas_size=42, transform="affine")
>>> card = ModelCard(model_slug("RTS", config), "RTS", config, parameter_count=1, weights_sha256="0" * 64)
>>> card.name, card.label, card.display_name
('rts-st-cnn-affine', 'ST-CNN Aff', 'RTS · ST-CNN Aff')
>>> ModelCard.from_json(card.to_json()) == card
True
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields

from .distortions import REGIMES
from .models import ModelConfig
from .multi import TASKS, MultiConfig

__all__ = ["CardError", "ModelCard", "TrainingRecord", "model_slug"]

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CardError(ValueError):
    """A model card that is not what the schema says; the message names the field."""


def model_slug(regime: str | None, config: ModelConfig | MultiConfig) -> str:
    """The stable key of a model: ``REGIME-MODEL[-TRANSFORM]`` in lower case (``rts-st-cnn-affine``);
    for a several-digit model, its config's ``TASK-KIND`` (``addition-2st-fcn``)."""
    if isinstance(config, MultiConfig):
        return config.slug
    return "-".join(filter(None, [REGIMES[regime].slug, config.model, config.transform]))


# -- checking JSON values ---------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_KINDS = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "integer": (_is_int, "an integer"),
    "number": (_is_number, "a number"),
    "list": (lambda v: isinstance(v, list), "a list"),
}


def _get(record: dict, name: str, kind: str, where: str = "", *, optional: bool = False, nullable: bool = False):
    """``record[name]`` checked to be of ``kind``; ``None`` when it may be absent (or null) and is."""
    path = f"{where}{name}"
    if name not in record:
        if optional:
            return None
        raise CardError(f"{path}: missing field")
    value = record[name]
    if value is None and nullable:
        return None
    check, described = _KINDS[kind]
    if not check(value):
        raise CardError(f"{path} must be {described}{' or null' if nullable else ''}, got {value!r}")
    return value


def _no_unknown(record: dict, known, where: str) -> None:
    unknown = [name for name in record if name not in known]
    if unknown:
        raise CardError(f"{where}{unknown[0]}: unknown field")


def _check_errors(name: str, value, keys=REGIMES, what: str = "regime") -> None:
    """An error record (``{"RTS": 0.61}``, or ``{"digit": 1.4, "sequence": 4.0}`` for a
    task's metrics): known keys, numbers as values."""
    if not isinstance(value, dict):
        raise CardError(f"{name} must be an object {{{what}: error %}}, got {value!r}")
    for key, error in value.items():
        if key not in keys:
            raise CardError(f"{name}.{key}: unknown {what}; expected one of {', '.join(keys)}")
        if not _is_number(error):
            raise CardError(f"{name}.{key} must be a number, got {error!r}")


def _check_angles(value) -> None:
    """An error-per-angle record (``{"-180": 9.1, "0": 0.6}``): whole degrees in [-180, 180]."""
    if not isinstance(value, dict) or not value:
        raise CardError(f"angle_error must be a non-empty object {{angle: error %}}, got {value!r}")
    for angle, error in value.items():
        if not (isinstance(angle, str) and angle.lstrip("-").isdigit() and -180 <= int(angle) <= 180):
            raise CardError(f"angle_error: {angle!r} is not a whole angle in degrees from -180 to 180")
        if not _is_number(error):
            raise CardError(f"angle_error.{angle} must be a number, got {error!r}")


# -- the card ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingRecord:
    """How a model was trained (written by :mod:`stn_core.train`).

    ``rank_fingerprints`` is set by data-parallel runs only: each process's sum and sum of
    squares of the final weights, which must agree.
    """

    epochs: int
    epochs_planned: int
    images_seen: int
    wall_time_s: float
    device: str
    processes: int
    optimizer: str
    lr: float
    loc_lr: float | None  # None for models without a localisation net
    batch_size: int
    weight_decay: float
    seed: int
    train_digits: int
    command: str
    rank_fingerprints: list | None = None
    init: str | None = None  # "SLUG sha256:HEX" of the weights training started from (--init)
    sketch_share: float | None = None  # share of digits shown as sketches (--sketch-share)
    max_scale: float | None = None  # bound on the window's scale the loss enforced (--max-scale)

    _KIND = {
        "epochs": "integer",
        "epochs_planned": "integer",
        "images_seen": "integer",
        "wall_time_s": "number",
        "device": "string",
        "processes": "integer",
        "optimizer": "string",
        "lr": "number",
        "loc_lr": "number",
        "batch_size": "integer",
        "weight_decay": "number",
        "seed": "integer",
        "train_digits": "integer",
        "command": "string",
        "rank_fingerprints": "list",
        "init": "string",
        "sketch_share": "number",
        "max_scale": "number",
    }
    _OPTIONAL = ("rank_fingerprints", "init", "sketch_share", "max_scale")

    @classmethod
    def from_dict(cls, record) -> "TrainingRecord":
        if not isinstance(record, dict):
            raise CardError(f"training must be an object, got {record!r}")
        _no_unknown(record, cls._KIND, "training.")
        values = {}
        for f in fields(cls):
            optional = f.name in cls._OPTIONAL
            values[f.name] = _get(record, f.name, cls._KIND[f.name], "training.", optional=optional, nullable=f.name == "loc_lr")
        return cls(**values)

    def to_dict(self) -> dict:
        record = asdict(self)
        for optional in self._OPTIONAL:
            if record[optional] is None:
                del record[optional]
        return record


@dataclass(frozen=True)
class ModelCard:
    """A model's card, checked on creation and on reading.

    A card is of a single-digit model (``regime`` set, ``config`` a
    :class:`~stn_core.models.ModelConfig`) or of a several-digit one (``task`` set,
    ``config`` a :class:`~stn_core.multi.MultiConfig`, ``test_error`` keyed by the task's
    metrics); never both.

    Attributes:
        name: the model's slug (lower case, digits and single dashes), its key everywhere.
        regime: the distortion regime it was trained for (a key of
            :data:`~stn_core.distortions.REGIMES`); its canvas must be the model's.
        config: the architecture; stored in the JSON as ``architecture``.
        parameter_count: number of parameters of the weights.
        weights_sha256: SHA-256 of the ``.safetensors`` file, checked at load.
        test_error: error (%) per regime on the fixed distorted test sets.
        test_digits: how many test digits ``test_error`` was measured on.
        training: how it was trained (``None`` for a model saved without training).
        torch_version, created_utc: the torch build and time that wrote it.
        sample_error: error (%) per regime on the 1,000 shipped sample digits.
        angle_error: error (%) on the 10,000 MNIST test digits turned by each angle, at
            upright scale and position (:func:`stn_core.robustness.angle_curve`), keyed by
            the angle in degrees as a string (JSON keys are strings): ``{"-180": 9.1, ...}``.
    """

    name: str
    regime: str
    config: ModelConfig
    parameter_count: int
    weights_sha256: str
    test_error: dict[str, float] = field(default_factory=dict)
    test_digits: int | None = None
    training: TrainingRecord | None = None
    torch_version: str | None = None
    created_utc: str | None = None
    sample_error: dict[str, float] | None = None
    angle_error: dict[str, float] | None = None
    task: str | None = None  # a key of stn_core.multi.TASKS, for several-digit models

    def __post_init__(self):
        if not isinstance(self.name, str) or not SLUG.match(self.name):
            raise CardError(f"name must be a slug (lower-case letters, digits and single dashes), got {self.name!r}")
        if self.task is not None:
            self._check_task_card()
        else:
            self._check_regime_card()
        if not _is_int(self.parameter_count) or self.parameter_count < 1:
            raise CardError(f"parameter_count must be a positive integer, got {self.parameter_count!r}")
        if not isinstance(self.weights_sha256, str) or not SHA256.match(self.weights_sha256):
            raise CardError(f"weights_sha256 must be 64 lower-case hex digits, got {self.weights_sha256!r}")
        if self.test_digits is not None and (not _is_int(self.test_digits) or self.test_digits < 1):
            raise CardError(f"test_digits must be a positive integer, got {self.test_digits!r}")
        if self.training is not None and not isinstance(self.training, TrainingRecord):
            raise CardError(f"training must be a TrainingRecord, got {type(self.training).__name__}")

    def _check_task_card(self) -> None:
        if self.task not in TASKS:
            raise CardError(f"task: unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if self.regime is not None:
            raise CardError(f"regime: a {self.task} model has a task, not a regime, got regime {self.regime!r}")
        if not isinstance(self.config, MultiConfig) or self.config.task != self.task:
            got = getattr(self.config, "task", type(self.config).__name__)
            raise CardError(f"architecture must be a MultiConfig of task {self.task!r}, got {got!r}")
        metrics = TASKS[self.task].metrics
        _check_errors("test_error", self.test_error, metrics, "metric")
        if self.sample_error is not None:
            _check_errors("sample_error", self.sample_error, metrics, "metric")
        if self.angle_error is not None:
            raise CardError("angle_error: only single-digit models have an angle curve")

    def _check_regime_card(self) -> None:
        if self.regime not in REGIMES:
            raise CardError(f"regime: unknown regime {self.regime!r}; expected one of {', '.join(REGIMES)}")
        if not isinstance(self.config, ModelConfig):
            raise CardError(f"architecture must be a ModelConfig, got {type(self.config).__name__}")
        canvas = REGIMES[self.regime].canvas_size
        if self.config.canvas_size != canvas:
            raise CardError(
                f"regime: {self.regime} draws {canvas}x{canvas} canvases, "
                f"but architecture.canvas_size is {self.config.canvas_size}"
            )
        _check_errors("test_error", self.test_error)
        if self.sample_error is not None:
            _check_errors("sample_error", self.sample_error)
        if self.angle_error is not None:
            _check_angles(self.angle_error)

    @property
    def label(self) -> str:
        """The paper's name for the model kind (``ST-CNN Aff``), from its config."""
        return self.config.label

    @property
    def canvas_size(self) -> int:
        return self.config.canvas_size

    @property
    def display_name(self) -> str:
        """Regime (or task) and label, as people read them: ``RTS · ST-CNN Aff``, ``addition · 2×ST-FCN``."""
        return f"{self.regime or self.task} · {self.label}"

    # -- JSON -----------------------------------------------------------------------------

    FIELDS = (
        "name",
        "label",
        "regime",
        "task",
        "canvas_size",
        "test_error",
        "test_digits",
        "training",
        "torch_version",
        "created_utc",
        "architecture",
        "parameter_count",
        "weights_sha256",
        "sample_error",
        "angle_error",
    )

    def to_dict(self) -> dict:
        """The card as JSON values, in the fixed field order; unset optional fields are left out."""
        record = {
            "name": self.name,
            "label": self.label,
            "regime": self.regime,
            "task": self.task,
            "canvas_size": self.canvas_size,
            "test_error": dict(self.test_error),
            "test_digits": self.test_digits,
            "training": None if self.training is None else self.training.to_dict(),
            "torch_version": self.torch_version,
            "created_utc": self.created_utc,
            "architecture": self.config.to_dict(),
            "parameter_count": self.parameter_count,
            "weights_sha256": self.weights_sha256,
            "sample_error": None if self.sample_error is None else dict(self.sample_error),
            "angle_error": None if self.angle_error is None else dict(self.angle_error),
        }
        return {name: value for name, value in record.items() if value is not None}

    @classmethod
    def from_dict(cls, record) -> "ModelCard":
        """The card of a JSON object; raises :class:`CardError` naming a missing, unknown or bad field."""
        if not isinstance(record, dict):
            raise CardError(f"a model card must be a JSON object, got {type(record).__name__}")
        _no_unknown(record, cls.FIELDS, "")
        architecture = record.get("architecture")
        if not isinstance(architecture, dict):
            raise CardError(
                "architecture: missing field" if architecture is None else f"architecture must be an object, got {architecture!r}"
            )
        task = _get(record, "task", "string", optional=True)
        try:
            config = (MultiConfig if task is not None else ModelConfig).from_dict(architecture)
        except ValueError as error:
            raise CardError(f"architecture.{error}") from None
        training = record.get("training")
        card = cls(
            name=_get(record, "name", "string"),
            regime=_get(record, "regime", "string", optional=task is not None),
            task=task,
            config=config,
            parameter_count=_get(record, "parameter_count", "integer"),
            weights_sha256=_get(record, "weights_sha256", "string"),
            test_error=record.get("test_error", {}),
            test_digits=_get(record, "test_digits", "integer", optional=True),
            training=None if training is None else TrainingRecord.from_dict(training),
            torch_version=_get(record, "torch_version", "string", optional=True),
            created_utc=_get(record, "created_utc", "string", optional=True),
            sample_error=record.get("sample_error"),
            angle_error=record.get("angle_error"),
        )
        # Fields stored for readers but derived from the config: they must agree with it.
        for name, derived in (("label", card.label), ("canvas_size", card.canvas_size)):
            stored = _get(record, name, "string" if name == "label" else "integer")
            if stored != derived:
                raise CardError(f"{name}: the card says {stored!r}, its architecture makes it {derived!r}")
        return card

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        try:
            record = json.loads(text)
        except ValueError as error:
            raise CardError(f"not JSON ({error})") from None
        return cls.from_dict(record)
