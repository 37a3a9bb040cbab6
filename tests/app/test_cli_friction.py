"""CLI and install friction an operator meets (issue 14, item 8), each as it was met.

The commands run as subprocesses, as a shell runs them, so that logging,
exit status and stderr are exactly what a user sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import seed_vectors as sv

from amsread.app.config import load_file

ROOT = Path(__file__).parent.parent.parent
KEYS = ("--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY)


def amsread(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")}
    clean.pop("CREDENTIALS_DIRECTORY", None)
    return subprocess.run(
        [sys.executable, "-m", "amsread", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.bin"
    path.write_bytes(sv.RADIUS_FRAME + b"\x00\x00" + sv.RADIUS_FRAME[:60])
    return path


# -- global options after the command ----------------------------------------------


def test_verbose_after_the_command_is_accepted_and_logs_at_info(capture: Path) -> None:
    quiet = amsread("replay", str(capture), *KEYS)
    assert "framing detected" not in quiet.stderr
    loud = amsread("replay", str(capture), *KEYS, "-v")
    assert loud.returncode == 0, loud.stderr
    assert "no such option" not in loud.stderr
    assert "HDLC framing detected" in loud.stderr
    assert len(loud.stdout.splitlines()) == 1


def test_before_and_after_add_up(capture: Path) -> None:
    cancelled = amsread("-v", "replay", str(capture), *KEYS, "-q")
    assert cancelled.returncode == 0
    assert "framing detected" not in cancelled.stderr
    both = amsread("-v", "replay", str(capture), *KEYS, "-v")
    assert "message decoded" in both.stderr  # -v twice: debug


def test_log_format_after_the_command_gives_json_lines(capture: Path) -> None:
    done = amsread("replay", str(capture), *KEYS, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert "--format" not in done.stderr  # no "did you mean --format"
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines and all("level" in line for line in lines)
    assert lines[-1]["event"] == "some data could not be decoded"


def test_vv_shows_every_frame_as_hex(capture: Path) -> None:
    done = amsread("replay", str(capture), *KEYS, "-vv")
    assert done.returncode == 0
    frames = [line for line in done.stderr.splitlines() if "frame=" in line]
    assert len(frames) == 1
    # The frame's information field: the LLC header, then the ciphered APDU (0xDB).
    assert "e6 e7 00 db 08 4b 41 4d 45 01 a4 dc 52" in frames[0]
    # Below debug level there is no hex dump.
    assert "e6 e7 00" not in amsread("replay", str(capture), *KEYS, "-v").stderr


def test_listen_takes_global_options_after_the_command_too() -> None:
    done = amsread("listen", "--parity", "x", "-v")
    assert done.returncode == 2
    # The parity error spells the choices as the help does.
    assert "'x' is not one of N, E, O or auto" in done.stderr
    assert "'n'" not in done.stderr


# -- keys for check-key and explain, as listen finds them ------------------------------


def key_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_check_key_takes_the_environment_a_key_file_and_systemd_credentials(
    tmp_path: Path,
) -> None:
    frame = sv.RADIUS_FRAME.hex()
    by_env = amsread(
        "check-key",
        frame,
        env={"AMSREAD_KEY": sv.RADIUS_KEY, "AMSREAD_AUTH_KEY": sv.RADIUS_AUTH_KEY},
    )
    assert by_env.stdout.startswith("keys OK"), by_env.stdout + by_env.stderr
    key = key_file(tmp_path, "key", sv.RADIUS_KEY + "\n")
    auth = key_file(tmp_path, "auth-key", sv.RADIUS_AUTH_KEY + "\n")
    by_file = amsread("check-key", frame, "--key-file", str(key), "--auth-key-file", str(auth))
    assert by_file.stdout.startswith("keys OK"), by_file.stdout + by_file.stderr
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    shutil.copy(key, credentials / "amsread-key")
    shutil.copy(auth, credentials / "amsread-auth-key")
    by_credential = amsread("check-key", frame, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert by_credential.stdout.startswith("keys OK"), by_credential.stderr
    wrong = key_file(tmp_path, "wrong", "00" * 16)
    assert amsread("check-key", frame, "--key-file", str(wrong)).returncode == 1


def test_check_key_without_any_key_is_one_line_exit_2() -> None:
    done = amsread("check-key", sv.RADIUS_FRAME.hex())
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "amsread: error: no key to check: pass --key HEX (repeatable), --key-file FILE"
        " or AMSREAD_KEY"
    )


def test_explain_takes_a_key_file_and_systemd_credentials(tmp_path: Path) -> None:
    frame = sv.RADIUS_FRAME.hex()
    assert amsread("explain", frame).returncode == 1  # no key: cannot decrypt
    key = key_file(tmp_path, "key", sv.RADIUS_KEY)
    auth = key_file(tmp_path, "auth", sv.RADIUS_AUTH_KEY)
    by_file = amsread("explain", frame, "--key-file", str(key), "--auth-key-file", str(auth))
    assert by_file.returncode == 0, by_file.stdout
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    shutil.copy(key, credentials / "amsread-key")
    by_credential = amsread("explain", frame, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert by_credential.returncode == 0, by_credential.stdout


def test_an_empty_key_file_or_credential_is_a_clear_error(tmp_path: Path) -> None:
    empty = key_file(tmp_path, "key", "\n")
    for args, env in (
        (("--key-file", str(empty)), {}),
        ((), {"CREDENTIALS_DIRECTORY": str(tmp_path)}),
    ):
        if not args:
            shutil.copy(empty, tmp_path / "amsread-key")
        done = amsread("replay", "/dev/null", *args, env=env)
        assert done.returncode == 2
        [line] = done.stderr.splitlines()
        assert "is empty: put the key on its first line" in line


# -- listen on something that is no serial port ---------------------------------------


def test_listen_on_a_capture_file_says_use_replay_and_exits_2(capture: Path) -> None:
    done = amsread("listen", str(capture), timeout=20)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"amsread: error: {capture} is a regular file, not a serial device; to decode a"
        f" capture, use: amsread replay {capture}"
    )


def test_listen_on_dev_null_says_not_a_serial_device_once() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "amsread", "listen", "/dev/null", "--retry-first", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(2.0)  # several retries
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert err.count("not a serial device") == 1, err
    assert "use amsread replay" in err
    assert "cabling" not in err


# -- the configuration file and the install step ---------------------------------------


def test_a_relative_port_in_the_config_is_relative_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "meter.toml"
    for port, expected in (
        ("ttyV0", str(tmp_path / "ttyV0")),
        ("/dev/ttyUSB0", "/dev/ttyUSB0"),
        ("socket://192.168.1.20:2001", "socket://192.168.1.20:2001"),
    ):
        config.write_text(f'port = "{port}"\n')
        assert load_file(str(config))["port"] == expected


def install_snippet() -> str:
    """The README's key step (step 4 of "Install as a service"), as the shell runs it."""
    readme = (ROOT / "README.md").read_text()
    [snippet] = re.findall(r"^sudo sh -c '(umask 077;.*)'$", readme, re.MULTILINE)
    assert snippet in (ROOT / "systemd" / "README.md").read_text()
    return snippet


@pytest.mark.parametrize(
    ("answers", "written"),
    [
        ("\n\n", {}),
        (f"{sv.RADIUS_KEY}\n\n", {"key": sv.RADIUS_KEY}),
        (f"{sv.RADIUS_KEY}\n{sv.RADIUS_AUTH_KEY}\n", {"key": "", "auth-key": ""}),
    ],
)
def test_the_install_step_writes_no_empty_key_file(
    tmp_path: Path, answers: str, written: dict[str, str]
) -> None:
    script = install_snippet().replace("/etc/amsread", str(tmp_path))
    subprocess.run(["sh", "-c", script], input=answers, text=True, check=True, timeout=20)
    files = {p.name: p for p in tmp_path.iterdir()}
    assert set(files) == set(written)
    for name, path in files.items():
        content = path.read_text().strip()
        assert content and (not written[name] or content == written[name])
        assert path.stat().st_mode & 0o077 == 0  # root only
