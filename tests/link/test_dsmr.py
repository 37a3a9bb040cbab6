"""DSMR P1 telegrams: framing, parsing, encrypted (Smarty) telegrams, noisy lines."""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms.keys import Keys
from amsread.link.dsmr import DsmrFramer, Telegram, crc16_arc
from amsread.model import Failure, Message, Notice, Rejected
from amsread.output.writers import JsonlWriter
from amsread.pipeline import Pipeline

CORPUS = pathlib.Path(__file__).parent.parent / "corpus" / "dsmr"
V5 = (CORPUS / "v5_iskra.txt").read_bytes()
V4 = (CORPUS / "v4_2_kaifa.txt").read_bytes()
V22 = (CORPUS / "v2_2_iskra.txt").read_bytes()
SMARTY_AK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
TEST_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
TITLE = bytes.fromhex("4D4D4D0000BC614E")


def _events(data: bytes, framing: str = "dsmr", keys: Keys | None = None) -> tuple[list, Pipeline]:
    pipeline = Pipeline(keys, framing=framing, clock=lambda: 0.0)
    return pipeline.feed(data) + pipeline.close(), pipeline


def _messages(events: list) -> list[Message]:
    return [e for e in events if isinstance(e, Message)]


def _jsonl(messages: list[Message]) -> str:
    out = io.StringIO()
    writer = JsonlWriter(out)
    for message in messages:
        writer.write(message)
    return out.getvalue()


def test_crc16_arc_check_value() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"12345678") == crc16_arc(bytearray(b"12345678"))


def test_corpus_matches_golden_output() -> None:
    messages = []
    for path in sorted(CORPUS.glob("*.txt")):
        messages += _messages(_events(path.read_bytes())[0])
    golden = (CORPUS / "golden.jsonl").read_text()
    assert _jsonl(messages) == golden
    assert len(golden.splitlines()) == 12  # every file but the one with a wrong CRC


def test_published_telegram_with_wrong_crc_is_rejected() -> None:
    events, pipeline = _events((CORPUS / "v5_ene_t211.txt").read_bytes())
    assert not _messages(events)
    assert pipeline.counters["bad_crc"] == 1
    assert (
        "computed 6BA4, received D492" in next(e for e in events if isinstance(e, Rejected)).detail
    )


def test_values_as_sent() -> None:
    (message,) = _messages(_events(V4)[0])
    by_obis = {r.obis: r for r in message.readings}
    assert message.list_id == "KFM5KAIFA-METER"
    assert message.meter_time == "2016-11-13T20:57:57+01:00"
    assert by_obis["1.0.1.8.1.255"].value == 1581.123
    assert by_obis["1.0.1.8.1.255"].unit == "kWh"
    assert by_obis["1.0.1.8.1.255"].name == "active_energy_import_t1"
    assert by_obis["0.0.96.14.0.255"].value == "0002"
    gas = by_obis["0.1.24.2.1.255"]
    assert (gas.name, gas.value, gas.unit) == ("gas_delivered", 981.443, "m3")
    assert gas.captured_at == "2016-11-29T20:00:00+01:00"
    log = by_obis["1.0.99.97.0.255"].value
    assert isinstance(log, list) and len(log) == 3
    assert log[0] == {"end": "2000-01-04T18:03:20+01:00", "duration_s": 237126}
    assert message.meter_id == "3960221976967177082151037881335713"


def test_legacy_gas_and_unknown_lines_kept() -> None:
    text = V22.replace(b"0-1:24.4.0(1)\r\n", b"0-1:24.4.0(1)\r\n9-9:99.99.99(a)(b)\r\n")
    (message,) = _messages(_events(text)[0])
    gas = next(r for r in message.readings if r.obis == "0.1.24.3.0.255")
    assert (gas.value, gas.unit, gas.captured_at) == (1.001, "m3", "2016-11-07T19:00:00")
    unknown = message.readings[-1]
    assert (unknown.obis, unknown.name, unknown.value) == ("9.9.99.99.99.255", None, "(a)(b)")


def test_hex_text_decoded() -> None:
    message = _messages(_events((CORPUS / "v3_iskra.txt").read_bytes())[0])[0]
    by_name = {r.name: r.value for r in message.readings}
    assert by_name["meter_serial"] == "K8EG004046395507"
    assert by_name["consumer_message_code"] == "012345678"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(V5) * 3), max_size=12))
def test_random_chunking_gives_the_same_output(cuts: list[int]) -> None:
    stream = b"\x00noise" + V22 + V5 + V4 + V5
    whole = _jsonl(_messages(_events(stream)[0]))
    pipeline = Pipeline(framing="dsmr", clock=lambda: 0.0)
    events = []
    last = 0
    for cut in sorted(set(cuts)):
        events += pipeline.feed(stream[last:cut])
        last = cut
    events += pipeline.feed(stream[last:]) + pipeline.close()
    assert _jsonl(_messages(events)) == whole
    assert len(_messages(events)) == 4


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=len(V5) - 1), st.integers(min_value=0, max_value=7))
def test_flipped_bit_never_output(position: int, bit: int) -> None:
    damaged = bytearray(V5)
    damaged[position] ^= 1 << bit
    events, pipeline = _events(V4 + bytes(damaged) + V4)
    messages = _messages(events)
    assert _jsonl(messages) == _jsonl(_messages(_events(V4 + V4)[0]))
    lost = sum(pipeline.counters[k] for k in ("bad_crc", "truncated", "garbage_bytes"))
    assert lost > 0


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(V5) - 3))  # the CR after the CRC is no loss
def test_dropped_byte_rejected_and_counted(position: int) -> None:
    damaged = V5[:position] + V5[position + 1 :]
    events, _pipeline = _events(V4 + damaged + V4)
    assert len(_messages(events)) == 2
    assert any(isinstance(e, Rejected) for e in events)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=255), st.binary(max_size=600))
def test_any_telegram_text_decodes_cleanly(knob: int, payload: bytes) -> None:
    # The fuzz harness's telegram mode: any text inside a CRC-valid telegram.
    sys.path.insert(0, str(pathlib.Path(__file__).parent.parent.parent / "fuzz"))
    from harness import TELEGRAM, one_input

    one_input(bytes([TELEGRAM, knob]) + payload)
    one_input(bytes([TELEGRAM, knob]) + b"1-0:999.8.1(1)\r\n(2)\r\n1-0:99.97.0(9)(x)\r\n" + payload)


def test_cut_telegram_is_truncated_and_next_one_decodes() -> None:
    events, pipeline = _events(V5[:400] + V4)
    assert pipeline.counters["truncated"] == 1
    assert len(_messages(events)) == 1
    events, pipeline = _events(V4 + V5[:400])
    assert pipeline.counters["truncated"] == 1


def test_buffer_is_bounded() -> None:
    framer = DsmrFramer()
    framer.feed(b"/ISK5" + b"1" * 40_000)
    assert framer.buffered <= 20_000


def test_auto_detects_telegrams() -> None:
    events, pipeline = _events(b"\xff\xfe" + V22 + V5, framing="auto")
    assert isinstance(events[0], Notice) and "DSMR" in events[0].detail
    assert len(_messages(events)) == 2
    assert pipeline.framing == "dsmr"


def _sealed(telegram: bytes, counter: int, ek: bytes = TEST_EK, ak: bytes = SMARTY_AK) -> bytes:
    iv = TITLE + counter.to_bytes(4, "big")
    sealed = AESGCM(ek).encrypt(iv, telegram, b"\x30" + ak)
    body = b"\x30" + counter.to_bytes(4, "big") + sealed[: len(telegram)] + sealed[-16:-4]
    return b"\xdb\x08" + TITLE + b"\x82" + len(body).to_bytes(2, "big") + body


def test_smarty_encrypted_telegram_verified() -> None:
    stream = _sealed(V5, 10) + _sealed(V4, 11) + _sealed(V4, 11)
    events, pipeline = _events(stream, keys=Keys(TEST_EK, SMARTY_AK))
    messages = _messages(events)
    assert [m.invocation_counter for m in messages] == [10, 11]
    assert all(m.authenticated is True for m in messages)
    assert messages[0].system_title == TITLE.hex().upper()
    assert messages[0].readings == _messages(_events(V5)[0])[0].readings
    assert pipeline.counters["replayed"] == 1


def test_smarty_tag_that_fails_decrypts_unverified_and_says_so_once() -> None:
    other_ak = bytes(16)
    stream = _sealed(V5, 1, ak=other_ak) + _sealed(V4, 2, ak=other_ak)
    events, pipeline = _events(stream, keys=Keys(TEST_EK, SMARTY_AK))
    assert [m.authenticated for m in _messages(events)] == [False, False]
    assert sum(1 for e in events if isinstance(e, Notice) and e.what == "tag_unverified") == 1
    assert pipeline.counters["unauthenticated"] == 2


def test_smarty_wrong_key_fails() -> None:
    events, _pipeline = _events(_sealed(V5, 1), keys=Keys(bytes(16), SMARTY_AK))
    assert not _messages(events)
    assert isinstance(events[-1], Failure) and events[-1].reason == "auth_failed"
    events, _ = _events(_sealed(V5, 1))
    assert isinstance(events[-1], Failure) and events[-1].reason == "no_key"


def test_telegram_cut_short_by_a_flipped_end_is_not_taken_for_dsmr_2() -> None:
    # ")" (0x29) with bit 3 flipped is "!" (0x21): the rest looks CRC-less.
    damaged = V5.replace(b"(00.244*kW)", b"(00.244*kW!", 1)
    events, pipeline = _events(damaged)
    assert not _messages(events) and pipeline.counters["bad_crc"] == 1
    events, pipeline = _events(V4 + V22)  # a CRC-sending meter does not stop sending one
    assert len(_messages(events)) == 1 and pipeline.counters["bad_crc"] == 1


def test_csv_writes_the_power_failure_log_as_json() -> None:
    from amsread.output.writers import CsvWriter

    out = io.StringIO()
    for message in _messages(_events(V4)[0]):
        CsvWriter(out).write(message)
    assert '"[{""end"":""2000-01-04T18:03:20+01:00"",""duration_s"":237126}' in out.getvalue()


def test_framer_events() -> None:
    framer = DsmrFramer()
    events = framer.feed(V22 + V5) + framer.close()
    assert [type(e) for e in events] == [Telegram, Telegram]
    assert [e.crc for e in events if isinstance(e, Telegram)] == [None, 0x6EEE]


def test_replay_command_end_to_end(tmp_path: pathlib.Path) -> None:
    capture = tmp_path / "p1.txt"
    capture.write_bytes(V5 + V4)
    for framing in ("dsmr", "auto"):
        result = subprocess.run(
            [sys.executable, "-m", "amsread", "replay", str(capture), "--framing", framing],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2 and '"list_id":"ISk5\\\\2MT382-1000"' in lines[0]


def test_replay_of_smarty_telegrams_says_once_why_the_tag_went_unchecked(
    tmp_path: pathlib.Path,
) -> None:
    capture = tmp_path / "smarty.bin"
    capture.write_bytes(_sealed(V5, 1, ak=bytes(16)) + _sealed(V5, 2, ak=bytes(16)))
    keys = ["--key", TEST_EK.hex(), "--auth-key", SMARTY_AK.hex()]
    result = subprocess.run(
        [sys.executable, "-m", "amsread", "replay", str(capture), "--framing", "dsmr", *keys],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"authenticated":false') == 2
    assert result.stderr.count("does not verify") == 1
    assert "no authentication key given" not in result.stderr
