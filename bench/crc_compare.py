"""CRC-16/X.25 implementations side by side, on one HDLC frame (487 bytes) and one header.

Run in the peers' venv (the CRC packages are installed there, never in the
project's)::

    bench/.venv-peers/bin/pip install crcmod-plus fastcrc anycrc crc
    bench/.venv-peers/bin/python bench/crc_compare.py

amsread itself may only use the standard library (no new runtime
dependency); this shows what that costs against the packages.
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from minimal import crc16 as table_crc16  # noqa: E402

from amsread.link.crc import crc16_x25  # noqa: E402
from tests.seed_vectors import RADIUS_FRAME  # noqa: E402

BODY = RADIUS_FRAME[1:-3]  # what the FCS covers
HEADER = RADIUS_FRAME[1:8]  # what the HCS covers
EXPECTED = int.from_bytes(RADIUS_FRAME[-3:-1], "little")


def candidates() -> dict[str, Callable[[bytes], int]]:
    found: dict[str, Callable[[bytes], int]] = {
        "amsread.link.crc (binascii.crc_hqx, stdlib)": crc16_x25,
        "pure Python, 256-entry table": table_crc16,
    }
    try:
        import crcmod.predefined

        found["crcmod-plus (C extension)"] = crcmod.predefined.mkCrcFun("x-25")
    except ImportError:
        pass
    try:
        import fastcrc

        found["fastcrc (Rust)"] = fastcrc.crc16.ibm_sdlc
    except ImportError:
        pass
    try:
        import anycrc

        model = anycrc.Model("CRC16-IBM-SDLC")
        found["anycrc (C)"] = model.calc
    except ImportError:
        pass
    try:
        import crc

        calculator = crc.Calculator(crc.Crc16.X25, optimized=True)
        found["crc (pure Python, table)"] = calculator.checksum
    except ImportError:
        pass
    return found


def main() -> int:
    print(f"| implementation | {len(BODY)} bytes | {len(HEADER)} bytes | agrees |")
    print("|---|---|---|---|")
    for name, fn in candidates().items():
        agrees = fn(BODY) == EXPECTED
        row = []
        for data in (BODY, HEADER):
            number = 20_000 if fn is not table_crc16 else 2_000
            best = min(timeit.repeat(lambda d=data, f=fn: f(d), number=number, repeat=5)) / number
            row.append(f"{best * 1e6:.2f} µs")
        print(f"| {name} | {row[0]} | {row[1]} | {'yes' if agrees else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
