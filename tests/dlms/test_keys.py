"""Keys: every way users write them, every place they come from, and no leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import seed_vectors as sv
import structlog
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.cli import cli
from amsread.dlms.keys import Keys, parse_key, read_key_file, resolve_keys
from amsread.errors import KeyFormatError, UsageError

EK = bytes.fromhex(sv.RADIUS_KEY)
AK = bytes.fromhex(sv.RADIUS_AUTH_KEY)
WRONG = bytes.fromhex("00112233445566778899aabbccddeeff")


# -- how keys are written ------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        sv.RADIUS_KEY,
        sv.RADIUS_KEY.lower(),
        "0x" + sv.RADIUS_KEY,
        "0X" + sv.RADIUS_KEY.lower(),
        " ".join(EK.hex()[i : i + 2] for i in range(0, 32, 2)),
        ":".join(EK.hex()[i : i + 2] for i in range(0, 32, 2)),
        "-".join(EK.hex()[i : i + 8] for i in range(0, 32, 8)),
        ", ".join(f"0x{b:02X}" for b in EK),
        f"  {sv.RADIUS_KEY}\n",
    ],
)
def test_parse_key_accepts_the_ways_keys_are_written(written: str) -> None:
    assert parse_key(written) == EK


def test_ascii_looking_key_is_explained_and_not_guessed() -> None:
    with pytest.raises(KeyFormatError, match="looks like ASCII") as caught:
        parse_key("MySecretKey12345", "encryption key")
    assert "MySecretKey12345" not in str(caught.value)
    assert "hex()" in str(caught.value)  # says how to convert it


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        (sv.RADIUS_KEY[:-1], "31 hex digits"),
        (sv.RADIUS_KEY + "00", "34 hex digits"),
        (sv.RADIUS_KEY[:16], "16 hex digits"),
        (sv.RADIUS_KEY[:-1] + "G", "other characters"),
        ("", "other characters"),
    ],
)
def test_malformed_keys_say_what_is_wrong_without_echoing_the_key(
    written: str, complaint: str
) -> None:
    with pytest.raises(KeyFormatError, match=complaint) as caught:
        parse_key(written)
    text = str(caught.value) + repr(caught.value)
    assert sv.RADIUS_KEY[:8] not in text.upper()


@given(st.text(alphabet="0123456789abcdefABCDEF", min_size=8, max_size=80))
@settings(max_examples=80, deadline=None)
def test_no_key_format_error_contains_a_piece_of_the_key(written: str) -> None:
    try:
        parse_key(written)
    except KeyFormatError as exc:
        text = (str(exc) + repr(exc)).lower()
        windows = {written[i : i + 6].lower() for i in range(len(written) - 5)}
        assert not any(w in text for w in windows)
    else:
        assert len(written) == 32


def test_keys_repr_and_str_never_show_key_bytes() -> None:
    keys = Keys(EK, AK)
    for shown in (repr(keys), str(keys), f"{keys}", repr([keys]), repr(KeyFormatError(keys))):
        assert EK.hex() not in shown.lower() and AK.hex() not in shown.lower()
        assert repr(EK) not in shown and repr(AK)[2:10] not in shown
    assert repr(keys) == "Keys(encryption=<16 bytes>, authentication=<16 bytes>)"
    assert repr(Keys()) == "Keys(encryption=None, authentication=None)"


def test_swapped_gives_the_other_pair_only_when_there_is_one() -> None:
    assert Keys(EK, AK).swapped() == Keys(AK, EK)
    assert Keys(EK, EK).swapped() is None
    assert Keys(EK).swapped() is None


# -- where keys come from --------------------------------------------------------


def write(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_resolve_keys_from_values() -> None:
    keys = resolve_keys(sv.RADIUS_KEY, sv.RADIUS_AUTH_KEY, environ={})
    assert keys == Keys(EK, AK)
    assert resolve_keys(environ={}) == Keys()


def test_key_files_give_their_first_line(tmp_path: Path) -> None:
    ek = write(tmp_path / "ek", f"{sv.RADIUS_KEY}\n# the GUEK from the letter\n")
    ak = write(tmp_path / "ak", f"0x{sv.RADIUS_AUTH_KEY.lower()}")
    assert resolve_keys(key_file=ek, auth_key_file=ak, environ={}) == Keys(EK, AK)


def test_precedence_is_value_then_file_then_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    write(creds / "amsread-key", WRONG.hex())
    write(creds / "amsread-auth-key", AK.hex())
    environ = {"CREDENTIALS_DIRECTORY": str(creds)}
    file = write(tmp_path / "ek", EK.hex())
    assert resolve_keys(environ=environ) == Keys(WRONG, AK)
    assert resolve_keys(key_file=file, environ=environ) == Keys(EK, AK)
    assert resolve_keys(AK.hex(), key_file=file, environ=environ) == Keys(AK, AK)


def test_missing_credentials_are_no_keys(tmp_path: Path) -> None:
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert resolve_keys(environ=environ) == Keys()


@pytest.mark.parametrize(
    ("content", "complaint"),
    [(b"", "is empty"), (b"\n\n", "is empty"), (b"\xff\xfe\x00\x01" * 4, "not text")],
)
def test_bad_key_files_name_the_file_and_the_problem(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(KeyFormatError, match=complaint) as caught:
        read_key_file(str(path), "encryption key")
    assert str(path) in str(caught.value)


def test_missing_key_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        resolve_keys(key_file=str(tmp_path / "nope"), environ={})


def test_key_in_a_file_with_a_bad_key_names_the_file_not_the_key(tmp_path: Path) -> None:
    path = write(tmp_path / "key", sv.RADIUS_KEY[:-2])
    with pytest.raises(KeyFormatError, match="30 hex digits") as caught:
        resolve_keys(key_file=path, environ={})
    assert path in str(caught.value)
    assert sv.RADIUS_KEY[:6] not in str(caught.value)


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_key_file_readable_by_others_is_warned(tmp_path: Path, mode: int, warned: bool) -> None:
    path = write(tmp_path / "key", sv.RADIUS_KEY, mode)
    with structlog.testing.capture_logs() as logs:
        resolve_keys(key_file=path, environ={})
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert bool(warnings) is warned
    if warned:
        assert "chmod 600" in warnings[0]["hint"]


# -- the command line ------------------------------------------------------------


def run(
    *args: str, env: dict[str, str] | None = None, input: bytes | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, input=input)
    return result.exit_code, result.stdout, result.stderr


def test_decode_with_key_files(tmp_path: Path) -> None:
    ek = write(tmp_path / "ek", sv.RADIUS_KEY)
    ak = write(tmp_path / "ak", sv.RADIUS_AUTH_KEY)
    status, out, err = run("decode", sv.RADIUS_FRAME.hex(), "--key-file", ek, "--auth-key-file", ak)
    assert status == 0, err
    assert json.loads(out)["authenticated"] is True


def test_decode_with_systemd_credentials(tmp_path: Path) -> None:
    write(tmp_path / "amsread-key", sv.RADIUS_KEY + "\n")
    write(tmp_path / "amsread-auth-key", sv.RADIUS_AUTH_KEY + "\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    status, out, _ = run("decode", sv.RADIUS_FRAME.hex(), env=env)
    assert status == 0
    assert json.loads(out)["authenticated"] is True


def test_missing_key_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    status, _, err = run("decode", "7e", "--key-file", str(tmp_path / "none"))
    assert status == 2
    assert err.strip().count("\n") == 0 and "file not found" in err


def test_radius_acceptance_ek_only_gives_one_warning_and_unauthenticated_output() -> None:
    status, out, err = run("decode", sv.RADIUS_FRAME.hex(), "--key", sv.RADIUS_KEY)
    assert status == 0
    message = json.loads(out)
    assert message["authenticated"] is False
    assert len(message["readings"]) == 33
    assert [line for line in err.splitlines() if "warning" in line] == err.splitlines()
    assert len(err.splitlines()) == 1
    assert "--auth-key" in err


def test_radius_acceptance_swapped_keys_are_named_and_decoded() -> None:
    args = ["--key", sv.RADIUS_AUTH_KEY, "--auth-key", sv.RADIUS_KEY]
    status, out, err = run("replay", "-", *args, input=sv.RADIUS_FRAME)
    assert status == 0
    assert json.loads(out)["authenticated"] is True
    assert err.count("swapped") >= 1
    assert err.count("warning") == 1


def test_seed_000_acceptance_given_key_exits_1_with_no_valid_apdu_and_no_readings() -> None:
    # The key as the energy company wrote it: "00 01 02 … 0F".
    spaced = " ".join(f"{b:02X}" for b in bytes.fromhex(sv.KAIFA_AT_KEY))
    status, out, err = run("decode", sv.KAIFA_AT_CIPHERED.hex(), "--key", spaced)
    assert status == 1
    assert out == ""
    assert "no valid APDU: wrong encryption key or damaged frame" in err


def test_help_never_shows_a_key_from_the_environment() -> None:
    env = {"AMSREAD_KEY": sv.RADIUS_KEY, "AMSREAD_AUTH_KEY": sv.RADIUS_AUTH_KEY}
    for command in ("decode", "replay"):
        _, out, _ = run(command, "--help", env=env)
        assert "--key-file" in out and "--allow-replay" in out
        assert sv.RADIUS_KEY not in out.upper() and sv.RADIUS_AUTH_KEY not in out.upper()


def _forms(key: bytes) -> list[str]:
    return [key.hex(), key.hex().upper(), key.hex(" "), key.hex(":"), key.decode("latin-1")]


LEAK_CASES = {
    "right keys": ["--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY],
    "encryption key only": ["--key", sv.RADIUS_KEY],
    "wrong auth key": ["--key", sv.RADIUS_KEY, "--auth-key", WRONG.hex()],
    "wrong encryption key": ["--key", WRONG.hex(), "--auth-key", sv.RADIUS_AUTH_KEY],
    "swapped keys": ["--key", sv.RADIUS_AUTH_KEY, "--auth-key", sv.RADIUS_KEY],
    "malformed key": ["--key", sv.RADIUS_KEY[:-1], "--auth-key", sv.RADIUS_AUTH_KEY + "0"],
    "ascii-looking key": ["--key", EK[:4].hex() + "zzzzzzzz"],
}


@pytest.mark.parametrize("log_format", ["console", "json"])
@pytest.mark.parametrize("command", ["decode", "replay"])
@pytest.mark.parametrize("case", list(LEAK_CASES))
def test_no_key_bytes_reach_stderr_or_stdout_at_any_log_level(
    case: str, command: str, log_format: str
) -> None:
    frames = sv.RADIUS_FRAME * 2
    target = [frames.hex()] if command == "decode" else ["-"]
    _status, out, err = run(
        "-vv",
        "--log-format",
        log_format,
        command,
        *target,
        *LEAK_CASES[case],
        "--allow-replay",
        input=frames if command == "replay" else None,
    )
    assert "Traceback" not in err
    assert err  # something was logged at debug level, so the check is not vacuous
    for key in (EK, AK, WRONG):
        for form in _forms(key):
            assert form not in err and form.lower() not in err.lower(), (case, form)
    for form in _forms(EK)[:2] + _forms(AK)[:2]:
        assert form not in out


def test_no_key_bytes_reach_stderr_with_key_files_and_credentials(tmp_path: Path) -> None:
    ek = write(tmp_path / "amsread-key", sv.RADIUS_AUTH_KEY, 0o644)  # swapped and readable
    write(tmp_path / "amsread-auth-key", sv.RADIUS_KEY)
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    _, _, err = run("-vv", "decode", sv.RADIUS_FRAME.hex(), "--key-file", ek, env=env)
    assert "chmod 600" in err and "swapped" in err
    for key in (EK, AK):
        for form in _forms(key):
            assert form.lower() not in err.lower()
