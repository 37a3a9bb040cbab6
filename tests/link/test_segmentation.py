"""HDLC segmentation: frames with the S bit joined into one message, losses counted."""

from __future__ import annotations

import pytest
import seed_vectors as sv
from builders import LLC, cipher_apdu, hdlc_frame, hdlc_segments
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from amsread.dlms.keys import Keys, parse_key
from amsread.link.hdlc import MAX_MESSAGE, HdlcFrame, HdlcReassembler
from amsread.model import Event, Failure, Message, Rejected, Skipped
from amsread.pipeline import Pipeline

RADIUS_KEYS = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))
KEY = parse_key(sv.RADIUS_KEY)
AUTH_KEY = parse_key(sv.RADIUS_AUTH_KEY)


def radius_apdu(counter: int = 1) -> bytes:
    return cipher_apdu(sv.RADIUS_PLAINTEXT, key=KEY, auth_key=AUTH_KEY, invocation_counter=counter)


def run(data: bytes, keys: Keys | None = None) -> tuple[list[Event], Pipeline]:
    pipeline = Pipeline(keys)
    return pipeline.feed(data) + pipeline.close(), pipeline


def readings(events: list[Event]) -> list[list[tuple[object, object, object]]]:
    return [
        [(r.obis, r.value, r.unit) for r in e.readings] for e in events if isinstance(e, Message)
    ]


def reasons(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Rejected | Failure)]


def test_swiss_am550_capture_in_three_segments_is_one_message() -> None:
    events, pipeline = run(sv.AM550_CH_SEGMENTED)
    [message] = events
    assert isinstance(message, Message)
    assert message.meter_time == sv.AM550_CH_METER_TIME
    assert pipeline.counters["frames_ok"] == 3
    single, _ = run(hdlc_frame(sv.AM550_CH_INFORMATION))
    assert readings(events) == readings(single)


def test_swiss_am550_reassembler_joins_the_information_fields_in_order() -> None:
    reassembler = HdlcReassembler()
    [message] = reassembler.feed(sv.AM550_CH_SEGMENTED) + reassembler.close()
    assert isinstance(message, HdlcFrame)
    assert message.information == sv.AM550_CH_INFORMATION
    assert message.segments == len(sv.AM550_CH_SEGMENT_SIZES)
    assert not message.segmented


@pytest.mark.parametrize(
    "sizes",
    [[10], [3, 1, 1, 1], [64, 64, 64, 64], [200, 13, 400], [2000], [0x7FF - 12]],
    ids=["two", "tiny", "equal", "uneven", "large", "largest"],
)
@pytest.mark.parametrize("shared_flags", [False, True], ids=["two-flags", "shared-flag"])
def test_ciphered_radius_push_in_segments_gives_the_single_frame_readings(
    sizes: list[int], shared_flags: bool
) -> None:
    information = LLC + radius_apdu()
    single, _ = run(hdlc_frame(information), RADIUS_KEYS)
    segmented, _ = run(hdlc_segments(information, sizes, shared_flags=shared_flags), RADIUS_KEYS)
    assert readings(segmented) == readings(single)
    assert readings(single)[0][1:] == sv.RADIUS_READINGS


@pytest.mark.parametrize(
    "plaintext",
    [sv.KAIFA_AT_PLAINTEXT, sv.NORWEGIAN_LIST_PLAINTEXT, sv.RADIUS_PLAINTEXT],
    ids=["kaifa-at", "norwegian-list", "radius"],
)
def test_plain_pushes_in_segments_give_the_single_frame_readings(plaintext: bytes) -> None:
    single, _ = run(hdlc_frame(LLC + plaintext))
    segmented, _ = run(hdlc_segments(LLC + plaintext, [50, 50], destination=b"\xcf"))
    assert len(readings(segmented)) == 1
    assert readings(segmented) == readings(single)


def test_segments_between_whole_frames_do_not_disturb_them() -> None:
    whole = hdlc_frame(LLC + sv.KAIFA_AT_PLAINTEXT)
    stream = whole + hdlc_segments(LLC + sv.KAIFA_AT_PLAINTEXT, [70, 70]) + whole
    events, pipeline = run(stream)
    assert len(readings(events)) == 3
    assert pipeline.counters["frames_ok"] == 5


def test_a_damaged_segment_drops_the_message_counts_it_and_keeps_the_next() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    frames = hdlc_segments(information, [60, 60])
    first_end = len(hdlc_frame(information[:60]))
    damaged = bytearray(frames)
    damaged[first_end + 20] ^= 0x01  # inside the second segment
    events, pipeline = run(bytes(damaged) + frames)
    assert reasons(events) == ["bad_fcs", "segments_lost"]
    assert pipeline.counters["segments_lost"] == 1
    # The last segment of the lost message is not decoded on its own.
    assert [e.what for e in events if isinstance(e, Skipped)] == [
        "HDLC segment of a message already lost"
    ]
    assert len(readings(events)) == 1


def test_a_truncated_segment_drops_the_message() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    first, second, last = (
        hdlc_frame(information[:80], segmented=True),
        hdlc_frame(information[80:160], segmented=True),
        hdlc_frame(information[160:]),
    )
    events, _pipeline = run(first + second[:40] + last + first + second + last)
    assert "segments_lost" in reasons(events)
    assert len(readings(events)) == 1


def test_a_new_first_segment_drops_the_unfinished_message() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    unfinished = hdlc_frame(information[:90], segmented=True)
    events, _pipeline = run(unfinished + hdlc_segments(information, [90]))
    assert reasons(events) == ["segments_lost"]
    assert "a new message started" in events[0].detail  # type: ignore[union-attr]
    assert len(readings(events)) == 1


def test_a_whole_frame_after_an_unfinished_message_is_still_decoded() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    unfinished = hdlc_frame(information[:90], segmented=True)
    events, _ = run(unfinished + hdlc_frame(information))
    assert reasons(events) == ["segments_lost"]
    assert len(readings(events)) == 1


def test_a_segment_from_other_addresses_drops_the_message() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    stream = hdlc_frame(information[:90], segmented=True) + hdlc_frame(
        information[90:], source=b"\x05"
    )
    events, _ = run(stream)
    assert reasons(events)[:1] == ["segments_lost"]
    assert "other addresses" in next(e.detail for e in events if isinstance(e, Rejected))
    assert readings(events) == []


def test_a_repeated_segment_drops_the_message() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    first = hdlc_frame(information[:60], segmented=True)
    middle = hdlc_frame(information[60:120], segmented=True)
    last = hdlc_frame(information[120:])
    events, _ = run(first + middle + middle + last + first + middle + last)
    assert reasons(events) == ["segments_lost"]
    assert "came twice" in next(e.detail for e in events if isinstance(e, Rejected))
    assert len(readings(events)) == 1


def test_i_frame_segments_out_of_send_sequence_drop_the_message() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    parts = [information[:60], information[60:120], information[120:]]

    def i_frame(part: bytes, number: int, segmented: bool) -> bytes:
        return hdlc_frame(part, control=0x10 | (number << 1), segmented=segmented)

    in_order = i_frame(parts[0], 0, True) + i_frame(parts[1], 1, True) + i_frame(parts[2], 2, False)
    events, _ = run(in_order)
    assert len(readings(events)) == 1 and reasons(events) == []
    swapped = i_frame(parts[0], 0, True) + i_frame(parts[2], 2, False) + i_frame(parts[1], 1, True)
    events, _ = run(swapped)
    assert readings(events) == []
    assert reasons(events)[:1] == ["segments_lost"]


def test_reordered_ui_segments_give_no_readings_and_are_reported() -> None:
    # UI frames have no sequence number: the APDU layer catches the swap.
    information = LLC + radius_apdu()
    first = hdlc_frame(information[:100], segmented=True)
    middle = hdlc_frame(information[100:250], segmented=True)
    last = hdlc_frame(information[250:])
    events, _ = run(first + last + middle, RADIUS_KEYS)
    assert readings(events) == []
    assert set(reasons(events)) >= {"segments_lost"}
    assert any(r in ("auth_failed", "bad_apdu") for r in reasons(events))


def test_a_silently_vanished_segment_gives_no_readings() -> None:
    information = LLC + radius_apdu()
    first = hdlc_frame(information[:100], segmented=True)
    last = hdlc_frame(information[250:])
    events, _ = run(first + last, RADIUS_KEYS)
    assert readings(events) == []
    # The ciphered APDU is now shorter than its length field says.
    assert reasons(events) == ["bad_apdu"]


def test_a_continuation_segment_without_its_first_is_reported_once() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    tail = hdlc_frame(information[60:120], segmented=True) + hdlc_frame(information[120:])
    events, pipeline = run(tail + hdlc_frame(information))
    assert reasons(events) == ["segments_lost"]
    assert pipeline.counters["segments_lost"] == 1
    assert len(readings(events)) == 1


def test_the_stream_ending_inside_a_segmented_message_counts_it_lost() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    events, _pipeline = run(hdlc_frame(information[:100], segmented=True))
    assert reasons(events) == ["segments_lost"]
    assert "ended before its last segment" in events[0].detail  # type: ignore[union-attr]


def test_a_segmented_message_beyond_the_size_limit_is_dropped() -> None:
    information = LLC + bytes(i % 251 for i in range(MAX_MESSAGE + 500))
    stream = hdlc_segments(information, [1500] * 6) + hdlc_frame(LLC + sv.KAIFA_AT_PLAINTEXT)
    reassembler = HdlcReassembler()
    events = reassembler.feed(stream) + reassembler.close()
    lost = [e for e in events if isinstance(e, Rejected)]
    assert [e.reason for e in lost] == ["segments_lost"]
    assert str(MAX_MESSAGE) in lost[0].detail
    assert [e.information for e in events if isinstance(e, HdlcFrame)] == [
        LLC + sv.KAIFA_AT_PLAINTEXT
    ]
    assert reassembler.buffered == 0


def test_frames_without_information_do_not_interrupt_a_segmented_message() -> None:
    information = LLC + sv.KAIFA_AT_PLAINTEXT
    rr = hdlc_frame(b"", destination=b"\x03", source=b"\x41", control=0x31)
    stream = hdlc_frame(information[:90], segmented=True) + rr + hdlc_frame(information[90:])
    events, _ = run(stream)
    assert reasons(events) == []
    assert len(readings(events)) == 1


def test_segments_fed_byte_by_byte_give_the_same_message() -> None:
    reassembler = HdlcReassembler()
    events = []
    for i in range(len(sv.AM550_CH_SEGMENTED)):
        events += reassembler.feed(sv.AM550_CH_SEGMENTED[i : i + 1])
    events += reassembler.close()
    [message] = events
    assert isinstance(message, HdlcFrame)
    assert message.information == sv.AM550_CH_INFORMATION


@st.composite
def segmented_streams(draw: st.DrawFn) -> tuple[list[bytes], bytes, list[int]]:
    """Random payloads, each cut into random segments, and a random chunking."""
    payloads = draw(st.lists(st.binary(min_size=1, max_size=1500), min_size=1, max_size=4))
    stream = b""
    for payload in payloads:
        information = LLC + payload
        size = len(information)
        cuts = draw(
            st.lists(st.integers(min_value=1, max_value=600), max_size=5).filter(
                lambda c, size=size: sum(c) < size and (not c or c[0] >= len(LLC))
            )
        )
        # A continuation that starts like an LLC header reads as a new message: by design.
        pos = 0
        for cut in cuts:
            pos += cut
            assume(information[pos : pos + 3] not in (b"\xe6\xe7\x00", b"\xe6\xe6\x00"))
        stream += hdlc_segments(information, cuts, shared_flags=draw(st.booleans()))
    chunking = draw(st.lists(st.integers(min_value=1, max_value=400), max_size=30))
    return [LLC + p for p in payloads], stream, chunking


@settings(max_examples=60, deadline=None)
@given(segmented_streams())
def test_segmented_payloads_in_any_chunking_come_out_whole(
    case: tuple[list[bytes], bytes, list[int]],
) -> None:
    expected, stream, chunking = case
    reassembler = HdlcReassembler()
    events = []
    pos = 0
    for size in chunking:
        events += reassembler.feed(stream[pos : pos + size])
        pos += size
    events += reassembler.feed(stream[pos:]) + reassembler.close()
    assert [e for e in events if not isinstance(e, HdlcFrame)] == []
    assert [e.information for e in events if isinstance(e, HdlcFrame)] == expected


def test_whole_push_without_llc_after_garbage_is_decoded_not_dropped() -> None:
    # Some gateways and meters send the APDU right after the HDLC header.
    reassembler = HdlcReassembler()
    frame = hdlc_frame(sv.NORWEGIAN_LIST_PLAINTEXT)
    events = reassembler.feed(b"\x00\x01\x02junk" + frame) + reassembler.close()
    frames = [e for e in events if isinstance(e, HdlcFrame)]
    assert [f.information for f in frames] == [sv.NORWEGIAN_LIST_PLAINTEXT]
