"""Plot models' error against rotation angle, from the ``angle_error`` on their cards.

    python scripts/angle_plot.py pretrained/full-st-cnn-affine.safetensors pretrained/full-cnn.safetensors \\
        pretrained/rts-st-cnn-affine.safetensors pretrained/rts-cnn.safetensors --out assets/angle_curve.png

The cards get ``angle_error`` from ``python -m stn_core.evaluate --update-cards --angle-curve``
(the 10,000 MNIST test digits turned by each angle, every 15 degrees, upright scale and
position). The plot draws one line per model, the trained rotation range of each regime
shaded, and prints the numbers as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stn_core.checkpoints import read_card  # noqa: E402
from stn_core.distortions import REGIMES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help=".safetensors files whose cards carry angle_error")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cards = [read_card(path) for path in args.checkpoints]
    missing = [card.name for card in cards if not card.angle_error]
    if missing:
        hint = "run python -m stn_core.evaluate --update-cards --angle-curve"
        raise SystemExit(f"no angle_error on the card of {', '.join(missing)}: {hint}")
    figure, axes = plt.subplots(figsize=(8, 4), dpi=120)
    for card in cards:
        angles = sorted(int(a) for a in card.angle_error)
        errors = [card.angle_error[str(a)] for a in angles]
        style = "-" if card.config.model == "st-cnn" else "--"
        axes.plot(angles, errors, style, marker="o", markersize=3, label=f"{card.display_name} ({card.name})")
    for card in cards:
        rotation = REGIMES[card.regime].rotation
        if rotation and rotation != (-180, 180) and card.config.model == "st-cnn":
            axes.axvspan(*rotation, color="0.9", zorder=0)
            label = f"{card.regime}: trained ±{rotation[1]:g}°"
            axes.text(0, 0.97, label, transform=axes.get_xaxis_transform(), ha="center", va="top")
    axes.set_xlabel("rotation of the test digits (degrees)")
    axes.set_ylabel("test error (%)")
    axes.set_xticks(range(-180, 181, 45))
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("Error against rotation angle (10,000 MNIST test digits, upright scale and position)", fontsize=9)
    figure.tight_layout()
    figure.savefig(args.out)
    plt.close(figure)

    angles = sorted({int(a) for card in cards for a in card.angle_error})
    print("| angle (°) | " + " | ".join(card.name for card in cards) + " |")
    print("|---:|" + "---:|" * len(cards))
    for angle in angles:
        print(f"| {angle} | " + " | ".join(f"{card.angle_error.get(str(angle), float('nan')):.2f}" for card in cards) + " |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
