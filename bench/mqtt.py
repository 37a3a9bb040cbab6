"""``replay --mqtt`` throughput: the 20,000-message stream to a local mosquitto.

Runs ``amsread replay`` on ``bench/out/kamstrup_encrypted.bin`` (make it
with ``bench/make_streams.py``) twice: JSON lines to /dev/null (the stdout
figure), then ``--mqtt`` to a mosquitto this script starts on a free loopback
port (``--format none``: only the broker). A replay waits for the broker's
acknowledgements before it ends, so the time covers every QoS 1 publish:
the state JSON and one retained topic per reading.

    .venv/bin/python bench/mqtt.py
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STREAM = ROOT / "bench" / "out" / "kamstrup_encrypted.bin"
sys.path.insert(0, str(ROOT / "tests"))
from seed_vectors import RADIUS_AUTH_KEY, RADIUS_KEY  # noqa: E402

KEYS = ["--key", RADIUS_KEY, "--auth-key", RADIUS_AUTH_KEY]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replay(*extra: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "amsread", "-v", "replay", str(STREAM), *KEYS, *extra]
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    return elapsed, done.stderr


def main() -> int:
    if not STREAM.exists():
        raise SystemExit(f"{STREAM} is missing: run bench/make_streams.py first")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    messages = json.loads((STREAM.parent / "manifest.json").read_text())["frames"]
    stdout_s, _ = replay("--format", "jsonl")
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "mosquitto.conf"
        config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([mosquitto, "-c", str(config)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            mqtt_s, log = replay("--format", "none", "--mqtt", f"mqtt://127.0.0.1:{port}/bench")
        finally:
            broker.terminate()
            broker.wait()
    found = re.search(r"mqtt_publishes=(\d+)", log)
    publishes = int(found.group(1)) if found else 0
    dropped = re.search(r"mqtt_dropped=(\d+)", log)
    print(f"stdout (jsonl): {messages / stdout_s:,.0f} messages/s ({stdout_s:.2f} s)")
    print(
        f"--mqtt:         {messages / mqtt_s:,.0f} messages/s, {publishes / mqtt_s:,.0f}"
        f" publishes/s ({publishes:,} publishes, {mqtt_s:.2f} s,"
        f" dropped {dropped.group(1) if dropped else '?'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
