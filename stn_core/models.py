"""Spatial transformer, localisation nets and the classifiers of the paper's Table 1.

Interface every model keeps: input ``(N, 1, S, S)`` float in [0, 1], ink bright on a dark
0 background like MNIST, ``S = model.canvas_size``; output ``(N, 10)`` logits. Inputs are
normalised *inside* the model, after the sampler, so the sampler's zero padding is
background rather than a grey value (the PyTorch tutorial normalises before the
sampler, and its padding then reads as faint ink).

Architectures (following the paper's appendix A.1; widths ours):

* ``cnn``: conv 9x9 (32) -> max-pool 2 -> conv 7x7 (64) -> max-pool 2 -> linear 10, ReLU.
* ``fcn``: three hidden layers of 128 units, ReLU.
* ``st-cnn`` / ``st-fcn``: a :class:`SpatialTransformer` in front of the same classifier,
  with a convolutional / fully connected localisation net respectively.

>>> model = build_model({"model": "st-cnn", "transform": "affine", "canvas_size": 42})
>>> model(torch.rand(2, 1, 42, 42)).shape
torch.Size([2, 10])
>>> model.forward_details(torch.rand(2, 1, 42, 42)).theta.shape  # identity at start
torch.Size([2, 6])
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .geometry import Transform, make_transform, sample

__all__ = ["CNN", "FCN", "MODEL_NAMES", "STClassifier", "STOutput", "SpatialTransformer", "build_model", "count_parameters"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MODEL_NAMES = ("cnn", "fcn", "st-cnn", "st-fcn")


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

    ``hidden`` > 0 puts a hidden layer of that many units in the classifier; ``batch_norm``
    normalises each conv layer's output over the batch (faster, steadier training).
    """

    def __init__(self, canvas_size: int, channels: tuple[int, int] = (32, 64), hidden: int = 0, batch_norm: bool = False, num_classes: int = 10):
        super().__init__()
        self.canvas_size = canvas_size
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            Normalize(),
            nn.Conv2d(1, channels[0], 9),
            norm(channels[0]),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels[0], channels[1], 7),
            norm(channels[1]),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = _flat_size(self.features, canvas_size)
        head = [nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)] if hidden else [nn.Linear(flat, num_classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.canvas_size)
        return self.classifier(self.features(x))


class FCN(nn.Module):
    """Fully connected classifier: ``depth`` hidden layers of ``hidden`` units."""

    def __init__(self, canvas_size: int, hidden: int = 128, depth: int = 3, num_classes: int = 10):
        super().__init__()
        self.canvas_size = canvas_size
        layers: list[nn.Module] = [Normalize(), nn.Flatten()]
        width = canvas_size * canvas_size
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.canvas_size)
        return self.layers(x)


def conv_localisation(canvas_size: int, channels: int = 20, hidden: int = 50) -> nn.Sequential:
    """Convolutional localisation trunk: two 5x5 conv + max-pool stages, then ``hidden`` units."""
    trunk = nn.Sequential(
        nn.Conv2d(1, channels, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
    )
    return nn.Sequential(trunk, nn.Linear(_flat_size(trunk, canvas_size), hidden), nn.ReLU())


def fc_localisation(canvas_size: int, hidden: int = 64) -> nn.Sequential:
    """Fully connected localisation trunk: two hidden layers of ``hidden`` units."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(canvas_size * canvas_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )


class SpatialTransformer(nn.Module):
    """Localisation net -> grid generator -> sampler (paper, figure 2).

    Args:
        localisation: maps normalised ``(N, 1, S, S)`` inputs to ``(N, F)`` features.
        transform: the transformation family ``T_theta``.
        canvas_size: ``S``, side of the input ``U``.
        output_size: side of the warped output ``V``.

    The regression layer from features to ``theta`` starts with zero weights and the
    identity parameters as bias, so a new spatial transformer warps by the identity.
    """

    def __init__(self, localisation: nn.Module, transform: Transform, canvas_size: int, output_size: int):
        super().__init__()
        self.localisation = localisation
        self.regressor = nn.Linear(_flat_size(localisation, canvas_size), transform.num_params)
        nn.init.zeros_(self.regressor.weight)
        with torch.no_grad():
            self.regressor.bias.copy_(transform.identity())
        self.transform = transform
        self.output_size = output_size
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
    """A spatial transformer in front of a classifier (ST-CNN, ST-FCN)."""

    def __init__(self, spatial_transformer: SpatialTransformer, classifier: nn.Module, canvas_size: int):
        super().__init__()
        self.spatial_transformer = spatial_transformer
        self.classifier = classifier
        self.canvas_size = canvas_size

    def forward_details(self, x: Tensor) -> STOutput:
        """Logits together with the warped images, ``theta`` and the grid, in one pass."""
        _check_input(x, self.canvas_size)
        warped, theta, grid = self.spatial_transformer(x)
        return STOutput(self.classifier(warped), warped, theta, grid)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_details(x).logits


def build_model(architecture: dict) -> nn.Module:
    """Model from its architecture record (as stored in a model card), as ``model.architecture``.

    Keys: ``model`` (``cnn``, ``fcn``, ``st-cnn``, ``st-fcn``), ``canvas_size``; for
    spatial-transformer models also ``transform`` (``affine``, ``attention``,
    ``projective``, ``tps``), optional ``output_size`` (default ``canvas_size``) and
    ``tps_grid_size`` (default 4); for CNN classifiers optional ``hidden`` (units of a
    hidden classifier layer, default 0 = none) and ``batch_norm`` (default false).
    """
    architecture = dict(architecture)
    name = architecture.get("model")
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    canvas_size = int(architecture["canvas_size"])
    if not 8 <= canvas_size <= 512:
        raise ValueError(f"canvas_size must be between 8 and 512, got {canvas_size}")
    record = {"model": name, "canvas_size": canvas_size}
    cnn_options = {"hidden": int(architecture.get("hidden") or 0), "batch_norm": bool(architecture.get("batch_norm"))}
    if name in ("cnn", "st-cnn"):
        record.update(cnn_options)
    if name == "cnn":
        model = CNN(canvas_size, **cnn_options)
    elif name == "fcn":
        model = FCN(canvas_size)
    else:
        output_size = int(architecture.get("output_size") or canvas_size)
        transform_name = architecture.get("transform", "affine")
        record.update(transform=transform_name, output_size=output_size)
        options = {}
        if transform_name == "tps":
            options["grid_size"] = record["tps_grid_size"] = int(architecture.get("tps_grid_size", 4))
        transform = make_transform(transform_name, **options)
        if name == "st-cnn":
            localisation, classifier = conv_localisation(canvas_size), CNN(output_size, **cnn_options)
        else:
            localisation, classifier = fc_localisation(canvas_size), FCN(output_size)
        spatial_transformer = SpatialTransformer(localisation, transform, canvas_size, output_size)
        model = STClassifier(spatial_transformer, classifier, canvas_size)
    model.architecture = record  # what build_model needs to rebuild it (stored in model cards)
    return model
