"""No silent failure: a replay that decodes nothing says why in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import seed_vectors as sv
from click.testing import CliRunner

from amsread.app.cli import cli
from amsread.diagnose.silence import PATIENCE, SilenceWatch

CORPUS = Path(__file__).parent.parent / "corpus" / "swiss_vse"


def replay(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["replay", str(path), *args])
    return result.exit_code, result.stdout, result.stderr


def e360_frame() -> bytes:
    lines = (CORPUS / "e360_cfg2026.hex").read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if line.startswith("7E")).replace(" ", ""))


def causes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "nothing decoded:" in line]


def test_a_dsmr_text_telegram_is_named(tmp_path: Path) -> None:
    capture = tmp_path / "p1.txt"
    capture.write_bytes(b"/ISK5\\2M550T-1013\r\n\r\n1-0:1.8.0(000123.456*kWh)\r\n!ABCD\r\n")
    status, out, err = replay(capture)
    assert status == 1 and out == ""
    [line] = causes(err)
    assert "text telegram (DSMR" in line


def test_hex_text_of_bare_apdus_points_to_framing_raw(tmp_path: Path) -> None:
    capture = tmp_path / "apdus.txt"
    capture.write_text(sv.KAIFA_AT_PLAINTEXT.hex() + "\n" + sv.KAIFA_AT_PLAINTEXT.hex() + "\n")
    status, _, err = replay(capture)
    assert status == 1
    [line] = causes(err)
    assert "--framing raw" in line
    status, out, _ = replay(capture, "--framing", "raw")
    assert status == 0 and len(out.splitlines()) == 2  # the advice works


def test_a_seven_bit_stream_names_the_serial_setting(tmp_path: Path) -> None:
    capture = tmp_path / "seven.bin"
    capture.write_bytes(bytes(b & 0x7F for b in e360_frame()) * 3)
    status, _, err = replay(capture)
    assert status == 1
    [line] = causes(err)
    assert "7 data bits" in line and "8N1" in line


def test_a_run_that_decodes_says_nothing_of_the_kind(tmp_path: Path) -> None:
    capture = tmp_path / "ok.bin"
    capture.write_bytes(e360_frame())
    status, _, err = replay(capture)
    assert status == 0 and causes(err) == []


def test_encrypted_frames_without_a_key_are_named_once_by_their_failure(tmp_path: Path) -> None:
    lines = (CORPUS / "e570_encrypted.hex").read_text().splitlines()
    frames = "".join(line for line in lines if line.startswith("7E")).replace(" ", "")
    capture = tmp_path / "e570.bin"
    capture.write_bytes(bytes.fromhex(frames))
    status, _, err = replay(capture)
    assert status == 1
    assert causes(err) == []  # the failure line says it already
    assert err.count("no encryption key was given") == 1


@pytest.mark.parametrize("elapsed", [PATIENCE - 1, PATIENCE])
def test_a_live_run_says_it_after_its_patience_and_once(elapsed: float) -> None:
    watch = SilenceWatch("auto")
    watch.feed(b"\x00\xff" * 64, now=100.0)
    assert watch.due(100.0 + elapsed) is (elapsed >= PATIENCE)
    assert watch.cause({}) is not None
    assert watch.due(1000.0) is False  # said once


def test_kaifa_ma309_trailing_meter_number_gets_its_code_and_name() -> None:
    result = CliRunner().invoke(cli, ["decode", "--framing", "raw", sv.KAIFA_AT_PLAINTEXT.hex()])
    assert result.exit_code == 0
    message = json.loads(result.stdout)
    last = message["readings"][-1]
    assert last == {
        "obis": "0.0.96.1.0.255",
        "name": "meter_id",
        "value": "178210001107",
        "unit": None,
    }
    influx = CliRunner().invoke(
        cli, ["decode", "--framing", "raw", "--format", "influx", sv.KAIFA_AT_PLAINTEXT.hex()]
    )
    assert influx.stdout.startswith("amsread,meter_id=178210001107 ")
