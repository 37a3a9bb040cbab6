"""Wired M-Bus framing and DLMS transport segments (Austrian meters)."""

from __future__ import annotations

import pytest
import seed_vectors as sv
from builders import cipher_apdu, mbus_frame, mbus_segments, mbus_short
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms.keys import Keys, parse_key
from amsread.link.mbus import (
    MAX_BUFFER,
    MAX_MESSAGE,
    MbusFrame,
    MbusFramer,
    MbusMessage,
    MbusReassembler,
)
from amsread.model import Event, Failure, Message, Notice, Rejected, Skipped
from amsread.pipeline import Pipeline

KAIFA_KEY = parse_key(sv.KAIFA_AT_KEY)
SAGEMCOM_TITLE = b"SAGY\x05\xe6\xa3\x13"


def kaifa_apdu(counter: int = 0x1D234) -> bytes:
    """The Kaifa AT plaintext ciphered as these meters send it: encryption only, no tag."""
    return cipher_apdu(
        sv.KAIFA_AT_PLAINTEXT,
        key=KAIFA_KEY,
        system_title=SAGEMCOM_TITLE,
        invocation_counter=counter,
        security_control=0x20,
        length_form="81",
    )


def triples(events: list[Event]) -> list[list[tuple[object, object, object]]]:
    return [
        [(r.obis, r.value, r.unit) for r in e.readings] for e in events if isinstance(e, Message)
    ]


def reasons(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Rejected | Failure)]


def run(data: bytes, keys: Keys | None = None) -> tuple[list[Event], Pipeline]:
    pipeline = Pipeline(keys, framing="mbus")
    return pipeline.feed(data) + pipeline.close(), pipeline


def reassemble(data: bytes) -> list[object]:
    reassembler = MbusReassembler()
    return [*reassembler.feed(data), *reassembler.close()]


# -- real captures ------------------------------------------------------------


def test_kaifa_netz_noe_two_frames_give_one_ciphered_apdu() -> None:
    [message] = reassemble(sv.KAIFA_NOE_MBUS)
    assert isinstance(message, MbusMessage)
    assert (message.frames, message.stsap, message.dtsap) == (2, 0x01, 0x67)
    assert len(message.apdu) == sv.AUSTRIAN_CIPHERED_SIZE
    assert message.apdu[:2] == b"\xdb\x08"
    assert message.apdu[10:12] == b"\x81\xf8"


def test_kaifa_netz_noe_without_key_names_the_meter_and_asks_for_the_key() -> None:
    events, pipeline = run(sv.KAIFA_NOE_MBUS)
    [failure] = events
    assert isinstance(failure, Failure)
    assert failure.reason == "no_key"
    assert failure.system_title == sv.KAIFA_NOE_SYSTEM_TITLE
    assert failure.invocation_counter == sv.KAIFA_NOE_INVOCATION_COUNTER
    assert pipeline.counters["frames_ok"] == 2


def test_sagemcom_t210d_frame_announced_as_one_byte_is_taken_at_257() -> None:
    framer = MbusFramer()
    first, second = framer.feed(sv.SAGEMCOM_T210D_MBUS) + framer.close()
    assert isinstance(first, MbusFrame) and isinstance(second, MbusFrame)
    assert first.raw[1:3] == b"\x01\x01"
    assert len(first.raw) == 4 + 257 + 2
    assert first.length_overflow and not second.length_overflow
    assert (first.ci, second.ci) == (0x00, 0x11)


def test_sagemcom_t210d_push_is_one_ciphered_apdu_and_the_quirk_is_noted() -> None:
    events, _ = run(sv.SAGEMCOM_T210D_MBUS)
    notice, failure = events
    assert isinstance(notice, Notice) and notice.what == "mbus_length_overflow"
    assert notice.level == "debug"
    assert "Sagemcom" in notice.detail and "257" in notice.detail
    assert isinstance(failure, Failure) and failure.reason == "no_key"
    assert failure.system_title == sv.SAGEMCOM_T210D_SYSTEM_TITLE
    assert failure.invocation_counter == sv.SAGEMCOM_T210D_INVOCATION_COUNTER
    [message] = [e for e in reassemble(sv.SAGEMCOM_T210D_MBUS) if isinstance(e, MbusMessage)]
    assert len(message.apdu) == sv.AUSTRIAN_CIPHERED_SIZE


@pytest.mark.parametrize("capture", [sv.KAIFA_NOE_MBUS, sv.SAGEMCOM_T210D_MBUS])
def test_real_captures_fed_byte_by_byte_give_the_same_apdu(capture: bytes) -> None:
    reassembler = MbusReassembler()
    events: list[object] = []
    for i in range(len(capture)):
        events += reassembler.feed(capture[i : i + 1])
    events += reassembler.close()
    assert [e for e in events if isinstance(e, MbusMessage)] == [
        e for e in reassemble(capture) if isinstance(e, MbusMessage)
    ]
    assert not [e for e in events if isinstance(e, Rejected)]


# -- built from the seed plaintext --------------------------------------------


@pytest.mark.parametrize(
    "sizes", [[], [245], [100, 100], [252]], ids=["one", "two", "three", "sagemcom-257"]
)
def test_kaifa_push_in_m_bus_segments_gives_the_documented_readings(sizes: list[int]) -> None:
    apdu = kaifa_apdu()
    frames = mbus_segments(apdu, sizes)
    assert len(frames) == len(sizes) + 1
    events, pipeline = run(b"".join(frames), Keys(KAIFA_KEY))
    [message] = [e for e in events if isinstance(e, Message)]
    assert triples(events) == [sv.KAIFA_AT_READINGS]
    assert message.meter_time == sv.KAIFA_AT_METER_TIME
    assert message.system_title == SAGEMCOM_TITLE.hex().upper()
    assert triples(Pipeline(Keys(KAIFA_KEY)).feed_apdu(apdu)) == triples(events)
    assert pipeline.counters["frames_ok"] == len(frames)
    # A frame over 255 bytes (the whole APDU in one, or the 257-byte first) overflows L.
    overflow = [e for e in events if isinstance(e, Notice)]
    assert len(overflow) == sum(1 for f in frames if len(f) > 4 + 255 + 2)
    assert len(overflow) == (1 if sizes in ([], [252]) else 0)


def test_the_sagemcom_built_frame_really_has_the_one_byte_length() -> None:
    first = mbus_segments(kaifa_apdu(), [252])[0]
    assert first[:4] == b"\x68\x01\x01\x68"


def test_plain_apdu_in_sixteen_and_more_segments_wraps_the_sequence_number() -> None:
    frames = mbus_segments(sv.RADIUS_PLAINTEXT, [20] * 20)
    assert len(frames) > 16
    events, _ = run(b"".join(frames))
    assert len(triples(events)) == 1
    assert reasons(events) == []


def test_short_frames_and_acks_are_skipped_and_interrupt_nothing() -> None:
    first, last = mbus_segments(kaifa_apdu(), [120])
    stream = b"\xe5" + mbus_short() + first + b"\xe5" + mbus_short(0x5B, 0x01) + last + b"\xe5"
    events, _ = run(stream, Keys(KAIFA_KEY))
    assert triples(events) == [sv.KAIFA_AT_READINGS]
    skipped = [e.what for e in events if isinstance(e, Skipped)]
    assert skipped.count("M-Bus acknowledgement (E5)") == 3
    assert "M-Bus short frame (C=0x40)" in skipped
    assert reasons(events) == []


def test_frames_that_are_no_dlms_segments_are_skipped_by_name() -> None:
    events, _ = run(mbus_frame(b"\x01\x02\x03", ci=0x72))
    [skipped] = events
    assert isinstance(skipped, Skipped) and "CI 0x72" in skipped.what


# -- losses ---------------------------------------------------------------------


def test_a_damaged_second_segment_drops_the_message_and_the_next_one_decodes() -> None:
    frames = mbus_segments(kaifa_apdu(), [120, 60])
    damaged = bytearray(frames[1])
    damaged[30] ^= 0x04
    events, pipeline = run(
        frames[0] + bytes(damaged) + frames[2] + b"".join(frames), Keys(KAIFA_KEY)
    )
    assert reasons(events) == ["bad_checksum", "segments_lost"]
    assert pipeline.counters["bad_checksum"] == 1 and pipeline.counters["segments_lost"] == 1
    assert "checksum mismatch" in events[0].detail  # type: ignore[union-attr]
    # The last segment of the lost message is skipped, not reported again.
    assert any(isinstance(e, Skipped) and "already lost" in e.what for e in events)
    assert triples(events) == [sv.KAIFA_AT_READINGS]


def test_a_damaged_first_segment_is_reported_once() -> None:
    first, last = mbus_segments(kaifa_apdu(), [120])
    damaged = bytearray(first)
    damaged[50] ^= 0x01
    events, _ = run(bytes(damaged) + last + first + last, Keys(KAIFA_KEY))
    assert reasons(events) == ["bad_checksum"]
    assert triples(events) == [sv.KAIFA_AT_READINGS]


def test_a_missing_stop_byte_is_named() -> None:
    frame = bytearray(mbus_frame(b"\x01\x67" + bytes(range(40))))
    frame[-1] = 0x17
    events, _ = run(bytes(frame) + mbus_frame(b"\x01\x67\x0f"))
    assert reasons(events)[0] == "bad_checksum"
    assert "stop byte" in events[0].detail  # type: ignore[union-attr]


def test_a_frame_cut_short_is_truncated_and_the_next_frame_is_kept() -> None:
    first, last = mbus_segments(kaifa_apdu(), [200])
    events, _ = run(first[:120] + first + last, Keys(KAIFA_KEY))
    assert reasons(events) == ["truncated"]
    assert "bytes missing" in events[0].detail  # type: ignore[union-attr]
    assert triples(events) == [sv.KAIFA_AT_READINGS]


def test_the_stream_ending_inside_a_frame_reports_it_truncated() -> None:
    first, _last = mbus_segments(kaifa_apdu(), [200])
    events, _ = run(first[:-10])
    assert reasons(events) == ["truncated"]
    assert "stream ended 10 byte(s)" in events[0].detail  # type: ignore[union-attr]


def test_a_missing_middle_segment_drops_the_message() -> None:
    frames = mbus_segments(kaifa_apdu(), [80, 80])
    events, _ = run(frames[0] + frames[2] + b"".join(frames), Keys(KAIFA_KEY))
    assert reasons(events) == ["segments_lost"]
    assert "segment 2 came where segment 1 was expected" in events[0].detail  # type: ignore[union-attr]
    assert triples(events) == [sv.KAIFA_AT_READINGS]


def test_a_repeated_segment_drops_the_message() -> None:
    frames = mbus_segments(kaifa_apdu(), [80, 80])
    events, _ = run(frames[0] + frames[1] + frames[1] + frames[2], Keys(KAIFA_KEY))
    assert reasons(events) == ["segments_lost"]
    assert triples(events) == []


def test_reordered_segments_drop_the_message() -> None:
    frames = mbus_segments(kaifa_apdu(), [80, 80])
    events, _ = run(frames[0] + frames[2] + frames[1], Keys(KAIFA_KEY))
    assert reasons(events) == ["segments_lost"]
    assert triples(events) == []


def test_a_new_first_segment_drops_the_unfinished_message() -> None:
    frames = mbus_segments(kaifa_apdu(), [120])
    events, _ = run(frames[0] + b"".join(frames), Keys(KAIFA_KEY))
    assert reasons(events) == ["segments_lost"]
    assert triples(events) == [sv.KAIFA_AT_READINGS]


def test_a_segment_from_another_address_drops_the_message() -> None:
    apdu = kaifa_apdu()
    first = mbus_segments(apdu, [120])[0]
    other = mbus_segments(apdu, [120], address=0x01)[1]
    events, _ = run(first + other)
    assert reasons(events) == ["segments_lost"]
    assert "another address" in events[0].detail  # type: ignore[union-attr]


def test_segments_without_their_first_are_reported_once() -> None:
    frames = mbus_segments(kaifa_apdu(), [60, 60, 60])
    events, pipeline = run(b"".join(frames[1:]) + b"".join(frames), Keys(KAIFA_KEY))
    assert reasons(events) == ["segments_lost"]
    assert pipeline.counters["segments_lost"] == 1
    assert triples(events) == [sv.KAIFA_AT_READINGS]


def test_the_stream_ending_inside_a_message_counts_it_lost() -> None:
    events, _ = run(mbus_segments(kaifa_apdu(), [120])[0])
    assert reasons(events) == ["segments_lost"]


def test_a_message_beyond_the_size_limit_is_dropped() -> None:
    big = bytes(i % 249 for i in range(MAX_MESSAGE + 300))
    frames = mbus_segments(big, [240] * (len(big) // 240))
    events = reassemble(b"".join(frames) + b"".join(mbus_segments(b"\x0f\x01", [])))
    lost = [e for e in events if isinstance(e, Rejected)]
    assert [e.reason for e in lost] == ["segments_lost"]
    assert str(MAX_MESSAGE) in lost[0].detail
    assert [e.apdu for e in events if isinstance(e, MbusMessage)] == [b"\x0f\x01"]


def test_a_segment_without_transport_header_is_rejected() -> None:
    events, _ = run(mbus_frame(b"\x01", ci=0x10))
    assert reasons(events) == ["segments_lost"]


def test_buffer_stays_bounded_on_frame_like_noise() -> None:
    framer = MbusFramer()
    noise = bytes([0x68, 0xFA, 0xFA, 0x68, 0x53, 0x10, 0x01]) * 300 + bytes(range(256)) * 4
    for _ in range(10):
        framer.feed(noise)
        assert framer.buffered <= MAX_BUFFER


def test_garbage_between_frames_is_counted_once_and_frames_survive() -> None:
    frame = mbus_frame(b"\x01\x67\x0f\x00")
    events = MbusFramer().feed(b"\x00\x11\x22" + frame + b"\xff" * 40 + frame)
    rejected = [(e.reason, e.size) for e in events if isinstance(e, Rejected)]
    assert rejected == [("garbage", 3), ("garbage", 40)]
    assert len([e for e in events if isinstance(e, MbusFrame)]) == 2


# -- properties -----------------------------------------------------------------

long_frames = st.builds(
    lambda data, ci, c, a: ("long", mbus_frame(data, ci=ci, control=c, address=a)),
    st.binary(max_size=252),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
)
# Sagemcom-style frames of 256..258 bytes, L holding only the low byte (< 3).
# A valid frame hidden in their data would read as a cut frame: by design.
overflow_frames = st.builds(
    lambda data, ci: ("long", mbus_frame(data, ci=ci)),
    st.binary(min_size=253, max_size=255).filter(lambda d: b"\x68" not in d),
    st.integers(0, 255),
)
short_frames = st.builds(
    lambda c, a: ("short", mbus_short(c, a)), st.integers(0, 255), st.integers(0, 255)
)
acks = st.just(("ack", b"\xe5"))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(long_frames, overflow_frames, short_frames, acks), max_size=8),
    st.lists(st.integers(min_value=1, max_value=300), max_size=20),
)
def test_frames_fed_in_any_chunking_come_out_unchanged(
    frames: list[tuple[str, bytes]], chunking: list[int]
) -> None:
    stream = b"".join(raw for _, raw in frames)
    framer = MbusFramer()
    events: list[object] = []
    pos = 0
    for size in chunking:
        events += framer.feed(stream[pos : pos + size])
        pos += size
    events += framer.feed(stream[pos:]) + framer.close()
    assert [(e.kind, e.raw) for e in events if isinstance(e, MbusFrame)] == frames
    assert [e for e in events if not isinstance(e, MbusFrame)] == []


@st.composite
def segmented_apdus(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """An APDU and the sizes of all its segments but the last (each fits one frame)."""
    apdu = draw(st.binary(min_size=1, max_size=1200))
    cuts: list[int] = []
    rest = len(apdu)
    while rest > 250 or (rest > 1 and draw(st.booleans())):
        cut = draw(st.integers(min_value=1, max_value=min(250, rest - 1)))
        cuts.append(cut)
        rest -= cut
    return apdu, cuts


@settings(max_examples=60, deadline=None)
@given(
    st.lists(segmented_apdus(), min_size=1, max_size=4),
    st.lists(st.integers(min_value=1, max_value=400), max_size=20),
)
def test_segmented_apdus_in_any_chunking_come_out_whole(
    messages: list[tuple[bytes, list[int]]], chunking: list[int]
) -> None:
    stream = b"".join(b"".join(mbus_segments(apdu, cuts)) for apdu, cuts in messages)
    reassembler = MbusReassembler()
    events: list[object] = []
    pos = 0
    for size in chunking:
        events += reassembler.feed(stream[pos : pos + size])
        pos += size
    events += reassembler.feed(stream[pos:]) + reassembler.close()
    assert [e for e in events if not isinstance(e, MbusMessage)] == []
    assert [e.apdu for e in events if isinstance(e, MbusMessage)] == [a for a, _ in messages]


def test_a_damaged_length_field_costs_only_its_own_frame() -> None:
    first, last = mbus_segments(kaifa_apdu(), [60])
    mismatched = bytearray(first)
    mismatched[2] ^= 0x01  # the two L bytes differ: no frame starts here
    overlong = bytearray(first)
    overlong[1] = overlong[2] = 0xF0  # L now reaches far into the next frames
    for damaged in (mismatched, overlong):
        events, _ = run(bytes(damaged) + last + first + last, Keys(KAIFA_KEY))
        assert triples(events) == [sv.KAIFA_AT_READINGS], damaged[:3].hex()
        assert reasons(events)[0] in ("garbage", "truncated")
