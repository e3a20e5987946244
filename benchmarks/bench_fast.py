"""The live path's fast model copies against the models themselves: same answers? how fast?

    python -m benchmarks.bench_fast [--pair rts] [--batch 100] [--json FILE]

For a shipped pair (``PAIR-st-cnn-affine`` and ``PAIR-cnn`` from ``pretrained/``), on the
pair's fixed 10,000-digit test set (``$STN_DATA_DIR``): each model's test error, float32
against its :func:`stn_core.fast.fast_copy` (bfloat16 classifier where the CPU has it), the
largest difference of any class probability, how many answers differ, and the largest
difference of θ. Then the time of one forward pass of both models (ST-CNN details + CNN) on
a batch of ``--batch`` and of 1 (median of 30 after 5 warm-ups), as frames per second.
Last, the 2x2 max-pooling of the classifier's first activation (``--batch`` x 32 x 34 x 34,
channels-last, in the fast classifier's type): ``nn.MaxPool2d(2)`` against the
:class:`stn_core.fast.MaxPool2x2` the fast copies use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import stn_core
from stn_core.evaluate import regime_test_set
from stn_core.fast import MaxPool2x2, fast_copy

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def _time(run, repeats: int = 30) -> float:
    for _ in range(5):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", default="rts", help="regime prefix of the shipped pair (default: rts)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    st = stn_core.load(PRETRAINED / f"{args.pair}-st-cnn-affine.safetensors")
    cnn = stn_core.load(PRETRAINED / f"{args.pair}-cnn.safetensors")
    fast_st, fast_cnn = fast_copy(st), fast_copy(cnn)
    images, labels = regime_test_set(st.card.regime, os.environ.get("STN_DATA_DIR"))
    report = {"pair": args.pair, "digits": int(images.shape[0]), "dtype": str(fast_st.dtype).replace("torch.", "")}
    for name, model, fast in (("st-cnn", st, fast_st), ("cnn", cnn, fast_cnn)):
        wrong = wrong_fast = differ = 0
        prob_gap = theta_gap = 0.0
        for start in range(0, images.shape[0], 500):
            batch, truth = images[start : start + 500], labels[start : start + 500]
            with torch.inference_mode():
                exact = model(batch).softmax(1)
                if name == "st-cnn":
                    theta_gap = max(
                        theta_gap,
                        float((model.forward_details(batch).theta - fast.forward_details(batch).theta).abs().max()),
                    )
            quick = fast(batch).softmax(1)
            wrong += int((exact.argmax(1) != truth).sum())
            wrong_fast += int((quick.argmax(1) != truth).sum())
            differ += int((exact.argmax(1) != quick.argmax(1)).sum())
            prob_gap = max(prob_gap, float((exact - quick).abs().max()))
        report[name] = {
            "error_float32": round(100 * wrong / images.shape[0], 2),
            "error_fast": round(100 * wrong_fast / images.shape[0], 2),
            "answers_differ": differ,
            "max_probability_gap": round(prob_gap, 4),
            **({"max_theta_gap": theta_gap} if name == "st-cnn" else {}),
        }
    for size in (1, args.batch):
        x = images[:size]
        with torch.inference_mode():
            exact = _time(lambda x=x: (st.forward_details(x), cnn(x)))
        quick = _time(lambda x=x: (fast_st.forward_details(x), fast_cnn(x)))
        report[f"batch_{size}"] = {
            "float32_frames_per_s": round(size / exact),
            "fast_frames_per_s": round(size / quick),
            "speedup": round(exact / quick, 2),
        }
    activation = torch.rand(args.batch, 32, 34, 34, dtype=fast_st.dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        report["pool_ms"] = {
            name: round(1000 * _time(lambda pool=pool: pool(activation)), 3)
            for name, pool in (("MaxPool2d", torch.nn.MaxPool2d(2)), ("MaxPool2x2", MaxPool2x2()))
        }
    threads = torch.get_num_threads()
    report["machine"] = f"{os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}, {threads} threads"

    print(f"Pair {args.pair}, {report['digits']} fixed test digits, fast classifier in {report['dtype']}; {report['machine']}\n")
    print("| model | error float32 (%) | error fast (%) | answers that differ | max probability gap |")
    print("|---|---:|---:|---:|---:|")
    for name in ("st-cnn", "cnn"):
        row = report[name]
        print(
            f"| {name} | {row['error_float32']} | {row['error_fast']} | {row['answers_differ']} | {row['max_probability_gap']} |"
        )
    print(f"\nθ: largest difference {report['st-cnn']['max_theta_gap']:.2e}\n")
    print("| batch | float32 frames/s | fast frames/s | speed-up |")
    print("|---:|---:|---:|---:|")
    for size in (1, args.batch):
        row = report[f"batch_{size}"]
        print(f"| {size} | {row['float32_frames_per_s']} | {row['fast_frames_per_s']} | {row['speedup']}x |")
    pool = report["pool_ms"]
    print(f"\n2x2 max-pooling of {args.batch} x 32 x 34 x 34:", end=" ")
    print(f"MaxPool2d {pool['MaxPool2d']} ms, MaxPool2x2 {pool['MaxPool2x2']} ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
