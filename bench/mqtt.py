"""``replay --mqtt`` throughput: the 20,000-message stream to a local mosquitto.

Runs ``amsread replay`` on ``bench/out/kamstrup_encrypted.bin`` (make it
with ``bench/make_streams.py``): JSON lines to /dev/null (the stdout figure),
then ``--mqtt`` to a mosquitto this script starts on a free loopback port
(``--format none``: only the broker). A replay waits for the broker's
acknowledgements before it ends, so the time covers every QoS 1 publish:
the state JSON and one retained topic per reading. ``--baseline DIR`` runs
the same replay from another checkout too (``git worktree add --detach DIR
REV``), in turns with this tree's against the same broker, for before/after
figures in one run. amsread (and paho alone, below) is pinned to one core
(``--cpu``, default 1) and the broker to another, so the figures are
"on one core".

Then paho-mqtt's own ceiling, with no amsread at all: N retained QoS 1
publishes of 8 bytes on 34 topics, from one thread with paho's network
thread (``loop_start``), and from one thread that runs paho's loop itself
(as amsread does) with several windows of unacknowledged publishes. CPU is
the client's process time: on a shared machine, 1 s / (CPU per publish) is
what one whole core would give.

    .venv/bin/python bench/mqtt.py [--baseline DIR] [--repeat 2] [--cpu 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STREAM = ROOT / "bench" / "out" / "kamstrup_encrypted.bin"
sys.path.insert(0, str(ROOT / "tests"))
from seed_vectors import RADIUS_AUTH_KEY, RADIUS_KEY  # noqa: E402

KEYS = ["--key", RADIUS_KEY, "--auth-key", RADIUS_AUTH_KEY]
#: Topics per message of the Kamstrup stream: the state and 33 readings.
TOPICS = 34


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process (the broker)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def mosquitto() -> Iterator[tuple[int, int]]:
    """(port, pid) of a fresh anonymous mosquitto on loopback."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "mosquitto.conf"
        config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            yield port, broker.pid
        finally:
            broker.terminate()
            broker.wait()


def replay(tree: Path, cpu: int, *extra: str) -> tuple[float, float, str]:
    """(wall s, CPU s, stderr) of one replay on core ``cpu``, run from the checkout ``tree``."""
    command = [sys.executable, "-m", "amsread", "-v", "replay", str(STREAM), *KEYS, *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, used, done.stderr


def mqtt_replay(tree: Path, cpu: int, port: int, broker: int) -> dict[str, Any]:
    broker_cpu = cpu_seconds(broker)
    url = f"mqtt://127.0.0.1:{port}/bench"
    wall, used, log = replay(tree, cpu, "--format", "none", "--mqtt", url)
    found = re.search(r"mqtt_publishes=(\d+)", log)
    dropped = re.search(r"mqtt_dropped=(\d+)", log)
    return {
        "wall": wall,
        "cpu": used,
        "broker": (cpu_seconds(broker) - broker_cpu) / wall,
        "publishes": int(found.group(1)) if found else 0,
        "dropped": dropped.group(1) if dropped else "?",
    }


def replay_row(label: str, messages: int, runs: list[dict[str, Any]]) -> str:
    best = min(runs, key=lambda run: run["wall"])
    wall, publishes = best["wall"], best["publishes"]
    return (
        f"| `--mqtt` {label} | {messages / wall:,.0f} | {publishes / wall:,.0f} |"
        f" {best['cpu'] / messages * 1e6:,.0f} us | {best['broker']:.0%} |"
        f" {publishes:,} publishes, {wall:.1f} s, dropped {best['dropped']} |"
    )


# -- paho alone ---------------------------------------------------------------


def paho_client(port: int, inflight: int = 0) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
    client.max_inflight_messages_set(inflight)
    client.connect("127.0.0.1", port)
    return client


def paho_threaded(port: int, count: int, inflight: int = 0) -> float:
    """Publish ``count`` from this thread while paho's thread runs the loop."""
    client = paho_client(port, inflight)
    client.loop_start()
    while not client.is_connected():
        time.sleep(0.01)
    start = time.perf_counter()
    infos = [client.publish(f"bench/m/r{i % TOPICS}", b"12345678", 1, True) for i in range(count)]
    for info in infos:
        info.wait_for_publish(60)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def paho_own_loop(port: int, count: int, window: int) -> float:
    """Publish ``count`` from the thread that runs paho's loop, ``window`` unacknowledged."""
    client = paho_client(port)
    client.on_socket_register_write = lambda *_args: None  # publish() only queues
    sock = client.socket()
    while not client.is_connected():
        client.loop_write()
        select.select([sock], [], [], 0.1)
        client.loop_read()
    acked = [0]
    client.on_publish = lambda *_args: acked.__setitem__(0, acked[0] + 1)
    sent = 0
    start = time.perf_counter()
    while acked[0] < count:
        while sent < count and sent - acked[0] < window:
            for _ in range(min(TOPICS, count - sent)):
                client.publish(f"bench/m/r{sent % TOPICS}", b"12345678", 1, True)
                sent += 1
        client.loop_write()
        readable, _w, _x = select.select([sock], [], [], 1.0)
        if readable:
            client.loop_read()
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_write()
    return elapsed


def paho_row(label: str, run: Callable[[], float], count: int, broker: int) -> str:
    broker_cpu, cpu = cpu_seconds(broker), time.process_time()
    wall = run()
    cpu, broker_cpu = time.process_time() - cpu, cpu_seconds(broker) - broker_cpu
    per_publish = cpu / count
    return (
        f"| {label} | {count / wall:,.0f} | {per_publish * 1e6:.1f} us |"
        f" {1 / per_publish:,.0f} ({1 / per_publish / TOPICS:,.0f} messages) |"
        f" {broker_cpu / wall:.0%} |"
    )


def paho_ceiling(port: int, broker: int, count: int) -> list[str]:
    small = min(count, 3000)  # paho's own limit rescans its queue per ack: quadratic
    runs: list[tuple[str, Callable[[], float], int]] = [
        ("loop_start, no inflight limit", lambda: paho_threaded(port, count), count),
        ("loop_start, paho's limit 20", lambda: paho_threaded(port, small, 20), small),
    ]
    for window in (TOPICS, 20 * TOPICS, 64 * TOPICS, count):
        label = f"own loop, window {window:,}"
        runs.append((label, lambda w=window: paho_own_loop(port, count, w), count))  # type: ignore[misc]
    return [paho_row(label, run, n, broker) for label, run, n in runs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="an earlier checkout, replayed in turns")
    parser.add_argument("--repeat", type=int, default=1, help="replays per tree (best kept)")
    parser.add_argument("--cpu", type=int, default=1, help="the core amsread and paho run on")
    parser.add_argument("--publishes", type=int, default=30000, help="for paho alone")
    args = parser.parse_args()
    if not STREAM.exists():
        raise SystemExit(f"{STREAM} is missing: run bench/make_streams.py first")
    messages = json.loads((STREAM.parent / "manifest.json").read_text())["frames"]
    wall, used, _log = replay(ROOT, args.cpu, "--format", "jsonl")
    print("| run | messages/s | publishes/s | CPU per message | broker CPU | |")
    print("|---|---|---|---|---|---|")
    per_message = used / messages * 1e6
    print(f"| `--format jsonl` | {messages / wall:,.0f} | – | {per_message:,.0f} us | – | |")
    others = set(os.sched_getaffinity(0)) - {args.cpu}
    with mosquitto() as (port, broker):
        if others:
            os.sched_setaffinity(broker, others)
        trees = {"this tree": ROOT}
        if args.baseline is not None:
            trees = {f"baseline ({args.baseline})": args.baseline.resolve(), **trees}
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
        for _round in range(args.repeat):
            for label, tree in trees.items():
                runs[label].append(mqtt_replay(tree, args.cpu, port, broker))
        for label, done in runs.items():
            print(replay_row(label, messages, done))
        print()
        print("| paho alone | publishes/s | CPU per publish | one core's ceiling | broker CPU |")
        print("|---|---|---|---|---|")
        os.sched_setaffinity(0, {args.cpu})
        for row in paho_ceiling(port, broker, args.publishes):
            print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
