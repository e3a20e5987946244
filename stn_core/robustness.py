"""How a model's error changes with one distortion parameter: the angle curve.

The app lets people turn a digit anywhere from -180 to 180 degrees, so a model's test
error at each angle says what they will see. :func:`angle_curve` measures it on the 10,000
MNIST test digits (or any digits given), each turned by exactly that angle about its centre
at scale 1 on the model's canvas, nothing else changed: ``{angle: error %}``.

Where a model fails at an angle, :func:`confusions_at` names the commonest pairs; from the
command line (the 10,000 MNIST test digits, ``$STN_DATA_DIR``):

    python -m stn_core.robustness pretrained/full-st-cnn-affine.safetensors --confusions 150 180

How far a spatial transformer zooms in, :func:`mean_zoom` (``--zoom``: on the model's own
regime's fixed test set, e.g. whether the cluttered model attends to the digit):

    python -m stn_core.robustness pretrained/tc-st-cnn-attention.safetensors --zoom

>>> ANGLES[:3], len(ANGLES)
((-180, -165, -150), 25)
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import Tensor, nn

from .checkpoints import load
from .distortions import Distortion, as_float_images, distort
from .evaluate import error_rate, regime_test_set
from .mnist import load_mnist

__all__ = ["ANGLES", "angle_curve", "confusions_at", "mean_zoom"]

ANGLES = tuple(range(-180, 181, 15))


@torch.inference_mode()
def angle_curve(model: nn.Module, images: Tensor, labels: Tensor, angles=ANGLES, batch_size: int = 2000) -> dict[int, float]:
    """Test error (%) of ``model`` on ``images`` ``(N, 1, 28, 28)`` turned by each angle.

    Returns:
        ``{angle: error percent}``, in the order of ``angles``.
    """
    curve = {}
    for angle in angles:
        turned = torch.cat(
            [
                distort(chunk, Distortion.create(model.canvas_size, rotation=torch.full((chunk.shape[0],), float(angle))))
                for chunk in images.split(batch_size)
            ]
        )
        curve[int(angle)] = round(error_rate(model, turned, labels), 4)
    return curve


@torch.inference_mode()
def confusions_at(model: nn.Module, images: Tensor, labels: Tensor, angle: float, top: int = 5) -> list[tuple[int, int, int]]:
    """The ``top`` commonest ``(true, read, count)`` confusions at one angle."""
    turned = distort(images, Distortion.create(model.canvas_size, rotation=torch.full((images.shape[0],), float(angle))))
    read = torch.cat([model(chunk).argmax(1).cpu() for chunk in turned.split(2000)])
    wrong = read != labels
    pairs = torch.stack([labels[wrong], read[wrong]], 1)
    unique, counts = pairs.unique(dim=0, return_counts=True)
    order = counts.argsort(descending=True)[:top]
    return [(int(unique[i, 0]), int(unique[i, 1]), int(counts[i])) for i in order]


@torch.inference_mode()
def mean_zoom(model: nn.Module, images: Tensor, batch_size: int = 1000) -> float:
    """The mean linear scale of a spatial transformer's window over ``images``: the window's
    side as a share of the canvas's (1: the whole canvas; 0.5: a window half as wide).

    For an attention transformer, θ's scale ``s``; for an affine one, ``sqrt(|det A|)`` of
    its 2x2 part (a rotated or sheared window of the same area counts the same).

    Raises:
        ValueError: a model without an attention or affine spatial transformer.
    """
    transform = getattr(model.config, "transform", None)
    if transform not in ("attention", "affine"):
        raise ValueError(f"expected a model with an attention or affine spatial transformer, got transform {transform!r}")
    windows = model.spatial_transformer.transform
    scales = [windows.window_scale(model.forward_details(chunk).theta) for chunk in images.split(batch_size)]
    return float(torch.cat(scales).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stn_core.robustness", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a .safetensors file with its card")
    parser.add_argument("--confusions", nargs="+", type=float, default=[180.0], help="angles (degrees)")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--data-dir", help="MNIST folder (default: $STN_DATA_DIR, else data/mnist)")
    parser.add_argument("--zoom", action="store_true", help="instead: the mean scale of the window on the regime's test set")
    args = parser.parse_args(argv)
    model = load(args.checkpoint)
    if args.zoom:
        test_images, _ = regime_test_set(model.card.regime, args.data_dir)
        try:
            zoom = mean_zoom(model, test_images)
        except ValueError as error:
            parser.error(str(error))
        name, regime = f"{model.card.display_name} ({model.card.name})", model.card.regime
        print(f"{name}: mean window scale {zoom:.3f} on the {len(test_images):,} {regime} test images")
        return 0
    images, labels = load_mnist("test", args.data_dir)
    images = as_float_images(images)
    print(f"{model.card.display_name} ({model.card.name}): commonest confusions of the {len(labels):,} test digits")
    print("| angle | error % | true → read (digits) |\n|---:|---:|---|")
    for angle in args.confusions:
        error = angle_curve(model, images, labels, angles=(angle,))[int(angle)]
        pairs = ", ".join(
            f"{true} → {read} ({count})" for true, read, count in confusions_at(model, images, labels, angle, args.top)
        )
        print(f"| {angle:g}° | {error:.2f} | {pairs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
