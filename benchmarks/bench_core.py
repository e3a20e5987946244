"""Training throughput and inference latency of every model kind, as a Markdown table.

    python -m benchmarks.bench_core [--device cpu|cuda] [--steps 20] [--threads N]

Training: full steps (draw distortions, warp, forward, backward, Adam) at batch 256 on the
model's regime, in images/s. Inference: median latency of one forward pass under
``torch.inference_mode`` for 1 image and for a batch of 64. Inputs are random digits: the
cost does not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from stn_core.distortions import REGIMES, distort, draw_distortion
from stn_core.models import build_model, count_parameters

KINDS = [
    ("RTS", {"model": "cnn"}),
    ("RTS", {"model": "st-cnn", "transform": "affine"}),
    ("RTS", {"model": "st-cnn", "transform": "projective"}),
    ("RTS", {"model": "st-cnn", "transform": "tps"}),
    ("RTS", {"model": "fcn"}),
    ("RTS", {"model": "st-fcn", "transform": "affine"}),
    ("R", {"model": "st-cnn", "transform": "affine"}),
    ("TC", {"model": "cnn"}),
    ("TC", {"model": "st-cnn", "transform": "attention"}),
]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def training_throughput(model, regime, device, steps, batch_size=256) -> float:
    pool = torch.rand(2048, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (batch_size,), device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()

    def step():
        index = torch.randint(0, pool.shape[0], (batch_size,), generator=generator).to(device)
        distortion = draw_distortion(regime, batch_size, generator, pool_size=pool.shape[0])
        loss = F.cross_entropy(model(distort(pool[index], distortion, pool=pool)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch_size / (time.perf_counter() - started)


@torch.inference_mode()
def latency_ms(model, canvas_size, batch, device, repeats) -> float:
    model.eval()
    images = torch.rand(batch, 1, canvas_size, canvas_size, device=device)
    for _ in range(10):
        model(images)
    times = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        model(images)
        _sync(device)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--repeats", type=int, default=200, help="timed forward passes per latency")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(f"device: {device} ({where}); torch {torch.__version__}\n")
    print("| model | regime | canvas | parameters | train images/s (batch 256) | infer 1 image (ms) | infer 64 images (ms) |")
    print("|---|---|---|---|---|---|---|")
    for regime, kind in KINDS:
        canvas = REGIMES[regime].canvas_size
        torch.manual_seed(0)
        model = build_model({**kind, "canvas_size": canvas}).to(device)
        throughput = training_throughput(model, regime, device, args.steps)
        one = latency_ms(model, canvas, 1, device, args.repeats)
        many = latency_ms(model, canvas, 64, device, max(20, args.repeats // 10))
        print(
            f"| {model.config.label} | {regime} | {canvas} | {count_parameters(model):,} "
            f"| {throughput:,.0f} | {one:.2f} | {many:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
