"""One fuzz input through the whole decoding path: bytes -> feed() -> readings -> JSON.

Shared by the atheris entry point (``fuzz_pipeline.py``) and the test that
replays the seed corpus and every past crash (``tests/test_properties.py``),
so a crash found here is re-run by pytest for ever after.

An input is ``mode byte, knob byte, payload``. Checksums and ciphering are
walls a mutating fuzzer rarely climbs, so besides raw line bytes the harness
can wrap the payload in a valid frame, or cipher it with the test keys first:
the fuzzer then reaches the APDU, security, A-XDR and readings layers through
the same ``Pipeline.feed()`` a serial port uses. Any exception is a crash; so
is output that is not strict JSON.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import seed_vectors as sv
from builders import LLC, ber_length, cipher_apdu, hdlc_frame
from noisy import mbus_segments

from amsread.dlms.keys import Keys
from amsread.link.dsmr import crc16_arc
from amsread.model import Event, Message
from amsread.output.writers import JsonlWriter
from amsread.pipeline import Pipeline

KEY = bytes.fromhex(sv.RADIUS_KEY)
AUTH_KEY = bytes.fromhex(sv.RADIUS_AUTH_KEY)
SYSTEM_TITLE = bytes.fromhex(sv.RADIUS_SYSTEM_TITLE)

RAW, FRAMED, CIPHERED, APDU, SEGMENTS, MBUS, BLOCKS, TELEGRAM = range(8)
MODES = 8
MODE_NAMES = ("raw", "framed", "ciphered", "apdu", "segments", "mbus", "blocks", "telegram")
#: Link layers for raw bytes, chosen by the knob's top bits.
FRAMINGS = ("hdlc", "mbus", "auto", "raw")
#: Largest information field that still fits the 11-bit HDLC length (with a
#: 4-byte destination address: format 2, addresses 5, control 1, HCS 2, FCS 2).
MAX_INFO = 0x7FF - 12
_SECURITY = (0x30, 0x20, 0x10, 0x00, 0x31, 0x30)


def _strict(name: str) -> object:
    raise ValueError(f"not strict JSON: {name}")


def _framed(info: bytes, *, segmented: bool = False, knob: int = 0) -> bytes:
    # Vary the address sizes a little: 1, 2 or 4 bytes, as meters do.
    destination = (b"\x41", b"\x02\x23", b"\x00\x02\x00\x23")[knob % 3]
    return hdlc_frame(info[:MAX_INFO], destination=destination, segmented=segmented)


def _block(data: bytes, number: int, last: bool) -> bytes:
    control = 0x80 if last else 0x00
    return (
        bytes([0xE0, control])
        + number.to_bytes(2, "big")
        + b"\x00\x00"
        + ber_length(len(data))
        + data
    )


def line_bytes(mode: int, knob: int, payload: bytes) -> list[bytes]:
    """The chunks a serial port would deliver for this input."""
    if mode == RAW:
        size = 1 << (knob & 0x0F)  # 1 (byte by byte) to 32 KiB (all at once)
        return [payload[i : i + size] for i in range(0, len(payload), size)]
    if mode == FRAMED:
        return [_framed(LLC + payload, knob=knob)]
    if mode == CIPHERED:
        apdu = cipher_apdu(
            payload[: MAX_INFO - 40],
            key=KEY,
            auth_key=AUTH_KEY,
            system_title=SYSTEM_TITLE,
            invocation_counter=knob + 1,
            security_control=_SECURITY[knob % len(_SECURITY)],
            tag=0xDC if knob & 0x80 else 0xDB,
            length_form="82" if knob & 0x40 else "short",
        )
        return [_framed(LLC + apdu, knob=knob)]
    if mode == TELEGRAM:
        # A DSMR telegram around the payload, its CRC valid: the parser is reached.
        body = (
            (b"" if payload[:1] == b"/" else b"/FUZ5\\fuzz\r\n\r\n") + payload.split(b"!")[0] + b"!"
        )
        telegram = body + b"%04X\r\n" % crc16_arc(body)
        size = 1 << (knob & 0x0F)
        return [telegram[i : i + size] for i in range(0, len(telegram), size)]
    if mode == MBUS:
        # DLMS transport segments over M-Bus: no LLC, checksums valid.
        return mbus_segments(payload[: 16 * 226], size=(knob % 250) + 1)
    if mode == BLOCKS:
        # General-block-transfer: each block in its own HDLC frame.
        size = (knob % 200) + 1
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        return [
            _framed(LLC + _block(piece, i + 1, i == len(pieces) - 1), knob=knob)
            for i, piece in enumerate(pieces[:64])
        ]
    # SEGMENTS: the payload cut into pieces sent as consecutive frames, all
    # but the last with the segmentation bit, the first with the LLC header.
    size = (knob % 64) + 1
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    return [
        _framed((LLC if i == 0 else b"") + piece, segmented=i < len(pieces) - 1, knob=knob)
        for i, piece in enumerate(pieces)
    ]


def one_input(data: bytes) -> None:
    """Decode one fuzz input; raise on anything that is not a clean outcome."""
    mode = data[0] % MODES if data else RAW
    knob = data[1] if len(data) > 1 else 0
    payload = data[2:]
    keys = Keys(KEY, AUTH_KEY if knob & 0x20 == 0 else None)
    framing = FRAMINGS[knob >> 6] if mode == RAW else "mbus" if mode == MBUS else "hdlc"
    if mode == TELEGRAM:
        framing = "auto" if knob & 0x80 else "dsmr"
    pipeline = Pipeline(keys, framing=framing)
    if mode == APDU:
        events = pipeline.feed_apdu(payload)
    else:
        events = []
        for chunk in line_bytes(mode, knob, payload):
            events += pipeline.feed(chunk)
        events += pipeline.close()
    out = io.StringIO()
    writer = JsonlWriter(out)
    for event in events:
        if not isinstance(event, Event):
            raise TypeError(f"unexpected event {event!r}")
        if isinstance(event, Message):
            writer.write(event)
    for line in out.getvalue().splitlines():
        json.loads(line, parse_constant=_strict)
