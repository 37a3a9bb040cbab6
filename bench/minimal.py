"""The issue's yardstick: a minimal hand-written pure-Python pipeline.

16-bit-table CRC, ``cryptography`` AES-GCM, a tight A-XDR loop, readings as
(OBIS text, raw value) pairs; no names, no units, no scaling, no output, no
error reporting. The issue measured such a pipeline at ~100 µs a frame (CRC
20-40 µs, readings ~50 µs, AES-GCM ~6 µs), ~12,600 frames/s. It only shows what plain
Python costs per frame; amsread must beat it while doing much more.

Used by ``bench/peers.py`` (any venv with ``cryptography``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


_FIXED = {
    0x03: (1, struct.Struct(">?").unpack_from),
    0x05: (4, struct.Struct(">i").unpack_from),
    0x06: (4, struct.Struct(">I").unpack_from),
    0x0F: (1, struct.Struct(">b").unpack_from),
    0x10: (2, struct.Struct(">h").unpack_from),
    0x11: (1, struct.Struct(">B").unpack_from),
    0x12: (2, struct.Struct(">H").unpack_from),
    0x14: (8, struct.Struct(">q").unpack_from),
    0x15: (8, struct.Struct(">Q").unpack_from),
    0x16: (1, struct.Struct(">B").unpack_from),
}


def axdr(buf: bytes, pos: int) -> tuple[object, int]:
    tag = buf[pos]
    pos += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        return fixed[1](buf, pos)[0], pos + fixed[0]
    if tag in (0x01, 0x02):
        count = buf[pos]
        pos += 1
        items = []
        for _ in range(count):
            item, pos = axdr(buf, pos)
            items.append(item)
        return items, pos
    if tag in (0x09, 0x0A):
        size = buf[pos]
        return buf[pos + 1 : pos + 1 + size], pos + 1 + size
    if tag == 0x00:
        return None, pos
    raise ValueError(f"tag {tag:02X}")


class Minimal:
    def __init__(self, key: bytes | None, auth_key: bytes | None) -> None:
        self.key = key
        self.aad_tail = auth_key or b""

    def frames(self, stream: bytes) -> Iterator[list[tuple[str, object]]]:
        """The readings of every checksum-valid frame in ``stream``."""
        pos, n = 0, len(stream)
        while pos < n:
            start = stream.find(b"\x7e", pos)
            if start < 0 or start + 3 > n:
                break
            length = ((stream[start + 1] & 0x07) << 8) | stream[start + 2]
            end = start + 1 + length
            if stream[start + 1] & 0xF0 != 0xA0 or end > n:
                pos = start + 1
                continue
            body = stream[start + 1 : end - 2]
            if crc16(body) != int.from_bytes(stream[end - 2 : end], "little"):
                pos = start + 1
                continue
            yield self.apdu(stream[start + 11 : end - 2])  # 2+1+1+1+2 header, LLC
            pos = end + 1

    def apdu(self, apdu: bytes) -> list[tuple[str, object]]:
        if apdu[0] == 0xDB:
            title = apdu[2:10]
            if apdu[10] == 0x82:
                length, start = int.from_bytes(apdu[11:13], "big"), 13
            elif apdu[10] == 0x81:
                length, start = apdu[11], 12
            else:
                length, start = apdu[10], 11
            content = apdu[start : start + length]
            sc, ic = content[0], content[1:5]
            assert self.key is not None
            dec = Cipher(
                algorithms.AES(self.key), modes.GCM(title + ic, content[-12:], min_tag_length=12)
            ).decryptor()
            dec.authenticate_additional_data(bytes([sc]) + self.aad_tail)
            apdu = dec.update(content[5:-12]) + dec.finalize()
        pos = 6 + (12 if apdu[5] == 0x0C else 0)
        return readings(axdr(apdu, pos)[0])


def readings(body: object) -> list[tuple[str, object]]:
    """The plainest readings: each OBIS code as text with the value after it."""
    assert isinstance(body, list)
    out = []
    for i, item in enumerate(body[:-1]):
        if isinstance(item, bytes) and len(item) == 6:
            out.append((".".join(str(b) for b in item), body[i + 1]))
    return out
