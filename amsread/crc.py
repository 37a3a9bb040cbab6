"""CRC-16/X.25 (the HDLC FCS) at C speed.

``binascii.crc_hqx`` computes the non-reflected CRC-CCITT. CRC-16/X.25 is the
reflected variant; feeding crc_hqx bit-reversed bytes and bit-reversing its
result gives the same value, with both loops running in C.
"""

from __future__ import annotations

import binascii

_REVERSE8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/X.25 of ``data`` (as sent little-endian on the line)."""
    crc = binascii.crc_hqx(bytes(data).translate(_REVERSE8), 0xFFFF)
    return ((_REVERSE8[crc & 0xFF] << 8) | _REVERSE8[crc >> 8]) ^ 0xFFFF
