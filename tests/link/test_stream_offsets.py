"""Framer events say where they sat in the stream, however the stream was chunked."""

from __future__ import annotations

import random

import pytest
import seed_vectors as sv
from hypothesis import given, settings
from hypothesis import strategies as st
from noisy import noisy_line

from amsread.link.hdlc import HdlcFrame, HdlcFramer
from amsread.link.mbus import MbusFrame, MbusFramer
from amsread.model import Rejected

Event = HdlcFrame | MbusFrame | Rejected


def events_in_chunks(
    framer: HdlcFramer | MbusFramer, data: bytes, rng: random.Random
) -> list[Event]:
    events: list[Event] = []
    pos = 0
    while pos < len(data):
        size = rng.choice((1, 7, 64, 1000, 5000))
        events += framer.feed(data[pos : pos + size])
        pos += size
    return [*events, *framer.close()]


def assert_offsets_point_at_the_bytes(data: bytes, events: list[Event]) -> None:
    last = 0
    for event in events:
        assert event.offset >= last, event  # in stream order
        if isinstance(event, Rejected):
            assert event.offset + event.size <= len(data)
            if event.reason == "garbage":
                # Garbage skips the flags and frames inside it; it starts with its first byte.
                assert data[event.offset] == event.data[0]
            else:
                assert data[event.offset : event.offset + len(event.data)] == event.data
            last = event.offset
        else:
            assert data[event.offset : event.offset + len(event.raw)] == event.raw
            last = event.offset + len(event.raw)


@pytest.mark.parametrize(("link", "framer"), [("hdlc", HdlcFramer), ("mbus", MbusFramer)])
def test_every_frame_and_rejection_of_a_noisy_line_knows_its_offset(
    link: str, framer: type[HdlcFramer] | type[MbusFramer]
) -> None:
    line = noisy_line(1500, 11, link=link, damage_rate=0.03)
    events = events_in_chunks(framer(), line.data, random.Random(11))
    kinds = {type(e) for e in events} | {e.reason for e in events if isinstance(e, Rejected)}
    assert {Rejected, "garbage"} <= kinds and len(events) > 1500
    assert_offsets_point_at_the_bytes(line.data, events)


def test_the_am550_capture_offsets_match_its_damaged_frames() -> None:
    framer = HdlcFramer()
    events = [*framer.feed(sv.AM550_STREAM), *framer.close()]
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert rejected and all(e.offset >= 0 for e in events)
    assert_offsets_point_at_the_bytes(sv.AM550_STREAM, events)


def test_offsets_do_not_change_what_an_event_equals() -> None:
    assert Rejected("garbage", 3, b"abc", "", 10) == Rejected("garbage", 3, b"abc")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 2**32))
def test_any_bytes_give_offsets_inside_the_input(data: bytes, seed: int) -> None:
    for framer in (HdlcFramer(), MbusFramer()):
        events = events_in_chunks(
            framer, sv.RADIUS_FRAME + data + sv.RADIUS_FRAME, random.Random(seed)
        )
        assert_offsets_point_at_the_bytes(sv.RADIUS_FRAME + data + sv.RADIUS_FRAME, events)
