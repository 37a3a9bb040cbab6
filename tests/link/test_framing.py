"""Framing selection: auto-detection of HDLC or M-Bus, forced framings, hex lines."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import seed_vectors as sv
from builders import LLC, cipher_apdu, gbt_blocks, hdlc_frame, mbus_segments
from click.testing import CliRunner

from amsread.app.cli import cli
from amsread.dlms.keys import Keys, parse_key
from amsread.errors import UsageError
from amsread.link.framing import MAX_HELD, MAX_LINE, AutoLink, framing_for_hex, make_link
from amsread.model import Event, Failure, Message, Notice, Rejected
from amsread.pipeline import Pipeline

RADIUS_KEYS = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))
KAIFA_KEY = parse_key(sv.KAIFA_AT_KEY)


def kaifa_mbus(counter: int = 1) -> bytes:
    apdu = cipher_apdu(
        sv.KAIFA_AT_PLAINTEXT,
        key=KAIFA_KEY,
        security_control=0x20,
        length_form="81",
        invocation_counter=counter,
    )
    return b"".join(mbus_segments(apdu, [245]))


def kaifa_stream(count: int) -> bytes:
    return b"".join(kaifa_mbus(counter) for counter in range(1, count + 1))


def comparable(events: list[Event]) -> list[object]:
    """Events without what differs between runs (the receive time)."""
    return [
        (e.meter_time, [(r.obis, r.value, r.unit) for r in e.readings])
        if isinstance(e, Message)
        else e
        for e in events
    ]


def run(data: bytes, framing: str, keys: Keys | None = None) -> tuple[list[Event], Pipeline]:
    pipeline = Pipeline(keys, framing=framing)
    return pipeline.feed(data) + pipeline.close(), pipeline


def trickle(data: bytes, framing: str, keys: Keys | None = None) -> list[Event]:
    pipeline = Pipeline(keys, framing=framing)
    events: list[Event] = []
    for i in range(len(data)):
        events += pipeline.feed(data[i : i + 1])
    return events + pipeline.close()


def messages(events: list[Event]) -> list[Message]:
    return [e for e in events if isinstance(e, Message)]


def notices(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.what, e.level) for e in events if isinstance(e, Notice)]


# -- auto ---------------------------------------------------------------------


def test_auto_locks_onto_hdlc_and_says_so_at_info_level() -> None:
    events, pipeline = run(b"\x7e" + sv.RADIUS_FRAME, "auto", RADIUS_KEYS)
    assert notices(events) == [("framing_detected", "info")]
    assert "HDLC" in events[0].detail  # type: ignore[union-attr]
    assert len(messages(events)) == 1
    assert pipeline.framing == "hdlc"


def test_auto_locks_onto_m_bus_for_an_austrian_stream() -> None:
    events, pipeline = run(kaifa_stream(2), "auto", Keys(KAIFA_KEY))
    assert notices(events) == [("framing_detected", "info")]
    assert "M-Bus" in events[0].detail  # type: ignore[union-attr]
    assert [[(r.obis, r.value, r.unit) for r in m.readings] for m in messages(events)] == [
        sv.KAIFA_AT_READINGS
    ] * 2
    assert pipeline.framing == "mbus"


@pytest.mark.parametrize(
    "capture",
    [sv.AM550_STREAM, sv.AM550_CH_SEGMENTED, sv.E450_GBT_FRAMES, sv.GURUX_SESSION],
    ids=["am550-at", "am550-ch", "e450", "gurux"],
)
def test_auto_gives_the_same_events_as_forced_hdlc_on_real_hdlc_captures(capture: bytes) -> None:
    auto, _ = run(capture, "auto")
    forced, _ = run(capture, "hdlc")
    assert notices(auto) == [("framing_detected", "info")]
    assert comparable([e for e in auto if not isinstance(e, Notice)]) == comparable(forced)


@pytest.mark.parametrize(
    "capture", [sv.KAIFA_NOE_MBUS, sv.SAGEMCOM_T210D_MBUS], ids=["kaifa", "sagemcom"]
)
def test_auto_gives_the_same_events_as_forced_m_bus_on_real_m_bus_captures(
    capture: bytes,
) -> None:
    auto, _ = run(capture, "auto")
    forced, _ = run(capture, "mbus")
    assert notices(auto)[0] == ("framing_detected", "info")
    assert comparable(auto[1:]) == comparable(forced)


def test_auto_fed_byte_by_byte_locks_the_same_way() -> None:
    events = trickle(b"\x00\x01garbage" + kaifa_mbus(), "auto", Keys(KAIFA_KEY))
    assert notices(events)[0] == ("framing_detected", "info")
    assert len(messages(events)) == 1
    # Bytes before the first frame are still reported, after the notice.
    assert [(e.reason, e.size) for e in events if isinstance(e, Rejected)] == [("garbage", 9)]


def test_an_m_bus_ack_does_not_decide_the_framing() -> None:
    events, pipeline = run(b"\xe5" + sv.RADIUS_FRAME, "auto", RADIUS_KEYS)
    assert pipeline.framing == "hdlc"
    assert len(messages(events)) == 1


def test_auto_undecided_at_the_end_reports_the_damaged_frames() -> None:
    damaged = bytearray(sv.RADIUS_FRAME)
    damaged[100] ^= 0x01
    events, pipeline = run(bytes(damaged), "auto")
    assert pipeline.framing == "auto"
    assert [e.reason for e in events if isinstance(e, Rejected)] == ["bad_fcs"]
    assert pipeline.counters["bad_fcs"] == 1


def test_auto_undecided_does_not_hold_events_without_bound() -> None:
    damaged = bytearray(hdlc_frame(LLC + bytes(30)))
    damaged[12] ^= 0x01
    link = AutoLink()
    released = link.feed(bytes(damaged) * (MAX_HELD + 5))
    assert len(released) > MAX_HELD
    assert all(isinstance(e, Rejected) and e.reason == "bad_fcs" for e in released)


def test_auto_on_hex_text_suggests_the_raw_framing() -> None:
    text = f"{sv.KAIFA_AT_PLAINTEXT.hex()}\n".encode()
    events, _ = run(text, "auto")
    assert notices(events)[0] == ("hex_text", "warning")
    assert "--framing raw" in events[0].detail  # type: ignore[union-attr]


def test_forced_hdlc_finds_nothing_in_m_bus_bytes() -> None:
    events, pipeline = run(kaifa_mbus(), "hdlc", Keys(KAIFA_KEY))
    assert messages(events) == []
    assert pipeline.counters["frames_ok"] == 0


def test_unknown_framing_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown framing 'wmbus'"):
        make_link("wmbus")


def test_hex_input_is_framed_by_its_first_byte() -> None:
    assert framing_for_hex(sv.RADIUS_FRAME) == "hdlc"
    assert framing_for_hex(sv.KAIFA_NOE_MBUS) == "mbus"
    assert framing_for_hex(sv.KAIFA_AT_PLAINTEXT) == "raw"
    assert framing_for_hex(LLC + sv.KAIFA_AT_PLAINTEXT) == "raw"


# -- raw (hex lines) ------------------------------------------------------------


def test_raw_lines_are_one_message_each_with_or_without_llc() -> None:
    text = (
        f"# from a gateway\n{sv.KAIFA_AT_PLAINTEXT.hex()}\r\n\n"
        f"{(LLC + sv.NORWEGIAN_LIST_PLAINTEXT).hex(' ')}  # with LLC\n"
    ).encode()
    events, pipeline = run(text, "raw")
    assert [m.meter_time for m in messages(events)] == [
        sv.KAIFA_AT_METER_TIME,
        sv.NORWEGIAN_LIST_METER_TIME,
    ]
    assert pipeline.counters["frames_ok"] == 2


def test_raw_lines_split_across_feeds_and_a_last_line_without_newline() -> None:
    text = f"{sv.KAIFA_AT_PLAINTEXT.hex()}\n{sv.KAIFA_AT_PLAINTEXT.hex()}".encode()
    assert len(messages(trickle(text, "raw"))) == 2


def test_a_raw_line_that_is_no_hex_is_rejected_and_the_next_line_decodes() -> None:
    text = f"hello meter\n0f0\n{sv.KAIFA_AT_PLAINTEXT.hex()}\n".encode()
    events, pipeline = run(text, "raw")
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert [e.reason for e in rejected] == ["bad_hex", "bad_hex"]
    assert "unexpected character" in rejected[0].detail
    assert "odd number" in rejected[1].detail
    assert pipeline.counters["bad_hex"] == 2
    assert len(messages(events)) == 1


def test_an_overlong_raw_line_is_dropped_and_reading_goes_on() -> None:
    link = make_link("raw")
    events = link.feed(b"00" * MAX_LINE) + link.feed(b"0f" * 100 + b"\nab\n") + link.close()
    assert [type(e).__name__ for e in events] == ["Rejected", "Rejected", "LinkMessage"]
    assert link.feed(b"0f" * 10) == [] and len(link.close()) == 1


def test_raw_lines_carry_block_transfer_blocks_and_ciphered_apdus() -> None:
    apdu = cipher_apdu(
        sv.RADIUS_PLAINTEXT, key=parse_key(sv.RADIUS_KEY), auth_key=parse_key(sv.RADIUS_AUTH_KEY)
    )
    text = "".join(f"{block.hex()}\n" for block in gbt_blocks(apdu, 3)).encode()
    events, _ = run(text, "raw", RADIUS_KEYS)
    [message] = messages(events)
    assert message.authenticated is True


# -- command line -----------------------------------------------------------------


def cli_run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_decode_of_m_bus_hex_picks_m_bus_by_its_first_byte() -> None:
    status, out, _ = cli_run("decode", kaifa_mbus().hex(), "--key", sv.KAIFA_AT_KEY)
    assert status == 0
    [line] = out.splitlines()
    assert json.loads(line)["meter_time"] == sv.KAIFA_AT_METER_TIME


def test_decode_of_the_sagemcom_capture_asks_for_its_key() -> None:
    status, out, err = cli_run("decode", sv.SAGEMCOM_T210D_MBUS.hex())
    assert status == 1 and out == ""
    assert "no encryption key" in err


def test_decode_with_forced_raw_framing_reads_one_apdu_per_line(tmp_path: Path) -> None:
    hexfile = tmp_path / "apdus.txt"
    hexfile.write_text("\n".join(b.hex() for b in gbt_blocks(sv.KAIFA_AT_PLAINTEXT, 3)))
    status, out, _ = cli_run("decode", "--framing", "raw", "--file", str(hexfile))
    assert status == 0 and len(out.splitlines()) == 1


def test_replay_auto_detects_m_bus_and_says_so_with_v(tmp_path: Path) -> None:
    capture = tmp_path / "kaifa.bin"
    capture.write_bytes(kaifa_stream(3))
    status, out, err = cli_run("-v", "replay", str(capture), "--key", sv.KAIFA_AT_KEY)
    assert status == 0
    assert len(out.splitlines()) == 3
    assert "M-Bus framing detected" in err


def test_replay_with_forced_framing_and_raw_hex_lines(tmp_path: Path) -> None:
    capture = tmp_path / "kaifa.bin"
    capture.write_bytes(kaifa_mbus())
    status, out, _ = cli_run("replay", "--framing", "hdlc", str(capture), "--key", sv.KAIFA_AT_KEY)
    assert status == 1 and out == ""
    lines = tmp_path / "gateway.txt"
    lines.write_text(f"{sv.KAIFA_AT_PLAINTEXT.hex()}\n{sv.NORWEGIAN_LIST_PLAINTEXT.hex()}\n")
    status, out, _ = cli_run("replay", "--framing", "raw", str(lines))
    assert status == 0 and len(out.splitlines()) == 2


def test_replay_reports_lost_segments_in_the_summary(tmp_path: Path) -> None:
    frames = mbus_segments(bytes(range(200)), [100, 50])
    capture = tmp_path / "lost.bin"
    capture.write_bytes(frames[0] + frames[2])
    status, _, err = cli_run("replay", "--framing", "mbus", str(capture))
    assert status == 1
    assert "segments_lost=1" in err


def test_an_unknown_framing_is_refused_by_the_command_line() -> None:
    status, _, err = cli_run("replay", "--framing", "wmbus", "-")
    assert status == 2
    assert "wmbus" in err


def test_failure_events_keep_working_with_m_bus_framing() -> None:
    events, _ = run(sv.KAIFA_NOE_MBUS, "mbus")
    assert [type(e) for e in events] == [Failure]


def test_auto_framing_counts_noise_before_the_lock_only_once() -> None:
    # Long noise makes auto framing report one candidate's view of it before
    # either locks; the other must not count the same bytes again.
    noise = random.Random(7).randbytes(200_000)
    stream = noise + b"".join(mbus_segments(sv.KAIFA_AT_PLAINTEXT, [120])) * 3
    pipeline = Pipeline(framing="auto", allow_replay=True)
    for i in range(0, len(stream), 4096):
        pipeline.feed(stream[i : i + 4096])
    pipeline.close()
    assert pipeline.counters["messages"] == 3
    assert pipeline.counters["garbage_bytes"] <= pipeline.counters["bytes_read"]
