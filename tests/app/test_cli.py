"""The command line as a user meets it: output on stdout, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import seed_vectors as sv
from click.testing import CliRunner

from amsread.app.cli import cli


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def keys(ek: str = sv.RADIUS_KEY, ak: str = sv.RADIUS_AUTH_KEY) -> list[str]:
    return ["--key", ek, "--auth-key", ak]


def test_decode_radius_frame_prints_one_json_line_with_the_documented_values() -> None:
    status, out, _ = run("decode", sv.RADIUS_FRAME.hex(), *keys())
    assert status == 0
    [line] = out.splitlines()
    message = json.loads(line)
    readings = {r["obis"]: (r["value"], r["unit"]) for r in message["readings"]}
    assert readings["1.1.1.8.0.255"] == (866636, "Wh")
    assert readings["1.1.32.7.0.255"] == (224, "V")
    assert readings["1.1.21.8.0.255"] == (288932, "Wh")
    assert message["meter_time"] == "2020-01-07T14:47:20"
    assert set(message) >= {
        "received_at",
        "meter_time",
        "system_title",
        "invocation_counter",
        "list_id",
        "readings",
    }


def test_decode_accepts_hex_as_pasted_with_spaces_and_0x() -> None:
    spaced = " ".join(f"0x{b:02X}" for b in sv.RADIUS_FRAME)
    status, out, _ = run("decode", *spaced.split(), *keys())
    assert status == 0 and out.count("\n") == 1


def test_decode_with_wrong_auth_key_fails_with_one_line_naming_authentication() -> None:
    status, out, err = run("decode", sv.RADIUS_FRAME.hex(), *keys(ak="00" * 16))
    assert status == 1
    assert out == ""
    assert "authentication failed" in err
    assert len(err.strip().splitlines()) == 1


def test_decode_with_flipped_ciphertext_byte_in_the_apdu_fails_authentication() -> None:
    apdu = bytearray(sv.RADIUS_FRAME[11:-3])
    apdu[40] ^= 0x01
    status, out, err = run("decode", bytes(apdu).hex(), *keys())
    assert status == 1 and out == ""
    assert "authentication failed" in err


def test_decode_bare_apdu_and_file_input(tmp_path: Path) -> None:
    hexfile = tmp_path / "apdus.txt"
    hexfile.write_text(
        "# two decrypted APDUs, one per line\n"
        f"{sv.NORWEGIAN_LIST_PLAINTEXT.hex()}\n{sv.KAIFA_AT_PLAINTEXT.hex()}\n"
    )
    status, out, _ = run("decode", "--file", str(hexfile))
    assert status == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["readings"][3]["value"] == 169
    assert second["meter_time"] == "2016-01-04T23:34:35+01:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decode", "7e a0 zz"], "not valid hex"),
        (["decode", "7ea"], "odd number"),
        (["decode", "7e", "--key", "1234"], "32 hex digits"),
        (["decode", "7e", "--key", "g" * 32], "other characters"),
        (["decode", "--file", "/does/not/exist"], "file not found"),
        (["replay", "/does/not/exist.bin"], "not found"),
        (["decode"], "no hex given"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(args: list[str], message: str) -> None:
    status, _out, err = run(*args)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_ascii_looking_key_is_explained_not_guessed() -> None:
    status, _, err = run("decode", "7e", "--key", "MySecretKey12345")
    assert status == 2
    assert "looks like ASCII" in err
    assert "MySecretKey12345" not in err


def test_keys_from_environment() -> None:
    result = CliRunner().invoke(
        cli,
        ["decode", sv.RADIUS_FRAME.hex()],
        env={"AMSREAD_KEY": sv.RADIUS_KEY, "AMSREAD_AUTH_KEY": sv.RADIUS_AUTH_KEY},
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["authenticated"] is True


def test_replay_am550_stream_without_key_says_once_that_a_key_is_needed(tmp_path: Path) -> None:
    capture = tmp_path / "am550.bin"
    capture.write_bytes(sv.AM550_STREAM)
    status, out, err = run("replay", str(capture))
    assert out == ""
    assert status == 1
    assert err.count("no encryption key was given") == 1
    assert "truncated=1" in err and "bad_hcs=1" in err


def test_replay_from_stdin() -> None:
    status, out, _ = run("replay", "-", *keys(), "--allow-replay", input=sv.RADIUS_FRAME * 3)
    assert status == 0
    assert len(out.splitlines()) == 3


def test_replay_gurux_session_is_quiet_and_succeeds(tmp_path: Path) -> None:
    capture = tmp_path / "session.bin"
    capture.write_bytes(sv.GURUX_SESSION)
    status, out, err = run("-vv", "replay", str(capture))
    assert status == 0 and out == ""
    assert "AARQ" in err and "SNRM" in err


def test_logs_never_go_to_stdout() -> None:
    status, out, err = run("-vv", "decode", sv.RADIUS_FRAME.hex(), *keys())
    assert status == 0
    assert len(out.splitlines()) == 1 and "debug" in err


def test_demo_runs_as_an_installed_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "amsread", "demo"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout)
    assert message["system_title"] == sv.RADIUS_SYSTEM_TITLE
    assert len(message["readings"]) == 33


def test_closed_stdout_exits_quietly() -> None:
    frames = sv.RADIUS_FRAME.hex() * 50
    proc = subprocess.run(
        f"{sys.executable} -m amsread decode {frames} --key {sv.RADIUS_KEY} | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in proc.stderr


def test_the_framing_choices_are_the_link_layers_framings() -> None:
    # cli spells them out so that --help does not import the link layers.
    from amsread.app import wiring
    from amsread.link.framing import FRAMINGS

    assert wiring.FRAMINGS == FRAMINGS


def modules_loaded(*args: str) -> set[str]:
    """The modules an ``amsread`` run imported, as the installed program would."""
    script = (
        "import sys\n"
        "from amsread.app.cli import main\n"
        f"sys.argv = ['amsread', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return set(done.stderr.split())


#: What a command that neither listens, diagnoses nor publishes must not pay to import.
DAEMON_AND_DIAGNOSTICS = {
    "amsread.app.listen_command",
    "amsread.app.daemon",
    "amsread.app.listen",
    "amsread.app.config",
    "amsread.app.metrics",
    "amsread.app.diagnose_commands",
    "amsread.diagnose.explain",
    "amsread.diagnose.silence",
    "amsread.output.mqtt",
    "serial",
    "paho",
}


def test_help_imports_no_decoder_and_decode_no_daemon() -> None:
    on_help = modules_loaded("--help")
    assert "amsread.app.listen_command" in on_help  # --help lists every command
    assert not on_help & {"amsread.pipeline", "cryptography", "structlog", "amsread.app.wiring"}
    on_decode = modules_loaded("decode", sv.RADIUS_FRAME.hex(), *keys())
    assert "amsread.pipeline" in on_decode
    assert not on_decode & DAEMON_AND_DIAGNOSTICS
    # Both keys given and the frame verifies: nothing to log, so no structlog either.
    assert "structlog" not in on_decode
    assert "amsread.app.statefile" not in on_decode  # no --state-file
