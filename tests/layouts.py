"""Real list layouts with arbitrary values, for equivalence tests of the fast paths.

``LAYOUTS`` holds a data-notification APDU of every list shape: the seed
vectors' plaintexts and the hand-built lists of ``test_readings``.
``with_values(apdu, noise)`` overwrites the bytes of every number and date-time
in the body with ``noise``: tags, lengths, OBIS codes and scalers stay, so a
builder that has seen the APDU decodes the result through its cached plan
(unless a changed date-time now reads differently), and the values are anything
(zeros, maxima, NaN and infinite floats, impossible dates).
"""

from __future__ import annotations

import seed_vectors as sv
from hypothesis import strategies as st

from amsread.dlms import axdr
from amsread.dlms.apdu import parse_data_notification
from tests.readings.test_readings import (
    AIDON_LIST_2,
    AUSTRIA_TRIPLETS_WITHOUT_HEADER_TIME,
    KAIFA_LIST_1,
    KAIFA_LIST_2_THREE_PHASE,
    KAIFA_LIST_3_SINGLE_PHASE,
    KAMSTRUP_LIST_1_SINGLE_PHASE_METER,
    KAMSTRUP_NO_LIST_1,
    KAMSTRUP_NO_LIST_2_SINGLE_PHASE,
    LANDIS_GYR_E450_AT,
    NESTED_IN_A_STRUCTURE,
    SWISS_CAPTURE_LIST,
    UNKNOWN_POSITIONAL,
    WIENER_NETZE,
)

LAYOUTS = (
    sv.RADIUS_PLAINTEXT,
    sv.NORWEGIAN_LIST_PLAINTEXT,
    sv.KAIFA_AT_PLAINTEXT,
    KAMSTRUP_NO_LIST_1,
    KAMSTRUP_NO_LIST_2_SINGLE_PHASE,
    KAMSTRUP_LIST_1_SINGLE_PHASE_METER,
    AUSTRIA_TRIPLETS_WITHOUT_HEADER_TIME,
    AIDON_LIST_2,
    NESTED_IN_A_STRUCTURE,
    SWISS_CAPTURE_LIST,
    KAIFA_LIST_1,
    KAIFA_LIST_2_THREE_PHASE,
    KAIFA_LIST_3_SINGLE_PHASE,
    WIENER_NETZE,
    LANDIS_GYR_E450_AT,
    UNKNOWN_POSITIONAL,
)

#: Fixed-size numbers that are values. Not integer (int8: scalers, capture
#: attribute indexes), enum (units) or boolean: those are part of the layout.
_NUMBERS = frozenset(
    {
        axdr.DOUBLE_LONG,
        axdr.DOUBLE_LONG_UNSIGNED,
        axdr.LONG,
        axdr.LONG_UNSIGNED,
        axdr.UNSIGNED,
        axdr.LONG64,
        axdr.LONG64_UNSIGNED,
        axdr.FLOAT32,
        axdr.FLOAT64,
    }
)
_DATE_TIME_SIZE = 12


def value_fields(apdu: bytes) -> list[tuple[int, int]]:
    """(start, end) in ``apdu`` of the bytes of each number and date-time of its body."""
    body = parse_data_notification(apdu).body_bytes
    offset = len(apdu) - len(body)
    fields: list[tuple[int, int]] = []

    def walk(node: axdr.Node) -> None:
        if node.tag in (axdr.STRUCTURE, axdr.ARRAY):
            for child in node.children:
                walk(child)
        elif node.tag in _NUMBERS or (
            node.tag == axdr.OCTET_STRING and node.end - node.content == _DATE_TIME_SIZE
        ):
            fields.append((offset + node.content, offset + node.end))

    walk(axdr.decode_node(body))
    return fields


def with_values(apdu: bytes, noise: bytes) -> bytes:
    """``apdu`` with its value bytes taken from ``noise`` in turn (repeated as needed)."""
    if not noise:
        return apdu
    out = bytearray(apdu)
    taken = 0
    for start, end in value_fields(apdu):
        for i in range(start, end):
            out[i] = noise[taken % len(noise)]
            taken += 1
    return bytes(out)


def varied(apdu: bytes) -> st.SearchStrategy[bytes]:
    """``apdu`` with arbitrary values."""
    return st.binary(min_size=1, max_size=64).map(lambda noise: with_values(apdu, noise))
