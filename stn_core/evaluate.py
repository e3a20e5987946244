"""Test error of models on the fixed distorted MNIST test sets, laid out like Table 1.

    python -m stn_core.evaluate pretrained/*.safetensors --regimes R RTS P E TC --json results.json

Each checkpoint is evaluated on every requested regime whose canvas fits its input (R, P
and E share 28x28); without ``--regimes``, on the regime it was trained for. The table has
a row per model kind and a column per regime, and each cell is the error of the model
trained for that column's regime, as in the paper. The JSON holds every number measured:
``{checkpoint: {regime: error_percent}}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from .cards import ModelCard
from .checkpoints import load, read_card, write_card
from .distortions import REGIMES, as_float_images, fixed_test_set
from .mnist import SAMPLE_SIZE, TEST_DIGITS, load_mnist, load_sample, mnist_dir
from .multi import TASKS, fixed_task_test_set, task_errors

__all__ = [
    "PAPER_TABLE",
    "cards_table",
    "error_rate",
    "evaluate_checkpoints",
    "pretrained_readme",
    "regime_test_set",
    "replace_results_section",
    "results_table",
    "sample_test_set",
    "task_sample_set",
    "task_test_set",
    "tasks_table",
]

# Table 1 of the paper: test error (%) on distorted MNIST, and on 60x60 cluttered MNIST.
PAPER_TABLE = {
    "CNN": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 1.4, "TC": 3.5},
    "ST-CNN Aff": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.2, "TC": 1.7},
    "ST-CNN Proj": {"R": 0.8, "RTS": 0.6, "P": 0.8, "E": 1.3},
    "ST-CNN TPS": {"R": 0.7, "RTS": 0.5, "P": 0.8, "E": 1.1},
    # The paper's cluttered column has one ST-CNN (1.7); we train it with the attention form.
    "ST-CNN Att": {"TC": 1.7},
    "FCN": {"R": 2.1, "RTS": 5.2, "P": 3.1, "E": 3.2},
    "ST-FCN Aff": {"R": 1.2, "RTS": 0.8, "P": 1.5, "E": 2.7},
}


@torch.inference_mode()
def error_rate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Classification error in percent of ``model`` on ``images`` ``(N, 1, S, S)``."""
    device = next(model.parameters()).device
    wrong = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size].to(device))
        wrong += int((logits.argmax(1).cpu() != labels[start : start + batch_size]).sum())
    return 100.0 * wrong / images.shape[0]


@functools.lru_cache(maxsize=8)
def _cached_test_set(regime: str, folder: str) -> tuple[Tensor, Tensor]:
    images, labels = load_mnist("test", folder)
    return fixed_test_set(as_float_images(images), regime), labels


def regime_test_set(regime: str, data_dir=None) -> tuple[Tensor, Tensor]:
    """The fixed distorted copy of the 10,000 MNIST test digits (``TEST_DIGITS``) for ``regime`` (cached)."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
    return _cached_test_set(regime, str(mnist_dir(data_dir).resolve()))


def sample_test_set(regime: str) -> tuple[Tensor, Tensor]:
    """The 1,000 shipped sample digits (:func:`~stn_core.mnist.load_sample`) distorted by ``regime``, fixed seed."""
    images, labels, _ = load_sample()
    return fixed_test_set(as_float_images(images), regime), labels


@functools.lru_cache(maxsize=2)
def _cached_task_set(task: str, folder: str) -> tuple[Tensor, Tensor]:
    images, labels = load_mnist("test", folder)
    return fixed_task_test_set(task, as_float_images(images), labels)


def task_test_set(task: str, data_dir=None) -> tuple[Tensor, Tensor]:
    """The fixed test set of a several-digit ``task``, built from the 10,000 MNIST test digits (cached)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return _cached_task_set(task, str(mnist_dir(data_dir).resolve()))


def task_sample_set(task: str) -> tuple[Tensor, Tensor]:
    """The fixed test set of ``task`` built from the 1,000 shipped sample digits."""
    images, labels, _ = load_sample()
    return fixed_task_test_set(task, as_float_images(images), labels)


def evaluate_checkpoints(paths, regimes=None, data_dir=None, device="cpu"):
    """Evaluate checkpoints; returns ``({path: {regime or metric: error}}, {path: ModelCard})``.

    A several-digit model is measured on its task's fixed test set, by the task's metrics."""
    results, cards = {}, {}
    for path in paths:
        model = load(path, device=device)
        card = model.card
        if card.task is not None:
            results[str(path)] = task_errors(model, *task_test_set(card.task, data_dir))
            cards[str(path)] = card
            continue
        wanted = regimes or [card.regime]
        fitting = [r for r in wanted if REGIMES[r].canvas_size == model.canvas_size]
        results[str(path)] = {r: error_rate(model, *regime_test_set(r, data_dir)) for r in fitting}
        cards[str(path)] = card
    return results, cards


def results_table(results: dict[str, dict[str, float]], cards: dict[str, ModelCard], show_paper: bool = False) -> str:
    """Markdown table: a row per model kind, a column per regime (paper's Table 1 layout).

    A cell holds the error of the model trained for that column's regime, measured on it;
    with ``show_paper`` it reads ``ours (paper)``.
    """
    rows: dict[str, dict[str, float]] = {}
    columns = set()
    for path, errors in results.items():
        card = cards[path]
        regime = card.regime
        if regime not in errors:
            continue
        label = card.label
        if regime in rows.get(label, {}):  # a second model of the same kind and regime
            label = f"{label} ({Path(path).stem})"
        rows.setdefault(label, {})[regime] = errors[regime]
        columns.add(regime)
    ordered = [r for r in REGIMES if r in columns]
    lines = ["| model | " + " | ".join(ordered) + " |", "|---|" + "---|" * len(ordered)]
    for label, errors in rows.items():
        cells = []
        for regime in ordered:
            cell = f"{errors[regime]:.2f}" if regime in errors else "—"
            paper = PAPER_TABLE.get(label.split(" (")[0], {}).get(regime)
            if show_paper and paper is not None:
                cell += f" ({paper})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


METRIC_WORDS = {"sum": "sum", "digit": "per digit", "sequence": "whole sequence"}


def tasks_table(results: dict[str, dict[str, float]], cards: dict[str, ModelCard]) -> str:
    """Markdown table of the several-digit models (``""`` when there are none): each
    model's errors by its task's metrics, and the published number for its kind."""
    lines = ["| task | model | error % (ours) | published |", "|---|---|---|---|"]
    for path, errors in results.items():
        card = cards[path]
        if card.task is None:
            continue
        ours = ", ".join(f"{errors[m]:.2f} {METRIC_WORDS[m]}" for m in TASKS[card.task].metrics if m in errors)
        published = TASKS[card.task].published.get(card.config.kind)
        lines.append(f"| {card.task} | {card.label} | {ours} | {'—' if published is None else published} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def pretrained_readme(cards: dict[str, ModelCard]) -> str:
    """``pretrained/README.md``: the Table-1 layout from the cards (ours, paper in brackets)
    and what each model cost to train."""
    lines = [
        "# Shipped models",
        "",
        f"Test error (%) on our fixed, seeded distorted copies of all {TEST_DIGITS:,} MNIST test digits,",
        "with the paper's Table 1 number in brackets. Generated from the model cards by",
        "`python -m stn_core.evaluate pretrained/*.safetensors --update-cards --readme pretrained/README.md`;",
        "do not edit by hand.",
        "",
        cards_table(cards),
        "",
        "| model | file | parameters | epochs | weight decay | images seen | wall time | device "
        f"| error on the {SAMPLE_SIZE:,} shipped digits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path, card in sorted(cards.items(), key=lambda item: (item[1].regime or item[1].task, item[1].name)):
        training = card.training
        cost = "| — | — | — | — | — |"  # a model saved without training
        if training is not None:
            cost = (
                f"| {training.epochs} | {training.weight_decay:g} | {training.images_seen:,} "
                f"| {training.wall_time_s / 60:.0f} min | {training.device} |"
            )
        sample = ", ".join(f"{r} {e:.1f}" for r, e in (card.sample_error or {}).items())
        kind = f"{card.label} ({card.regime or card.task})"
        lines.append(f"| {kind} | `{Path(path).name}` | {card.parameter_count:,} {cost} {sample} |")
    lines += ["", "Each model's command line is in its card (`training.command`)."]
    return "\n".join(lines) + "\n"


RESULTS_START, RESULTS_END = "<!-- results: generated by stn_core.evaluate -->", "<!-- end of results -->"


def cards_table(cards: dict[str, ModelCard]) -> str:
    """The Table-1 layout of the errors recorded in ``cards`` (``ours (paper)``), then the
    several-digit models' table when there are any."""
    recorded = {path: card.test_error for path, card in cards.items()}
    tasks = tasks_table(recorded, cards)
    return results_table(recorded, cards, show_paper=True) + (f"\n\n{tasks}" if tasks else "")


def replace_results_section(text: str, table: str) -> str:
    """``text`` (a README) with the table between its results markers replaced by ``table``."""
    if RESULTS_START not in text or RESULTS_END not in text:
        raise ValueError(f"no results section: the README needs the lines {RESULTS_START!r} and {RESULTS_END!r}")
    before, rest = text.split(RESULTS_START, 1)
    after = rest.split(RESULTS_END, 1)[1]
    return f"{before}{RESULTS_START}\n{table}\n{RESULTS_END}{after}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stn_core.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help=".safetensors files (their .json cards beside them)")
    parser.add_argument("--regimes", nargs="+", choices=list(REGIMES), help="default: each model's own regime")
    parser.add_argument("--json", type=Path, help="also write {checkpoint: {regime: error_percent}} here")
    parser.add_argument("--data-dir", help="MNIST folder (default: $STN_DATA_DIR, else data/mnist)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    parser.add_argument("--paper", action="store_true", help="show the paper's number beside ours: 'ours (paper)'")
    parser.add_argument(
        "--update-cards", action="store_true", help="store the measured errors (and the error on the shipped sample) in each card"
    )
    parser.add_argument(
        "--angle-curve",
        action="store_true",
        help="with --update-cards: also store each model's error on the test digits turned every 15 degrees",
    )
    parser.add_argument(
        "--from-cards",
        action="store_true",
        help="measure nothing: print and write the tables from the errors the cards hold (after --update-cards runs)",
    )
    parser.add_argument("--readme", type=Path, help="write the shipped-models README (Table-1 layout) from the cards here")
    parser.add_argument(
        "--results-section",
        type=Path,
        help="replace the results section of this README (between its markers) with the cards' table",
    )
    args = parser.parse_args(argv)
    if args.from_cards and (args.update_cards or args.regimes):
        parser.error("--from-cards measures nothing: it cannot go with --update-cards or --regimes")

    if args.from_cards:
        cards = {str(path): read_card(path) for path in args.checkpoints}
        results = {path: dict(card.test_error) for path, card in cards.items()}
    else:
        results, cards = evaluate_checkpoints(args.checkpoints, args.regimes, args.data_dir, args.device)
    print(results_table(results, cards, show_paper=args.paper))
    tasks = tasks_table(results, cards)
    if tasks:
        print(f"\n{tasks}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.update_cards:
        for path, errors in results.items():
            model, card = load(path), cards[path]
            if card.task is not None:
                sample = task_errors(model, *task_sample_set(card.task))
            else:
                sample = {r: error_rate(model, *sample_test_set(r)) for r in errors}
            card = dataclasses.replace(
                card,
                test_error={**card.test_error, **{r: round(e, 4) for r, e in errors.items()}},
                test_digits=TEST_DIGITS,
                sample_error={key: round(e, 4) for key, e in sample.items()},
            )
            if args.angle_curve and card.task is None:
                from .robustness import angle_curve  # imports this module: not at the top

                images, labels = load_mnist("test", args.data_dir)
                curve = angle_curve(model, as_float_images(images), labels)
                card = dataclasses.replace(card, angle_error={str(a): e for a, e in curve.items()})
            write_card(path, card)
            cards[path] = card
    if args.readme:
        args.readme.write_text(pretrained_readme(cards))
    if args.results_section:
        args.results_section.write_text(replace_results_section(args.results_section.read_text(), cards_table(cards)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
