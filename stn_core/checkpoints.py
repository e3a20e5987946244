"""Shipped models: weights in ``NAME.safetensors``, a JSON model card in ``NAME.json``.

Weights are only ever read through safetensors (no pickle). The card
(:class:`~stn_core.cards.ModelCard`) holds what is needed to rebuild the model (its
:class:`~stn_core.models.ModelConfig`) and what a reader wants to know about it: regime,
canvas size, parameter count, test error per regime, training cost and the command that
made it, plus the SHA-256 of the weights file, checked at load.

>>> model = load("pretrained/rts-st-cnn-affine.safetensors")  # from the repository root
>>> model.card.regime, model.card.name, model.config.label, model.canvas_size
('RTS', 'rts-st-cnn-affine', 'ST-CNN Aff', 42)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from .cards import CardError, ModelCard
from .models import build_model, count_parameters
from .multi import MultiConfig, build_multi_model

__all__ = ["CheckpointError", "card_path", "file_sha256", "load", "read_card", "save_model", "store_float16", "write_card"]


class CheckpointError(RuntimeError):
    """A model file or card that is missing, inconsistent or tampered with."""


def _weights_path(path) -> Path:
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_suffix(".safetensors")


def card_path(path) -> Path:
    """The card beside a weights file: ``x.safetensors`` -> ``x.json``."""
    return _weights_path(path).with_suffix(".json")


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(path) -> ModelCard:
    """The model card of ``path`` (weights file, card or common stem), validated."""
    card_file = card_path(path)
    try:
        return ModelCard.from_json(card_file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{card_file}: model card missing (every .safetensors needs its .json beside it)") from None
    except OSError as error:
        raise CheckpointError(f"{card_file}: unreadable model card ({error})") from None
    except CardError as error:
        raise CheckpointError(f"{card_file}: bad model card: {error}") from None


def write_card(path, card: ModelCard) -> None:
    """Write ``card`` beside ``path`` atomically (readers never see half a file)."""
    target = card_path(path)
    partial = target.with_suffix(".json.partial")
    partial.write_text(card.to_json())
    os.replace(partial, target)


def save_model(model: nn.Module, path, *, name: str, regime: str | None = None, **details) -> ModelCard:
    """Save ``model``'s weights to ``path`` (``.safetensors``) and its card beside them.

    The card gets the model's config, ``parameter_count`` and ``weights_sha256`` from the
    model and the file; ``details`` are the card's other fields (``test_error``,
    ``training``, ... see :class:`~stn_core.cards.ModelCard`); a several-digit model
    passes ``task`` instead of ``regime``.

    Returns:
        The card as written.
    """
    weights = _weights_path(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {key: tensor.detach().cpu().contiguous() for key, tensor in model.state_dict().items()}
    partial = weights.with_suffix(".safetensors.partial")
    save_file(state, str(partial))
    os.replace(partial, weights)
    card = ModelCard(
        name=name,
        regime=regime,
        config=model.config,
        parameter_count=count_parameters(model),
        weights_sha256=file_sha256(weights),
        **details,
    )
    write_card(weights, card)
    return card


def store_float16(path) -> ModelCard:
    """Rewrite a shipped model's weights with its floating tensors in float16, half the
    bytes, and its card's ``weights_sha256`` to match; returns the new card.

    Why: the shipped weights must stay within 40 MB in all, and the addition 2xST-FCN's
    first layer alone holds 1.8 M weights. :func:`load` builds the model in float32 and
    ``load_state_dict`` copies the stored values into it, so the model computes in float32
    from float16-rounded weights. Its test errors must then be measured again on what is
    stored (``python -m stn_core.evaluate FILE --update-cards``).

        python -m stn_core.checkpoints --float16 pretrained/addition-2st-fcn-sum.safetensors
    """
    weights = _weights_path(path)
    card = read_card(weights)
    state = load_file(str(weights))
    state = {key: tensor.half() if tensor.is_floating_point() else tensor for key, tensor in state.items()}
    partial = weights.with_suffix(".safetensors.partial")
    save_file(state, str(partial))
    os.replace(partial, weights)
    card = dataclasses.replace(card, weights_sha256=file_sha256(weights))
    write_card(weights, card)
    return card


def load(path, device="cpu") -> nn.Module:
    """A ready model (eval mode, on ``device``) from ``NAME.safetensors`` and ``NAME.json``.

    The weights' SHA-256 must match the card's ``weights_sha256``, and the tensors must
    fit the card's architecture exactly. The model keeps its card as ``model.card``
    (:class:`~stn_core.cards.ModelCard`) and its config as ``model.config``.

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    weights = _weights_path(path)
    card = read_card(weights)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file missing")
    if file_sha256(weights) != card.weights_sha256:
        raise CheckpointError(f"{weights}: SHA-256 does not match its model card; refusing to load it")
    try:
        model = (build_multi_model if isinstance(card.config, MultiConfig) else build_model)(card.config)
        state = load_file(str(weights))
        model.load_state_dict(state, strict=True)
    except (ValueError, KeyError, RuntimeError, OSError) as error:
        raise CheckpointError(f"{weights}: does not match its model card's architecture ({error})") from None
    if card.parameter_count != count_parameters(model):
        raise CheckpointError(
            f"{weights}: card says {card.parameter_count} parameters, the weights hold {count_parameters(model)}"
        )
    model.card = card
    return model.to(device).eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stn_core.checkpoints", description="Rewrite shipped weights.")
    parser.add_argument("--float16", nargs="+", required=True, metavar="FILE", help="store these models' weights in float16")
    args = parser.parse_args(argv)
    for path in args.float16:
        card = store_float16(path)
        print(f"{path}: float16, sha256 {card.weights_sha256[:12]}…; now run stn_core.evaluate --update-cards on it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
