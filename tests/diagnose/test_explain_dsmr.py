"""``amsread explain`` on DSMR P1 telegrams: lines annotated, CRC shown, rejections named.

Golden files tests/golden/explain_dsmr_*.txt hold the text output; regenerate after an
intended change with ``AMSREAD_UPDATE_GOLDEN=1 .venv/bin/pytest`` on this file
and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.cli import cli
from amsread.diagnose.explain import explain_stream, render_json, render_text
from amsread.dlms.keys import Keys
from amsread.link.dsmr import crc16_arc
from amsread.model import Message
from amsread.pipeline import Pipeline

GOLDEN = Path(__file__).parent.parent / "golden"
CORPUS = Path(__file__).parent.parent / "corpus" / "dsmr"
UPDATE = os.environ.get("AMSREAD_UPDATE_GOLDEN") == "1"
V5 = (CORPUS / "v5_iskra.txt").read_bytes()
V4 = (CORPUS / "v4_2_kaifa.txt").read_bytes()
V22 = (CORPUS / "v2_2_iskra.txt").read_bytes()
SWEDEN = (CORPUS / "se_energiforetagen_ell.txt").read_bytes()
SMARTY_AK = "00112233445566778899AABBCCDDEEFF"
TEST_EK = "000102030405060708090A0B0C0D0E0F"
TITLE = bytes.fromhex("4D4D4D0000BC614E")


def sealed(telegram: bytes, counter: int, ak: str = SMARTY_AK) -> bytes:
    """A telegram in general-glo-ciphering, as a Smarty meter sends it (tag of 12 bytes)."""
    iv = TITLE + counter.to_bytes(4, "big")
    ciphertext = AESGCM(bytes.fromhex(TEST_EK)).encrypt(iv, telegram, b"\x30" + bytes.fromhex(ak))
    body = b"\x30" + counter.to_bytes(4, "big") + ciphertext[: len(telegram)] + ciphertext[-16:-4]
    return b"\xdb\x08" + TITLE + b"\x82" + len(body).to_bytes(2, "big") + body


def with_crc(body: bytes) -> bytes:
    return body + b"%04X\r\n" % crc16_arc(body)


#: V5 with one digit changed on the line (its CRC no longer matches).
FLIPPED = V5.replace(b"000004.426", b"000004.427")
#: V5 cut after its voltage lines, then the next telegram: bytes were lost.
CUT = V5[: V5.index(b"1-0:31.7.0")] + V4
#: DSMR 2.2 (9600 7E1) read as 8N1: each byte carries its even-parity bit on top.
PARITY = bytes(b | (0x80 if bin(b).count("1") % 2 else 0) for b in V22)
#: A line no definition knows, in a telegram whose CRC matches.
UNKNOWN = with_crc(V5[: V5.index(b"!")].replace(b"0-2:24.1.0", b"XYZ-unknown\r\n0-2:24.1.0") + b"!")


def run(data: bytes, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["explain", "--capture", "-", *args], input=data)
    return result.exit_code, result.stdout


KEYS = ["--key", TEST_EK, "--auth-key", SMARTY_AK]
GOLDEN_CASES = [
    ("dsmr_v5", V5, [], 0),
    ("dsmr_v5_redacted", V5, ["--redact"], 0),
    ("dsmr_v2_2_no_crc", V22, [], 0),
    ("dsmr_sweden", SWEDEN, [], 0),
    ("dsmr_bad_crc", FLIPPED, [], 1),
    ("dsmr_cut_short", CUT, [], 1),
    ("dsmr_parity_7e1", PARITY, [], 1),
    ("dsmr_unknown_line", UNKNOWN, [], 0),
    ("dsmr_smarty", sealed(V4, 7), KEYS, 0),
    ("dsmr_smarty_tag_fails", sealed(V4, 7, ak="FF" * 16), KEYS, 0),
    ("dsmr_smarty_no_key", sealed(V4, 7), [], 1),
]


@pytest.mark.parametrize(
    ("name", "data", "args", "status"), GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES]
)
def test_explain_text_of_each_telegram_matches_its_golden_file(
    name: str, data: bytes, args: list[str], status: int
) -> None:
    code, out = run(data, *args)
    assert code == status
    path = GOLDEN / f"explain_{name}.txt"
    if UPDATE:
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8"), (
        f"regenerate with AMSREAD_UPDATE_GOLDEN=1: {path}"
    )


def test_json_output_of_a_telegram_matches_its_golden_file() -> None:
    code, out = run(V5, "--format", "json", "--redact")
    assert code == 0
    path = GOLDEN / "explain_dsmr_v5_redacted.json"
    if UPDATE:
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8")


# -- what the report says, checked without the golden files -----------------------------


def fields_of(data: bytes, keys: Keys | None = None) -> dict[str, str]:
    report = explain_stream(data, keys)
    return {f.name: f.meaning for s in report.sections for b in s.blocks for f in b.fields}


def test_every_line_is_annotated_with_code_name_value_unit_and_the_data_file() -> None:
    report = explain_stream(V5)
    [section] = report.sections
    assert report.ok and section.outcome == "decoded"
    fields = {f.name: f for f in section.blocks[0].fields}
    # 37 data lines, the identification line and the CRC line.
    assert len(section.blocks[0].fields) == 39
    assert fields["1-0:1.8.1"].meaning.startswith("active_energy_import_t1 = 4.426 kWh;")
    assert fields["1-0:1.8.1"].offset == V5.index(b"1-0:1.8.1")
    assert "dsmr.toml [objects]: a time YYMMDDhhmmssX" in fields["0-0:1.0.0"].meaning
    assert fields["0-0:96.1.1"].meaning.startswith("meter_serial = K8EG004046395507;")
    assert "M-Bus channel 1" in fields["0-1:24.2.1"].meaning
    assert "gas_delivered = 0.107 m3 (captured 2017-01-02T16:10:05+01:00)" in (
        fields["0-1:24.2.1"].meaning
    )
    assert fields["0-1:24.1.0"].meaning.startswith("mbus_device_type = 3 (gas);")
    assert "manufacturer ISk (Iskraemeco)" in fields["identification"].meaning
    crc = fields["CRC"]
    assert crc.status == "ok" and "computed 6EEE, received 6EEE: ok" in crc.meaning
    readings = {r.name: r for r in section.readings}
    assert readings["gas_delivered"].value == 0.107 and readings["gas_delivered"].unit == "m3"


def test_a_changed_digit_is_a_bad_crc_with_both_values() -> None:
    report = explain_stream(FLIPPED)
    [section] = report.sections
    assert section.kind == "damaged frame" and not report.ok
    [problem] = section.problems
    assert problem.cause == "bad_crc"
    crc = next(f for f in section.blocks[0].fields if f.name == "CRC")
    assert crc.status == "bad" and "received 6EEE: MISMATCH" in crc.meaning
    assert f"computed {crc16_arc(FLIPPED[: FLIPPED.index(b'!') + 1]):04X}" in crc.meaning


def test_a_telegram_cut_short_is_truncated_and_the_next_one_decodes() -> None:
    report = explain_stream(CUT)
    first, second = report.sections
    assert [p.cause for p in first.problems] == ["truncated"]
    assert "bytes were lost" in first.problems[0].summary
    assert "data-request line" in first.problems[0].next_step
    assert second.outcome == "decoded" and second.offset == CUT.index(b"/KFM5")
    assert "decoded 1 of 2 frames" in report.verdict


def test_a_telegram_that_stops_at_the_end_of_the_input_says_so() -> None:
    report = explain_stream(V5[:400])
    [section] = report.sections
    [problem] = section.problems
    assert problem.cause == "truncated" and "stream ended" in problem.summary
    assert "copy the complete telegram" in problem.next_step


def test_a_telegram_copied_with_lf_line_ends_is_told_apart_from_damage() -> None:
    report = explain_stream(V5.replace(b"\r\n", b"\n"))
    [problem] = report.sections[0].problems
    assert problem.cause == "bad_crc"
    assert "matches once each line ends in CR LF" in problem.summary
    assert "--capture" in problem.next_step
    damaged = explain_stream(FLIPPED.replace(b"\r\n", b"\n"))
    assert "bytes were changed or lost" in damaged.sections[0].problems[0].summary


def test_seven_bits_with_parity_read_as_eight_is_named() -> None:
    report = explain_stream(PARITY)
    assert [p.cause for s in report.sections for p in s.problems] == ["seven_bits"]
    assert "7E1" in report.sections[0].problems[0].next_step


def test_a_line_with_no_code_is_kept_and_warned_about() -> None:
    report = explain_stream(UNKNOWN)
    [section] = report.sections
    assert report.ok and section.outcome == "decoded"
    [problem] = section.problems
    assert problem.cause == "unknown_line" and problem.severity == "warning"
    unknown = next(f for f in section.blocks[0].fields if f.name == "?")
    assert unknown.status == "bad" and "XYZ-unknown" in unknown.meaning
    assert any(r.obis is None and r.value == "XYZ-unknown" for r in section.readings)


def test_smarty_header_fields_and_the_decrypted_telegram() -> None:
    keys = Keys(bytes.fromhex(TEST_EK), bytes.fromhex(SMARTY_AK))
    report = explain_stream(sealed(V4, 7), keys)
    [section] = report.sections
    assert report.ok and section.outcome == "decoded"
    header = {f.name: f for f in section.blocks[0].fields}
    assert header["APDU tag"].hex == "DB"
    assert header["system title"].hex == TITLE.hex().upper()
    assert header["invocation counter"].meaning.startswith("7 ")
    assert header["authentication tag"].meaning.endswith("verified")
    assert section.blocks[1].title.startswith("Decrypted telegram")
    assert any(f.name == "CRC" and f.status == "ok" for f in section.blocks[1].fields)


def test_smarty_tag_that_fails_still_decodes_by_the_crc_with_a_warning() -> None:
    keys = Keys(bytes.fromhex(TEST_EK), bytes.fromhex(SMARTY_AK))
    report = explain_stream(sealed(V4, 7, ak="FF" * 16), keys)
    [section] = report.sections
    assert report.ok and section.outcome == "decoded"
    assert [(p.cause, p.severity) for p in section.problems] == [("unauthenticated", "warning")]
    tag = next(f for f in section.blocks[0].fields if f.name == "authentication tag")
    assert tag.status == "bad" and "MISMATCH" in tag.meaning


def test_smarty_without_key_needs_one() -> None:
    report = explain_stream(sealed(V4, 7))
    assert [p.cause for s in report.sections for p in s.problems] == ["no_key"]


def test_redact_hides_the_meter_and_gas_meter_ids_in_text_and_hex() -> None:
    out = render_json(explain_stream(V5, redact=True))
    for secret in ("K8EG004046395507", "4B384547303034303436333935353037", "2222ABCD123456789"):
        assert secret not in out
    assert secret.encode().hex().upper() not in out
    assert "<meter-id-1>" in out and "<device-id-1>" in out
    assert json.loads(out)["redacted"] is True


def test_hdlc_input_is_still_explained_as_hdlc() -> None:
    # An HDLC frame with a ciphered APDU holds "DB 08": it is no telegram for all that.
    import seed_vectors as sv

    report = explain_stream(sv.RADIUS_FRAME)
    assert report.sections[0].summary.startswith("HDLC")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(V5) + len(V4) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(V5) + len(V4)),
)
def test_explain_of_damaged_telegrams_never_fails_and_names_every_loss(
    changes: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(V5 + V4)
    for index, value in changes:
        data[index] = value
    damaged = bytes(data[:cut])
    report = explain_stream(damaged)
    render_text(report)
    render_json(report)
    # explain and the daemon agree: what one decodes, the other does.
    pipeline = Pipeline(framing="dsmr")
    messages = [e for e in pipeline.feed(damaged) + pipeline.close() if isinstance(e, Message)]
    assert sum(s.outcome == "decoded" for s in report.sections) == len(messages)
    if not report.ok:
        assert any(s.problems for s in report.sections) or "nothing to explain" in report.verdict


def test_intact_telegrams_back_to_back_all_decode() -> None:
    report = explain_stream(V5 + V4 + V5)
    assert report.ok and [s.outcome for s in report.sections] == ["decoded"] * 3
    # A CRC-less telegram after ones with a CRC is a damaged one, as the daemon says.
    report = explain_stream(V5 + V22)
    assert [p.cause for s in report.sections for p in s.problems] == ["bad_crc"]
    assert "without CRC from a meter that sends one" in report.sections[1].problems[0].summary


def test_a_unit_the_specifications_do_not_give_is_marked() -> None:
    odd = with_crc(V5[: V5.index(b"!")].replace(b"000004.426*kWh", b"000004.426*MWh") + b"!")
    report = explain_stream(odd)
    assert report.ok  # read as sent all the same
    line = next(f for f in report.sections[0].blocks[0].fields if f.name == "1-0:1.8.1")
    assert line.status == "bad"
    assert line.meaning.endswith("unit MWh where the specifications give kWh or Wh")
    fine = next(f for f in explain_stream(V5).sections[0].blocks[0].fields if f.name == "1-0:1.8.1")
    assert fine.status == "" and "specifications" not in fine.meaning


def test_a_gas_meter_without_data_is_a_reading_without_unit() -> None:
    report = explain_stream((CORPUS / "v5_iskra_two_mbus.txt").read_bytes())
    gas = [f for f in report.sections[0].blocks[0].fields if f.name.endswith(":24.2.1")]
    # Channel 1 holds a meter that sent no data (0, no unit), channel 2 one in m3.
    assert [f.status for f in gas] == ["bad", ""]
    assert "no unit where the specifications give m3" in gas[0].meaning
