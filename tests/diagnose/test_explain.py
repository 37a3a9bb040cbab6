"""``amsread explain``: every seed vector gets the right named cause, and the output is stable.

Golden files in tests/golden/ hold the text output for the seed vectors. After an
intended change of the output, regenerate them with::

    AMSREAD_UPDATE_GOLDEN=1 .venv/bin/pytest tests/diagnose/test_explain.py

and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import seed_vectors as sv
from builders import cipher_apdu, gbt_blocks, hdlc_frame, hdlc_segments, mbus_segments
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.cli import cli
from amsread.diagnose.explain import (
    diagnose_garbage,
    explain_apdus,
    explain_stream,
    render_json,
    render_text,
)
from amsread.dlms import axdr
from amsread.dlms.keys import Keys, parse_key
from amsread.link.hdlc import HdlcFramer
from amsread.link.mbus import MbusFramer
from amsread.model import Failure, Rejected
from amsread.pipeline import Pipeline
from amsread.readings.manufacturers import decode_system_title

GOLDEN = Path(__file__).parent.parent / "golden"
UPDATE = os.environ.get("AMSREAD_UPDATE_GOLDEN") == "1"
KEYS = ["--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["explain", *args])
    return result.exit_code, result.stdout


def radius_keys() -> Keys:
    return Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))


def causes(text: str) -> list[str]:
    return [line.split("(")[1].split(")")[0] for line in text.splitlines() if "problem (" in line]


# -- golden files ----------------------------------------------------------------

GOLDEN_CASES = [
    ("radius", [sv.RADIUS_FRAME.hex(), *KEYS], 0),
    ("radius_no_key", [sv.RADIUS_FRAME.hex()], 1),
    ("radius_redacted", [sv.RADIUS_FRAME.hex(), *KEYS, "--redact"], 0),
    ("am550_stream", [sv.AM550_STREAM.hex()], 1),
    ("kamstrup_truncated_log", [sv.NORWEGIAN_LIST_TRUNCATED_FRAME.hex()], 1),
    ("kamstrup_norwegian_plaintext", [sv.NORWEGIAN_LIST_PLAINTEXT.hex()], 0),
    ("kaifa_example_key", [sv.KAIFA_AT_CIPHERED.hex(), "--key", sv.KAIFA_AT_KEY], 1),
    ("kaifa_plaintext", [sv.KAIFA_AT_PLAINTEXT.hex()], 0),
    ("gurux_session", [sv.GURUX_SESSION.hex()], 1),
]


@pytest.mark.parametrize(("name", "args", "status"), GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_explain_text_of_each_seed_vector_matches_its_golden_file(
    name: str, args: list[str], status: int
) -> None:
    code, out = run(*args)
    assert code == status
    path = GOLDEN / f"explain_{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8"), (
        f"regenerate with AMSREAD_UPDATE_GOLDEN=1: {path}"
    )


def test_explain_output_is_deterministic_and_plain_when_not_a_terminal() -> None:
    first = run(sv.AM550_STREAM.hex())[1]
    assert first == run(sv.AM550_STREAM.hex())[1]
    assert "\x1b[" not in first


# -- the acceptance causes, one per seed vector ----------------------------------------


def test_am550_frame_of_99_bytes_is_six_bytes_missing_with_fcs_mismatch() -> None:
    report = explain_stream(sv.AM550_STREAM)
    damaged = [s for s in report.sections if s.kind == "damaged frame"]
    first = damaged[0]
    assert first.size == 99
    [problem] = first.problems
    assert problem.cause == "truncated"
    assert problem.summary.startswith("6 bytes missing")
    assert "IR head's alignment and the baud rate" in problem.next_step
    fcs = next(f for f in first.blocks[0].fields if f.name == "FCS")
    assert fcs.status == "bad" and "MISMATCH" in fcs.meaning
    # It even shows where: the LLC header lost its third byte.
    assert any("LLC header is cut short" in note for note in first.notes)


def test_am550_frame_of_96_bytes_is_a_damaged_header_with_nine_bytes_missing() -> None:
    report = explain_stream(sv.AM550_STREAM)
    second = [s for s in report.sections if s.kind == "damaged frame"][1]
    assert second.size == 96
    assert "9 bytes missing" in second.problems[0].summary
    hcs = next(f for f in second.blocks[0].fields if f.name == "HCS")
    assert hcs.status == "bad"


def test_am550_intact_frames_are_iskraemeco_encrypted_and_need_a_key() -> None:
    report = explain_stream(sv.AM550_STREAM)
    frames = [s for s in report.sections if s.kind == "frame"]
    assert len(frames) == 12
    assert {p.cause for s in frames for p in s.problems} == {"no_key"}
    title = next(f for f in frames[1].blocks[1].fields if f.name == "system title")
    # The Gurux translator decodes this title as ISK, serial 74220468.
    assert "ISK = Iskraemeco" in title.meaning and "serial 74220468" in title.meaning
    control = next(f for f in frames[1].blocks[1].fields if f.name == "security control")
    assert control.meaning.startswith("0x20: encrypted;")
    counter = next(f for f in frames[1].blocks[1].fields if f.name == "invocation counter")
    assert counter.meaning.startswith("242137")
    assert not report.ok


def test_truncated_kamstrup_frame_from_a_firmware_log_says_the_input_ends_inside_it() -> None:
    report = explain_stream(sv.NORWEGIAN_LIST_TRUNCATED_FRAME)
    [section] = report.sections
    [problem] = section.problems
    assert problem.cause == "truncated"
    assert "1 byte missing at the end: the input stops inside the frame" in problem.summary
    assert "256" in problem.summary
    # What did arrive is still annotated: Kamstrup's system title and the security header.
    meanings = " ".join(f.meaning for f in section.blocks[0].fields)
    assert "KAM = Kamstrup" in meanings and "0x30: authenticated and encrypted" in meanings


def test_kaifa_example_with_the_documentation_key_is_a_wrong_key_not_an_apdu() -> None:
    keys = Keys(parse_key(sv.KAIFA_AT_KEY))
    report = explain_apdus([sv.KAIFA_AT_CIPHERED], keys)
    [section] = report.sections
    [problem] = section.problems
    # The cause explain names is the reason the pipeline counts and logs for the same bytes.
    [failure] = Pipeline(keys).feed_apdu(sv.KAIFA_AT_CIPHERED)
    assert isinstance(failure, Failure) and failure.reason == "decrypt_failed"
    assert problem.cause == "decrypt_failed"
    assert "no APDU" in problem.summary
    assert "check-key" in problem.next_step
    assert section.readings == []
    assert "SAG = Sagemcom" in render_text(report)


def test_radius_frame_decodes_with_every_layer_annotated() -> None:
    report = explain_stream(sv.RADIUS_FRAME, radius_keys())
    assert report.ok
    [section] = report.sections
    fields = {f.name: f for b in section.blocks for f in b.fields}
    for name in ("flag", "frame format", "destination address", "source address", "control"):
        assert name in fields
    assert fields["HCS"].status == "ok" and fields["FCS"].status == "ok"
    assert fields["control"].meaning.startswith("UI")
    assert fields["LLC"].meaning.startswith("response")
    assert fields["system title"].meaning.startswith("KAM = Kamstrup")
    assert "serial 27581522" in fields["system title"].meaning
    assert fields["length"].meaning == "464 bytes (long form, 2 length bytes)"
    assert "authenticated and encrypted; suite 0" in fields["security control"].meaning
    assert fields["invocation counter"].meaning.startswith(str(sv.RADIUS_INVOCATION_COUNTER))
    assert fields["authentication tag"].meaning.endswith("verified")
    assert fields["date-time"].meaning.startswith(sv.RADIUS_METER_TIME)
    readings = [(r.obis, r.value, r.unit) for r in section.readings]
    assert readings[1:] == sv.RADIUS_READINGS
    assert section.profile is not None and section.profile.chosen == "kamstrup-dk"
    assert "65" in section.profile.reason
    current = next(t for t in section.tree if t.note.startswith("× 10^-2"))
    assert current.type == "double-long-unsigned"


def test_tree_names_obis_codes_and_applies_sent_scalers() -> None:
    report = explain_apdus([sv.KAIFA_AT_PLAINTEXT])
    notes = [t.note for t in report.sections[0].tree]
    assert "OBIS code: voltage_l1" in notes
    assert "scaler -1, unit 35 (V)" in notes
    assert "× 10^-1 (sent by the meter) = 229.7 V" in notes
    assert any(n.startswith("meter time 2016-01-04T23:34:35+01:00") for n in notes)


def test_gurux_session_is_named_snrm_ua_aarq_aare_and_not_push_messages() -> None:
    report = explain_stream(sv.GURUX_SESSION)
    summaries = [s.summary for s in report.sections]
    assert summaries[0] == "HDLC SNRM" and summaries[1] == "HDLC UA"
    assert "AARQ (association request)" in summaries[2]
    assert "AARE (association response)" in summaries[3]
    [problem] = report.problems
    assert problem.cause == "not_push"
    assert "SNRM, UA, AARQ, AARE" in problem.summary
    assert not report.ok


def test_exit_status_is_0_when_everything_decoded_and_1_otherwise() -> None:
    assert run(sv.RADIUS_FRAME.hex(), *KEYS)[0] == 0
    assert run(sv.RADIUS_FRAME.hex(), "--key", sv.RADIUS_KEY, "--auth-key", "00" * 16)[0] == 1
    assert run("zz")[0] == 2


def test_wrong_authentication_key_is_a_tag_failure_with_check_key_as_next_step() -> None:
    report = explain_stream(sv.RADIUS_FRAME, Keys(parse_key(sv.RADIUS_KEY), bytes(16)))
    [problem] = report.sections[0].problems
    assert problem.cause == "auth_failed"
    assert "check-key" in problem.next_step


def test_swapped_keys_still_decode_with_a_warning() -> None:
    keys = Keys(parse_key(sv.RADIUS_AUTH_KEY), parse_key(sv.RADIUS_KEY))
    report = explain_stream(sv.RADIUS_FRAME, keys)
    [problem] = report.sections[0].problems
    assert (problem.cause, problem.severity) == ("keys_swapped", "warning")
    assert report.sections[0].outcome == "decoded"


def test_keys_never_appear_in_text_or_json() -> None:
    for fmt in ("text", "json"):
        _, out = run(sv.RADIUS_FRAME.hex(), *KEYS, "--format", fmt)
        for key in (sv.RADIUS_KEY, sv.RADIUS_AUTH_KEY):
            assert key not in out.upper()
            assert key.lower() not in out


def test_json_format_is_the_same_breakdown_as_data() -> None:
    code, out = run(sv.RADIUS_FRAME.hex(), *KEYS, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True
    [section] = data["sections"]
    assert section["outcome"] == "decoded"
    titles = [b["title"] for b in section["blocks"]]
    assert titles[0].startswith("HDLC frame") and titles[-1].startswith("Decrypted APDU")
    assert section["readings"][1] == {
        "obis": "1.1.1.8.0.255",
        "name": "active_energy_import",
        "value": 866636,
        "unit": "Wh",
    }
    report = explain_stream(sv.RADIUS_FRAME, radius_keys(), source="hex argument")
    assert render_json(report) == out


def test_color_always_adds_ansi_codes_never_removes_them() -> None:
    assert "\x1b[" in run(sv.AM550_STREAM.hex(), "--color", "always")[1]
    assert "\x1b[" not in run(sv.AM550_STREAM.hex(), "--color", "never")[1]


def test_redact_replaces_serials_and_meter_ids_with_stable_placeholders() -> None:
    _, out = run(sv.RADIUS_FRAME.hex(), *KEYS, "--redact")
    assert "27581522" not in out and "A4 DC 52" not in out
    assert "4B 41 4D 45 xx xx xx xx" in out
    # The meter number equals the system-title serial: one placeholder for both.
    assert out.count("<serial-1>") >= 3 and "<serial-2>" not in out
    _, plain = run(sv.NORWEGIAN_LIST_PLAINTEXT.hex(), "--redact")
    assert "5706567286399553" not in plain and "<meter-id-1>" in plain
    assert "35 37 30 36" not in plain  # its ASCII bytes in the hex column too
    _, data = run(sv.NORWEGIAN_LIST_PLAINTEXT.hex(), "--redact", "--format", "json")
    assert "5706567286399553" not in data and json.loads(data)["redacted"] is True


def test_limit_shows_the_first_frames_and_counts_the_rest() -> None:
    report = explain_stream(sv.AM550_STREAM, limit=3)
    assert len(report.sections) == 3
    assert sum(report.omitted.values()) == 11
    assert "use --limit 0" in render_text(report)


def test_input_options_are_exclusive_and_files_work(tmp_path: Path) -> None:
    hexfile = tmp_path / "frames.txt"
    hexfile.write_text(f"# a push\n{sv.RADIUS_FRAME.hex()}\n")
    capture = tmp_path / "capture.bin"
    capture.write_bytes(sv.RADIUS_FRAME)
    assert run("--file", str(hexfile), *KEYS)[0] == 0
    assert run("--capture", str(capture), *KEYS)[0] == 0
    result = CliRunner().invoke(cli, ["explain", "--file", str(hexfile), "--capture", "x"])
    assert result.exit_code == 2 and "exactly one input" in result.stderr


def test_a_file_of_apdus_is_explained_one_per_line(tmp_path: Path) -> None:
    hexfile = tmp_path / "apdus.txt"
    hexfile.write_text(f"{sv.NORWEGIAN_LIST_PLAINTEXT.hex()}\n{sv.KAIFA_AT_PLAINTEXT.hex()}\n")
    code, out = run("--file", str(hexfile))
    assert code == 0
    assert "Result: decoded 2 of 2 APDUs" in out


# -- damaged frames and line problems -----------------------------------------------------


def test_a_changed_byte_is_a_frame_checksum_mismatch_not_missing_bytes() -> None:
    frame = bytearray(sv.RADIUS_FRAME)
    frame[100] ^= 0x10
    report = explain_stream(bytes(frame), radius_keys())
    [section] = report.sections
    [problem] = section.problems
    assert problem.cause == "bad_fcs"
    assert "computed" in problem.summary


def test_bytes_with_the_top_bit_cleared_point_to_seven_data_bits() -> None:
    seven_bit = bytes(b & 0x7F for b in sv.RADIUS_FRAME)
    report = explain_stream(seven_bit)
    assert causes(render_text(report)) == ["seven_bits"]
    assert "8N1" in report.sections[0].problems[0].next_step


def test_runs_of_equal_bits_point_to_a_baud_rate_too_high() -> None:
    sampled = bytes([0x00, 0xFF, 0xF0, 0x80, 0xFE, 0xC0, 0x00, 0xE0] * 8)
    problem = diagnose_garbage(sampled, at_start=True, whole=True)
    assert problem is not None and problem.cause == "baud_rate"


def test_a_dsmr_text_telegram_is_recognised() -> None:
    telegram = b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.0(000123.456*kWh)\r\n!1234\r\n"
    # Text among binary frames is named as a telegram; explain on telegrams alone
    # annotates them (tests/diagnose/test_explain_dsmr.py): this one's CRC is wrong.
    problem = diagnose_garbage(telegram, at_start=True, whole=True)
    assert problem is not None
    assert problem.cause == "text_telegram"
    assert "--framing dsmr" in problem.next_step
    report = explain_stream(telegram)
    assert report.sections[0].summary == "DSMR P1 telegram damaged on the line"
    assert [p.cause for p in report.sections[0].problems] == ["bad_crc"]


def test_noise_without_frames_names_the_serial_settings() -> None:
    noise = bytes((i * 37 + 11) % 251 for i in range(40))
    problem = diagnose_garbage(noise, at_start=True, whole=True)
    assert problem is not None and problem.cause == "no_frames"
    assert "9600" in problem.next_step


def test_a_capture_starting_mid_frame_is_a_note_and_still_decodes() -> None:
    stream = sv.RADIUS_FRAME[200:] + sv.RADIUS_FRAME
    report = explain_stream(stream, radius_keys())
    assert report.ok
    assert report.sections[0].kind == "garbage"
    assert "middle of a frame" in report.sections[0].notes[0]


def test_plaintext_push_without_obis_codes_needs_a_profile() -> None:
    body = bytes.fromhex("0203" + "0600000001" + "0600000002" + "12000a")
    apdu = bytes.fromhex("0f00000001" + "00") + body
    report = explain_apdus([apdu])
    [problem] = report.sections[0].problems
    assert problem.cause == "unknown_layout"
    assert not report.ok


def test_no_key_for_authenticated_frames_asks_for_both_keys() -> None:
    [problem] = explain_stream(sv.RADIUS_FRAME).sections[0].problems
    assert problem.cause == "no_key"
    assert "--key" in problem.next_step and "--auth-key" in problem.next_step


def test_ciphered_get_response_is_named_and_not_a_push() -> None:
    key, auth = bytes(range(16)), bytes(range(16, 32))
    apdu = cipher_apdu(bytes.fromhex("c401c1000600000001"), key=key, auth_key=auth)
    report = explain_apdus([apdu], Keys(key, auth))
    assert "get-response" in report.sections[0].summary
    assert report.sections[0].outcome == "skipped"


# -- segmented messages, block transfer, M-Bus ------------------------------------------


def test_hdlc_segments_are_joined_and_the_last_one_explains_the_message() -> None:
    information = sv.RADIUS_FRAME[8:-3]
    stream = hdlc_segments(information, [150, 150])
    report = explain_stream(stream, radius_keys())
    assert report.ok
    assert [s.outcome for s in report.sections] == ["segment", "segment", "decoded"]
    assert report.verdict == "decoded 1 of 1 messages (3 frames)"
    assert "APDU joined from 3 segments" in render_text(report)


def test_a_segment_whose_message_never_completes_is_named() -> None:
    information = sv.RADIUS_FRAME[8:-3]
    first_segment = hdlc_segments(information, [150, 150]).split(b"\x7e\x7e")[0] + b"\x7e"
    report = explain_stream(first_segment + sv.RADIUS_FRAME, radius_keys())
    lost, complete = report.sections
    assert lost.problems[0].cause == "segments_lost"
    assert "new message started" in lost.problems[0].summary
    assert complete.outcome == "decoded"


def test_a_message_joined_after_a_lost_middle_segment_is_malformed_and_says_why() -> None:
    information = sv.RADIUS_FRAME[8:-3]
    first, _, _ = hdlc_segments(information, [150, 150]).partition(b"\x7e\x7e")
    stream = first + b"\x7e" + hdlc_frame(information[300:])
    report = explain_stream(stream, radius_keys())
    assert "bad_apdu" in report.verdict
    assert any("segment lost on the line" in n for n in report.sections[-1].notes)


def test_am550_swiss_segmented_push_decodes() -> None:
    report = explain_stream(sv.AM550_CH_SEGMENTED)
    assert report.ok
    assert report.sections[-1].readings


def test_general_block_transfer_blocks_are_joined() -> None:
    apdu = sv.RADIUS_FRAME[11:-3]
    frames = b"".join(hdlc_frame(b"\xe6\xe7\x00" + b) for b in gbt_blocks(apdu, 3))
    report = explain_stream(frames, radius_keys())
    assert report.ok
    text = render_text(report)
    assert "APDU joined from 3 blocks" in text and "block control" in text


def test_landis_gyr_e450_block_transfer_decodes_with_capture_objects() -> None:
    report = explain_stream(sv.E450_GBT_FRAMES)
    assert report.ok
    assert report.sections[-1].readings


def test_mbus_segments_are_framed_annotated_and_joined() -> None:
    stream = b"".join(mbus_segments(sv.KAIFA_AT_PLAINTEXT, [120]))
    report = explain_stream(stream)
    assert report.ok
    text = render_text(report)
    assert "M-Bus frame" in text and "DLMS transport layer: segment 0" in text
    assert "checksum: ok" in text


def test_damaged_mbus_frame_names_the_checksum() -> None:
    stream = bytearray(b"".join(mbus_segments(sv.KAIFA_AT_PLAINTEXT, [120])))
    stream[50] ^= 0x01
    report = explain_stream(bytes(stream))
    assert "bad_checksum" in report.verdict and not report.ok


# -- building blocks ------------------------------------------------------------------


def test_system_titles_decode_to_maker_function_type_and_serial() -> None:
    iskra = decode_system_title(bytes.fromhex("49534B69746C83B4"))
    assert (iskra.flag, iskra.maker, iskra.serial) == ("ISK", "Iskraemeco", 74220468)
    assert iskra.functions == ["disconnector", "load management", "multi-utility"]
    kamstrup = decode_system_title(bytes.fromhex(sv.RADIUS_SYSTEM_TITLE))
    assert (kamstrup.maker, kamstrup.serial) == ("Kamstrup", 27581522)
    assert decode_system_title(b"KFM12345").serial == "12345"
    assert decode_system_title(bytes(8)).flag is None


def test_decode_node_gives_offsets_and_the_same_values_as_decode() -> None:
    root = axdr.decode_node(sv.RADIUS_PLAINTEXT, 18)
    assert root.value == axdr.decode(sv.RADIUS_PLAINTEXT, 18)[0]
    assert (root.start, root.content, root.end) == (18, 20, len(sv.RADIUS_PLAINTEXT))
    first = root.children[0]
    assert (first.type_name, first.value, first.start, first.content) == (
        "visible-string",
        "Kamstrup_V0001",
        20,
        22,
    )
    assert root.children[0].value is root.value[0]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_explain_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    for report in (explain_stream(data), explain_apdus([data]) if data else None):
        if report is not None:
            render_text(report)
            render_json(report)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(sv.RADIUS_FRAME) - 1), st.integers(1, 255))
def test_explain_never_raises_on_a_damaged_real_frame(position: int, flip: int) -> None:
    frame = bytearray(sv.RADIUS_FRAME)
    frame[position] ^= flip
    report = explain_stream(bytes(frame), radius_keys())
    assert not report.ok
    render_text(report)


def test_pasted_hex_that_is_no_frame_says_so_and_hints_at_a_decryption_gone_wrong() -> None:
    # The "notify.data" a forum user pasted: output of a decryption with a wrong key.
    notify = "0518E0D220A2155A83C885037DEF760BD867D5215F324ABBD4AE15776A1F0459DEE80FAB5DF1D1974903"
    code, out = run(notify)
    assert code == 1
    assert causes(out) == ["not_a_frame"]
    assert "decryption tool" in out


def test_problems_of_frames_past_the_limit_still_count_in_the_verdict() -> None:
    report = explain_stream(sv.AM550_STREAM * 2, limit=5)
    assert report.verdict == "decoded 0 of 28 frames; problems: 24× no_key, 4× truncated"


# -- fields where the framer found them --------------------------------------------


@pytest.mark.parametrize(
    ("data", "framer"),
    [(sv.RADIUS_FRAME, HdlcFramer), (sv.KAIFA_NOE_MBUS, MbusFramer)],
)
def test_each_frame_field_is_shown_where_the_framer_put_it(
    data: bytes, framer: type[HdlcFramer] | type[MbusFramer]
) -> None:
    frames = [e for e in framer().feed(data) if not isinstance(e, Rejected)]
    report = explain_stream(data, limit=0)
    frame_sections = [s for s in report.sections if s.kind == "frame"]
    assert len(frame_sections) == len(frames) > 0
    for section, frame in zip(frame_sections, frames, strict=True):
        assert section.offset == frame.offset
        link_blocks = [b for b in section.blocks if b.title.startswith(("HDLC frame", "M-Bus"))]
        shown = {f.offset: f.hex for block in link_blocks for f in block.fields}
        for span in frame.spans:
            if span.name not in ("llc", "information"):  # shown in the APDU's blocks
                assert shown[span.start] == span.of(frame.raw).hex().upper(), span
