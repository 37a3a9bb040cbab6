"""Random bytes through ``amsread replay``: bounded memory, counts reported, no output.

    .venv/bin/python bench/noise_rss.py              # 100 MB, every framing
    .venv/bin/python bench/noise_rss.py --mb 10 --framing hdlc

Writes seeded random bytes to a temporary file, runs ``amsread replay`` on it
in a child process per framing and reports the child's peak RSS (from
``wait4``), its run time, the bytes it wrote to stdout (must be 0) and the
counters of its closing summary. The baseline is 10 MiB of the same noise
followed by real frames of each framing (so every module a run may load is
loaded): if memory is bounded, ten times more bytes cost nothing more.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 1 << 20
BASELINE_MB = 10

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import seed_vectors as sv  # noqa: E402

# A frame of each framing, and a hex line, that decode (unciphered or with no key).
WARM_UP = (
    b"\n" + sv.RADIUS_PLAINTEXT.hex().encode() + b"\n" + sv.AM550_CH_SEGMENTED + sv.KAIFA_NOE_MBUS
)


def write_noise(path: Path, megabytes: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(rng.randbytes(CHUNK))


def replay(capture: Path, framing: str) -> dict[str, object]:
    """Run ``amsread replay`` on ``capture``; peak RSS, time, stdout size, counters."""
    command = [sys.executable, "-m", "amsread", "--log-format", "json", "replay", str(capture)]
    command += ["--framing", framing]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0, os.SEEK_END)
        stdout_bytes = out.tell()
        err.seek(0)
        log = [
            json.loads(line) for line in err.read().decode().splitlines() if line.startswith("{")
        ]
    summary = next(
        (entry for entry in reversed(log) if "bytes_read" in entry),
        {"event": "no summary"},
    )
    counters = {k: v for k, v in summary.items() if k not in ("event", "level", "timestamp")}
    return {
        "framing": framing,
        "exit": child.returncode,
        "seconds": round(elapsed, 1),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout_bytes": stdout_bytes,
        "counters": counters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="megabytes of noise (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--framing", action="append", help="auto, hdlc, mbus, raw (default: all four)"
    )
    args = parser.parse_args()
    framings = args.framing or ["auto", "hdlc", "mbus", "raw"]
    with tempfile.TemporaryDirectory() as folder:
        small = Path(folder, "small.bin")
        write_noise(small, BASELINE_MB, args.seed)
        with small.open("ab") as handle:
            handle.write(WARM_UP)
        noise = Path(folder, "noise.bin")
        write_noise(noise, args.mb, args.seed)
        print(f"{args.mb} MiB of random bytes (seed {args.seed})")
        for framing in framings:
            baseline = replay(small, framing)["peak_rss_mb"]
            result = replay(noise, framing)
            mib_s = args.mb / result["seconds"] if result["seconds"] else 0.0  # type: ignore[operator]
            print(
                f"{framing:>5}: peak RSS {result['peak_rss_mb']} MB"
                f" ({BASELINE_MB} MiB: {baseline} MB), {result['seconds']} s"
                f" ({mib_s:.1f} MiB/s), stdout {result['stdout_bytes']} bytes,"
                f" exit {result['exit']}, {json.dumps(result['counters'])}"
            )


if __name__ == "__main__":
    main()
