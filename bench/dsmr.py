"""DSMR 5 telegrams: amsread against dsmr_parser, in-process and whole process.

A stream of 20,000 DSMR 5 telegrams (the published Iskra AM550 example from
tests/corpus/dsmr/v5_iskra.txt, its time stamp and registers changed per
telegram and the CRC recomputed) is read by

* amsread: ``Pipeline(framing="dsmr").feed()`` in 64 KiB chunks (CRC check,
  readings), and the same plus JSON lines; whole process ``amsread replay``;
* dsmr_parser: its ``TelegramBuffer`` (the stream split as its serial clients
  do) and ``TelegramParser(V5).parse`` (CRC check, objects); whole process a
  Python script that does that and prints ``telegram.to_json()``.

dsmr_parser is a bench-only peer (``pip install dsmr_parser`` into the venv
that runs this); it is not a dependency of amsread.

Two streams: plain (only the time and one register change from telegram to
telegram) and varied (the power, voltage and current lines change too, as on
a meter with a changing load). amsread is measured in child processes, so
that ``--baseline DIR`` can measure another source tree (main, say) in the
same run, on the same streams.

Usage: python bench/dsmr.py [--telegrams N] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from random import Random

from amsread.link.dsmr import crc16_arc
from amsread.model import Message
from amsread.output.writers import JsonlWriter
from amsread.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "tests" / "corpus" / "dsmr" / "v5_iskra.txt"
CHUNK = 64 * 1024

PEER_SCRIPT = """
import sys
from dsmr_parser import telegram_specifications
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.parsers import TelegramParser
parser, buffer, out = TelegramParser(telegram_specifications.V5), TelegramBuffer(), sys.stdout
with open(sys.argv[1], encoding="ascii", newline="") as stream:
    while chunk := stream.read(65536):
        buffer.append(chunk)
        for text in buffer.get_all():
            out.write(parser.parse(text).to_json() + "\\n")
"""


#: Lines of the sample whose value the varied stream changes in every telegram:
#: (line, its form with the value, lowest, highest); the width stays the same.
VARIED_LINES = (
    (b"1-0:1.7.0(00.244*kW)", b"1-0:1.7.0(%06.3f*kW)", 0.0, 9.999),
    (b"1-0:32.7.0(0230.0*V)", b"1-0:32.7.0(%06.1f*V)", 215.0, 245.0),
    (b"1-0:52.7.0(0230.0*V)", b"1-0:52.7.0(%06.1f*V)", 215.0, 245.0),
    (b"1-0:72.7.0(0229.0*V)", b"1-0:72.7.0(%06.1f*V)", 215.0, 245.0),
    (b"1-0:31.7.0(0.48*A)", b"1-0:31.7.0(%04.2f*A)", 0.0, 9.99),
    (b"1-0:51.7.0(0.44*A)", b"1-0:51.7.0(%04.2f*A)", 0.0, 9.99),
    (b"1-0:71.7.0(0.86*A)", b"1-0:71.7.0(%04.2f*A)", 0.0, 9.99),
    (b"1-0:21.7.0(00.070*kW)", b"1-0:21.7.0(%06.3f*kW)", 0.0, 9.999),
    (b"1-0:41.7.0(00.032*kW)", b"1-0:41.7.0(%06.3f*kW)", 0.0, 9.999),
    (b"1-0:61.7.0(00.142*kW)", b"1-0:61.7.0(%06.3f*kW)", 0.0, 9.999),
)


def make_stream(count: int, *, varied: bool = False) -> bytes:
    """``count`` telegrams, each with its own time, registers and CRC.

    ``varied``: the power, voltage and current lines change in every telegram
    too, as on a real meter with a changing load (the plain stream changes
    only the time and one register).
    """
    text = SAMPLE.read_bytes()
    body = text[: text.index(b"!") + 1]
    out = bytearray()
    random = Random(16)
    for i in range(count):
        seconds = i * 10
        stamp = b"1701%02d%02d%02d%02dW" % (
            2 + seconds // 86400,
            seconds // 3600 % 24,
            seconds // 60 % 60,
            seconds % 60,
        )
        telegram = body.replace(b"170102192002W", stamp).replace(
            b"000004.426", b"%010.3f" % (4.426 + i * 0.001)
        )
        if varied:
            for line, form, low, high in VARIED_LINES:
                telegram = telegram.replace(line, form % random.uniform(low, high))
        out += telegram + b"%04X\r\n" % crc16_arc(telegram)
    return bytes(out)


def amsread_in_process(stream: bytes, *, jsonl: bool) -> tuple[float, int]:
    start = time.perf_counter()
    pipeline = Pipeline(framing="dsmr")
    writer = JsonlWriter(io.StringIO())
    messages = 0
    for i in range(0, len(stream), CHUNK):
        for event in pipeline.feed(stream[i : i + CHUNK]):
            if isinstance(event, Message):
                messages += 1
                if jsonl:
                    writer.write(event)
    pipeline.close()
    return time.perf_counter() - start, messages


def dsmr_parser_in_process(stream: bytes) -> tuple[float, int]:
    from dsmr_parser import telegram_specifications
    from dsmr_parser.clients.telegram_buffer import TelegramBuffer
    from dsmr_parser.parsers import TelegramParser

    start = time.perf_counter()
    parser, buffer = TelegramParser(telegram_specifications.V5), TelegramBuffer()
    telegrams = 0
    text = stream.decode("ascii")
    for i in range(0, len(text), CHUNK):
        buffer.append(text[i : i + CHUNK])
        for telegram in buffer.get_all():
            parser.parse(telegram)
            telegrams += 1
    return time.perf_counter() - start, telegrams


def whole_process(
    command: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=True, env=env, cwd=cwd)
    return time.perf_counter() - start, result.stdout.count(b"\n")


def amsread_rows(capture: str, label: str, tree: str | None) -> list[Row]:
    """amsread's three figures, measured in child processes that import ``tree``'s amsread."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = tree  # ahead of the editable install of this checkout
    cwd = tempfile.gettempdir()  # not a checkout: "" on sys.path must not find one

    def child(mode: str) -> tuple[float, int]:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", capture, mode]
        out = subprocess.run(command, capture_output=True, check=True, env=env, cwd=cwd).stdout
        seconds, count = out.split()
        return float(seconds), int(count)

    replay = [sys.executable, "-m", "amsread", "replay", capture, "--framing", "dsmr"]
    return [
        (f"amsread{label} in-process (readings)", child("readings")),
        (f"amsread{label} in-process (+ JSON lines)", child("jsonl")),
        (f"amsread{label} whole process (replay)", whole_process(replay, env, cwd)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--telegrams", type=int, default=20_000)
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also measure the amsread source tree in DIR, in the same run"
        " (e.g. git archive main amsread | tar -x -C DIR)",
    )
    parser.add_argument("--child", nargs=2, metavar=("CAPTURE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        capture, mode = args.child
        seconds, count = amsread_in_process(Path(capture).read_bytes(), jsonl=mode == "jsonl")
        print(seconds, count)
        return
    trees = [(" (baseline)", args.baseline)] if args.baseline else []
    trees.append(("", None))
    for varied in (False, True):
        stream = make_stream(args.telegrams, varied=varied)
        kind = "varied: power, voltages, currents change" if varied else "plain"
        print(f"{args.telegrams} DSMR 5 telegrams ({kind}), {len(stream)} bytes", flush=True)
        for name, (seconds, count) in measure(stream, trees):
            rate = count / seconds
            print(f"{name:44} {count:6d} telegrams {seconds:7.2f} s {rate:9.0f} telegrams/s")


Row = tuple[str, tuple[float, int]]


def measure(stream: bytes, trees: list[tuple[str, str | None]]) -> list[Row]:
    with tempfile.NamedTemporaryFile(suffix=".p1") as capture:
        capture.write(stream)
        capture.flush()
        rows = [row for label, tree in trees for row in amsread_rows(capture.name, label, tree)]
        rows.append(("dsmr_parser in-process", dsmr_parser_in_process(stream)))
        peer = [sys.executable, "-c", PEER_SCRIPT, capture.name]
        rows.append(("dsmr_parser whole process (to_json)", whole_process(peer)))
    return rows


if __name__ == "__main__":
    main()
