"""A-XDR decoding of DLMS/COSEM data (IEC 61334-6 / IEC 62056-6-2), sans I/O.

Values map to plain Python types so later layers stay simple:

=====================  ==================================
A-XDR type             Python value
=====================  ==================================
null-data              ``None``
array / structure      ``Array`` / ``Structure`` (tuples)
boolean                ``bool``
integer types          ``int``
enum                   ``Enum`` (an ``int`` subclass)
octet-string           ``bytes``
visible/utf8-string    ``str`` (NUL padding removed)
bit-string             ``BitString``
bcd                    ``int``
float32 / float64      ``float``
date-time/date/time    ``bytes`` tagged ``CosemDateTime``…
=====================  ==================================
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from amsread.errors import AxdrError

# Nesting deeper than this is no meter data but an attack on the stack.
MAX_DEPTH = 16

NULL_DATA = 0x00
ARRAY = 0x01
STRUCTURE = 0x02
BOOLEAN = 0x03
BIT_STRING = 0x04
DOUBLE_LONG = 0x05
DOUBLE_LONG_UNSIGNED = 0x06
OCTET_STRING = 0x09
VISIBLE_STRING = 0x0A
UTF8_STRING = 0x0C
BCD = 0x0D
INTEGER = 0x0F
LONG = 0x10
UNSIGNED = 0x11
LONG_UNSIGNED = 0x12
COMPACT_ARRAY = 0x13
LONG64 = 0x14
LONG64_UNSIGNED = 0x15
ENUM = 0x16
FLOAT32 = 0x17
FLOAT64 = 0x18
DATE_TIME = 0x19
DATE = 0x1A
TIME = 0x1B

TAG_NAMES = {
    NULL_DATA: "null-data",
    ARRAY: "array",
    STRUCTURE: "structure",
    BOOLEAN: "boolean",
    BIT_STRING: "bit-string",
    DOUBLE_LONG: "double-long",
    DOUBLE_LONG_UNSIGNED: "double-long-unsigned",
    OCTET_STRING: "octet-string",
    VISIBLE_STRING: "visible-string",
    UTF8_STRING: "utf8-string",
    BCD: "bcd",
    INTEGER: "integer",
    LONG: "long",
    UNSIGNED: "unsigned",
    LONG_UNSIGNED: "long-unsigned",
    COMPACT_ARRAY: "compact-array",
    LONG64: "long64",
    LONG64_UNSIGNED: "long64-unsigned",
    ENUM: "enum",
    FLOAT32: "float32",
    FLOAT64: "float64",
    DATE_TIME: "date-time",
    DATE: "date",
    TIME: "time",
}


class Structure(tuple):  # type: ignore[type-arg]
    """An A-XDR structure: a tuple whose elements may differ in type."""

    __slots__ = ()


class Array(tuple):  # type: ignore[type-arg]
    """An A-XDR array: a tuple of elements of one type."""

    __slots__ = ()


class Enum(int):
    """An A-XDR enum: an int that remembers it was sent as one (units are enums)."""

    __slots__ = ()


class BitString(bytes):
    """An A-XDR bit-string; ``bits`` is the number of significant bits."""

    bits: int


class CosemDateTime(bytes):
    """A 12-byte COSEM date-time sent with the dedicated date-time tag."""


class CosemDate(bytes):
    """A 5-byte COSEM date."""


class CosemTime(bytes):
    """A 4-byte COSEM time."""


@dataclass(frozen=True, slots=True)
class _Fixed:
    size: int
    convert: Callable[[bytes, int], object]


def _unpacker(fmt: str) -> Callable[[bytes, int], object]:
    unpack_from = struct.Struct(fmt).unpack_from

    def convert(buf: bytes, pos: int) -> object:
        return unpack_from(buf, pos)[0]

    return convert


def _bcd(buf: bytes, pos: int) -> int:
    byte = buf[pos]
    return (byte >> 4) * 10 + (byte & 0x0F)


def _sliced(kind: type[bytes], size: int) -> Callable[[bytes, int], object]:
    def convert(buf: bytes, pos: int) -> object:
        return kind(buf[pos : pos + size])

    return convert


_FIXED: dict[int, _Fixed] = {
    BOOLEAN: _Fixed(1, lambda buf, pos: buf[pos] != 0),
    DOUBLE_LONG: _Fixed(4, _unpacker(">i")),
    DOUBLE_LONG_UNSIGNED: _Fixed(4, _unpacker(">I")),
    BCD: _Fixed(1, _bcd),
    INTEGER: _Fixed(1, _unpacker(">b")),
    LONG: _Fixed(2, _unpacker(">h")),
    UNSIGNED: _Fixed(1, _unpacker(">B")),
    LONG_UNSIGNED: _Fixed(2, _unpacker(">H")),
    LONG64: _Fixed(8, _unpacker(">q")),
    LONG64_UNSIGNED: _Fixed(8, _unpacker(">Q")),
    ENUM: _Fixed(1, lambda buf, pos: Enum(buf[pos])),
    FLOAT32: _Fixed(4, _unpacker(">f")),
    FLOAT64: _Fixed(8, _unpacker(">d")),
    DATE_TIME: _Fixed(12, _sliced(CosemDateTime, 12)),
    DATE: _Fixed(5, _sliced(CosemDate, 5)),
    TIME: _Fixed(4, _sliced(CosemTime, 4)),
}


def decode_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode an A-XDR/BER length at ``pos``: returns (length, position after it)."""
    if pos >= len(buf):
        raise AxdrError("length expected, data ends", pos)
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise AxdrError(f"unsupported length form 0x{first:02X}", pos)
    end = pos + 1 + count
    if end > len(buf):
        raise AxdrError("length field truncated", pos)
    return int.from_bytes(buf[pos + 1 : end], "big"), end


def decode(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[object, int]:
    """Decode one A-XDR value at ``pos``; return it and the position after it."""
    if pos >= len(buf):
        raise AxdrError("value expected, data ends", pos)
    tag = buf[pos]
    pos += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        end = pos + fixed.size
        if end > len(buf):
            raise AxdrError(f"{TAG_NAMES[tag]} truncated", pos - 1)
        return fixed.convert(buf, pos), end
    if tag in (STRUCTURE, ARRAY):
        if depth >= MAX_DEPTH:
            raise AxdrError("data nested too deeply", pos - 1)
        count, pos = decode_length(buf, pos)
        if count > len(buf) - pos:
            raise AxdrError(f"{TAG_NAMES[tag]} of {count} elements cannot fit", pos)
        items = []
        for _ in range(count):
            item, pos = decode(buf, pos, depth + 1)
            items.append(item)
        return (Structure(items) if tag == STRUCTURE else Array(items)), pos
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        size, pos = decode_length(buf, pos)
        end = pos + size
        if end > len(buf):
            raise AxdrError(f"{TAG_NAMES[tag]} of {size} bytes truncated", pos)
        raw = buf[pos:end]
        if tag == OCTET_STRING:
            return bytes(raw), end
        encoding = "utf-8" if tag == UTF8_STRING else "latin-1"
        return bytes(raw).rstrip(b"\x00").decode(encoding, "replace"), end
    if tag == NULL_DATA:
        return None, pos
    if tag == BIT_STRING:
        bits, pos = decode_length(buf, pos)
        end = pos + (bits + 7) // 8
        if end > len(buf):
            raise AxdrError("bit-string truncated", pos)
        value = BitString(buf[pos:end])
        value.bits = bits
        return value, end
    if tag == COMPACT_ARRAY:
        # No known meter pushes it; decoding it needs its type description.
        raise AxdrError(
            "compact-array (0x13) is not supported in push data; please report this frame",
            pos - 1,
        )
    raise AxdrError(f"unknown data type tag 0x{tag:02X}", pos - 1)


def decode_all(buf: bytes) -> object:
    """Decode exactly one value that fills ``buf``; trailing bytes are an error."""
    value, end = decode(buf, 0)
    if end != len(buf):
        raise AxdrError(f"{len(buf) - end} unexpected bytes after the data", end)
    return value


# -- annotated decoding (``amsread explain``) --------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """One A-XDR value and where it lies in the buffer, for annotated dumps.

    ``start`` is the offset of its tag, ``content`` of the bytes after the tag
    and any length, ``end`` the offset after the value. A container's
    ``value`` is the same ``Structure``/``Array`` that ``decode`` returns,
    built from its ``children``' values (so ``is`` finds a child by value).
    """

    tag: int
    type_name: str
    value: object
    start: int
    content: int
    end: int
    children: tuple[Node, ...] = ()


def decode_node(buf: bytes, pos: int = 0, depth: int = 0) -> Node:
    """Decode one A-XDR value at ``pos`` into a ``Node`` tree (same rules as ``decode``)."""
    if pos >= len(buf):
        raise AxdrError("value expected, data ends", pos)
    tag = buf[pos]
    if tag not in (STRUCTURE, ARRAY):
        value, end = decode(buf, pos, depth)
        has_length = tag not in _FIXED and tag != NULL_DATA
        content = decode_length(buf, pos + 1)[1] if has_length else pos + 1
        return Node(tag, TAG_NAMES.get(tag, f"type 0x{tag:02X}"), value, pos, content, end)
    if depth >= MAX_DEPTH:
        raise AxdrError("data nested too deeply", pos)
    count, content = decode_length(buf, pos + 1)
    if count > len(buf) - content:
        raise AxdrError(f"{TAG_NAMES[tag]} of {count} elements cannot fit", content)
    children = []
    cursor = content
    for _ in range(count):
        child = decode_node(buf, cursor, depth + 1)
        children.append(child)
        cursor = child.end
    items = [child.value for child in children]
    value = Structure(items) if tag == STRUCTURE else Array(items)
    return Node(tag, TAG_NAMES[tag], value, pos, content, cursor, tuple(children))
