"""A noisy line: every intact message comes out exactly once, in order; no damaged one does.

The lines and what must come out of them are described in ``tests/noisy.py``,
including how chance is accounted for: a damaged frame whose checksums still
match (1 in 65,536 per random window) is found by an independent check of the
bytes, and only what such a frame explains is tolerated. Bigger and randomly
seeded runs: ``bench/noisy_line.py``.
"""

from __future__ import annotations

import json
import random
from itertools import pairwise
from pathlib import Path

import pytest
from builders import LLC, hdlc_frame
from click.testing import CliRunner
from noisy import (
    AUTH_KEY,
    DAMAGE_KINDS,
    KEY,
    LineBuilder,
    NoisyLine,
    compare,
    feed_in_chunks,
    fingerprint,
    make_pipeline,
    mbus_long_frame,
    noisy_line,
    plain_push,
    valid_frame_end,
    valid_mbus_end,
)

from amsread.app.cli import cli
from amsread.link.crc import crc16_x25
from amsread.model import Event, Failure, Message, Rejected

FRAMES = 20_000
SEED = 20_240_301


def assert_nothing_lost_and_nothing_invented(line: NoisyLine, events: list[Event]) -> None:
    outcome = compare(line, events)
    # Only a chance frame (found by the independent oracle, not by the framer)
    # may explain a lost or an extra message; on the CI seeds there is none.
    assert set(outcome.lost) <= line.lost_to_chance()
    assert len(outcome.invented) <= len(line.chance)
    assert outcome.recovered == outcome.expected - len(outcome.lost)
    # Every damaged stretch was reported (Rejected or Failure) before the next message.
    assert outcome.silent == 0


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_intact_messages_come_out_once_in_order_and_damaged_ones_never(link: str) -> None:
    line = noisy_line(FRAMES, SEED, link=link)
    events = feed_in_chunks(make_pipeline(link), line.data, random.Random(SEED), 4096)

    assert line.frames >= FRAMES
    assert line.damaged >= FRAMES // 200  # the line really is noisy (about 1%)
    assert all(line.count(kind) for kind in (*DAMAGE_KINDS, "junk", "link"))
    assert len(line.duplicates) >= 10
    assert_nothing_lost_and_nothing_invented(line, events)
    assert compare(line, events).recovered >= FRAMES // 2


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_auto_detected_framing_loses_nothing_either(link: str) -> None:
    line = noisy_line(3_000, SEED + 2, link=link)
    events = feed_in_chunks(make_pipeline("auto"), line.data, random.Random(3), 700)
    assert_nothing_lost_and_nothing_invented(line, events)
    assert compare(line, events).lost == []


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_duplicated_ciphered_pushes_are_dropped_as_replays_and_plain_ones_come_out_twice(
    link: str,
) -> None:
    line = noisy_line(3_000, SEED, link=link, duplicate_rate=0.05, damage_rate=0.0)
    events = feed_in_chunks(make_pipeline(link), line.data, random.Random(1), 512)
    duplicates = [d.push for d in line.duplicates]
    ciphered = sum(p.system_title is not None for p in duplicates)
    plain = len(duplicates) - ciphered
    replayed = [e for e in events if isinstance(e, Failure) and e.reason == "replayed"]
    messages = [fingerprint(e) for e in events if isinstance(e, Message)]
    plain_twice = sum(a == b and a.system_title is None for a, b in pairwise(messages))
    assert ciphered > 10 and plain > 10
    assert len(replayed) == ciphered
    assert plain_twice == plain
    assert compare(line, events).lost == []


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_the_same_line_gives_the_same_messages_however_it_is_chunked(link: str) -> None:
    line = noisy_line(600, SEED + 1, link=link, damage_rate=0.05, junk_rate=0.05)
    whole = make_pipeline(link)
    at_once = whole.feed(line.data) + whole.close()
    byte_by_byte = feed_in_chunks(make_pipeline(link), line.data, random.Random(2), 1)

    def decoded(events: list[Event]) -> list[Event]:
        # How a rejection is classified (bad_fcs or truncated) may depend on how
        # many bytes after it had arrived; what is decoded must not.
        return [e for e in events if not isinstance(e, Rejected)]

    assert decoded(byte_by_byte) == decoded(at_once)
    assert compare(line, at_once).lost == compare(line, byte_by_byte).lost == []


def _chance_damaged(frame: bytes) -> bytes:
    """Change the frame's power value and fix two more bytes so the FCS still matches."""
    body = bytearray(frame[:-1])
    fcs = body[-2:]
    power = body.index(bytes([1, 0, 1, 7, 0, 255])) + 7  # the value after its OBIS code
    body[power + 1] ^= 0x01
    for guess in range(0x10000):
        body[power + 2 : power + 4] = guess.to_bytes(2, "big")
        if crc16_x25(body[1:-2]).to_bytes(2, "little") == fcs:
            return bytes(body) + b"\x7e"
    raise AssertionError("a 16-bit CRC always has a matching pair of bytes")


def test_a_damaged_frame_whose_checksum_still_matches_is_the_one_tolerated_case() -> None:
    before, victim, after = plain_push(1), plain_push(2), plain_push(3)
    forged = _chance_damaged(victim.frames[0])
    out = LineBuilder()
    out.put("intact", before.frames[0], before)
    out.put("bit_flip", forged, victim)
    out.put("intact", after.frames[0], after)
    line = out.line()
    pipeline = make_pipeline()
    outcome = compare(line, pipeline.feed(line.data) + pipeline.close())

    assert forged != victim.frames[0] and valid_frame_end(forged, 0) == len(forged) - 1
    assert len(line.chance) == 1  # the oracle saw it
    assert victim.expected is not None
    assert [m.readings[1][1] for m in outcome.invented] != [victim.expected.readings[1][1]]
    assert len(outcome.invented) == 1  # it decoded: the FCS was its only guard
    assert outcome.lost == []


def test_a_dropped_opening_flag_after_a_closing_flag_leaves_the_frame_intact() -> None:
    first, second = plain_push(1), plain_push(2)
    out = LineBuilder()
    out.put("intact", first.frames[0], first)
    out.put("dropped", second.frames[0][1:], second)  # its opening flag lost
    line = out.line()
    pipeline = make_pipeline()
    outcome = compare(line, pipeline.feed(line.data) + pipeline.close())

    assert line.pieces[1].survived
    assert outcome.recovered == outcome.expected == 2


def test_the_oracles_agree_with_the_builders_and_reject_any_flipped_bit() -> None:
    frame = hdlc_frame(LLC + b"\x0f\x7e\x7e", destination=b"\x00\x02\x00\x23")
    assert valid_frame_end(frame, 0) == len(frame) - 1
    assert valid_frame_end(hdlc_frame(b""), 0) == 8
    for bit in range(8, (len(frame) - 1) * 8):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        assert valid_frame_end(bytes(damaged), 0) is None, bit
    long = mbus_long_frame(b"\x01\x67\x0f\x00", 0x10)
    assert valid_mbus_end(long, 0) == len(long)
    for bit in range(len(long) * 8):
        damaged = bytearray(long)
        damaged[bit // 8] ^= 1 << (bit % 8)
        assert valid_mbus_end(bytes(damaged), 0) is None, bit


def test_a_chance_m_bus_short_frame_in_start_up_noise_does_not_lock_auto_onto_m_bus() -> None:
    # Noise holds a valid short frame (10 C A CS 16) once in 16 MiB; auto used
    # to lock onto M-Bus on it, and then every HDLC frame was garbage.
    line = noisy_line(200, SEED)
    pipeline = make_pipeline("auto")
    events = pipeline.feed(b"\x00\x11\x10\x40\x01\x41\x16\x22")
    events += feed_in_chunks(pipeline, line.data, random.Random(1), 64)
    assert pipeline.framing == "hdlc"
    assert compare(line, events).lost == []


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_amsread_replay_of_a_noisy_capture_prints_exactly_the_intact_messages(
    link: str, tmp_path: Path
) -> None:
    line = noisy_line(2_000, SEED + 3, link=link)
    capture = tmp_path / "line.bin"
    capture.write_bytes(line.data)
    keys = ["--key", KEY.hex(), "--auth-key", AUTH_KEY.hex()]
    result = CliRunner().invoke(cli, ["replay", str(capture), *keys])
    printed = [json.loads(text) for text in result.stdout.splitlines()]
    expected = [message for _, message in line.expected()]

    assert result.exit_code == 0
    assert [(m["system_title"], m["invocation_counter"], m["meter_time"]) for m in printed] == [
        (e.system_title, e.invocation_counter, e.meter_time) for e in expected
    ]
    assert [[r["value"] for r in m["readings"]] for m in printed] == [
        [value for _, value, _ in e.readings] for e in expected
    ]
