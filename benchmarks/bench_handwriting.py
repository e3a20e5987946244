"""Error on real handwriting through the app's own input path, as a Markdown table.

    python -m benchmarks.bench_handwriting --model pretrained/rts-st-cnn-affine.safetensors \\
        [--cnn pretrained/full-st-cnn-affine.safetensors] [--json FILE] [--limit N] [--threads N] [--usps-only]

Every digit goes through :func:`stn_core.preprocess.prepare_digit` exactly as a user's
image does, then onto the model's canvas (the 28x28 digit centred by zero padding, e.g.
7 px a side for the 42x42 RTS models). Sets, all drawn without any distortion:

* **USPS, uploaded**: the 2,007 USPS test digits (``$STN_USPS``, else
  ``../shared/data/usps/usps-test.npz``; scanned US mail, writers outside MNIST). Each
  16x16 digit is inverted to dark ink on white and upscaled (bicubic) to 192x192, as a
  tightly cropped scan or photo would arrive: the ink often touches the border. The
  development set of issue 16: measure on it, never train on it.
* **MNIST, uploaded**: MNIST test digits through the same path (inverted, upscaled 7x to
  196x196), to check that the input path costs nothing on the digits the models know.
* **MNIST, direct**: the same digits placed on the canvas as they are, without
  preprocessing (the models' own test error on upright digits, for reference).
* **sketch (USPS strokes)** and **sketch (MNIST strokes)**: each digit's skeleton (Zhang-Suen
  thinning of the digit upscaled 8x / 4x) redrawn as the app's sketchpad draws: black
  round brush 18 px wide on a white 280x280 canvas, the ink 200 px tall
  (``--sketch-height``), antialiased. This is a **proxy** for the hidden set of issue 16
  (pen-drawn digits by writers outside MNIST, rendered as sketchpad strokes): the same
  rendering, but of USPS and MNIST shapes rather than of pen trajectories.
* **small sketch (USPS strokes, 80 px)**: the first 1,000 USPS digits drawn the same way
  but only 80 px tall, so the 18-px brush makes them fat (often a filled loop): the case
  of a user drawing small.

MNIST (``$STN_DATA_DIR``) is read from its IDX files; ``--limit`` takes the first N test
digits for the MNIST rows (default 2,000; the direct row always uses all 10,000). An image
refused by ``prepare_digit`` (``NoDigitError``) counts as an error. Runs in about three
minutes on one free CPU core (``--threads 1``), most of it in ``prepare_digit``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stn_core import load
from stn_core.mnist import load_mnist
from stn_core.preprocess import ImageInputError, prepare_digit
from stn_core.sketch import draw_sketch

ROOT = Path(__file__).resolve().parents[1]
USPS = Path(os.environ.get("STN_USPS") or ROOT.parent / "shared" / "data" / "usps" / "usps-test.npz")
UPLOAD_SIZE = 192  # pixels a side of an "uploaded" USPS digit (16 x 12)
SMALL_HEIGHT, SMALL_COUNT = 80, 1000  # a digit drawn small: the brush covers a quarter of its height


def upload(digit: np.ndarray, size: int) -> np.ndarray:
    """A bright-on-black digit as a photo or scan would arrive: dark ink on white, ``size`` px."""
    inverted = Image.fromarray(255 - np.asarray(digit, np.uint8))
    return np.asarray(inverted.resize((size, size), Image.Resampling.BICUBIC))


def prepared(images) -> tuple[np.ndarray, np.ndarray]:
    """``prepare_digit`` of each image: ``(N, 28, 28)`` digits and a mask of the refused."""
    digits, refused = [], []
    for image in images:
        try:
            digits.append(prepare_digit(image))
            refused.append(False)
        except ImageInputError:
            digits.append(np.zeros((28, 28), np.float32))
            refused.append(True)
    return np.stack(digits), np.array(refused)


def on_canvas(digits: np.ndarray, size: int) -> torch.Tensor:
    """``(N, 28, 28)`` digits centred on ``size`` x ``size`` canvases by zero padding."""
    before = (size - 28) // 2
    padded = np.zeros((digits.shape[0], 1, size, size), np.float32)
    padded[:, 0, before : before + 28, before : before + 28] = digits
    return torch.from_numpy(padded)


@torch.inference_mode()
def predictions(model, digits: np.ndarray, batch: int = 500) -> np.ndarray:
    images = on_canvas(digits, model.canvas_size)
    return np.concatenate([model(images[i : i + batch]).argmax(1).numpy() for i in range(0, len(images), batch)])


USPS_ROW = "USPS, uploaded"


def build_sets(limit: int, sketch_height: int, data_dir=None, only: str | None = None) -> dict:
    """``{row name: ((digits, refused), labels)}``; ``only``: just that row."""
    usps = np.load(USPS)
    usps_images, usps_labels = usps["images"], usps["labels"].astype(np.int64)
    mnist = None if only == USPS_ROW else load_mnist("test", data_dir, download=False)
    mnist_images, mnist_labels = (mnist[0].numpy(), mnist[1].numpy().astype(np.int64)) if mnist else (None, None)
    head, head_labels = (mnist_images[:limit], mnist_labels[:limit]) if mnist else (None, None)
    # Each row is built only when asked for: preprocessing is most of the run's time.
    rows = {
        USPS_ROW: lambda: (prepared(upload(d, UPLOAD_SIZE) for d in usps_images), usps_labels),
        "sketch (USPS strokes)": lambda: (prepared(draw_sketch(d, sketch_height, upscale=8) for d in usps_images), usps_labels),
        f"small sketch (USPS strokes, {SMALL_HEIGHT} px)": lambda: (
            prepared(draw_sketch(d, SMALL_HEIGHT, upscale=8) for d in usps_images[:SMALL_COUNT]),
            usps_labels[:SMALL_COUNT],
        ),
        "MNIST, uploaded": lambda: (prepared(upload(d, 196) for d in head), head_labels),
        "sketch (MNIST strokes)": lambda: (prepared(draw_sketch(d, sketch_height, upscale=4) for d in head), head_labels),
        "MNIST, direct": lambda: ((mnist_images.astype(np.float32) / 255, np.zeros(len(mnist_images), bool)), mnist_labels),
    }
    started = time.perf_counter()
    sets = {name: build() for name, build in rows.items() if only is None or name == only}
    return sets, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pretrained/rts-st-cnn-affine.safetensors")
    parser.add_argument("--cnn", default=None, help="a second model to compare with (e.g. pretrained/rts-cnn.safetensors)")
    parser.add_argument("--limit", type=int, default=2000, help="MNIST test digits for the uploaded and sketch rows")
    parser.add_argument("--sketch-height", type=int, default=200)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--usps-only", action="store_true", help=f"only the row {USPS_ROW!r} (what the tests recompute)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [load(path) for path in [args.model, args.cnn] if path]
    # "RTS · ST-CNN Aff": the regime too, so that two models of one kind get two columns; two
    # models of one regime and kind (a shipped one and a trial) are told apart by their files,
    # else the second's errors would overwrite the first's under one name.
    names = [model.card.display_name for model in models]
    if len(set(names)) < len(names):
        names = [f"{name} ({path})" for name, path in zip(names, [args.model, args.cnn])]
    sets, prepare_s = build_sets(args.limit, args.sketch_height, args.data_dir, USPS_ROW if args.usps_only else None)
    results = {}
    for set_name, ((digits, refused), labels) in sets.items():
        row = {"digits": int(len(labels)), "refused": int(refused.sum()), "error": {}}
        for name, model in zip(names, models):
            wrong = (predictions(model, digits) != labels) | refused
            row["error"][name] = round(100 * float(wrong.mean()), 2)
        results[set_name] = row
    command = "python -m benchmarks.bench_handwriting " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"`{command}`",
        "",
        "| set | digits | " + " | ".join(f"{n} error %" for n in names) + " | refused |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for set_name, row in results.items():
        errors = " | ".join(f"{row['error'][n]:.2f}" for n in names)
        lines.append(f"| {set_name} | {row['digits']:,} | {errors} | {row['refused']} |")
    print("\n".join(lines))
    print(f"\n(preprocessing {prepare_s:.0f} s; {platform.processor() or platform.machine()}, torch {torch.__version__})")
    if args.json:
        payload = {
            "command": command,
            "models": dict(zip(names, [args.model, args.cnn])),
            "results": results,
            "sketch_height": args.sketch_height,
            "limit": args.limit,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
