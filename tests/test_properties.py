"""Property tests across the layers: whatever arrives, values or a typed error, in bounded memory.

Each decoder either returns values or raises a ``DecodeError`` (the pipeline
turns those into events); any other exception is a bug. Framers give back
exactly the frames put in, however the bytes are chunked, and never hold more
than their named buffer bounds. The fuzz corpus and every past crash input
are replayed here too (``fuzz/harness.py``).
"""

from __future__ import annotations

import contextlib
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import LLC, ber_length, cipher_apdu, hdlc_frame
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from noisy import mbus_long_frame, mbus_segments, valid_frame_end

from amsread.dlms import axdr
from amsread.dlms import blocks as gbt
from amsread.dlms.apdu import DataNotification, parse_data_notification
from amsread.dlms.ciphering import Decryptor, parse_ciphered
from amsread.dlms.keys import Keys
from amsread.errors import AuthenticationError, DecodeError
from amsread.link import hdlc, mbus
from amsread.link.framing import FRAMINGS
from amsread.link.hdlc import HdlcFrame, HdlcFramer, HdlcReassembler
from amsread.link.mbus import MbusFramer, MbusReassembler
from amsread.model import Event, Failure, Message, Rejected
from amsread.output.writers import message_dict
from amsread.pipeline import Pipeline
from amsread.readings import obis, profiles
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.profiles import ProfileSet
from amsread.readings.shapes import extract

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEY = bytes(range(16))
AUTH_KEY = bytes(range(16, 32))

# Bytes that matter to framers (flags, frame formats, M-Bus starts) come often.
_INTERESTING = b"\x7e\xa0\xa8\x07\x13\x68\x10\x16\xe5\x00\xff"
noise = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(_INTERESTING) | st.integers(0, 255), max_size=600).map(bytes),
)
addresses = st.sampled_from([b"\x41", b"\x03", b"\x02\x23", b"\x00\x02\x00\x23"])
cuts = st.lists(st.integers(1, 700), max_size=12)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut at the given sizes (cycled), as a serial port might deliver it."""
    if not sizes:
        return [data]
    out, pos, i = [], 0, 0
    while pos < len(data):
        out.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return out


def strict_json(value: object) -> str:
    def refuse(name: str) -> object:
        raise ValueError(f"not strict JSON: {name}")

    text = json.dumps(value)
    json.loads(text, parse_constant=refuse)
    return text


# -- HDLC framing -----------------------------------------------------------------


@st.composite
def hdlc_lines(draw: st.DrawFn) -> tuple[bytes, list[bytes], int]:
    """Frames from random payloads, some sharing a flag, with flag-free junk between."""
    infos = draw(st.lists(noise.map(lambda b: b[:500]), max_size=6))
    parts, junk_size = [], 0
    for i, info in enumerate(infos):
        shared = draw(st.booleans()) and i + 1 < len(infos)
        frame = hdlc_frame(
            info,
            destination=draw(addresses),
            source=draw(addresses),
            control=draw(st.sampled_from([0x13, 0x03, 0x10, 0x32])),
            closing_flag=not shared,
        )
        junk = b"" if shared else draw(st.binary(max_size=40)).replace(b"\x7e", b"")
        if junk[:1] and junk[0] & 0xF0 == 0xA0:
            junk = b"\x00" + junk  # after a closing flag it would read as a frame header
        parts += [frame, junk]
        junk_size += len(junk)
    return b"".join(parts), infos, junk_size


@fast
@given(hdlc_lines(), cuts)
def test_hdlc_framer_returns_every_frame_in_order_however_the_bytes_arrive(
    line: tuple[bytes, list[bytes], int], sizes: list[int]
) -> None:
    data, infos, junk_size = line
    framer = HdlcFramer()
    events: list[object] = []
    for chunk in chunked(data, sizes):
        events += framer.feed(chunk)
        assert framer.buffered <= hdlc.MAX_BUFFER
    events += framer.close()
    assert [e.information for e in events if isinstance(e, HdlcFrame)] == infos
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert {e.reason for e in rejected} <= {"garbage"}
    assert sum(e.size for e in rejected) == junk_size


@fast
@given(noise, cuts)
def test_hdlc_framer_on_any_bytes_returns_only_checksum_valid_frames_in_bounded_memory(
    data: bytes, sizes: list[int]
) -> None:
    framer = HdlcFramer()
    for chunk in [*chunked(data, sizes), None]:
        events = framer.feed(chunk) if chunk is not None else framer.close()
        assert framer.buffered <= hdlc.MAX_BUFFER
        for event in events:
            assert isinstance(event, HdlcFrame | Rejected)
            if isinstance(event, HdlcFrame):
                # Nothing invented: an independent check agrees the frame is valid.
                assert valid_frame_end(event.raw, 0) == len(event.raw)
            else:
                assert len(event.data) <= hdlc.MAX_REJECTED_KEEP


@fast
@given(noise.map(lambda b: b[:300]), st.integers(1, 10_000), noise.map(lambda b: b[:300]))
def test_a_frame_after_a_truncated_one_is_found(first: bytes, cut: int, second: bytes) -> None:
    truncated = hdlc_frame(LLC + first)[: 1 + cut % (len(first) + 10)]
    whole = hdlc_frame(LLC + second)
    data = truncated + whole
    # The one exception: the truncated header plus what follows is a valid frame by chance.
    assume(valid_frame_end(data, 0) is None)
    framer = HdlcFramer()
    events = framer.feed(data) + framer.close()
    assert [e.information for e in events if isinstance(e, HdlcFrame)][-1:] == [LLC + second]


@fast
@given(noise, cuts)
def test_hdlc_reassembler_holds_at_most_one_frame_buffer_and_one_message(
    data: bytes, sizes: list[int]
) -> None:
    reassembler = HdlcReassembler()
    for chunk in chunked(data, sizes):
        reassembler.feed(chunk)
        assert reassembler.buffered <= hdlc.MAX_BUFFER + hdlc.MAX_MESSAGE
    reassembler.close()


@fast
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=5), cuts)
def test_segmented_hdlc_frames_are_joined_into_the_message_they_carry(
    pieces: list[bytes], sizes: list[int]
) -> None:
    frames = [
        # I-frames: the send sequence number N(S) counts the segments.
        hdlc_frame(
            (LLC if i == 0 else b"") + piece,
            segmented=i < len(pieces) - 1,
            control=((i & 7) << 1) | 0x10,
        )
        for i, piece in enumerate(pieces)
    ]
    # A continuation that happens to start with an LLC header reads as a new message.
    assume(not any(piece[:3] in hdlc.LLC_HEADERS for piece in pieces[1:]))
    reassembler = HdlcReassembler()
    events: list[object] = []
    for chunk in chunked(b"".join(frames), sizes):
        events += reassembler.feed(chunk)
    events += reassembler.close()
    joined = [e for e in events if isinstance(e, HdlcFrame)]
    assert [e.information for e in joined] == [LLC + b"".join(pieces)]
    assert joined[0].segments == len(pieces)


# -- M-Bus framing ---------------------------------------------------------------------


@fast
@given(st.lists(st.binary(max_size=700), max_size=4), cuts)
def test_mbus_segments_are_joined_into_every_apdu_in_order(
    apdus: list[bytes], sizes: list[int]
) -> None:
    data = b"".join(b"".join(mbus_segments(apdu, size=100)) for apdu in apdus)
    reassembler = MbusReassembler()
    events: list[object] = []
    for chunk in chunked(data, sizes):
        events += reassembler.feed(chunk)
        assert reassembler.framer.buffered <= mbus.MAX_BUFFER
    events += reassembler.close()
    assert [e.apdu for e in events if isinstance(e, mbus.MbusMessage)] == apdus
    assert not [e for e in events if isinstance(e, Rejected)]


@fast
@given(noise, cuts)
def test_mbus_framer_and_reassembler_on_any_bytes_stay_bounded(
    data: bytes, sizes: list[int]
) -> None:
    framer, reassembler = MbusFramer(), MbusReassembler()
    for chunk in chunked(data, sizes):
        for event in framer.feed(chunk):
            assert isinstance(event, mbus.MbusFrame | Rejected)
        reassembler.feed(chunk)
        assert framer.buffered <= mbus.MAX_BUFFER
        assert reassembler.buffered <= mbus.MAX_BUFFER + mbus.MAX_MESSAGE
    framer.close()
    reassembler.close()


# -- A-XDR ---------------------------------------------------------------------------

Typed = tuple[bytes, object]  # (encoding, expected value tagged with its type)

_INTEGERS = [
    (0x0F, ">b", -(2**7), 2**7 - 1),
    (0x10, ">h", -(2**15), 2**15 - 1),
    (0x11, ">B", 0, 2**8 - 1),
    (0x12, ">H", 0, 2**16 - 1),
    (0x05, ">i", -(2**31), 2**31 - 1),
    (0x06, ">I", 0, 2**32 - 1),
    (0x14, ">q", -(2**63), 2**63 - 1),
    (0x15, ">Q", 0, 2**64 - 1),
]


def _integer(tag: int, fmt: str, lo: int, hi: int) -> st.SearchStrategy[Typed]:
    return st.integers(lo, hi).map(lambda v: (bytes([tag]) + struct.pack(fmt, v), ("int", v)))


def _sized(tag: int, raw: bytes) -> bytes:
    return bytes([tag]) + ber_length(len(raw)) + raw


axdr_leaves: st.SearchStrategy[Typed] = st.one_of(
    st.just((b"\x00", None)),
    st.booleans().map(lambda v: (b"\x03" + bytes([v]), ("bool", v))),
    *[_integer(*spec) for spec in _INTEGERS],
    st.integers(0, 255).map(lambda v: (b"\x16" + bytes([v]), ("enum", v))),
    st.binary(max_size=140).map(lambda v: (_sized(0x09, v), ("bytes", v))),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(
        lambda v: (_sized(0x0A, v.encode()), ("str", v))
    ),
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
    ).map(lambda v: (_sized(0x0C, v.encode()), ("str", v))),
    st.floats(allow_nan=False).map(lambda v: (b"\x18" + struct.pack(">d", v), ("float", v))),
    st.binary(min_size=12, max_size=12).map(lambda v: (b"\x19" + v, ("bytes", v))),
)


def _container(
    tag: int, name: str
) -> Callable[[st.SearchStrategy[Typed]], st.SearchStrategy[Typed]]:
    def build(children: st.SearchStrategy[Typed]) -> st.SearchStrategy[Typed]:
        return st.lists(children, max_size=8).map(
            lambda items: (
                bytes([tag]) + ber_length(len(items)) + b"".join(e for e, _ in items),
                (name, tuple(v for _, v in items)),
            )
        )

    return build


axdr_values: st.SearchStrategy[Typed] = st.recursive(
    axdr_leaves,
    lambda children: _container(0x02, "structure")(children) | _container(0x01, "array")(children),
    max_leaves=40,
)


def typed(value: object) -> object:
    """A decoded value with its Python type made explicit (True is not 1 here)."""
    if value is None:
        return None
    if isinstance(value, axdr.Structure):
        return ("structure", tuple(typed(v) for v in value))
    if isinstance(value, axdr.Array):
        return ("array", tuple(typed(v) for v in value))
    if isinstance(value, axdr.Enum):
        return ("enum", int(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, bytes):
        return ("bytes", bytes(value))
    assert isinstance(value, str)
    return ("str", value)


@fast
@given(axdr_values)
def test_axdr_decodes_every_value_it_is_given_back_exactly(value: Typed) -> None:
    encoded, expected = value
    assert typed(axdr.decode_all(encoded)) == expected


@fast
@given(noise)
def test_axdr_decode_of_any_bytes_gives_a_value_or_an_axdr_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        axdr.decode_all(data)


def test_axdr_refuses_nesting_deeper_than_its_limit() -> None:
    deep = b"\x02\x01" * (axdr.MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(DecodeError):
        axdr.decode_all(deep)
    assert axdr.decode_all(b"\x02\x01" * axdr.MAX_DEPTH + b"\x00") is not None


# -- APDU, security, readings -------------------------------------------------------

datetimes = st.one_of(
    st.just(b"\x00"),
    st.binary(min_size=12, max_size=12).map(lambda v: b"\x0c" + v),
    st.binary(min_size=12, max_size=12).map(lambda v: b"\x09\x0c" + v),
)


@fast
@given(st.integers(0, 2**32 - 1), datetimes, axdr_values)
def test_data_notification_round_trips(invoke_id: int, when: bytes, body: Typed) -> None:
    encoded, expected = body
    apdu = b"\x0f" + invoke_id.to_bytes(4, "big") + when + encoded
    notification = parse_data_notification(apdu)
    assert notification.invoke_id == invoke_id
    assert typed(notification.body) == expected


@fast
@given(noise)
def test_apdu_and_ciphering_parsers_give_values_or_typed_errors_for_any_bytes(data: bytes) -> None:
    for parse in (parse_data_notification, parse_ciphered):
        for apdu in (data, b"\x0f" + data, b"\xdb\x08" + data, b"\xdc\x08" + data[:10] + data):
            with contextlib.suppress(DecodeError):
                parse(apdu)


@fast
@given(
    st.binary(max_size=400),
    st.sampled_from([0x30, 0x20, 0x10]),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=8, max_size=8),
    st.sampled_from([0xDB, 0xDC]),
    st.sampled_from(["short", "81", "82", "84"]),
)
def test_ciphered_apdus_round_trip_and_a_wrong_auth_key_is_caught(
    plain: bytes, control: int, counter: int, title: bytes, tag: int, form: str
) -> None:
    apdu = cipher_apdu(
        plain,
        key=KEY,
        auth_key=AUTH_KEY,
        system_title=title,
        invocation_counter=counter,
        security_control=control,
        tag=tag,
        length_form=form,
    )
    ciphered = parse_ciphered(apdu)
    assert (ciphered.system_title, ciphered.invocation_counter) == (title, counter)
    assert Decryptor(Keys(KEY, AUTH_KEY)).decrypt(ciphered).apdu == plain
    if control & 0x10:
        with pytest.raises(AuthenticationError):
            Decryptor(Keys(KEY, bytes(16))).decrypt(ciphered)


@fast
@given(axdr_values)
def test_readings_come_from_any_body_shape_as_strict_json(body: Typed) -> None:
    encoded, _ = body
    value = axdr.decode_all(encoded)
    extract(value)
    notification = DataNotification(1, None, None, encoded)
    strict_json(message_dict(ReadingsBuilder().build(notification)))


texts = (
    st.none() | st.text(max_size=20) | st.sampled_from(["Kamstrup_V0001", "KFM_001", "AIDON_V0001"])
)
flags = (
    st.none() | st.sampled_from(["KAM", "KFM", "ISK", "LGZ", "SAG", "AIDON"]) | st.text(max_size=4)
)


@fast
@given(texts, st.integers(0, 300), flags, st.lists(axdr_values, max_size=40))
def test_the_profile_matcher_picks_a_profile_or_none_for_any_list(
    list_id: str | None, items: int, manufacturer: str | None, values: list[Typed]
) -> None:
    profile_set = ProfileSet()
    labelled = profile_set.select(list_id, items, manufacturer)
    assert labelled is None or labelled in profile_set.profiles
    decoded = [axdr.decode_all(encoded) for encoded, _ in values]
    positional = profile_set.select_positional(list_id, decoded, manufacturer)
    assert positional is None or positional[0] in profile_set.profiles


# Lists as meters send them, with values (and scalers) chosen by hypothesis.
obis_codes = st.binary(min_size=6, max_size=6)
scalers = st.one_of(st.integers(-128, 127), st.sampled_from([2**31 - 1, -(2**31), 2**63 - 1]))


@st.composite
def labelled_lists(draw: st.DrawFn) -> bytes:
    items, count = [], 0
    for _ in range(draw(st.integers(0, 8))):
        value, _ = draw(axdr_leaves)
        item = b"\x09\x06" + draw(obis_codes) + value
        if draw(st.booleans()):
            scaler = draw(scalers)
            tag, fmt = next((t, f) for t, f, lo, hi in _INTEGERS if lo <= scaler <= hi)
            unit = draw(st.integers(0, 255))
            item += b"\x02\x02" + bytes([tag]) + struct.pack(fmt, scaler) + b"\x16" + bytes([unit])
            count += 1
        items.append(item)
        count += 2
    return b"\x02" + ber_length(count) + b"".join(items)


@fast
@given(labelled_lists())
def test_labelled_lists_with_any_values_and_scalers_give_messages_or_failures(body: bytes) -> None:
    pipeline = Pipeline()
    for event in pipeline.feed_apdu(b"\x0f\x00\x00\x00\x01\x00" + body):
        assert isinstance(event, Message | Failure)
        if isinstance(event, Message):
            strict_json(message_dict(event))


# -- the whole pipeline -----------------------------------------------------------


# Hex text as gateways send it (the raw framing), with the odd bad line.
hex_lines = st.lists(
    st.binary(max_size=120).map(lambda b: b.hex().encode()) | st.binary(max_size=40), max_size=6
).map(b"\n".join)


@fast
@given(st.sampled_from(FRAMINGS), noise | hex_lines, cuts)
def test_pipeline_never_raises_whatever_the_line_delivers(
    framing: str, data: bytes, sizes: list[int]
) -> None:
    pipeline = Pipeline(Keys(KEY, AUTH_KEY), framing=framing)
    events = [e for chunk in chunked(data, sizes) for e in pipeline.feed(chunk)]
    events += pipeline.close()
    assert all(isinstance(e, Event) for e in events)
    for event in events:
        if isinstance(event, Message):
            strict_json(message_dict(event))


@fast
@given(noise)
def test_pipeline_feed_apdu_never_raises(data: bytes) -> None:
    for apdu in (data, b"\x0f" + data, b"\xe0" + data, b"\xdb\x08" + data):
        assert all(isinstance(e, Event) for e in Pipeline(Keys(KEY)).feed_apdu(apdu))


@fast
@given(st.lists(st.tuples(st.binary(max_size=60), st.binary(max_size=30)), max_size=5), cuts)
def test_what_is_decoded_does_not_depend_on_how_the_bytes_arrive(
    parts: list[tuple[bytes, bytes]], sizes: list[int]
) -> None:
    notification = b"\x0f\x00\x00\x00\x01\x00\x02\x02\x09\x06\x01\x00\x01\x08\x00\xff\x06"
    data = b"".join(
        hdlc_frame(LLC + notification + value[:4].ljust(4, b"\0")) + junk for value, junk in parts
    )

    def decoded(chunks: list[bytes]) -> list[Event]:
        pipeline = Pipeline(clock=lambda: 0.0)
        events = [e for chunk in chunks for e in pipeline.feed(chunk)] + pipeline.close()
        return [e for e in events if not isinstance(e, Rejected)]

    assert decoded(chunked(data, sizes)) == decoded([data])


# -- fuzz inputs ---------------------------------------------------------------------


def _fuzz_inputs() -> list[Path]:
    return sorted(p for folder in ("corpus", "crashes") for p in (FUZZ / folder).glob("*"))


def test_the_fuzz_corpus_exists() -> None:
    assert len(list((FUZZ / "corpus").iterdir())) >= 20


@pytest.mark.parametrize("path", _fuzz_inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_corpus_and_past_crashes_decode_cleanly(path: Path) -> None:
    from harness import one_input

    one_input(path.read_bytes())


def test_mbus_long_frame_builder_matches_the_framer() -> None:
    [frame] = MbusFramer().feed(mbus_long_frame(b"\x01\x67\x0f", 0x10))
    assert isinstance(frame, mbus.MbusFrame) and frame.data == b"\x01\x67\x0f"


# -- regressions: bugs these tests and the fuzzer found ---------------------------

NOTIFICATION_HEAD = b"\x0f\x00\x00\x00\x01\x00"
ENERGY = b"\x09\x06\x01\x00\x01\x08\x00\xff\x06\x00\x00\x00\x01"


def test_a_scaler_wider_than_an_int8_is_not_applied_and_does_not_hang() -> None:
    # {double-long-unsigned 2**31-1, enum Wh}: 10**(2**31-1) used to hang the reader.
    body = b"\x02\x03" + ENERGY + b"\x02\x02\x06\x7f\xff\xff\xff\x16\x1e"
    [message] = Pipeline().feed_apdu(NOTIFICATION_HEAD + body)
    assert isinstance(message, Message)
    assert (message.readings[0].obis, message.readings[0].value) == ("1.0.1.8.0.255", 1)


@pytest.mark.parametrize(
    "value",
    [
        b"\x17\x7f\xc0\x00\x00",  # float32 NaN
        b"\x17\xff\x80\x00\x00",  # float32 -infinity
        b"\x18\x7f\xe0\x00\x00\x00\x00\x00\x00\x02\x02\x0f\x7f\x16\x1b",  # 9e307 x 10^127
    ],
    ids=["nan", "infinity", "overflow-by-scaler"],
)
def test_floats_that_are_no_number_come_out_as_null_in_strict_json(value: bytes) -> None:
    count = 3 if len(value) > 9 else 2
    body = bytes([0x02, count]) + b"\x09\x06\x01\x00\x01\x07\x00\xff" + value
    [message] = Pipeline().feed_apdu(NOTIFICATION_HEAD + body)
    assert isinstance(message, Message)
    assert message.readings[0].value is None
    strict_json(message_dict(message))


def test_a_whole_frame_after_a_truncated_one_at_the_end_of_the_stream_is_kept() -> None:
    # The framer used to reject everything left at close() as one truncated frame.
    truncated = hdlc_frame(LLC + bytes(300))[:50]
    whole = hdlc_frame(LLC + NOTIFICATION_HEAD + b"\x02\x02" + ENERGY)
    framer = HdlcFramer()
    events = framer.feed(truncated + whole) + framer.close()
    assert [type(e).__name__ for e in events] == ["Rejected", "HdlcFrame"]
    assert isinstance(events[0], Rejected) and events[0].reason == "truncated"
    assert events[0].size == len(truncated)
    pipeline = Pipeline()
    decoded = pipeline.feed(truncated + whole) + pipeline.close()
    assert sum(isinstance(e, Message) for e in decoded) == 1


def test_garbage_reports_keep_only_garbage_bytes_and_do_not_count_idle_flags() -> None:
    # The kept head of a garbage run used to run on into the next frame.
    frame = hdlc_frame(LLC + b"\x01\x02")
    framer = HdlcFramer()
    events = framer.feed(b"\x11\x22" + frame + b"\x7e\x33") + framer.close()
    garbage = [e for e in events if isinstance(e, Rejected)]
    assert [(g.size, g.data) for g in garbage] == [(2, b"\x11\x22"), (1, b"\x33")]


def test_empty_mbus_segments_do_not_pile_up_without_bound() -> None:
    # Segments carrying no APDU bytes used to be kept for ever (sequence numbers wrap).
    segments = (mbus_long_frame(b"\x01\x67", i & 0x0F) for i in range(mbus.MAX_SEGMENTS + 2))
    events = MbusReassembler().feed(b"".join(segments))
    assert [e.reason for e in events if isinstance(e, Rejected)] == ["segments_lost"]


def test_empty_general_block_transfer_blocks_do_not_pile_up_without_bound() -> None:
    def block(number: int) -> bytes:
        return hdlc_frame(LLC + b"\xe0\x00" + number.to_bytes(2, "big") + b"\x00\x00\x00")

    pipeline = Pipeline()
    pipeline.feed(b"".join(block(n) for n in range(1, gbt.MAX_BLOCKS + 3)))
    assert pipeline.counters["blocks_lost"] == 1


def test_lookup_caches_stay_bounded_when_every_message_brings_new_codes_and_list_ids() -> None:
    pipeline = Pipeline()
    for i in range(profiles.MAX_CACHED + 200):
        list_id = f"list-{i}".encode()
        code = bytes([1, 0, i >> 8 & 0xFF, i & 0xFF, 0, 255])
        body = b"\x02\x03\x0a" + bytes([len(list_id)]) + list_id + b"\x09\x06" + code + b"\x11\x01"
        [event] = pipeline.feed_apdu(NOTIFICATION_HEAD + body)
        assert isinstance(event, Message)
    assert len(pipeline.builder.profiles._chosen) <= profiles.MAX_CACHED
    assert obis.describe.cache_info().currsize <= obis.FORMAT_CACHE_SIZE
