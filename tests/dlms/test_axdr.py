"""A-XDR decoding: every type, every length form, and typed errors for anything else."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms import axdr
from amsread.dlms.axdr import Array, BitString, CosemDate, CosemDateTime, CosemTime, Enum, Structure
from amsread.errors import AxdrError


@pytest.mark.parametrize(
    ("data", "expected", "kind"),
    [
        ("00", None, type(None)),  # null-data
        ("0301", True, bool),  # boolean
        ("0300", False, bool),
        ("05fffffffe", -2, int),  # double-long
        ("06000d394c", 866636, int),  # double-long-unsigned
        ("0d42", 42, int),  # bcd: 0x42 -> 42
        ("0ffd", -3, int),  # integer (scalers are sent as this)
        ("10ff38", -200, int),  # long
        ("11e6", 230, int),  # unsigned
        ("1208f9", 2297, int),  # long-unsigned
        ("14fffffffffffffffe", -2, int),  # long64
        ("15000000e8d4a51000", 1_000_000_000_000, int),  # long64-unsigned
        ("161e", 30, Enum),  # enum (units are sent as this)
        ("1743660000", 230.0, float),  # float32
        ("18406cc00000000000", 230.0, float),  # float64
        ("0904312d3233", b"1-23", bytes),  # octet-string
        ("0a0e4b616d73747275705f5630303031", "Kamstrup_V0001", str),  # visible-string
        ("0c06c3a57267c3a5", "årgå", str),  # utf8-string
    ],
)
def test_each_simple_type_decodes_to_its_python_value(
    data: str, expected: object, kind: type
) -> None:
    value = axdr.decode_all(bytes.fromhex(data))
    assert value == expected
    assert type(value) is kind


def test_date_time_tag_gives_a_tagged_12_byte_value() -> None:
    raw = bytes.fromhex("07e40107020e2f14ff800000")
    value = axdr.decode_all(b"\x19" + raw)  # date-time (0x19), no length byte
    assert isinstance(value, CosemDateTime)
    assert value == raw


def test_date_and_time_tags_give_tagged_values() -> None:
    assert isinstance(axdr.decode_all(bytes.fromhex("1a07e4010702")), CosemDate)
    assert isinstance(axdr.decode_all(bytes.fromhex("1b0e2f14ff")), CosemTime)


def test_bit_string_keeps_its_bit_count() -> None:
    value = axdr.decode_all(bytes.fromhex("040c" + "a5f0"))  # 12 bits in 2 bytes
    assert isinstance(value, BitString)
    assert value == b"\xa5\xf0"
    assert value.bits == 12


def test_visible_and_utf8_strings_lose_their_nul_padding() -> None:
    assert axdr.decode_all(bytes.fromhex("0a08" + "5241544532000000")) == "RATE2"
    assert axdr.decode_all(bytes.fromhex("0c04" + "41420000")) == "AB"


def test_octet_strings_keep_their_bytes_exactly() -> None:
    # NUL padding of octet-strings is removed only when they are shown as text.
    assert axdr.decode_all(bytes.fromhex("0904" + "41420000")) == b"AB\x00\x00"


def test_structure_and_array_decode_to_tagged_tuples() -> None:
    data = "0202" + "0906" + "0100010700ff" + "0203" + "1100" + "1101" + "00"
    value = axdr.decode_all(bytes.fromhex(data))
    assert isinstance(value, Structure)
    assert value[0] == bytes.fromhex("0100010700ff")
    assert isinstance(value[1], Structure)
    assert value[1] == (0, 1, None)
    array = axdr.decode_all(bytes.fromhex("0102" + "1101" + "1102"))
    assert isinstance(array, Array)
    assert array == (1, 2)


@pytest.mark.parametrize(
    ("length", "size"),
    [("05", 5), ("8105", 5), ("81ff", 255), ("820100", 256), ("8400000102", 258)],
)
def test_every_length_form_gives_the_same_octet_string(length: str, size: int) -> None:
    data = bytes.fromhex("09" + length) + bytes(range(size % 256)) + bytes(size - size % 256)
    assert axdr.decode_all(data) == data[-size:]


def test_long_form_element_count_of_a_structure() -> None:
    data = bytes.fromhex("028180") + bytes.fromhex("1101") * 128  # 0x81 0x80: 128 elements
    assert len(axdr.decode_all(data)) == 128  # type: ignore[arg-type]


@pytest.mark.parametrize("length", ["80", "85", "88"])
def test_indefinite_and_oversized_length_forms_are_rejected(length: str) -> None:
    with pytest.raises(AxdrError, match="unsupported length form"):
        axdr.decode_all(bytes.fromhex("09" + length + "00"))


def test_compact_array_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(AxdrError, match=r"compact-array .* not supported"):
        axdr.decode_all(bytes.fromhex("13" + "0112" + "02" + "00010002"))


def test_unknown_tag_is_named_with_its_offset() -> None:
    with pytest.raises(AxdrError, match=r"unknown data type tag 0x07 \(at byte 2\)"):
        axdr.decode_all(bytes.fromhex("0201" + "07"))


@pytest.mark.parametrize(
    "data",
    [
        "",  # nothing at all
        "06000d39",  # double-long-unsigned one byte short
        "0906010001",  # octet-string of 6 with 3 bytes
        "0a",  # visible-string without a length
        "0203" + "1101",  # structure of 3 with one element
        "18406c",  # float64 cut short
        "19" + "07e4",  # date-time cut short
        "0410" + "ff",  # bit-string of 16 bits with 8
        "0284ffffffff",  # a structure that cannot fit
    ],
)
def test_truncated_data_raises_axdr_error(data: str) -> None:
    with pytest.raises(AxdrError):
        axdr.decode_all(bytes.fromhex(data))


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    data = bytes.fromhex("0201") * (axdr.MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(AxdrError, match="nested too deeply"):
        axdr.decode_all(data)


def test_trailing_bytes_after_the_value_are_an_error() -> None:
    with pytest.raises(AxdrError, match="1 unexpected bytes after the data"):
        axdr.decode_all(bytes.fromhex("1101" + "ff"))


# -- properties ------------------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    return b"\x82" + size.to_bytes(2, "big")


_INTS = [
    (0x05, ">i", -(2**31), 2**31 - 1),
    (0x06, ">I", 0, 2**32 - 1),
    (0x0F, ">b", -128, 127),
    (0x10, ">h", -(2**15), 2**15 - 1),
    (0x11, ">B", 0, 255),
    (0x12, ">H", 0, 2**16 - 1),
    (0x14, ">q", -(2**63), 2**63 - 1),
    (0x15, ">Q", 0, 2**64 - 1),
]


@st.composite
def _integers(draw: st.DrawFn) -> tuple[bytes, object]:
    tag, fmt, low, high = draw(st.sampled_from(_INTS))
    value = draw(st.integers(low, high))
    return bytes([tag]) + struct.pack(fmt, value), value


@st.composite
def _octets(draw: st.DrawFn) -> tuple[bytes, object]:
    data = draw(st.binary(max_size=300))
    return b"\x09" + _length(len(data)) + data, data


_leaves = st.one_of(
    st.just((b"\x00", None)),
    st.booleans().map(lambda b: (bytes([0x03, int(b)]), b)),
    _integers(),
    _octets(),
)


def _containers(children: st.SearchStrategy[tuple[bytes, object]]) -> st.SearchStrategy:
    def build(tag: int, items: list[tuple[bytes, object]]) -> tuple[bytes, object]:
        data = bytes([tag]) + _length(len(items)) + b"".join(d for d, _ in items)
        kind = Structure if tag == axdr.STRUCTURE else Array
        return data, kind(v for _, v in items)

    return st.builds(build, st.sampled_from([axdr.STRUCTURE, axdr.ARRAY]), st.lists(children))


_values = st.recursive(_leaves, _containers, max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_any_encoded_value_decodes_back_to_itself(case: tuple[bytes, object]) -> None:
    data, expected = case
    assert axdr.decode_all(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_value_or_axdr_error(data: bytes) -> None:
    with contextlib.suppress(AxdrError):
        axdr.decode_all(data)


@settings(max_examples=200, deadline=None)
@given(_values, st.integers(min_value=0))
def test_any_truncation_of_valid_data_raises_axdr_error(
    case: tuple[bytes, object], cut: int
) -> None:
    data, _ = case
    with pytest.raises(AxdrError):
        axdr.decode_all(data[: cut % len(data)])
