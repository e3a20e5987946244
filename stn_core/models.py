"""Spatial transformer, localisation nets and the classifiers of the paper's Table 1.

Interface every model keeps: input ``(N, 1, S, S)`` float in [0, 1], ink bright on a dark
0 background like MNIST, ``S = model.canvas_size``; output ``(N, 10)`` logits. Inputs are
normalised *inside* the model, after the sampler, so the sampler's zero padding is
background rather than a grey value (the PyTorch tutorial normalises before the
sampler, and its padding then reads as faint ink).

A model is fully described by its :class:`ModelConfig` (as nanoGPT's ``GPTConfig``): every
module below takes the config, :func:`build_model` turns a config into a model, and the
config is what a model card stores (``architecture``) to rebuild it.

Architectures (following the paper's appendix A.1; widths ours):

* ``cnn``: conv 9x9 (32) -> max-pool 2 -> conv 7x7 (64) -> max-pool 2 -> linear 10, ReLU.
* ``fcn``: three hidden layers of 128 units, ReLU.
* ``st-cnn`` / ``st-fcn``: a :class:`SpatialTransformer` in front of the same classifier,
  with a convolutional / fully connected localisation net respectively.

>>> config = ModelConfig("st-cnn", canvas_size=42, transform="affine")
>>> config.label, config.output_size
('ST-CNN Aff', 42)
>>> model = build_model(config)
>>> model(torch.rand(2, 1, 42, 42)).shape
torch.Size([2, 10])
>>> model.forward_details(torch.rand(2, 1, 42, 42)).theta.shape  # identity at start
torch.Size([2, 6])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .geometry import TRANSFORM_NAMES, Transform, make_transform, sample

__all__ = [
    "CNN",
    "FCN",
    "MODEL_NAMES",
    "ModelConfig",
    "STClassifier",
    "STOutput",
    "SpatialTransformer",
    "build_model",
    "count_parameters",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MODEL_NAMES = ("cnn", "fcn", "st-cnn", "st-fcn")
CNN_CLASSIFIERS = ("cnn", "st-cnn")
MIN_SIZE, MAX_SIZE = 8, 512
DEFAULT_TPS_GRID = 4
NUM_CLASSES = 10
# The paper's short names of the transformation families, for labels such as "ST-CNN Aff".
_SHORT = {"affine": "Aff", "projective": "Proj", "tps": "TPS", "attention": "Att"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelConfig:
    """Everything :func:`build_model` needs to build a model, validated on creation.

    Attributes:
        model: ``cnn``, ``fcn``, ``st-cnn`` or ``st-fcn``.
        canvas_size: side ``S`` of the input images, 8 to 512.
        transform: spatial-transformer models only: ``affine`` (default), ``attention``,
            ``projective`` or ``tps``.
        output_size: spatial-transformer models only: side of the warped output the
            classifier sees (default ``canvas_size``).
        hidden: CNN classifiers only (``cnn``, ``st-cnn``): units of a hidden classifier
            layer (0 = none).
        batch_norm: CNN classifiers only: batch normalisation after each conv layer.
        tps_grid_size: ``tps`` only: side of the control grid (default 4, i.e. 16 points).

    Options that do not apply to the model kind must stay unset; a wrong type or value
    raises ``ValueError`` naming the field.

    >>> ModelConfig.from_dict({"model": "cnn", "canvas_size": 28, "hidden": "64"})
    Traceback (most recent call last):
    ...
    ValueError: hidden must be an integer, got '64'
    """

    model: str
    canvas_size: int
    transform: str | None = None
    output_size: int | None = None
    hidden: int = 0
    batch_norm: bool = False
    tps_grid_size: int | None = None

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model: unknown model {self.model!r}; expected one of {', '.join(MODEL_NAMES)}")
        self._check_size("canvas_size")
        if not _is_int(self.hidden):
            raise ValueError(f"hidden must be an integer, got {self.hidden!r}")
        if self.hidden < 0:
            raise ValueError(f"hidden must be at least 0, got {self.hidden}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        if self.model not in CNN_CLASSIFIERS:
            for name, default in (("hidden", 0), ("batch_norm", False)):
                if getattr(self, name) != default:
                    raise ValueError(f"{name}: only CNN classifiers ({', '.join(CNN_CLASSIFIERS)}) take it, not {self.model}")
        if not self.is_spatial:
            for name in ("transform", "output_size", "tps_grid_size"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only spatial-transformer models take it, not {self.model}")
            return
        # Spatial-transformer models: fill in the defaults (the config is frozen, hence object.__setattr__).
        if self.transform is None:
            object.__setattr__(self, "transform", "affine")
        if self.transform not in TRANSFORM_NAMES:
            raise ValueError(f"transform: unknown transform {self.transform!r}; expected one of {', '.join(TRANSFORM_NAMES)}")
        if self.output_size is None:
            object.__setattr__(self, "output_size", self.canvas_size)
        self._check_size("output_size")
        if self.transform == "tps":
            if self.tps_grid_size is None:
                object.__setattr__(self, "tps_grid_size", DEFAULT_TPS_GRID)
            if not _is_int(self.tps_grid_size) or self.tps_grid_size < 2:
                raise ValueError(f"tps_grid_size must be an integer of at least 2, got {self.tps_grid_size!r}")
        elif self.tps_grid_size is not None:
            raise ValueError(f"tps_grid_size: only the tps transform takes it, not {self.transform}")

    def _check_size(self, name: str) -> None:
        value = getattr(self, name)
        if not _is_int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise ValueError(f"{name} must be between {MIN_SIZE} and {MAX_SIZE}, got {value}")

    @property
    def is_spatial(self) -> bool:
        """Whether the model has a spatial transformer (``st-cnn``, ``st-fcn``)."""
        return self.model.startswith("st-")

    @property
    def classifier_size(self) -> int:
        """Side of the images the classifier sees: the spatial transformer's output, else the canvas."""
        return self.output_size if self.is_spatial else self.canvas_size

    @property
    def label(self) -> str:
        """The paper's name for the model kind: ``CNN``, ``ST-CNN Aff``, ``ST-FCN TPS``, ...

        The one place a display label is made; model cards and tables read it from here.
        """
        name = self.model.upper()
        return f"{name} {_SHORT[self.transform]}" if self.transform else name

    @classmethod
    def from_dict(cls, record: dict) -> "ModelConfig":
        """The config of an architecture record (a model card's ``architecture``).

        ``null`` values mean "default"; a missing ``model`` or ``canvas_size``, an unknown
        key, or a value of the wrong type raises ``ValueError`` naming the field.
        """
        if not isinstance(record, dict):
            raise ValueError(f"an architecture record must be a JSON object, got {type(record).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field (expected some of {', '.join(f.name for f in fields(cls))})")
        for name in ("model", "canvas_size"):
            if record.get(name) is None:
                raise ValueError(f"{name}: missing field")
        return cls(**{k: v for k, v in record.items() if v is not None})

    def to_dict(self) -> dict:
        """The architecture record: only the fields that apply to this model kind, in a fixed order."""
        values = asdict(self)
        names = ["model", "canvas_size"]
        if self.model in CNN_CLASSIFIERS:
            names += ["hidden", "batch_norm"]
        if self.is_spatial:
            names += ["transform", "output_size"]
        if self.transform == "tps":
            names.append("tps_grid_size")
        return {name: values[name] for name in names}


class Normalize(nn.Module):
    """``(x - mean) / std`` with MNIST's statistics: background 0 -> -0.42."""

    def forward(self, x: Tensor) -> Tensor:
        return (x - MNIST_MEAN) / MNIST_STD


def _check_input(x: Tensor, canvas_size: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 1 or x.shape[2:] != (canvas_size, canvas_size):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected images of shape (N, 1, {canvas_size}, {canvas_size}), got {shape}")


def _flat_size(features: nn.Module, canvas_size: int) -> int:
    was_training = features.training
    with torch.no_grad():
        size = features.eval()(torch.zeros(1, 1, canvas_size, canvas_size)).numel()
    features.train(was_training)
    return size


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class CNN(nn.Module):
    """The paper's CNN: conv 9x9 -> max-pool -> conv 7x7 -> max-pool -> classifier.

    Classifies ``config.classifier_size`` images (the canvas, or a spatial transformer's
    output). ``config.hidden`` > 0 puts a hidden layer of that many units in the classifier;
    ``config.batch_norm`` normalises each conv layer's output over the batch (faster,
    steadier training).
    """

    channels = (32, 64)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.canvas_size = size = config.classifier_size
        first, second = self.channels
        norm = (lambda c: nn.BatchNorm2d(c)) if config.batch_norm else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            Normalize(),
            nn.Conv2d(1, first, 9),
            norm(first),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, 7),
            norm(second),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat, hidden = _flat_size(self.features, size), config.hidden
        head = [nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES)] if hidden else [nn.Linear(flat, NUM_CLASSES)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.canvas_size)
        return self.classifier(self.features(x))


class FCN(nn.Module):
    """Fully connected classifier of ``config.classifier_size`` images: ``depth`` hidden
    layers of ``hidden`` units."""

    hidden, depth = 128, 3

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.canvas_size = config.classifier_size
        layers: list[nn.Module] = [Normalize(), nn.Flatten()]
        width = self.canvas_size * self.canvas_size
        for _ in range(self.depth):
            layers += [nn.Linear(width, self.hidden), nn.ReLU()]
            width = self.hidden
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.canvas_size)
        return self.layers(x)


def conv_localisation(config: ModelConfig, channels: int = 20, hidden: int = 50) -> nn.Sequential:
    """Convolutional localisation trunk (``st-cnn``): two 5x5 conv + max-pool stages, then ``hidden`` units."""
    trunk = nn.Sequential(
        nn.Conv2d(1, channels, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
    )
    return nn.Sequential(trunk, nn.Linear(_flat_size(trunk, config.canvas_size), hidden), nn.ReLU())


def fc_localisation(config: ModelConfig, hidden: int = 64) -> nn.Sequential:
    """Fully connected localisation trunk (``st-fcn``): two hidden layers of ``hidden`` units."""
    size = config.canvas_size
    return nn.Sequential(nn.Flatten(), nn.Linear(size * size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())


def _make_transform(config: ModelConfig) -> Transform:
    """The transformation family ``T_theta`` of a spatial-transformer config."""
    options = {"grid_size": config.tps_grid_size} if config.transform == "tps" else {}
    return make_transform(config.transform, **options)


class SpatialTransformer(nn.Module):
    """Localisation net -> grid generator -> sampler (paper, figure 2).

    Args:
        config: gives the transformation family ``T_theta`` (``config.transform``), the
            side of the input ``U`` (``canvas_size``) and of the warped output ``V``
            (``output_size``).
        localisation: maps normalised ``(N, 1, S, S)`` inputs to ``(N, F)`` features.

    The regression layer from features to ``theta`` starts with zero weights and the
    identity parameters as bias, so a new spatial transformer warps by the identity.
    """

    def __init__(self, config: ModelConfig, localisation: nn.Module):
        super().__init__()
        transform = _make_transform(config)
        self.localisation = localisation
        self.regressor = nn.Linear(_flat_size(localisation, config.canvas_size), transform.num_params)
        nn.init.zeros_(self.regressor.weight)
        with torch.no_grad():
            self.regressor.bias.copy_(transform.identity())
        self.transform = transform
        self.output_size = config.output_size
        self.normalize = Normalize()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``warped`` ``(N, 1, out, out)``, ``theta`` ``(N, P)``, ``grid`` ``(N, out, out, 2)``."""
        theta = self.regressor(self.localisation(self.normalize(x)))
        grid = self.transform.grid(theta, self.output_size)
        return sample(x, grid), theta, grid


class STOutput(NamedTuple):
    logits: Tensor  # (N, 10)
    warped: Tensor  # (N, 1, out, out): what the classifier sees
    theta: Tensor  # (N, P)
    grid: Tensor  # (N, out, out, 2): T_theta(G) in input coordinates


class STClassifier(nn.Module):
    """A spatial transformer in front of a classifier: ST-CNN (convolutional localisation
    net and CNN) or ST-FCN (fully connected ones)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not config.is_spatial:
            raise ValueError(f"model: {config.model} has no spatial transformer")
        self.config = config
        self.canvas_size = config.canvas_size
        # Built in this order (localisation, classifier, regressor): the order the random
        # initial weights are drawn in, which fixes every shipped model's starting point.
        convolutional = config.model == "st-cnn"
        localisation = conv_localisation(config) if convolutional else fc_localisation(config)
        classifier = CNN(config) if convolutional else FCN(config)
        self.spatial_transformer = SpatialTransformer(config, localisation)
        self.classifier = classifier

    def forward_details(self, x: Tensor) -> STOutput:
        """Logits together with the warped images, ``theta`` and the grid, in one pass."""
        _check_input(x, self.canvas_size)
        warped, theta, grid = self.spatial_transformer(x)
        return STOutput(self.classifier(warped), warped, theta, grid)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_details(x).logits


MODEL_CLASSES = {"cnn": CNN, "fcn": FCN, "st-cnn": STClassifier, "st-fcn": STClassifier}


def build_model(config: ModelConfig | dict) -> nn.Module:
    """The model of ``config``, with fresh weights; the config is kept as ``model.config``.

    ``config`` may also be an architecture record (a model card's ``architecture``, see
    :meth:`ModelConfig.from_dict`). Raises ``ValueError`` naming a bad field.
    """
    if not isinstance(config, ModelConfig):
        config = ModelConfig.from_dict(config)
    return MODEL_CLASSES[config.model](config)
