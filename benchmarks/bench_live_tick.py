"""What one tick of the live channel costs: a batch of frames computed and encoded, alone
and beside a busy Python thread, and how many bytes each frame is on the wire.

    python -m benchmarks.bench_live_tick [--frames 100] [--json FILE]

Runs :meth:`stn_lab.live.LiveHub.compute` (distortion, both fast models, encoding: the
compute thread's whole work per tick) on ``--frames`` requests of the default model, one
sample digit each, rotation spread over the slider. Timed as the median of 30 after 5
warm-ups (:func:`benchmarks.bench_fast._time`):

* **alone**: nothing else running in the process;
* **beside a busy Python thread**: another thread encodes JSON in a loop meanwhile, as the
  server's event loop does while it reads and sends a hall's messages. Eager PyTorch takes
  the GIL back between operators, so this shows how much the compute thread is held up by
  Python work elsewhere in the process.

Then the size of one frame: the binary message the socket sends (:func:`frame_messages`)
against the same frame as the ``/live_frame`` JSON (:func:`frame_payloads`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading

import torch

from benchmarks.bench_fast import _time
from stn_lab.lab import Lab
from stn_lab.live import LiveHub, frame_messages, frame_payloads


def _busy(stop: threading.Event) -> None:
    payload = {"frame": [0.5] * 200}
    while not stop.is_set():
        json.dumps(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="frames in the tick")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.frames < 1:
        parser.error("--frames must be at least 1")

    lab = Lab()
    hub = LiveHub(lab)
    key = lab.model_key(None)
    pool = lab.service.sample_images.shape[0]
    requests = [
        (i, key, lab.controls(rotation=-180.0 + 360.0 * i / args.frames, scale=1.1), lab.sample_digit(i % pool)[0])
        for i in range(args.frames)
    ]
    alone = _time(lambda: hub.compute(requests))
    stop = threading.Event()
    thread = threading.Thread(target=_busy, args=(stop,), daemon=True)
    thread.start()
    try:
        beside = _time(lambda: hub.compute(requests))
    finally:
        stop.set()
        thread.join()

    results = lab.service.predict_many([requests[0][3]], [requests[0][2]], key, fast=True)
    binary = len(frame_messages(lab, key, results, [1])[0])
    as_json = len(json.dumps(frame_payloads(lab, key, results, [1])[0], separators=(",", ":")))
    report = {
        "model": key,
        "frames": args.frames,
        "compute_alone_ms": round(alone * 1e3, 1),
        "compute_beside_busy_thread_ms": round(beside * 1e3, 1),
        "frame_bytes_binary": binary,
        "frame_bytes_json": as_json,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}",
    }
    print(f"## One live tick of {args.frames} frames ({key}; {report['machine']}, {report['torch_threads']} torch threads)\n")
    print("| | ms per tick | ms per frame |\n|---|---:|---:|")
    for label, seconds in (("alone", alone), ("beside a busy Python thread", beside)):
        print(f"| {label} | {seconds * 1e3:.1f} | {seconds * 1e3 / args.frames:.2f} |")
    print(f"\nOne frame: {binary:,} bytes as the socket's binary message, {as_json:,} bytes as JSON.")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)


if __name__ == "__main__":
    main()
