"""General block transfer (0xE0): blocks joined into the APDU they carry, losses counted."""

from __future__ import annotations

import pytest
import seed_vectors as sv
from builders import LLC, ber_length, cipher_apdu, gbt_blocks, hdlc_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms.blocks import MAX_TRANSFER, BlockAssembler, parse_block
from amsread.dlms.keys import Keys, parse_key
from amsread.errors import ApduError
from amsread.link.hdlc import HdlcFramer, strip_llc
from amsread.model import Event, Failure, Message, Rejected, Skipped
from amsread.pipeline import Pipeline

RADIUS_KEYS = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))


def radius_apdu() -> bytes:
    return cipher_apdu(
        sv.RADIUS_PLAINTEXT,
        key=parse_key(sv.RADIUS_KEY),
        auth_key=parse_key(sv.RADIUS_AUTH_KEY),
        invocation_counter=7,
    )


def readings(events: list[Event]) -> list[list[tuple[object, object, object]]]:
    return [
        [(r.obis, r.value, r.unit) for r in e.readings] for e in events if isinstance(e, Message)
    ]


def reasons(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Rejected | Failure)]


def as_frames(blocks: list[bytes]) -> bytes:
    """One block per HDLC frame, the LLC header only in the first (as E450 meters send)."""
    return b"".join(hdlc_frame((LLC if i == 0 else b"") + b) for i, b in enumerate(blocks))


def run_frames(data: bytes, keys: Keys | None = None) -> tuple[list[Event], Pipeline]:
    pipeline = Pipeline(keys)
    return pipeline.feed(data) + pipeline.close(), pipeline


def run_apdus(apdus: list[bytes], keys: Keys | None = None) -> list[Event]:
    pipeline = Pipeline(keys)
    events: list[Event] = []
    for apdu in apdus:
        events += pipeline.feed_apdu(apdu)
    return events + pipeline.close()


def test_e450_capture_in_three_blocks_is_one_message() -> None:
    events, pipeline = run_frames(sv.E450_GBT_FRAMES)
    [message] = events
    assert isinstance(message, Message)
    assert message.meter_time == sv.E450_GBT_METER_TIME
    assert sv.E450_GBT_METER_SERIAL in [r.value for r in message.readings]
    assert pipeline.counters["frames_ok"] == 3
    assert pipeline.counters["messages"] == 1


def test_e450_blocks_parse_to_the_documented_fields() -> None:
    frames = [e for e in HdlcFramer().feed(sv.E450_GBT_FRAMES) if not isinstance(e, Rejected)]
    blocks = [parse_block(strip_llc(f.information)) for f in frames]  # type: ignore[union-attr]
    assert [(b.last, b.number, len(b.data)) for b in blocks] == [
        (bool(control & 0x80), number, size) for control, number, size in sv.E450_GBT_BLOCKS
    ]
    assert all(b.streaming and b.window == 0 and b.acknowledged == 0 for b in blocks)
    joined = b"".join(b.data for b in blocks)
    assert joined[0] == 0x0F
    single = Pipeline().feed_apdu(joined)
    assert readings(single) == readings(run_frames(sv.E450_GBT_FRAMES)[0])


@pytest.mark.parametrize("count", [2, 3, 4, 5])
@pytest.mark.parametrize(
    "plaintext",
    [sv.KAIFA_AT_PLAINTEXT, sv.NORWEGIAN_LIST_PLAINTEXT, sv.RADIUS_PLAINTEXT],
    ids=["kaifa-at", "norwegian-list", "radius"],
)
def test_plain_push_in_blocks_gives_the_single_frame_readings(count: int, plaintext: bytes) -> None:
    single, _ = run_frames(hdlc_frame(LLC + plaintext))
    blocks = gbt_blocks(plaintext, count)
    assert len(blocks) == count
    framed, _ = run_frames(as_frames(blocks))
    assert len(readings(framed)) == 1
    assert readings(framed) == readings(single)
    assert readings(run_apdus(blocks)) == readings(single)


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_ciphered_push_inside_blocks_is_decrypted_after_joining(count: int) -> None:
    apdu = radius_apdu()
    single, _ = run_frames(hdlc_frame(LLC + apdu), RADIUS_KEYS)
    framed, _ = run_frames(as_frames(gbt_blocks(apdu, count)), RADIUS_KEYS)
    [message] = [e for e in framed if isinstance(e, Message)]
    assert message.authenticated is True
    assert message.invocation_counter == 7
    assert readings(framed) == readings(single)
    assert readings(framed)[0][1:] == sv.RADIUS_READINGS


def test_blocks_numbered_from_zero_and_without_streaming_are_joined() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3, first_number=0, streaming=False, window=1)
    assert len(readings(run_apdus(blocks))) == 1


def test_a_single_last_block_is_a_whole_apdu() -> None:
    [block] = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 1)
    [message] = run_apdus([block])
    assert isinstance(message, Message)


def test_a_missing_block_drops_the_transfer_and_the_next_one_decodes() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)
    events, pipeline = run_frames(as_frames([blocks[0], blocks[2], *blocks]))
    assert reasons(events) == ["blocks_lost"]
    assert "block 3 came where block 2 was expected" in events[0].detail  # type: ignore[union-attr]
    assert pipeline.counters["blocks_lost"] == 1
    assert len(readings(events)) == 1


def test_a_repeated_block_drops_the_transfer() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)
    events = run_apdus([blocks[0], blocks[1], blocks[1], blocks[2]])
    assert reasons(events) == ["blocks_lost"]
    assert readings(events) == []
    # The rest of the lost transfer is skipped, not reported again.
    assert [type(e) for e in events] == [Rejected, Skipped, Skipped]


def test_reordered_blocks_drop_the_transfer() -> None:
    blocks = gbt_blocks(sv.NORWEGIAN_LIST_PLAINTEXT, 4)
    events = run_apdus([blocks[0], blocks[2], blocks[1], blocks[3], *blocks])
    assert reasons(events) == ["blocks_lost"]
    assert len(readings(events)) == 1


def test_blocks_without_their_first_are_reported_once() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 4)
    events = run_apdus(blocks[1:] + blocks)
    assert reasons(events) == ["blocks_lost"]
    assert "without the blocks before it" in events[0].detail  # type: ignore[union-attr]
    assert len(readings(events)) == 1


def test_a_new_first_block_drops_the_unfinished_transfer() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)
    events = run_apdus(blocks[:2] + blocks)
    assert reasons(events) == ["blocks_lost"]
    assert len(readings(events)) == 1


def test_a_damaged_frame_carrying_a_block_loses_the_transfer_not_the_next() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)
    damaged = bytearray(as_frames(blocks))
    damaged[len(hdlc_frame(LLC + blocks[0])) + 30] ^= 0x10
    events, _ = run_frames(bytes(damaged) + as_frames(blocks))
    assert "bad_fcs" in reasons(events)
    assert "blocks_lost" in reasons(events)
    assert len(readings(events)) == 1


def test_the_stream_ending_inside_a_transfer_counts_it_lost() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)
    events, _pipeline = run_frames(as_frames(blocks[:2]))
    assert reasons(events) == ["blocks_lost"]
    assert "ended before the last block" in events[0].detail  # type: ignore[union-attr]
    assert reasons(run_apdus(blocks[:2])) == ["blocks_lost"]


def test_a_malformed_block_is_a_bad_apdu_and_drops_the_transfer() -> None:
    blocks = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)
    events = run_apdus([blocks[0], blocks[1][:-5], blocks[2]])
    assert reasons(events) == ["blocks_lost", "bad_apdu"]
    assert readings(events) == []


def test_parse_block_checks_its_length() -> None:
    with pytest.raises(ApduError, match="announces 5 bytes but 3 follow"):
        parse_block(bytes.fromhex("e0c0000100000501020304"[:-2]))
    with pytest.raises(ApduError, match="bytes after"):
        parse_block(bytes.fromhex("e0c00001000002010203"))
    block = parse_block(b"\xe0\x81\x00\x02\x00\x01" + ber_length(200, "82") + bytes(200))
    assert (block.last, block.streaming, block.window, block.number, block.acknowledged) == (
        True,
        False,
        1,
        2,
        1,
    )
    assert len(block.data) == 200


def test_a_transfer_beyond_the_size_limit_is_dropped() -> None:
    big = bytes(i % 253 for i in range(MAX_TRANSFER + 100))
    blocks = gbt_blocks(big, 20)
    events = run_apdus(blocks + gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 2))
    assert reasons(events) == ["blocks_lost"]
    assert str(MAX_TRANSFER) in events[0].detail  # type: ignore[union-attr]
    assert len(readings(events)) == 1


def test_a_block_transfer_inside_a_block_transfer_is_refused() -> None:
    inner = gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 1)[0]
    events = run_apdus(gbt_blocks(inner, 2))
    assert reasons(events) == ["bad_apdu"]


@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=1, max_size=3000),
    st.integers(min_value=1, max_value=12),
    st.sampled_from([0, 1]),
)
def test_any_apdu_cut_into_blocks_is_joined_back(apdu: bytes, count: int, first: int) -> None:
    assembler = BlockAssembler()
    out: list[object] = []
    for block in gbt_blocks(apdu, count, first_number=first):
        out += assembler.push(parse_block(block))
    assert out == [apdu]
    assert not assembler.pending
