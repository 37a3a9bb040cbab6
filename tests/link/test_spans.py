"""Frames and rejections say which of their bytes are which field (their spans)."""

from __future__ import annotations

import itertools

import pytest
import seed_vectors as sv
from builders import LLC, hdlc_frame, mbus_frame, mbus_short
from noisy import noisy_line

from amsread.link.hdlc import HdlcFrame, HdlcFramer, HdlcReassembler
from amsread.link.mbus import MbusFrame, MbusFramer
from amsread.link.spans import Span, find_span
from amsread.model import Rejected


def hdlc_events(data: bytes) -> list[HdlcFrame | Rejected]:
    framer = HdlcFramer()
    return [*framer.feed(data), *framer.close()]


def mbus_events(data: bytes) -> list[MbusFrame | Rejected]:
    framer = MbusFramer()
    return [*framer.feed(data), *framer.close()]


def layout(spans: tuple[Span, ...]) -> list[tuple[str, int, int]]:
    return [(s.name, s.start, s.end) for s in spans]


def assert_tiles(spans: tuple[Span, ...], size: int) -> None:
    """The spans follow each other without gap or overlap, from byte 0 to ``size``."""
    assert spans[0].start == 0
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    assert spans[-1].end == size


def test_an_hdlc_push_names_every_field_from_the_opening_flag() -> None:
    (frame,) = hdlc_events(hdlc_frame(LLC + b"\x0f\x01\x02", destination=b"\x02\x23"))
    assert isinstance(frame, HdlcFrame)
    assert layout(frame.spans) == [
        ("flag", 0, 1),
        ("format", 1, 3),
        ("destination", 3, 5),
        ("source", 5, 6),
        ("control", 6, 7),
        ("hcs", 7, 9),
        ("llc", 9, 12),
        ("information", 12, 15),
        ("fcs", 15, 17),
    ]
    raw = frame.raw
    assert find_span(frame.spans, "destination").of(raw) == b"\x02\x23"  # type: ignore[union-attr]
    assert find_span(frame.spans, "information").of(raw) == b"\x0f\x01\x02"  # type: ignore[union-attr]


def test_a_frame_without_information_field_has_no_hcs() -> None:
    (frame,) = hdlc_events(hdlc_frame(b"", control=0x73))
    assert isinstance(frame, HdlcFrame)
    assert [s.name for s in frame.spans] == [
        "flag",
        "format",
        "destination",
        "source",
        "control",
        "fcs",
    ]
    assert_tiles(frame.spans, len(frame.raw))


def test_the_spans_of_real_frames_cut_out_the_fields_the_framer_found() -> None:
    frames = [e for e in hdlc_events(sv.AM550_STREAM + sv.RADIUS_FRAME) if isinstance(e, HdlcFrame)]
    assert len(frames) > 3
    for frame in frames:
        spans, raw = frame.spans, frame.raw
        assert_tiles(spans, len(raw))
        assert find_span(spans, "destination").of(raw) == frame.destination  # type: ignore[union-attr]
        assert find_span(spans, "source").of(raw) == frame.source  # type: ignore[union-attr]
        assert find_span(spans, "control").of(raw) == bytes([frame.control])  # type: ignore[union-attr]
        llc = find_span(spans, "llc")
        info = find_span(spans, "information")
        assert info is not None
        assert (llc.of(raw) if llc else b"") + info.of(raw) == frame.information


def test_a_message_joined_from_segments_has_no_spans_of_its_own() -> None:
    reassembler = HdlcReassembler()
    events = [*reassembler.feed(sv.AM550_CH_SEGMENTED), *reassembler.close()]
    joined = [e for e in events if isinstance(e, HdlcFrame) and e.segments > 1]
    assert joined and joined[0].spans == ()


HEADER = ["flag", "format", "destination", "source", "control", "hcs"]


@pytest.mark.parametrize(
    ("damage_at", "reason", "names"),
    [(6, "bad_hcs", HEADER), (40, "bad_fcs", [*HEADER, "llc", "information", "fcs"])],
)
def test_a_rejected_hdlc_frame_keeps_the_fields_the_framer_read(
    damage_at: int, reason: str, names: list[str]
) -> None:
    damaged = bytearray(sv.RADIUS_FRAME)
    damaged[damage_at] ^= 0x01
    rejected = [e for e in hdlc_events(bytes(damaged)) if isinstance(e, Rejected)]
    assert rejected[0].reason == reason
    assert [s.name for s in rejected[0].spans] == names
    control = find_span(rejected[0].spans, "control")
    assert control is not None
    assert damaged[control.start] == sv.RADIUS_FRAME[control.start]
    # A frame damaged in place has its checksum where the length field puts it.
    fcs = find_span(rejected[0].spans, "fcs")
    assert fcs is None or fcs.end == rejected[0].size


def test_a_frame_cut_short_by_the_stream_end_keeps_its_header_spans() -> None:
    cut = sv.RADIUS_FRAME[:60]
    (rejected,) = [e for e in hdlc_events(cut) if isinstance(e, Rejected)]
    assert rejected.reason == "truncated"
    assert find_span(rejected.spans, "hcs") is not None


def test_garbage_has_no_spans() -> None:
    events = hdlc_events(b"\x01\x02\x03" + sv.RADIUS_FRAME)
    assert isinstance(events[0], Rejected) and events[0].reason == "garbage"
    assert events[0].spans == ()


def test_an_m_bus_transport_segment_names_its_header_and_data() -> None:
    (frame,) = mbus_events(mbus_frame(b"\x01\x67\xdb\x08", ci=0x10))
    assert isinstance(frame, MbusFrame)
    assert layout(frame.spans) == [
        ("start", 0, 1),
        ("length", 1, 3),
        ("second start", 3, 4),
        ("control", 4, 5),
        ("address", 5, 6),
        ("ci", 6, 7),
        ("transport header", 7, 9),
        ("information", 9, 11),
        ("checksum", 11, 12),
        ("stop", 12, 13),
    ]
    assert find_span(frame.spans, "information").of(frame.raw) == b"\xdb\x08"  # type: ignore[union-attr]


def test_an_m_bus_frame_of_another_ci_has_no_transport_header() -> None:
    (frame,) = mbus_events(mbus_frame(b"\x01\x02\x03", ci=0x72))
    assert isinstance(frame, MbusFrame)
    assert find_span(frame.spans, "transport header") is None
    assert find_span(frame.spans, "information").of(frame.raw) == b"\x01\x02\x03"  # type: ignore[union-attr]
    assert_tiles(frame.spans, len(frame.raw))


def test_m_bus_short_frames_and_acks_have_their_own_spans() -> None:
    short, ack = mbus_events(mbus_short(0x40, 0xFE) + b"\xe5")
    assert isinstance(short, MbusFrame) and isinstance(ack, MbusFrame)
    assert [s.name for s in short.spans] == ["start", "control", "address", "checksum", "stop"]
    assert_tiles(short.spans, 5)
    assert layout(ack.spans) == [("ack", 0, 1)]


def test_real_m_bus_frames_tile_their_bytes() -> None:
    frames = [e for e in mbus_events(sv.KAIFA_NOE_MBUS + sv.SAGEMCOM_T210D_MBUS)]
    assert len(frames) >= 4 and all(isinstance(f, MbusFrame) for f in frames)
    for frame in frames:
        assert isinstance(frame, MbusFrame)
        assert_tiles(frame.spans, len(frame.raw))
        data = find_span(frame.spans, "information")
        transport = find_span(frame.spans, "transport header")
        assert data is not None and transport is not None
        assert transport.of(frame.raw) + data.of(frame.raw) == frame.data


def test_a_rejected_m_bus_frame_keeps_its_long_header() -> None:
    damaged = bytearray(mbus_frame(b"\x01\x67" + bytes(20)))
    damaged[-2] ^= 0xFF
    (rejected,) = mbus_events(bytes(damaged))
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_checksum"
    assert layout(rejected.spans)[-2:] == [("address", 5, 6), ("ci", 6, 7)]


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_on_a_noisy_line_every_frame_tiles_its_bytes_and_rejections_name_their_header(
    link: str,
) -> None:
    line = noisy_line(400, 5, link=link, damage_rate=0.1)
    events = hdlc_events(line.data) if link == "hdlc" else mbus_events(line.data)
    damaged = [e for e in events if isinstance(e, Rejected) and e.reason != "garbage"]
    frames = [e for e in events if not isinstance(e, Rejected)]
    assert len(frames) > 100 and damaged
    for frame in frames:
        assert_tiles(frame.spans, len(frame.raw))
    first = "flag" if link == "hdlc" else "start"
    for rejected in damaged:
        assert rejected.spans[0] == Span(first, 0, 1)
        assert line.data[rejected.offset] == (0x7E if link == "hdlc" else 0x68)
