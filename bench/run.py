"""Side-by-side benchmark: amsread against its Python peers, in one run.

Run from the repository with the project's venv (see bench/README.md)::

    .venv/bin/python bench/run.py            # full run, writes bench/RESULTS.md
    .venv/bin/python bench/run.py --quick    # fewer frames for the peers, no file

Every timed process is pinned to one core (``--cpu``). Throughput is the
best of ``--repeat`` runs; latency and start-up report percentiles.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
VENV = ROOT / ".venv" / "bin"
PEERS_PY = BENCH / ".venv-peers" / "bin" / "python"
PEERS = ("dlms-cosem", "amshan", "gurux-dlms")
sys.path.insert(0, str(ROOT))

from tests.seed_vectors import (  # noqa: E402
    KAIFA_AT_KEY,
    KAIFA_AT_READINGS,
    RADIUS_AUTH_KEY,
    RADIUS_FRAME,
    RADIUS_KEY,
    RADIUS_METER_TIME,
    RADIUS_READINGS,
)

ENV = {
    **os.environ,
    "AMSREAD_KEY": RADIUS_KEY,
    "AMSREAD_AUTH_KEY": RADIUS_AUTH_KEY,
}

# The targets of issue 8 (2-core machine, one run).
TARGET_FPS = {"encrypted": 15_000, "unencrypted": 18_000}
TARGET_MINIMAL_RATIO = 1.2
TARGET_PEER_RATIO = 15
TARGET_P99_MS = 5.0
TARGET_IDLE_CPU = 0.5  # % of a core
TARGET_RSS_MB = 40
#: The redesign (issue #12) may cost at most this much replay speed against a baseline.
BASELINE_TOLERANCE = 0.10
TARGET_HELP_MS = 150
TARGET_DECODE_MS = 300


@dataclass(frozen=True)
class StreamSpec:
    label: str
    name: str  # file stem in bench/out
    key: str
    auth_key: str | None
    peers: tuple[str, ...]
    framing: str = "hdlc"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in ENV.items() if k != "AMSREAD_AUTH_KEY"}
        env["AMSREAD_KEY"] = self.key
        if self.auth_key:
            env["AMSREAD_AUTH_KEY"] = self.auth_key
        return env


STREAMS = (
    StreamSpec("encrypted", "kamstrup_encrypted", RADIUS_KEY, RADIUS_AUTH_KEY, ("minimal", *PEERS)),
    StreamSpec("unencrypted", "kamstrup_plain", RADIUS_KEY, RADIUS_AUTH_KEY, ("minimal", *PEERS)),
    # Wired M-Bus: neither dlms-cosem, amshan nor the minimal pipeline read it.
    StreamSpec("M-Bus Austria", "austria_mbus", KAIFA_AT_KEY, None, ("gurux-dlms",), "mbus"),
)


# -- helpers -----------------------------------------------------------------


def pinned(cmd: Sequence[str], cpu: int) -> list[str]:
    """Prefix a command so it runs on one core."""
    if shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd]
    return list(cmd)


def amsread_cmd(*args: str) -> list[str]:
    return [str(VENV / "amsread"), *args]


# Forks and execs the command, waits, and writes "wall status maxrss" to argv[1].
# Measured from a small process on purpose: Linux carries the RSS of the
# process that forks into the child's ru_maxrss across exec, so measuring
# from this (larger) script would report its memory, not amsread's.
_MEASURE = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def timed_process(cmd: Sequence[str], cpu: int, **kwargs: Any) -> tuple[float, int, int]:
    """Run ``cmd`` on core ``cpu``; return (wall seconds, exit status, peak RSS in kB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as result:
        wrapped = [sys.executable, "-S", "-c", _MEASURE, result.name, *cmd]
        subprocess.run(pinned(wrapped, cpu), check=True, **kwargs)
        wall, status, rss = result.read().split()
    return float(wall), int(status), int(rss)


def ensure_streams(frames: int) -> dict[str, Any]:
    manifest_path = OUT / "manifest.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("frames") == frames:
            return manifest
    subprocess.run(
        [sys.executable, str(BENCH / "make_streams.py"), "--frames", str(frames)], check=True
    )
    result: dict[str, Any] = json.loads(manifest_path.read_text())
    return result


def split_frames(stream: bytes, count: int) -> list[bytes]:
    """The first ``count`` HDLC frames of a clean stream (cut by the length field)."""
    frames, pos = [], 0
    while len(frames) < count and pos < len(stream):
        start = stream.index(b"\x7e", pos)
        length = ((stream[start + 1] & 0x07) << 8) | stream[start + 2]
        frames.append(stream[start : start + length + 2])
        pos = start + length + 2
    return frames


# -- in-process replay (a child of this script, so runs do not share state) --


def inprocess_replay(path: str, repeat: int) -> dict[str, Any]:
    """Time the replay command's own code path with stdout on /dev/null."""
    from amsread.app.cli import cli

    def once() -> float:
        saved = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - closed below
        try:
            start = time.perf_counter()
            with contextlib.suppress(SystemExit):
                cli.main(["replay", path, "--format", "jsonl"], standalone_mode=False)
            return time.perf_counter() - start
        finally:
            sys.stdout.close()
            sys.stdout = saved

    once()  # warm-up: lazy imports, profile loading
    best = min(once() for _ in range(repeat))
    return {"seconds": best}


def child_inprocess(
    path: Path, repeat: int, cpu: int, env: dict[str, str], python: str = sys.executable
) -> dict[str, Any]:
    """Time the in-process replay in a fresh child; ``python`` picks whose amsread it imports."""
    out = subprocess.run(
        pinned([python, __file__, "--_inprocess", str(path), "--repeat", str(repeat)], cpu),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- checks ------------------------------------------------------------------


def check_amsread_first_frame() -> str:
    """Decode the published Radius frame and compare with the seed vector."""
    out = subprocess.run(
        amsread_cmd("decode", RADIUS_FRAME.hex()), env=ENV, capture_output=True, text=True
    )
    if out.returncode != 0 or not out.stdout.strip():
        return f"FAILED: exit {out.returncode}: {out.stderr.strip()[-200:]}"
    message = json.loads(out.stdout.splitlines()[0])
    got = {r["obis"]: (r["value"], r["unit"]) for r in message["readings"]}
    wrong = [obis for obis, value, unit in RADIUS_READINGS if got.get(obis) != (value, unit)]
    if message["meter_time"] != RADIUS_METER_TIME:
        wrong.append("meter_time")
    return f"ok ({len(RADIUS_READINGS)} readings)" if not wrong else f"MISMATCH {wrong}"


def check_amsread_austria(path: Path, spec: StreamSpec) -> str:
    """The first push of the M-Bus stream against the Kaifa seed vector."""
    with path.open("rb") as stream:
        start = stream.read(4096)  # a few pushes are enough
    out = subprocess.run(amsread_cmd("replay", "-"), input=start, env=spec.env, capture_output=True)
    first = out.stdout.splitlines()[0] if out.stdout else b""
    if not first:
        return f"FAILED: exit {out.returncode}: {out.stderr.decode().strip()[-200:]}"
    got = [(r["obis"], r["value"], r["unit"]) for r in json.loads(first)["readings"]]
    want = [tuple(r) for r in KAIFA_AT_READINGS]
    return f"ok ({len(want)} readings)" if got == want else f"MISMATCH {got[:3]}"


def check_peer_values(first: dict[str, Any] | None, expected: dict[str, int]) -> str:
    if not first:
        return "no frame decoded"
    if "framing only" in first:
        return "framing only (no decryption)"
    wrong = [k for k, v in expected.items() if first.get(k) != v]
    note = f"; {first['note']}" if first.get("note", "ok") != "ok" else ""
    if wrong:
        return f"MISMATCH {wrong[:4]}{note}"
    return f"ok ({len(expected)} values){note}"


# -- peers -------------------------------------------------------------------


def run_peer(peer: str, path: Path, frames: int, cpu: int, spec: StreamSpec) -> dict[str, Any]:
    cmd = [str(PEERS_PY), str(BENCH / "peers.py"), peer, str(path), "--key", spec.key]
    if spec.auth_key:
        cmd += ["--auth-key", spec.auth_key]
    cmd += ["--framing", spec.framing]
    if frames:
        cmd += ["--frames", str(frames)]
    out = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"peer": peer, "error": out.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- listen: latency, idle CPU, RSS ---------------------------------------------


def listen_available() -> bool:
    probe = subprocess.run(amsread_cmd("listen", "--help"), capture_output=True, env=ENV)
    return probe.returncode == 0


@contextlib.contextmanager
def listening(cpu: int) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``amsread listen`` on a fresh pty; yields (process, master fd)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    proc = subprocess.Popen(
        pinned(amsread_cmd("listen", port, "--baud", "2400", "--parity", "N"), cpu),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    try:
        yield proc, master
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def _read_line(fd: int, buf: bytearray, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while b"\n" not in buf:
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            return False
        buf += chunk
    del buf[: buf.index(b"\n") + 1]
    return True


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` in ns (scheduler accounting, precise)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def measure_latency(frames: list[bytes], cpu: int, warmup: int = 20) -> dict[str, Any]:
    with listening(cpu) as (proc, master):
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = bytearray()
        time.sleep(1.5)  # start-up: imports, opening the port
        if proc.poll() is not None:
            return {"error": f"listen exited with {proc.returncode}"}
        latencies = []
        lost = 0
        for i, frame in enumerate(frames):
            os.write(master, frame)
            sent = time.perf_counter()
            if not _read_line(fd, buf, 2.0):
                lost += 1
                continue
            if i >= warmup:
                latencies.append(time.perf_counter() - sent)
            time.sleep(0.002)  # a reader waits idle between pushes
        rss = _hwm_kb(proc.pid)
    if not latencies:
        return {"error": "no JSON line came back", "lost": lost}
    latencies.sort()
    return {
        "n": len(latencies),
        "lost": lost,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": 1000 * latencies[-1],
        "rss_kb": rss,
    }


def measure_idle(cpu: int, seconds: float) -> dict[str, Any]:
    with listening(cpu) as (proc, _master):
        time.sleep(2.0)
        if proc.poll() is not None:
            return {"error": f"listen exited with {proc.returncode}"}
        before = _cpu_ns(proc.pid)
        start = time.perf_counter()
        time.sleep(seconds)
        used = _cpu_ns(proc.pid) - before
        wall = time.perf_counter() - start
        rss = _hwm_kb(proc.pid)
    return {"cpu_percent": 100 * used / 1e9 / wall, "seconds": wall, "rss_kb": rss}


# -- start-up ------------------------------------------------------------------


def measure_startup(cmd: Sequence[str], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times)}


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def slow_imports(args: Sequence[str], top: int = 8) -> list[tuple[str, float]]:
    """Top-level imports by cumulative time (``python -X importtime``)."""
    out = subprocess.run(
        [str(VENV / "python"), "-X", "importtime", "-m", "amsread", *args],
        env=ENV,
        capture_output=True,
        text=True,
    )
    found = []
    for line in out.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) <= 1:  # top level only
            found.append((match.group(4), int(match.group(2)) / 1000))
    return sorted(found, key=lambda x: -x[1])[:top]


# -- report ----------------------------------------------------------------------


@dataclass
class Row:
    what: str
    amsread: str
    others: dict[str, str] = field(default_factory=dict)
    ratio: str = ""
    target: str = ""
    met: str = ""


def fmt_fps(frames: int, seconds: float | None, size: int) -> str:
    if not seconds:
        return "–"
    return f"{frames / seconds:,.0f} f/s · {size / seconds / 1e6:.1f} MB/s"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**NO**")


def table(rows: list[Row], columns: Sequence[str]) -> str:
    head = ["measurement", "amsread", *columns, "× fastest peer", "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.what, r.amsread, *(r.others.get(c, "") for c in columns)]
        lines.append("| " + " | ".join([*cells, r.ratio, r.target, r.met]) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


# -- replay ----------------------------------------------------------------------


def measure_replay(
    spec: StreamSpec,
    manifest: dict[str, Any],
    args: argparse.Namespace,
    peers_ok: bool,
    checks: dict[str, str],
    raw: dict[str, Any],
    frames: int,
    expected_raw: dict[str, int],
) -> list[Row]:
    label = spec.label
    path = Path(manifest["streams"][spec.name]["path"])
    size = path.stat().st_size
    if spec.framing == "mbus":
        checks[f"amsread ({label})"] = check_amsread_austria(path, spec)
    log(f"replay {label}: amsread in-process")
    inproc = child_inprocess(path, args.repeat, args.cpu, spec.env)
    log(f"replay {label}: amsread whole process")
    runs = whole_replays(amsread_cmd(), path, args, spec)
    whole = min(r[0] for r in runs)
    rss_kb = max(r[2] for r in runs)
    status = ",".join(sorted({str(r[1]) for r in runs}))
    peer_results: dict[str, dict[str, Any]] = {}
    for peer in spec.peers if peers_ok else ():
        log(f"replay {label}: {peer}")
        result = run_peer(peer, path, args.peer_frames, args.cpu, spec)
        peer_results[peer] = result
        if result.get("error"):
            checks[f"{peer} ({label})"] = f"error: {result['error']}"
        elif spec.framing == "hdlc":
            checks[f"{peer} ({label})"] = check_peer_values(result.get("first"), expected_raw)
        else:
            checks[f"{peer} ({label})"] = f"decoded {result.get('frames')} pushes"
    raw[label] = {"inprocess": inproc, "whole": runs, "peers": peer_results}
    baseline_rows = measure_baseline(spec, path, args)

    fps_in = frames / inproc["seconds"]
    fps_whole = frames / whole
    others = {
        p: fmt_fps(r.get("frames", 0), r.get("seconds"), r.get("bytes", 0))
        if not r.get("error")
        else "fails"
        for p, r in peer_results.items()
    }
    peer_fps = {
        p: r["frames"] / r["seconds"]
        for p, r in peer_results.items()
        if p in PEERS and r.get("seconds") and "decryption" not in str(r.get("first"))
    }
    fastest = max(peer_fps.values(), default=None)
    minimal = peer_results.get("minimal", {})
    minimal_fps = minimal["frames"] / minimal["seconds"] if minimal.get("seconds") else None
    ratio = f"{fps_in / fastest:.1f}×" if fastest else "–"
    goal = TARGET_FPS.get(label)
    target, met = "", None
    if goal:
        target = f"≥ {goal:,} f/s"
        met = fps_in >= goal
    if label == "encrypted":
        target += f", ≥ {TARGET_PEER_RATIO}× dlms-cosem, ≥ {TARGET_MINIMAL_RATIO}× minimal"
        dlms = peer_fps.get("dlms-cosem")
        met = met and (dlms is None or fps_in >= TARGET_PEER_RATIO * dlms)
        if minimal_fps:
            met = met and fps_in >= TARGET_MINIMAL_RATIO * minimal_fps
            ratio += f" ({fps_in / minimal_fps:.2f}× minimal)"
    return [
        Row(
            f"replay {label}, in-process",
            fmt_fps(frames, inproc["seconds"], size),
            others,
            ratio,
            target,
            verdict(met),
        ),
        Row(
            f"replay {label}, whole process (exit {status})",
            fmt_fps(frames, whole, size),
            ratio=f"{fps_whole / fastest:.1f}×" if fastest else "",
            target=f"≥ {goal:,} f/s" if goal else "",
            met=verdict(fps_whole >= goal) if goal else "–",
        ),
        Row(
            f"peak RSS, replay {label}",
            f"{rss_kb / 1024:.1f} MB",
            {
                p: f"{r['maxrss_kb'] / 1024:.0f} MB"
                for p, r in peer_results.items()
                if r.get("maxrss_kb")
            },
            "",
            f"≤ {TARGET_RSS_MB} MB",
            verdict(rss_kb / 1024 <= TARGET_RSS_MB),
        ),
        *baseline_rows,
    ]


def whole_replays(
    command: list[str],
    path: Path,
    args: argparse.Namespace,
    spec: StreamSpec,
    runs: int | None = None,
) -> list[tuple[float, int, int]]:
    """Whole-process replays of ``path`` by the amsread ``command`` (``--repeat`` of them)."""
    return [
        timed_process(
            [*command, "replay", str(path), "--format", "jsonl"],
            args.cpu,
            env=spec.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.repeat if runs is None else runs)
    ]


def measure_baseline(spec: StreamSpec, path: Path, args: argparse.Namespace) -> list[Row]:
    """This tree against an earlier checkout (``--baseline DIR``) on the same stream.

    The two are timed in turns, round by round, so a change in the machine's
    load between them weighs on both alike; best of ``--repeat`` rounds each.
    """
    if args.baseline is None:
        return []
    venv = args.baseline / ".venv" / "bin"
    rev = baseline_revision(args.baseline)
    log(f"replay {spec.label}: this tree and baseline {rev}, in turns")
    pythons = {"this": sys.executable, "baseline": str(venv / "python")}
    commands = {"this": amsread_cmd(), "baseline": [str(venv / "amsread")]}
    inproc: dict[str, list[float]] = {"this": [], "baseline": []}
    whole: dict[str, list[float]] = {"this": [], "baseline": []}
    for _ in range(args.repeat):
        for who in ("this", "baseline"):
            child = child_inprocess(path, 1, args.cpu, spec.env, pythons[who])
            inproc[who].append(child["seconds"])
            whole[who].append(whole_replays(commands[who], path, args, spec, runs=1)[0][0])
    speed_in = min(inproc["baseline"]) / min(inproc["this"])
    speed_whole = min(whole["baseline"]) / min(whole["this"])
    return [
        Row(
            f"replay {spec.label}: this tree ÷ baseline {rev}, timed in turns",
            f"in-process {speed_in:.2f}×, whole process {speed_whole:.2f}×",
            target=f"≥ {1 - BASELINE_TOLERANCE:.2f}×",
            met=verdict(min(speed_in, speed_whole) >= 1 - BASELINE_TOLERANCE),
        )
    ]


def compile_bytecode(*checkouts: Path | None) -> None:
    """Write each checkout's bytecode before anything is timed.

    An installed amsread starts from cached bytecode. Where
    PYTHONDONTWRITEBYTECODE is set (some CI and sandbox images), nothing would
    ever cache it, and every whole-process run would compile the package from
    source again: start-up would then weigh by lines of code, not by work.
    """
    for checkout in checkouts:
        if checkout is not None:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(checkout / "amsread")],
                check=True,
                stdout=subprocess.DEVNULL,
            )


def baseline_revision(checkout: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or checkout.name


# -- main ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000, help="pushes per stream")
    parser.add_argument("--peer-frames", type=int, default=0, help="peers: first N only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=1, help="core every timed process runs on")
    parser.add_argument("--latency-frames", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--quick", action="store_true", help="peers on 2,000 frames, no file")
    parser.add_argument("--label", default="", help="a note for RESULTS.md (e.g. 'before')")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an earlier checkout with its own .venv: its replays timed in the same run",
    )
    parser.add_argument("--_inprocess", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._inprocess:
        print(json.dumps(inprocess_replay(args._inprocess, args.repeat)))
        return 0
    if args.quick:
        args.peer_frames = args.peer_frames or 2000

    args.load_before = os.getloadavg()
    compile_bytecode(ROOT, args.baseline)
    manifest = ensure_streams(args.frames)
    frames = manifest["frames"]
    expected_raw = manifest["first_raw"]
    peers_ok = PEERS_PY.exists() and not args.skip_peers
    if not peers_ok and not args.skip_peers:
        print(f"note: {PEERS_PY} missing: peers skipped (see bench/README.md)", file=sys.stderr)
    columns = ["minimal", *PEERS] if peers_ok else []
    rows: list[Row] = []
    checks: dict[str, str] = {"amsread": check_amsread_first_frame()}
    raw: dict[str, Any] = {"manifest": manifest}

    for spec in STREAMS:
        if spec.name not in manifest["streams"]:
            rows.append(Row(f"replay {spec.label}", "not measured: stream not generated"))
            continue
        rows.extend(
            measure_replay(spec, manifest, args, peers_ok, checks, raw, frames, expected_raw)
        )

    if listen_available():
        stream = Path(manifest["streams"]["kamstrup_encrypted"]["path"]).read_bytes()
        log("listen: latency over a pty")
        lat = measure_latency(split_frames(stream, args.latency_frames + 20), args.cpu)
        log(f"listen: idle CPU over {args.idle_seconds:.0f} s")
        idle = measure_idle(args.cpu, args.idle_seconds)
        raw["latency"], raw["idle"] = lat, idle
        if "error" in lat:
            rows.append(Row("latency pty → JSON line", f"error: {lat['error']}", met="**NO**"))
        else:
            rows.append(
                Row(
                    f"latency pty → JSON line (n={lat['n']}, lost {lat['lost']})",
                    f"p50 {lat['p50_ms']:.2f} ms · p99 {lat['p99_ms']:.2f} ms",
                    target=f"p99 ≤ {TARGET_P99_MS:g} ms",
                    met=verdict(lat["p99_ms"] <= TARGET_P99_MS),
                )
            )
            rows.append(
                Row(
                    "peak RSS, listen",
                    f"{lat['rss_kb'] / 1024:.1f} MB",
                    target=f"≤ {TARGET_RSS_MB} MB",
                    met=verdict(lat["rss_kb"] / 1024 <= TARGET_RSS_MB),
                )
            )
        if "error" in idle:
            rows.append(Row("idle CPU, listen", f"error: {idle['error']}", met="**NO**"))
        else:
            rows.append(
                Row(
                    f"idle CPU, listen on a silent pty ({idle['seconds']:.0f} s)",
                    f"{idle['cpu_percent']:.3f} % of a core",
                    target=f"≤ {TARGET_IDLE_CPU} %",
                    met=verdict(idle["cpu_percent"] <= TARGET_IDLE_CPU),
                )
            )
    else:
        rows.append(Row("latency, idle CPU, RSS of listen", "not measured: no `amsread listen`"))

    log("start-up")
    help_t = measure_startup(pinned(amsread_cmd("--help"), args.cpu), args.startup_runs)
    decode_t = measure_startup(
        pinned(amsread_cmd("decode", RADIUS_FRAME.hex()), args.cpu), args.startup_runs
    )
    raw["startup"] = {"help": help_t, "decode": decode_t}
    rows.append(
        Row(
            "start-up `amsread --help`",
            f"{help_t['median_ms']:.0f} ms (min {help_t['min_ms']:.0f})",
            target=f"≤ {TARGET_HELP_MS} ms",
            met=verdict(help_t["median_ms"] <= TARGET_HELP_MS),
        )
    )
    rows.append(
        Row(
            "start-up `amsread decode <frame>`",
            f"{decode_t['median_ms']:.0f} ms (min {decode_t['min_ms']:.0f})",
            target=f"≤ {TARGET_DECODE_MS} ms",
            met=verdict(decode_t["median_ms"] <= TARGET_DECODE_MS),
        )
    )
    imports = {
        "--help": slow_imports(["--help"]),
        "decode": slow_imports(["decode", RADIUS_FRAME.hex()]),
    }
    raw["imports"] = imports

    args.load_after = os.getloadavg()
    report = render(rows, columns, checks, imports, args)
    print(report)
    if not args.quick:
        args.output.write_text(report)
        (OUT / "results.json").write_text(json.dumps(raw, indent=2, default=str))
        log(f"written: {args.output}")
    return 0


def render(
    rows: list[Row],
    columns: Sequence[str],
    checks: dict[str, str],
    imports: dict[str, list[tuple[str, float]]],
    args: argparse.Namespace,
) -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# amsread benchmark results",
        "",
        f"- date: {now}" + (f" — {args.label}" if args.label else ""),
        f"- machine: {machine()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}),"
        f" every timed process pinned to core {args.cpu}",
        "- load average (1/5/15 min) at start "
        + "/".join(f"{x:.2f}" for x in args.load_before)
        + ", at end "
        + "/".join(f"{x:.2f}" for x in args.load_after)
        + " (other work on the machine slows every column alike)",
        f"- streams: {args.frames:,} pushes each (Kamstrup Radius list, 491-byte encrypted"
        f" / 461-byte plain frames); peers on"
        f" {args.peer_frames or args.frames:,} frames; throughput best of {args.repeat}",
        "",
        table(rows, columns),
        "",
        "`× fastest peer` compares with the fastest *library* peer that decodes the stream "
        "(dlms-cosem, amshan, gurux-dlms; not the minimal yardstick, not framing-only runs).",
        "",
        "## Values checked on the first frame",
        "",
        *[f"- {who}: {result}" for who, result in checks.items()],
        "",
        "## Slowest top-level imports (`python -X importtime`, cumulative ms)",
        "",
        *[
            f"- `amsread {what}`: " + ", ".join(f"{name} {ms:.0f}" for name, ms in found)
            for what, found in imports.items()
        ],
        "",
    ]
    return "\n".join(lines)


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
