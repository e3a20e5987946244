"""torch.hub entry points: one per shipped model in ``pretrained/``.

    model = torch.hub.load("path/to/stn-lab", "rts_st_cnn_affine", source="local")

Each returns a ready model (eval mode) built from ``pretrained/NAME.safetensors`` and its
card (``model.card``); names are the file names with ``-`` turned into ``_``.
"""

from pathlib import Path

dependencies = ["torch", "safetensors", "numpy"]

_PRETRAINED = Path(__file__).resolve().parent / "pretrained"


def _entry_point(weights: Path):
    def entry_point(device: str = "cpu"):
        from stn_core.checkpoints import load

        return load(weights, device=device)

    entry_point.__name__ = weights.stem.replace("-", "_")
    entry_point.__doc__ = f"The shipped model {weights.name} (see pretrained/README.md)."
    return entry_point


for _weights in sorted(_PRETRAINED.glob("*.safetensors")):
    globals()[_weights.stem.replace("-", "_")] = _entry_point(_weights)
