"""Generate realistic benchmark streams from the seed vectors.

Streams (written to ``bench/out/``):

* ``kamstrup_encrypted.bin``: the Radius Kamstrup Omnipower list, re-encrypted
  (AES-GCM, security control 0x30) with an incrementing invocation counter,
  a meter clock advancing 10 s per push and varying energies, powers,
  voltages and currents; HDLC-framed with valid HCS/FCS, 491 bytes a frame.
  Frame 0 is byte for byte the published Radius frame.
* ``kamstrup_plain.bin``: the same lists unencrypted (a bare
  data-notification after the LLC header).
* ``austria_mbus.bin``: an Austrian wired M-Bus stream: the Kaifa MA309 list
  (seed vectors), ciphered as these meters send it (0x20, no tag) with an
  incrementing invocation counter and a growing import register, every push
  cut into two long M-Bus frames (DLMS transport segments).

The frames are built with ``tests/builders.py`` (independent of the decoders),
so this script imports the test helpers by path: run it from the repository
with the project's venv: ``.venv/bin/python bench/make_streams.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from tests import builders  # noqa: E402
from tests.seed_vectors import (  # noqa: E402
    KAIFA_AT_KEY,
    KAIFA_AT_PLAINTEXT,
    RADIUS_AUTH_KEY,
    RADIUS_FRAME,
    RADIUS_INVOCATION_COUNTER,
    RADIUS_KEY,
    RADIUS_PLAINTEXT,
    RADIUS_READINGS,
    RADIUS_SYSTEM_TITLE,
)

LLC = b"\xe6\xe7\x00"
PUSH_INTERVAL = dt.timedelta(seconds=10)  # Kamstrup pushes list 2 every 10 s
RADIUS_CLOCK = dt.datetime(2020, 1, 7, 14, 47, 20)
DEFAULT_FRAMES = 20_000

# Type tags and sizes of the values patched in the plaintext.
DOUBLE_LONG_UNSIGNED = 0x06
LONG_UNSIGNED = 0x12
VALUE_SIZE = {DOUBLE_LONG_UNSIGNED: 4, LONG_UNSIGNED: 2}


def obis_bytes(text: str) -> bytes:
    return bytes(int(g) for g in text.split("."))


def cosem_datetime(when: dt.datetime) -> bytes:
    """A COSEM date-time as the Kamstrup sends it (no hundredths, no deviation)."""
    return (
        when.year.to_bytes(2, "big")
        + bytes([when.month, when.day, when.isoweekday(), when.hour, when.minute, when.second])
        + b"\xff\x80\x00\x00"
    )


def _value_offsets(plaintext: bytes) -> dict[str, tuple[int, int]]:
    """OBIS code -> (offset of its value, type tag), for the numeric items."""
    found = {}
    for obis, _value, _unit in RADIUS_READINGS:
        marker = b"\x09\x06" + obis_bytes(obis)
        at = plaintext.find(marker)
        assert at >= 0, obis
        tag = plaintext[at + len(marker)]
        if tag in VALUE_SIZE:
            found[obis] = (at + len(marker) + 1, tag)
    return found


def _variation(obis: str, base: int, i: int) -> int:
    """A plausible value for push ``i``: counters grow, instant values wander."""
    c, d = (int(g) for g in obis.split(".")[2:4])
    if d == 8:  # energy registers: monotonic
        return base + 13 * i + (i * i) % 7
    if c in (32, 52, 72):  # voltages, V
        return 224 + (i * 7 + c) % 13 - 6
    if c in (31, 51, 71):  # currents, 0.01 A
        return (i * 37 + c * 11) % 1600
    if c == 0:  # meter number
        return base
    return (i * 97 + c * 31) % 11_000  # powers, W / var


def first_raw_values() -> dict[str, int]:
    """OBIS code -> unscaled integer sent in frame 0 (the Radius plaintext)."""
    return {
        obis: int.from_bytes(RADIUS_PLAINTEXT[at : at + VALUE_SIZE[tag]], "big")
        for obis, (at, tag) in _value_offsets(RADIUS_PLAINTEXT).items()
    }


def make_plaintexts(count: int) -> list[bytes]:
    """``count`` data-notifications; number 0 is the Radius plaintext itself."""
    offsets = _value_offsets(RADIUS_PLAINTEXT)
    clock_marker = b"\x09\x06" + obis_bytes("0.1.1.0.0.255") + b"\x09\x0c"
    clock_at = RADIUS_PLAINTEXT.find(clock_marker) + len(clock_marker)
    header_time_at = 6  # 0F, invoke id (4), 0C, date-time
    bases = {
        obis: int.from_bytes(RADIUS_PLAINTEXT[at : at + VALUE_SIZE[tag]], "big")
        for obis, (at, tag) in offsets.items()
    }
    out = []
    for i in range(count):
        buf = bytearray(RADIUS_PLAINTEXT)
        if i:
            stamp = cosem_datetime(RADIUS_CLOCK + i * PUSH_INTERVAL)
            buf[header_time_at : header_time_at + 12] = stamp
            buf[clock_at : clock_at + 12] = stamp
            for obis, (at, tag) in offsets.items():
                size = VALUE_SIZE[tag]
                value = _variation(obis, bases[obis], i) % (1 << (8 * size))
                buf[at : at + size] = value.to_bytes(size, "big")
        out.append(bytes(buf))
    return out


def kamstrup_frame(apdu: bytes) -> bytes:
    return builders.hdlc_frame(LLC + apdu, destination=b"\x41", source=b"\x03", control=0x13)


def make_encrypted(plaintexts: list[bytes]) -> bytes:
    key, auth_key = bytes.fromhex(RADIUS_KEY), bytes.fromhex(RADIUS_AUTH_KEY)
    title = bytes.fromhex(RADIUS_SYSTEM_TITLE)
    frames = []
    for i, plain in enumerate(plaintexts):
        apdu = builders.cipher_apdu(
            plain,
            key=key,
            auth_key=auth_key,
            system_title=title,
            invocation_counter=RADIUS_INVOCATION_COUNTER + i,
            security_control=0x30,
        )
        frames.append(kamstrup_frame(apdu))
    assert frames[0] == RADIUS_FRAME, "frame 0 must reproduce the published Radius frame"
    return b"".join(frames)


def make_plain(plaintexts: list[bytes]) -> bytes:
    return b"".join(kamstrup_frame(p) for p in plaintexts)


AUSTRIA_TITLE = b"SAGY\x05\xe6\xa3\x13"  # Sagemcom T210-D, as in tests/link/test_mbus.py
AUSTRIA_FIRST_SEGMENT = 228  # APDU bytes in the first M-Bus frame; the rest in the second


def make_austria(count: int) -> bytes | None:
    """Kaifa/Sagemcom pushes (Austria): ciphered 0x20, cut into two M-Bus frames each."""
    mbus_segments: Callable[..., list[bytes]] | None = getattr(builders, "mbus_segments", None)
    if mbus_segments is None:
        return None
    key = bytes.fromhex(KAIFA_AT_KEY)
    import_at = KAIFA_AT_PLAINTEXT.find(b"\x09\x06" + obis_bytes("1.0.1.8.0.255")) + 9
    base = int.from_bytes(KAIFA_AT_PLAINTEXT[import_at : import_at + 4], "big")
    chunks = []
    for i in range(count):
        plain = bytearray(KAIFA_AT_PLAINTEXT)
        plain[import_at : import_at + 4] = (base + 3 * i).to_bytes(4, "big")
        apdu = builders.cipher_apdu(
            bytes(plain),
            key=key,
            system_title=AUSTRIA_TITLE,
            invocation_counter=0x1D234 + i,
            security_control=0x20,
            length_form="81",
        )
        frames = mbus_segments(apdu, [AUSTRIA_FIRST_SEGMENT])
        assert len(frames) == 2
        chunks.extend(frames)
    return b"".join(chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plaintexts = make_plaintexts(args.frames)
    manifest: dict[str, object] = {
        "frames": args.frames,
        "streams": {},
        # What frame 0 carries, straight from the bytes: peers are checked against it.
        "first_raw": first_raw_values(),
    }
    streams = {
        "kamstrup_encrypted": make_encrypted(plaintexts),
        "kamstrup_plain": make_plain(plaintexts),
    }
    austria = make_austria(args.frames)
    if austria is not None:
        streams["austria_mbus"] = austria
    else:
        print("austria_mbus: skipped (no tests/builders.py mbus_segments yet)", file=sys.stderr)
    for name, data in streams.items():
        path = args.out / f"{name}.bin"
        path.write_bytes(data)
        manifest["streams"][name] = {"path": str(path), "bytes": len(data)}  # type: ignore[index]
        print(f"{path}: {args.frames} pushes, {len(data):,} bytes")
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
