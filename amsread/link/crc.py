"""CRC-16/X.25 (the HDLC FCS) at C speed.

``binascii.crc_hqx`` computes the non-reflected CRC-CCITT. CRC-16/X.25 is the
reflected variant; feeding crc_hqx bit-reversed bytes and bit-reversing its
result gives the same value, with both loops running in C: about 1.7 µs for
a 487-byte frame against 23 µs for a table-driven Python loop
(``bench/crc_compare.py`` compares CRC packages too; the standard library is
within 1.5 µs of the fastest and adds no dependency).
"""

from __future__ import annotations

import binascii

_REVERSE8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/X.25 of ``data`` (as sent little-endian on the line)."""
    # bytes and bytearray translate in place of a copy; a memoryview cannot.
    raw = data.tobytes() if isinstance(data, memoryview) else data
    crc = binascii.crc_hqx(raw.translate(_REVERSE8), 0xFFFF)
    return ((_REVERSE8[crc & 0xFF] << 8) | _REVERSE8[crc >> 8]) ^ 0xFFFF
