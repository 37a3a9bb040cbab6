"""The configuration file and AMSREAD_* variables: checked, merged, and overridden by flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import seed_vectors as sv

from amsread.app import config
from amsread.errors import UsageError

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "config.example.toml"


def write(tmp_path: Path, text: str, name: str = "amsread.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def test_a_file_gives_settings_by_their_click_parameter(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = "/dev/ttyUSB0"\nbaud = 2400\nparity = "e"\nformat = "CSV"\n'
        'time = "host"\nallow_replay = true\nlog_level = "debug"\n',
    )
    settings = config.load_file(path)
    assert settings["baud"] == "2400"
    assert settings["parity"] == "E"
    assert config.default_map(settings) == {
        "port": "/dev/ttyUSB0",
        "baud": "2400",
        "parity": "E",
        "fmt": "csv",
        "time_source": "host",
        "allow_replay": True,
    }


def test_an_unknown_key_is_an_error_naming_it_and_the_closest_setting(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = "/dev/ttyUSB0"\nbaudrate = 2400\n')
    with pytest.raises(UsageError) as caught:
        config.load_file(path)
    message = str(caught.value)
    assert "'baudrate'" in message
    assert "did you mean 'baud'" in message
    assert path in message


def test_an_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="known settings: port, baud"):
        config.load_file(write(tmp_path, "xyzzy = 1\n"))


def test_a_table_is_an_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown table \[serial\]"):
        config.load_file(write(tmp_path, "[serial]\nbaud = 2400\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('baud = "fast"', "'baud' must be a positive number"),
        ("baud = 0", "'baud' must be a positive number"),
        ('parity = "X"', "'parity' must be \"N\""),
        ('format = "xml"', "'format' must be one of 'jsonl', 'csv', 'influx'"),
        ('framing = "ppp"', "'framing' must be one of"),
        ("allow_replay = 1", "'allow_replay' must be true or false"),
        ("profiles = [1]", "'profiles' must be a list of file paths"),
        ('port = ""', "'port' must be a non-empty string"),
    ],
)
def test_a_wrong_value_names_the_key_and_what_it_must_be(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(UsageError) as caught:
        config.load_file(write(tmp_path, text + "\n"))
    assert expected in str(caught.value)


def test_a_key_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        config.load_file(write(tmp_path, "key = 1234567890123\n"))
    assert "1234567890123" not in str(caught.value)
    assert "'key' must be 32 hex digits" in str(caught.value)


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = "/dev/ttyUSB0"\nbaud = \n')
    with pytest.raises(UsageError, match=r"not valid TOML.*line 2"):
        config.load_file(path)


def test_missing_file_and_directory_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="config file not found"):
        config.load_file(str(tmp_path / "nope.toml"))
    with pytest.raises(UsageError, match="is a directory"):
        config.load_file(str(tmp_path))


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'key_file = "key"\nprofiles = ["p.toml"]\noutput = "/abs/out"\n')
    settings = config.load_file(path)
    assert settings["key_file"] == str(tmp_path / "key")
    assert settings["profiles"] == (str(tmp_path / "p.toml"),)
    assert settings["output"] == "/abs/out"


def test_a_key_in_a_file_others_can_read_is_flagged(tmp_path: Path) -> None:
    path = write(tmp_path, f'key = "{sv.RADIUS_KEY}"\n')
    assert config.READABLE_SECRET not in config.load_file(path)
    os.chmod(path, 0o644)
    assert config.load_file(path)[config.READABLE_SECRET] is True


def test_environment_variables_are_checked_and_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = "/dev/ttyUSB0"\nbaud = 2400\nformat = "csv"\n')
    env = {"AMSREAD_BAUD": "9600", "AMSREAD_PROFILES": f"a.toml{os.pathsep}b.toml"}
    settings = config.merged(path, env)
    assert settings["port"] == "/dev/ttyUSB0"
    assert settings["baud"] == "9600"
    assert settings["format"] == "csv"
    assert settings["profiles"] == ("a.toml", "b.toml")
    with pytest.raises(UsageError, match="AMSREAD_PARITY must be"):
        config.from_environment({"AMSREAD_PARITY": "even"})
    assert config.from_environment({"AMSREAD_PORT": "  "}) == {}


def test_the_example_config_parses_and_documents_every_setting() -> None:
    text = EXAMPLE.read_text()
    config.check_settings(tomllib.loads(text), str)
    for name in config.SETTINGS:
        # Set or commented out, each setting appears as "name = …" with a comment nearby.
        assert f"\n{name} = " in text or f"\n# {name} = " in text, name
    commented = [line for line in text.splitlines() if line.startswith("#")]
    assert len(commented) > len(config.SETTINGS)


# -- precedence through the command line --------------------------------------


def listen(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``amsread listen`` in a subprocess; the bad ports used here fail at once."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")}
    done = subprocess.run(
        [sys.executable, "-m", "amsread", "listen", *args],
        capture_output=True,
        text=True,
        timeout=10,
        env={**clean, **(env or {})},
    )
    return done.returncode, done.stderr


def test_flags_override_environment_which_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = "fromfile://x"\nallow_replay = true\n')
    keys = ("--key", sv.RADIUS_KEY)
    status, err = listen("--config", path, *keys)
    assert status == 2 and "'fromfile'" in err
    status, err = listen("--config", path, *keys, env={"AMSREAD_PORT": "fromenv://x"})
    assert status == 2 and "'fromenv'" in err
    status, err = listen(
        "--config", path, "fromflag://x", *keys, env={"AMSREAD_PORT": "fromenv://x"}
    )
    assert status == 2 and "'fromflag'" in err


def test_the_config_file_can_come_from_amsread_config(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = "fromfile://x"\n')
    status, err = listen(env={"AMSREAD_CONFIG": path})
    assert status == 2 and "'fromfile'" in err


def test_a_flag_key_overrides_a_malformed_key_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f'port = "nosuch://x"\nkey = "{sv.RADIUS_KEY[:30]}"\n')
    status, err = listen("--config", path)
    assert status == 2 and "32 hex digits" in err
    assert sv.RADIUS_KEY[:30] not in err
    status, err = listen("--config", path, "--key", sv.RADIUS_KEY)
    assert status == 2 and "'nosuch'" in err


def test_an_unknown_key_in_the_file_stops_listen_with_status_2(tmp_path: Path) -> None:
    status, err = listen("--config", write(tmp_path, 'port = "/dev/null"\nspeed = 2400\n'))
    assert status == 2
    assert "'speed'" in err
    assert len(err.strip().splitlines()) == 1


def test_log_format_and_level_from_the_file_apply_unless_flags_say_otherwise(
    tmp_path: Path,
) -> None:
    # A key in a file others can read gives a warning: a log line to look at.
    path = write(tmp_path, f'port = "nosuch://x"\nkey = "{sv.RADIUS_KEY}"\nlog_format = "json"\n')
    os.chmod(path, 0o644)
    status, err = listen("--config", path)
    assert status == 2
    warning = next(line for line in err.splitlines() if "other users can read" in line)
    assert json.loads(warning)["level"] == "warning"
    assert sv.RADIUS_KEY not in err
    status, err = listen("--config", path, env={"AMSREAD_LOG_LEVEL": "error"})
    assert "other users can read" not in err
    status, err = listen("--config", path, env={"AMSREAD_LOG_FORMAT": "console"})
    assert "[warning" in err and "other users can read" in err
