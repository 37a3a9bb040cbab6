"""Write the fuzz seed corpus (fuzz/corpus/) from the real test vectors.

Each seed is ``mode, knob, payload`` as fuzz/harness.py reads it. Rerun after
adding vectors to tests/seed_vectors.py; the files are committed so CI and a
long run start from the same place.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    APDU,
    BLOCKS,
    CIPHERED,
    FRAMED,
    MBUS,
    MODE_NAMES,
    RAW,
    SEGMENTS,
    sv,
)
from noisy import mbus_segments  # noqa: E402

# Knob values for RAW: the top two bits choose the link layer.
HDLC, MBUS_LINK, AUTO, HEX = 0x3F, 0x7F, 0xBF, 0xFF


def vectors() -> dict[str, bytes]:
    """Every bytes constant in tests/seed_vectors.py, new ones included."""
    return {
        name: value
        for name, value in vars(sv).items()
        if name.isupper() and isinstance(value, bytes) and value
    }


def seeds() -> list[bytes]:
    out = []
    for value in vectors().values():
        if value[0] == 0x7E:
            out += [bytes([RAW, HDLC]) + value, bytes([RAW, AUTO]) + value]
            out.append(bytes([RAW, 0x00]) + value * 2)  # byte by byte
        elif value[0] == 0x68:
            out += [bytes([RAW, MBUS_LINK]) + value, bytes([RAW, AUTO]) + value]
        else:
            out += [bytes([APDU, 0]) + value, bytes([FRAMED, 1]) + value]
            out.append(bytes([RAW, HEX]) + value.hex().encode() + b"\n")
            out.append(bytes([RAW, MBUS_LINK]) + b"".join(mbus_segments(value)))
        if value[0] == 0x0F:
            out += [
                bytes([CIPHERED, 0]) + value,
                bytes([CIPHERED, 1]) + value,
                bytes([SEGMENTS, 40]) + value,
                bytes([MBUS, 120]) + value,
                bytes([BLOCKS, 60]) + value,
            ]
    return out


def main(folder: Path = HERE / "corpus") -> None:
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for seed in seeds():
        name = f"{MODE_NAMES[seed[0]]}-{hashlib.sha1(seed).hexdigest()[:12]}"
        (folder / name).write_bytes(seed)
    print(f"{len(seeds())} seeds in {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus")
