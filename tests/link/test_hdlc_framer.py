"""HDLC framer behaviour: the length field ends a frame, never a 0x7E."""

from __future__ import annotations

import itertools

import seed_vectors as sv
from builders import LLC, hdlc_frame

from amsread.link.crc import crc16_x25
from amsread.link.hdlc import (
    MAX_BUFFER,
    HdlcFrame,
    HdlcFramer,
    address_value,
    control_name,
    strip_llc,
)
from amsread.model import Rejected


def frames_of(events: list[object]) -> list[HdlcFrame]:
    return [e for e in events if isinstance(e, HdlcFrame)]


def rejections(events: list[object]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Rejected)]


def feed_all(data: bytes) -> list[object]:
    framer = HdlcFramer()
    return [*framer.feed(data), *framer.close()]


def test_crc16_x25_matches_the_standard_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E


def test_0x7e_inside_the_payload_does_not_end_the_frame() -> None:
    info = LLC + b"\x0f\x7e\x7e\x00\x7e"
    [frame] = frames_of(feed_all(hdlc_frame(info)))
    assert frame.information == info


def test_0x7e_inside_the_fcs_does_not_end_the_frame() -> None:
    payload = next(
        LLC + bytes([i, j])
        for i, j in itertools.product(range(256), repeat=2)
        if 0x7E in hdlc_frame(LLC + bytes([i, j]))[-3:-1]
    )
    raw = hdlc_frame(payload)
    assert 0x7E in raw[-3:-1]
    [frame] = frames_of(feed_all(raw + hdlc_frame(b"\x01")))[:1]
    assert frame.information == payload


def test_radius_frame_with_0x7e_bytes_inside_is_one_frame() -> None:
    assert sv.RADIUS_FRAME.count(0x7E) > 2
    [frame] = frames_of(feed_all(sv.RADIUS_FRAME))
    assert frame.raw + b"\x7e" == sv.RADIUS_FRAME


def test_frames_sharing_one_flag_are_both_found() -> None:
    first, second = hdlc_frame(b"\x01\x02"), hdlc_frame(b"\x03\x04")
    shared = first + second[1:]  # 7E…7E…7E
    assert [f.information for f in frames_of(feed_all(shared))] == [b"\x01\x02", b"\x03\x04"]


def test_back_to_back_frames_with_two_flags_are_both_found() -> None:
    stream = hdlc_frame(b"\x01") + hdlc_frame(b"\x02")
    assert [f.information for f in frames_of(feed_all(stream))] == [b"\x01", b"\x02"]


def test_garbage_between_frames_is_counted_once_and_frames_survive() -> None:
    stream = b"\x00\x11garbage" + hdlc_frame(b"\x01") + b"\xff" * 40 + hdlc_frame(b"\x02")
    events = feed_all(stream)
    assert [f.information for f in frames_of(events)] == [b"\x01", b"\x02"]
    garbage = [e for e in events if isinstance(e, Rejected)]
    assert [(g.reason, g.size) for g in garbage] == [("garbage", 9), ("garbage", 40)]


def test_truncated_frame_is_rejected_and_the_next_frame_is_kept() -> None:
    good = hdlc_frame(LLC + bytes(range(60)))
    cut = good[:30] + good[-1:]  # lost 30 bytes in the middle, closing flag kept
    events = feed_all(cut + good + good)
    assert rejections(events) == ["truncated"]
    assert len(frames_of(events)) == 2
    assert "bytes missing" in next(e for e in events if isinstance(e, Rejected)).detail


def test_flipped_bit_gives_bad_fcs_and_resync_keeps_the_next_frame() -> None:
    good = hdlc_frame(LLC + bytes(range(40)))
    damaged = bytearray(good)
    damaged[20] ^= 0x01
    events = feed_all(bytes(damaged) + good)
    assert rejections(events) == ["bad_fcs"]
    assert len(frames_of(events)) == 1


def test_damaged_header_gives_bad_hcs() -> None:
    good = hdlc_frame(LLC + bytes(range(40)))
    damaged = bytearray(good)
    damaged[5] ^= 0x40  # the control byte
    events = feed_all(bytes(damaged) + good)
    assert rejections(events)[:1] == ["bad_hcs"]
    assert len(frames_of(events)) == 1


def test_a_frame_split_at_every_possible_feed_boundary_is_found_once() -> None:
    raw = sv.RADIUS_FRAME
    for cut in range(1, len(raw)):
        framer = HdlcFramer()
        events = framer.feed(raw[:cut]) + framer.feed(raw[cut:]) + framer.close()
        assert len(frames_of(events)) == 1, cut
        assert rejections(events) == [], cut


def test_stream_ending_inside_a_frame_reports_it_as_truncated() -> None:
    events = feed_all(hdlc_frame(b"\x01" * 50)[:-10])
    assert rejections(events) == ["truncated"]


def test_addresses_of_one_two_and_four_bytes_are_decoded() -> None:
    for destination, value in (
        (b"\x41", 0x20),
        (b"\x02\x23", 0x91),
        (b"\x00\x02\x00\x23", 0x10011),
    ):
        [frame] = frames_of(feed_all(hdlc_frame(b"\x01", destination=destination)))
        assert frame.destination == destination
        assert address_value(frame.destination) == value


def test_segmentation_bit_is_reported() -> None:
    [frame] = frames_of(feed_all(hdlc_frame(b"\x01", segmented=True)))
    assert frame.segmented


def test_frame_without_information_field_has_a_single_checksum() -> None:
    [frame] = frames_of(feed_all(bytes.fromhex("7ea007030793ec767e")))
    assert frame.information == b""
    assert frame.control_name == "SNRM"


def test_control_names() -> None:
    assert control_name(0x13) == "UI"
    assert control_name(0x10) == "I"
    assert control_name(0x73) == "UA"
    assert control_name(0x11) == "RR"


def test_llc_header_is_stripped_in_both_directions() -> None:
    assert strip_llc(b"\xe6\xe7\x00\x0f") == b"\x0f"
    assert strip_llc(b"\xe6\xe6\x00\x0f") == b"\x0f"
    assert strip_llc(b"\x0f\x00") == b"\x0f\x00"


def test_buffer_stays_bounded_on_endless_noise() -> None:
    framer = HdlcFramer()
    noise = bytes([0x7E, 0xA7, 0xFF]) * 1000 + bytes(range(256)) * 10
    for _ in range(20):
        framer.feed(noise)
        assert framer.buffered <= MAX_BUFFER
