"""Redaction: identities out, structure kept; redacted captures still frame."""

from __future__ import annotations

from dataclasses import dataclass

import seed_vectors as sv
from builders import cipher_apdu, hdlc_frame, mbus_segments
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.diagnose.redact import CaptureRedactor, Redactor, is_identifying
from amsread.dlms.ciphering import parse_ciphered
from amsread.link.hdlc import HdlcFrame, HdlcFramer
from amsread.link.mbus import MbusMessage, MbusReassembler
from amsread.model import Message, Rejected
from amsread.pipeline import Pipeline

RADIUS_SERIAL = bytes.fromhex("01A4DC52")


def frames_of(data: bytes) -> list[HdlcFrame | Rejected]:
    framer = HdlcFramer()
    return [*framer.feed(data), *framer.close()]


def redact_all(data: bytes, chunk: int = 0) -> tuple[bytes, CaptureRedactor]:
    redactor = CaptureRedactor()
    size = chunk or len(data) or 1
    out = b"".join(redactor.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + redactor.close(), redactor


# -- Redactor ----------------------------------------------------------------------


def test_same_value_gets_the_same_placeholder_numbered_by_appearance() -> None:
    redactor = Redactor()
    assert redactor.add("serial", "27581522") == "<serial-1>"
    assert redactor.add("meter-id", "5706567286399553") == "<meter-id-1>"
    assert redactor.add("serial", "74220468") == "<serial-2>"
    assert redactor.add("meter-id", "27581522") == "<serial-1>"
    assert redactor.text("27581522 and 74220468") == "<serial-1> and <serial-2>"


def test_longer_values_are_replaced_before_their_substrings() -> None:
    redactor = Redactor()
    redactor.add("serial", "1234")
    redactor.add("meter-id", "991234")
    assert redactor.text("id 991234, serial 1234") == "id <meter-id-1>, serial <serial-1>"


def test_short_values_are_not_replaced_in_free_text() -> None:
    redactor = Redactor()
    redactor.add("serial", "12")
    assert redactor.text("12 V at 12:00") == "12 V at 12:00"


def test_hex_dumps_mask_registered_bytes_on_byte_boundaries_only() -> None:
    redactor = Redactor()
    redactor.add("serial", data=bytes.fromhex("A4DC"))
    assert redactor.hex("01A4DC52") == "01xxxx52"
    # "4A4D" sits across a byte boundary here: not a match.
    assert redactor.hex("14A4DC") == "14xxxx"
    assert redactor.hex("0A4DC0") == "0A4DC0"


@dataclass
class _Field:
    hex: str
    meaning: str
    value: int | str | None


def test_apply_rewrites_hex_fields_text_and_numbers_in_dataclasses() -> None:
    redactor = Redactor()
    redactor.add("serial", "27581522", RADIUS_SERIAL)
    report = [_Field("0601A4DC52", "meter number 27581522", 27581522)]
    [field] = redactor.apply(report)
    assert field == _Field("06xxxxxxxx", "meter number <serial-1>", "<serial-1>")


def test_identifying_readings() -> None:
    assert is_identifying("meter_id", "1.1.0.0.5.255", "5706567286399553")
    assert is_identifying(None, None, "178210001107")  # Austrian trailing serial
    assert not is_identifying("voltage_l1", "1.0.32.7.0.255", 230)
    assert not is_identifying(None, None, "1234")


# -- CaptureRedactor ---------------------------------------------------------------------


def test_redacted_radius_frame_still_frames_and_keeps_everything_but_the_serial() -> None:
    out, redactor = redact_all(sv.RADIUS_FRAME)
    assert redactor.frames_redacted == 1
    assert len(out) == len(sv.RADIUS_FRAME)
    assert RADIUS_SERIAL not in out
    [frame] = frames_of(out)
    assert isinstance(frame, HdlcFrame)
    ciphered = parse_ciphered(frame.information[3:])
    assert ciphered.system_title[:4] == b"KAME"  # maker and device type kept
    assert ciphered.invocation_counter == sv.RADIUS_INVOCATION_COUNTER
    assert ciphered.security_control == 0x30


def test_am550_stream_keeps_its_line_errors_and_gets_one_placeholder_per_meter() -> None:
    out, redactor = redact_all(sv.AM550_STREAM)
    assert len(out) == len(sv.AM550_STREAM)
    assert redactor.frames_redacted == 12
    before = [(type(e).__name__, getattr(e, "reason", "")) for e in frames_of(sv.AM550_STREAM)]
    after = [(type(e).__name__, getattr(e, "reason", "")) for e in frames_of(out)]
    assert before == after
    titles = {
        parse_ciphered(e.information[3:]).system_title
        for e in frames_of(out)
        if isinstance(e, HdlcFrame)
    }
    # Three meters in the thread, three placeholders; none of the real serials.
    assert len(titles) == 3
    assert all(t.startswith(b"ISKi") for t in titles)
    for serial in ("6C83B4", "92ED66", "56F2C3"):
        assert bytes.fromhex(serial) not in out


def test_plaintext_push_meter_id_is_replaced_and_the_frame_still_decodes() -> None:
    frame = hdlc_frame(b"\xe6\xe7\x00" + sv.NORWEGIAN_LIST_PLAINTEXT)
    out, redactor = redact_all(frame)
    assert redactor.frames_redacted == 1
    assert b"5706567286399553" not in out
    [message] = Pipeline().feed(out)
    assert isinstance(message, Message)
    readings = {r.obis: r.value for r in message.readings}
    assert readings["1.1.0.0.5.255"] == "0000000000000001"
    assert readings["1.1.1.7.0.255"] == 169


def test_austrian_trailing_serial_is_replaced() -> None:
    frame = hdlc_frame(b"\xe6\xe7\x00" + sv.KAIFA_AT_PLAINTEXT)
    out, _ = redact_all(frame)
    assert b"178210001107" not in out
    [message] = Pipeline().feed(out)
    assert isinstance(message, Message)
    assert message.readings[-1].value == "000000000001"


def test_client_server_traffic_passes_unchanged() -> None:
    out, redactor = redact_all(sv.GURUX_SESSION)
    assert out == sv.GURUX_SESSION and redactor.frames_redacted == 0


def test_garbage_passes_unchanged_but_a_truncated_frame_loses_its_serial() -> None:
    noise = b"\x00\xff noise"
    out, _ = redact_all(noise + sv.NORWEGIAN_LIST_TRUNCATED_FRAME)
    assert out.startswith(noise)
    assert len(out) == len(noise) + len(sv.NORWEGIAN_LIST_TRUNCATED_FRAME)
    assert bytes.fromhex("01B502D3") not in out  # system title 4B414D4501B502D3
    assert b"KAME" in out


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=300))
def test_output_does_not_depend_on_how_the_stream_was_chunked(chunk: int) -> None:
    whole, _ = redact_all(sv.AM550_STREAM)
    assert redact_all(sv.AM550_STREAM, chunk)[0] == whole


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_every_byte_comes_out_once_whatever_the_input(data: bytes) -> None:
    out, _ = redact_all(data, 17)
    assert len(out) == len(data)


def test_mbus_capture_is_redacted_and_its_checksums_still_hold() -> None:
    apdu = cipher_apdu(sv.RADIUS_PLAINTEXT, key=bytes(16), system_title=b"SAGY\x05\xe6\xa3\x13")
    stream = b"".join(mbus_segments(apdu, [200, 200]))
    out, redactor = redact_all(stream, 7)
    assert redactor.frames_redacted == 1
    assert len(out) == len(stream) and bytes.fromhex("05E6A313") not in out
    link = MbusReassembler()
    [message] = [e for e in [*link.feed(out), *link.close()] if isinstance(e, MbusMessage)]
    assert message.apdu[2:6] == b"SAGY"
