"""A lecture hall on the app: N students dragging a slider at once, on three paths.

    python -m benchmarks.bench_lecture --clients 1 10 100 300 --duration 10 --json FILE

The app runs in a process of its own, served as ``python app.py`` serves it
(``benchmarks/_serve_app.py``: ``app.launch`` with its queue settings and the live
WebSocket; the one difference is an added trivial ``/echo`` endpoint). The students run
here, in this process, as concurrent asyncio clients on loopback. For each client count,
three paths are measured one after another:

* ``live``: the live channel, one WebSocket per student (``ws://HOST:PORT/live``, the
  ``websockets`` client with its defaults: it offers permessage-deflate, as a browser does,
  and the app declines it, see ``app.launch``): ``ready``, then the student's ``digit``,
  then ``frame`` requests, each answered by a binary frame whose header the student reads
  and whose length it checks (``stn_lab.live.decode_message(..., header_only=True)``);
* ``gradio_event``: the same frames through Gradio's per-event queue, the browser's
  fallback: ``POST /gradio_api/call/live_frame`` then the event's SSE stream until
  ``event: complete`` (httpx, one keep-alive connection per student);
* ``echo``: the same two HTTP steps on the ``/echo`` endpoint (string in, same string
  out), i.e. Gradio's own cost per event with no work inside.

Every student has its own MNIST digit (sample ``i`` of the shipped 1,000-digit sample) and
drags like a browser: closed loop, one request in flight, the next sent as soon as the
answer arrives; rotation sweeps -180...180° and back (3° a step, each student starting
elsewhere in the sweep) while the scale breathes between 0.7 and 1.3. Before the timed
window each student connects and gets one answer (warm-up, not timed; its failures are
counted). The window lasts ``--duration`` s; requests started in it are awaited (at most
``--timeout`` s each) and counted.

Reported per path and client count: frames/s per student (mean, and the slowest
student), frames/s in all, p50/p95/max latency, failures by kind (``error``: an error
answer or HTTP status; ``busy``: the socket's "busy" answer or Gradio's full queue;
``timeout``: no answer within ``--timeout`` s; ``disconnect``: the connection dropped),
the server process's CPU (utime+stime from /proc, % of one core) and this client
process's over the window, and whether the server still answered afterwards (the page,
a socket frame, a ``/live_frame`` call and an echo, each within 30 s). Between rows the
benchmark waits (at most 60 s) for Gradio's queue to empty (``/gradio_api/queue/status``):
Gradio still computes the events of students that gave up, and they would weigh on the
next row; the JSON keeps the queue size found (``queue_left``) and the wait (``settle_s``).

Everything is bounded in time: per row, connecting 30 s + 0.1 s a student, the window
``--duration`` + ``--timeout`` + 15 s (students still stuck then are cancelled and counted
as timeouts), the queue 60 s, the check 4 x 30 s.

The JSON (``--json``) is ``{"live": {"100": {"fps_per_client", "fps_min_client",
"fps_total", "p50_ms", "p95_ms", "max_ms", "failed", "failures": {kind: count},
"first_failure", "server_cpu_pct", "client_cpu_pct", "machine_busy_pct", "frames",
"duration_s", "queue_left", "settle_s", "alive_after", "check"}, ...}, "gradio_event":
{...}, "echo": {...}}``. ``machine_busy_pct`` is the whole machine's CPU use over the
window (100 = every core busy): other work on the machine shows there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field

from stn_lab.live import decode_message

PATHS = ("live", "gradio_event", "echo")
CHECK_TIMEOUT = 30.0


# -- what the students send --------------------------------------------------------------------


def controls_at(student: int, step: int) -> dict:
    """The slider values of ``student``'s ``step``-th request: rotation sweeping -180...180
    and back by 3°, scale between 0.7 and 1.3; every student starts elsewhere."""
    phase = (student * 37 + step) % 240  # 120 steps up, 120 down
    rotation = -180.0 + 3.0 * (phase if phase <= 120 else 240 - phase)
    scale = round(1.0 + 0.3 * math.sin((student * 11 + step) / 7.0), 3)
    return {"rotation": rotation, "scale": scale}


def student_digits(count: int) -> list[str]:
    """Base64 digits (as the browser sends them) of the first ``count`` shipped samples (cycled)."""
    from stn_core.mnist import load_sample
    from stn_lab.live import encode_digit

    images = load_sample()[0].numpy()
    return [encode_digit(images[i % len(images)].astype("float32") / 255.0) for i in range(count)]


# -- bookkeeping -------------------------------------------------------------------------------


class Failure(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


@dataclass
class Tally:
    latencies: list = field(default_factory=list)  # seconds, timed window only
    frames: list = field(default_factory=list)  # frames answered, per student
    failures: dict = field(default_factory=lambda: {"error": 0, "busy": 0, "timeout": 0, "disconnect": 0})
    first_failure: str = ""

    def fail(self, failure: Failure) -> None:
        self.failures[failure.kind] += 1
        if not self.first_failure:
            self.first_failure = str(failure)[:300]


def classify(error: BaseException) -> Failure:
    """Any exception of a request as one of the four kinds of failure."""
    import httpx
    import websockets

    if isinstance(error, Failure):
        return error
    if isinstance(error, (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException)):
        return Failure("timeout", type(error).__name__)
    if isinstance(error, (websockets.ConnectionClosed, httpx.TransportError, ConnectionError, OSError)):
        return Failure("disconnect", f"{type(error).__name__}: {error}"[:200])
    if isinstance(error, websockets.InvalidStatus) and error.response.status_code == 503:
        return Failure("busy", str(error))
    return Failure("error", f"{type(error).__name__}: {error}"[:200])


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def cpu_seconds(pid: int | None = None) -> float:
    """utime + stime of process ``pid`` (this one by default), all its threads, in seconds."""
    with open(f"/proc/{pid or 'self'}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


# -- one student on each path -------------------------------------------------------------------


class LiveStudent:
    """One browser's WebSocket: connect, ``ready``, its digit, then frames one at a time."""

    def __init__(self, index: int, url: str, digit: str, model: str, timeout: float, tally: Tally):
        self.index, self.url, self.digit, self.model, self.timeout, self.tally = index, url, digit, model, timeout, tally
        self.socket = None
        self.seq = 0

    async def connect(self) -> None:
        import websockets

        self.socket = await asyncio.wait_for(websockets.connect(self.url, open_timeout=self.timeout), self.timeout)
        try:
            ready = json.loads(await asyncio.wait_for(self.socket.recv(), self.timeout))
            if ready.get("type") == "busy":
                raise Failure("busy", ready.get("message", "busy"))
            if ready.get("type") != "ready":
                raise Failure("error", f"expected ready, got {str(ready)[:200]}")
            await self.socket.send(json.dumps({"type": "digit", "digit": self.digit}))
        except BaseException:
            await self.close()
            raise

    async def request(self, step: int) -> None:
        """Send frame ``step`` and wait for its answer (answers to older requests are skipped)."""
        self.seq += 1
        seq = self.seq
        await self.socket.send(
            json.dumps({"type": "frame", "seq": seq, "model": self.model, "controls": controls_at(self.index, step)})
        )
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("timeout", f"no answer to frame {seq} within {self.timeout:.0f} s")
            try:
                message = decode_message(await asyncio.wait_for(self.socket.recv(), left), header_only=True)
            except asyncio.TimeoutError:
                raise Failure("timeout", f"no answer to frame {seq} within {self.timeout:.0f} s") from None
            kind = message.get("type")
            if kind == "frame":
                if message.get("seq") != seq:
                    continue  # a late answer to a request that timed out
                if not message.get("st") or not message.get("grid_shape"):
                    raise Failure("error", f"incomplete frame: {sorted(message)}")
                return
            if kind == "error" and message.get("seq") in (seq, None):
                raise Failure("error", message.get("message", "")[:200])
            if kind == "busy":
                raise Failure("busy", message.get("message", "busy"))

    async def close(self) -> None:
        if self.socket is not None:
            try:
                await asyncio.wait_for(self.socket.close(), 5)
            except Exception:
                pass
            self.socket = None


async def gradio_call(client, base: str, api: str, data: list, timeout: float):
    """Gradio's documented two-step call: POST, then the event's SSE stream until complete."""

    async def call():
        response = await client.post(f"{base}/gradio_api/call/{api}", json={"data": data})
        if response.status_code == 503:
            raise Failure("busy", f"HTTP 503 {response.text[:150]}")
        if response.status_code != 200:
            raise Failure("error", f"HTTP {response.status_code} {response.text[:150]}")
        event_id = response.json()["event_id"]
        event = None
        async with client.stream("GET", f"{base}/gradio_api/call/{api}/{event_id}") as stream:
            if stream.status_code != 200:
                raise Failure("error", f"HTTP {stream.status_code} on the event stream")
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line[5:].strip()
                    if event == "error":
                        kind = "busy" if "queue is full" in payload.lower() else "error"
                        raise Failure(kind, payload[:200])
                    return json.loads(payload)
        raise Failure("disconnect", "the event stream ended without a complete event")

    return await asyncio.wait_for(call(), timeout)


class HttpStudent:
    """One browser on Gradio's event path: ``/live_frame`` (or ``/echo``), one call at a time."""

    def __init__(self, index: int, base: str, digit: str, model: str, timeout: float, client, echo: bool):
        self.index, self.base, self.digit, self.model, self.timeout, self.client, self.echo = (
            index,
            base,
            digit,
            model,
            timeout,
            client,
            echo,
        )

    async def connect(self) -> None:
        await self.request(0)

    async def request(self, step: int) -> None:
        controls = json.dumps(controls_at(self.index, step))
        if self.echo:
            out = await gradio_call(self.client, self.base, "echo", [controls], self.timeout)
            if out != [controls]:
                raise Failure("error", f"echo answered {str(out)[:200]}")
            return
        out = await gradio_call(self.client, self.base, "live_frame", [self.digit, self.model, controls], self.timeout)
        payload = out[0] if isinstance(out, list) and out else None
        if not isinstance(payload, dict) or payload.get("type") != "frame":
            raise Failure("error", f"/live_frame answered {str(out)[:200]}")

    async def close(self) -> None:
        pass


# -- one client count on one path ---------------------------------------------------------------


async def run_path(path: str, clients: int, server, digits: list[str], model: str, duration: float, timeout: float) -> dict:
    import httpx

    tally = Tally()
    client = None
    if path == "live":
        students = [LiveStudent(i, server.ws, digits[i], model, timeout, tally) for i in range(clients)]
    else:
        limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
        client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout))
        students = [HttpStudent(i, server.base, digits[i], model, timeout, client, path == "echo") for i in range(clients)]

    start = asyncio.Event()
    window = {}
    arrived = [0]  # students connected and warmed up (or failed to), waiting for the window

    async def student_task(student) -> None:
        frames = 0
        try:
            try:
                await student.connect()
                if path == "live":
                    await student.request(0)  # warm-up frame, not timed
            except Exception as error:  # counted; a live student tries again in the window
                tally.fail(classify(error))
                await student.close()
            arrived[0] += 1
            await start.wait()
            step = 1
            while time.monotonic() < window["deadline"]:
                try:
                    if path == "live" and student.socket is None:
                        await student.connect()
                    begun = time.perf_counter()
                    await student.request(step)
                    tally.latencies.append(time.perf_counter() - begun)
                    frames += 1
                except Exception as error:
                    failure = classify(error)
                    tally.fail(failure)
                    if path == "live" and failure.kind in ("disconnect", "busy"):
                        await student.close()  # and connect again, if the window lasts
                    if failure.kind in ("disconnect", "busy"):
                        await asyncio.sleep(0.2)  # as a browser waits before trying again
                step += 1
        finally:
            tally.frames.append(frames)
            await student.close()

    tasks = [asyncio.create_task(student_task(s)) for s in students]
    # Let every student connect and get its warm-up answer (bounded), then open the window.
    connect_bound = CHECK_TIMEOUT + 0.1 * clients
    connected_by = time.monotonic() + connect_bound
    while time.monotonic() < connected_by and arrived[0] < clients:
        await asyncio.sleep(0.05)
    server_cpu0, own_cpu0, busy0 = cpu_seconds(server.pid), cpu_seconds(), machine_busy()
    began = time.monotonic()
    window["deadline"] = began + duration
    start.set()
    done, pending = await asyncio.wait(tasks, timeout=duration + timeout + 15)
    for task in pending:  # bounded: a student still stuck is cancelled, and counted
        task.cancel()
        tally.fail(Failure("timeout", "student still waiting at the end of the window"))
    if pending:
        await asyncio.wait(pending, timeout=10)
    elapsed = time.monotonic() - began
    server_cpu = cpu_seconds(server.pid) if server.alive() else float("nan")
    own_cpu, busy1 = cpu_seconds(), machine_busy()
    if client is not None:
        await client.aclose()

    ordered = sorted(tally.latencies)
    frames = sum(tally.frames)
    per_student = [n / elapsed for n in tally.frames] or [0.0]
    return {
        "clients": clients,
        "duration_s": round(elapsed, 2),
        "frames": frames,
        "fps_per_client": round(frames / elapsed / clients, 2),
        "fps_min_client": round(min(per_student), 2),
        "fps_total": round(frames / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(1000 * percentile(ordered, 0.95), 1) if ordered else None,
        "max_ms": round(1000 * ordered[-1], 1) if ordered else None,
        "failed": sum(tally.failures.values()),
        "failures": dict(tally.failures),
        "first_failure": tally.first_failure,
        "server_cpu_pct": round(100 * (server_cpu - server_cpu0) / elapsed, 1),
        "client_cpu_pct": round(100 * (own_cpu - own_cpu0) / elapsed, 1),
        "machine_busy_pct": round(100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1),
    }


# -- is the server still serving? ---------------------------------------------------------------


async def queue_size(server) -> int | None:
    """Events waiting in Gradio's queue (``GET /gradio_api/queue/status``), None if unknown."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return int((await client.get(server.base + "/gradio_api/queue/status")).json()["queue_size"])
    except Exception:
        return None


async def settle(server, bound: float = 60.0) -> tuple[int | None, float]:
    """Wait (at most ``bound`` s) until Gradio's queue is empty: events whose students gave up
    (timed out) are still computed, and would otherwise weigh on the next row. Returns the
    queue size found at first and the seconds waited."""
    started = time.monotonic()
    first = size = await queue_size(server)
    while size and time.monotonic() - started < bound:
        await asyncio.sleep(0.5)
        size = await queue_size(server)
    return first, round(time.monotonic() - started, 1)


async def still_answers(server, digit: str, model: str) -> tuple[bool, str]:
    """The page, one socket frame, one ``/live_frame`` call and one echo, each within 30 s."""
    import httpx

    if not server.alive():
        return False, f"the server process exited ({server.process.returncode})"
    steps = []
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
            started = time.perf_counter()
            page = await client.get(server.base + "/")
            if page.status_code != 200:
                return False, f"GET / answered {page.status_code}"
            steps.append(f"page {1000 * (time.perf_counter() - started):.0f} ms")
            tally = Tally()
            live = LiveStudent(0, server.ws, digit, model, CHECK_TIMEOUT, tally)
            started = time.perf_counter()
            try:
                await live.connect()
                await live.request(1)
            finally:
                await live.close()
            steps.append(f"socket frame {1000 * (time.perf_counter() - started):.0f} ms")
            for path in ("gradio_event", "echo"):
                started = time.perf_counter()
                await HttpStudent(0, server.base, digit, model, CHECK_TIMEOUT, client, path == "echo").request(1)
                steps.append(f"{path} {1000 * (time.perf_counter() - started):.0f} ms")
    except Exception as error:
        return False, f"{'; '.join(steps)}; then {classify(error)}"
    return True, "; ".join(steps)


# -- the report ----------------------------------------------------------------------------------


def machine_line(server_info: dict) -> str:
    import gradio
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}); server: torch {torch.__version__} with {server_info.get('torch_threads')} threads, "
        f"device {server_info.get('device')}, gradio {gradio.__version__}; Python {platform.python_version()}; "
        f"load average before the run {load}"
    )


def fmt(value, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def table(results: dict) -> str:
    lines = [
        "| path | students | frames/s per student (slowest) | frames/s in all | p50 (ms) | p95 (ms) | max (ms) "
        "| failed (error/busy/timeout/disconnect) | server CPU | client CPU | still answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for path in PATHS:
        for count, row in results.get(path, {}).items():
            f = row["failures"]
            rate = f"{fmt(row['fps_per_client'], 1)} ({fmt(row['fps_min_client'], 1)})"
            alive = "yes" if row.get("alive_after") else "NO"
            lines.append(
                f"| {path} | {count} | {rate} | {fmt(row['fps_total'], 0)} | "
                f"{fmt(row['p50_ms'], 1)} | {fmt(row['p95_ms'], 1)} | {fmt(row['max_ms'], 0)} | "
                f"{row['failed']} ({f['error']}/{f['busy']}/{f['timeout']}/{f['disconnect']}) | "
                f"{fmt(row['server_cpu_pct'], 0)}% | {fmt(row['client_cpu_pct'], 0)}% | {alive} |"
            )
    return "\n".join(lines)


async def run_all(args, server, digits: list[str], model: str) -> dict:
    results: dict = {path: {} for path in PATHS}
    for clients in args.clients:
        for path in args.paths:
            if not server.alive():
                break
            print(f"... {path}, {clients} students, {args.duration:.0f} s", file=sys.stderr, flush=True)
            row = await run_path(path, clients, server, digits, model, args.duration, args.timeout)
            row["queue_left"], row["settle_s"] = await settle(server)
            alive, detail = await still_answers(server, digits[0], model)
            row["alive_after"], row["check"] = alive, detail
            results[path][str(clients)] = row
            print(
                f"    {row['fps_per_client']} frames/s per student, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, "
                f"failed {row['failed']}; queue left {row['queue_left']} (waited {row['settle_s']} s); "
                f"still answers: {alive} ({detail})",
                file=sys.stderr,
                flush=True,
            )
            if row["failed"]:
                print(f"    first failure: {row['first_failure']}", file=sys.stderr, flush=True)
            await asyncio.sleep(1.0)
    return results


def targets(results: dict) -> list[str]:
    """Issue 15's targets for the live channel, for the client counts that were run."""
    live, lines = results.get("live", {}), []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    if "100" in live:
        row = live["100"]
        ok = row["fps_min_client"] >= 15 and (row["p95_ms"] or math.inf) <= 100 and row["failed"] == 0
        lines.append(f"100 students each ≥ 15 frames/s, p95 ≤ 100 ms, 0 failures: {verdict(ok)}")
    if "300" in live:
        lines.append(f"300 students, 0 failures: {verdict(live['300']['failed'] == 0)}")
    if "1" in live:
        lines.append(f"1 student, p50 ≤ 15 ms: {verdict((live['1']['p50_ms'] or math.inf) <= 15)}")
    return lines


def _busy_summary(results: dict) -> str:
    values = [row["machine_busy_pct"] for rows in results.values() for row in rows.values()]
    return f"{min(values):.0f}-{max(values):.0f}% of all cores" if values else "n/a"


def raise_open_files(needed: int) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return str(soft)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100, 300], help="student counts, run in this order")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of dragging per path and count")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one request may take before it counts as failed")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS), help="paths to measure (default: all three)")
    parser.add_argument("--model", default=None, help="model slug (default: the app's default model)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if min(args.clients) < 1 or args.duration <= 0 or args.timeout <= 0:
        parser.error("--clients, --duration and --timeout must be positive")
    warnings.filterwarnings("ignore", message=".*(no_silent_downcasting|copy keyword).*")
    command = "python -m benchmarks.bench_lecture " + shlex.join(sys.argv[1:])
    open_files = raise_open_files(4 * max(args.clients) + 256)  # a socket or two per student, and spare

    from benchmarks import _serve_app
    from benchmarks.bench_app import free_port

    digits = student_digits(max(args.clients))
    print("... starting the app (python -m benchmarks._serve_app)", file=sys.stderr, flush=True)
    server = _serve_app.start(free_port())
    try:
        model = args.model or server.info["model"]
        line = machine_line(server.info)
        results = asyncio.run(run_all(args, server, digits, model))
        server_exited = not server.alive()
    finally:
        tail = server.log_tail(1500)
        server.stop()
    for path in PATHS:
        if path not in args.paths:
            results.pop(path, None)

    print(f"## STN Lab: a lecture hall dragging sliders ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"Command: `{command}`  ")
    print(f"Machine: {line}; open-file limit {open_files}.  ")
    print(
        f"Server: `python app.py` as served by `benchmarks/_serve_app.py` (plus `/echo`), "
        f"pid {server.info['pid']}, model `{model}`. Students: this process, asyncio on loopback, "
        "each with its own MNIST sample digit, closed loop (one request in flight), "
        f"{args.duration:g} s per row, {args.timeout:g} s per-request timeout. CPU: % of one core over the window.\n"
    )
    print(table(results))
    print(
        "\nbusy: the socket's busy answer, or Gradio's HTTP 503 \"Queue is full\" (queue of 256 events); "
        f"whole machine busy over each window: {_busy_summary(results)}."
    )
    goals = targets(results)
    if goals:
        print("\nTargets on the live channel (issue 15; on 2 cores): " + "; ".join(goals) + ".")
    for path in PATHS:
        for count, row in results.get(path, {}).items():
            if row["failed"]:
                print(f"\n{path}, {count} students: first failure: {row['first_failure']}")
            if not row["alive_after"]:
                print(f"\n{path}, {count} students: the server did NOT answer afterwards: {row['check']}")
    if server_exited:
        print(f"\nThe server process exited during the run. Its log ends:\n```\n{tail}\n```")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
