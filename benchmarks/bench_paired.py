"""Is one several-digit model really better than another? A paired test on the fixed test set.

    python -m benchmarks.bench_paired pretrained/sequence-rnn-spn.safetensors pretrained/sequence-glimpse-rnn.safetensors

Both models (of the same task) read the task's fixed test set (built from the 10,000 MNIST
test digits, ``$STN_DATA_DIR``); every answer (each digit of a sequence, or each sum) is
paired across the two. McNemar's test (with continuity correction) on the answers only
one of the two gets wrong says how likely a difference this large is when the models are
equally good. One seed each: it says nothing about the spread between training runs.
"""

from __future__ import annotations

import argparse
import math

import torch

from stn_core import load
from stn_core.evaluate import task_test_set


@torch.inference_mode()
def wrong_answers(model, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``(N * heads,)`` bool: which answers of ``model`` are wrong, in a fixed order."""
    predictions = torch.cat([model(inputs[i : i + batch_size]).argmax(-1) for i in range(0, inputs.shape[0], batch_size)])
    return (predictions.reshape(targets.shape) != targets).flatten()


def mcnemar(first_wrong: torch.Tensor, second_wrong: torch.Tensor) -> tuple[int, int, float]:
    """``(only the first wrong, only the second wrong, two-sided p)``.

    >>> mcnemar(torch.tensor([True, False] * 50), torch.tensor([False, True] * 50))[2]
    1.0
    """
    only_first = int((first_wrong & ~second_wrong).sum())
    only_second = int((~first_wrong & second_wrong).sum())
    if only_first + only_second == 0:
        return 0, 0, 1.0
    chi2 = max(0.0, abs(only_first - only_second) - 1) ** 2 / (only_first + only_second)
    return only_first, only_second, math.erfc(math.sqrt(chi2 / 2))  # chi-squared, 1 degree of freedom


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--data-dir", help="MNIST folder (default: $STN_DATA_DIR, else data/mnist)")
    args = parser.parse_args(argv)
    first, second = load(args.first), load(args.second)
    if first.card.task is None or first.card.task != second.card.task:
        parser.error(f"both models must be of the same several-digit task, got {first.card.task} and {second.card.task}")
    inputs, targets = task_test_set(first.card.task, args.data_dir)
    a, b = wrong_answers(first, inputs, targets), wrong_answers(second, inputs, targets)
    only_a, only_b, p = mcnemar(a, b)
    print(f"| model | answers wrong (of {a.numel():,}) | wrong where the other is right |")
    print("|---|---:|---:|")
    print(f"| {first.card.label} | {int(a.sum()):,} ({100 * a.float().mean():.2f} %) | {only_a:,} |")
    print(f"| {second.card.label} | {int(b.sum()):,} ({100 * b.float().mean():.2f} %) | {only_b:,} |")
    print(f"\nMcNemar's test: p = {p:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
