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

Usage: python bench/dsmr.py [--telegrams N]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def make_stream(count: int) -> bytes:
    """``count`` telegrams, each with its own time, registers and CRC."""
    text = SAMPLE.read_bytes()
    body = text[: text.index(b"!") + 1]
    out = bytearray()
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


def whole_process(command: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start, result.stdout.count(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--telegrams", type=int, default=20_000)
    args = parser.parse_args()
    stream = make_stream(args.telegrams)
    rows = [
        ("amsread in-process (readings)", amsread_in_process(stream, jsonl=False)),
        ("amsread in-process (+ JSON lines)", amsread_in_process(stream, jsonl=True)),
        ("dsmr_parser in-process", dsmr_parser_in_process(stream)),
    ]
    with tempfile.NamedTemporaryFile(suffix=".p1") as capture:
        capture.write(stream)
        capture.flush()
        amsread = [sys.executable, "-m", "amsread", "replay", capture.name, "--framing", "dsmr"]
        peer = [sys.executable, "-c", PEER_SCRIPT, capture.name]
        rows.append(("amsread whole process (replay)", whole_process(amsread)))
        rows.append(("dsmr_parser whole process (to_json)", whole_process(peer)))
    print(f"{args.telegrams} DSMR 5 telegrams, {len(stream)} bytes")
    for name, (seconds, count) in rows:
        print(f"{name:40} {count:6d} telegrams {seconds:7.2f} s {count / seconds:9.0f} telegrams/s")


if __name__ == "__main__":
    main()
