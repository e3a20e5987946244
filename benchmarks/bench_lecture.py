"""A lecture hall on the app: N students dragging sliders at once, over HTTP.

    python -m benchmarks.bench_lecture [--clients 1 10 50 100] [--duration 10]

For each N, N concurrent clients each pick a sample digit in their own session, then send
slider updates (the live ``/frame`` event: rotation sweeping, scale varying) one after
another, as fast as answers come, for ``--duration`` seconds. Printed per N: requests
answered per second, median and p95 latency, failed requests, and whether the app still
answers afterwards. Everything runs on loopback against the app built as ``app.launch``
serves it; the client loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
import warnings

from benchmarks.bench_app import Caller, free_port, machine_line, model_folder, slider_settings


def student(base: str, key: str, duration: float, latencies: list, failures: list, max_requests: int = 10_000) -> None:
    caller = Caller(base)
    session = uuid.uuid4().hex[:11]
    settings = slider_settings(200)
    try:
        caller.call("from_sample", [hash(session) % 1000], session_hash=session)
        deadline = time.perf_counter() + duration
        for i in range(max_requests):
            if time.perf_counter() >= deadline:
                break
            values = settings[i % len(settings)]
            started = time.perf_counter()
            try:
                out = caller.call("frame", [key, values["rotation"], values["scale"], 0.0, 0.0, 0.0, 0.0, 0.0, False, 0], session_hash=session)
                if not str(out[0]).startswith("<svg"):
                    raise RuntimeError(f"unexpected answer: {str(out)[:200]}")
                latencies.append(time.perf_counter() - started)
            except Exception as error:  # counted, not raised: the benchmark reports failures
                failures.append(repr(error)[:200])
    finally:
        caller.close()


def lecture(base: str, key: str, clients: int, duration: float) -> dict:
    latencies, failures = [], []
    threads = [threading.Thread(target=student, args=(base, key, duration, latencies, failures)) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 120)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "answered": len(latencies),
        "per_second": len(latencies) / elapsed,
        "median_ms": 1000 * statistics.median(ordered) if ordered else float("nan"),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan"),
        "failed": len(failures),
        "first_failure": failures[0] if failures else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of slider updates per client count")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: $STN_DEVICE, else cuda when available)")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    warnings.filterwarnings("ignore", message=".*(no_silent_downcasting|copy keyword).*")

    import app
    from stn_lab.service import InferenceService
    from stn_lab.lab import Lab

    folder, source = model_folder()
    lab = Lab(InferenceService(folder, device=args.device))
    key = lab.service.default_key()
    demo = app.build_app(lab)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    base = f"http://127.0.0.1:{port}"
    try:
        rows = [lecture(base, key, clients, args.duration) for clients in args.clients]
        still_up = Caller(base)
        alive = str(still_up.call("frame", [key, 0, 1, 0, 0, 0, 0, 0, False, 0])[2])  # no digit in this session: a message
        still_up.close()
    finally:
        demo.close()

    print(f"## STN Lab under a lecture's load ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {machine_line(lab.service.device)}.  ")
    print(f"Models: {source}; model `{key}`; {args.duration:.0f} s of back-to-back slider updates per client, on loopback.\n")
    print("| clients | answered | requests/s | median (ms) | p95 (ms) | failed |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['clients']} | {row['answered']} | {row['per_second']:.1f} | {row['median_ms']:.0f} | {row['p95_ms']:.0f} | {row['failed']} |")
    print(f"\nAfterwards the app still answered: {'yes' if 'no digit' in alive else 'NO: ' + alive[:100]}.")
    for row in rows:
        if row["failed"]:
            print(f"\nfirst failure at {row['clients']} clients: {row['first_failure']}")


if __name__ == "__main__":
    main()
