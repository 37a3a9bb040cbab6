"""The configuration file (TOML) and ``AMSREAD_*`` environment variables.

Every setting has one name, used as the TOML key and, upper-cased behind
``AMSREAD_``, as the environment variable; the command-line flag is the same
name with dashes. Precedence: flags > environment > file > built-in defaults.
The CLI gets file and environment values as click's ``default_map``, which
click consults only when a flag was not given.

Values are checked here so that errors name the file and the key. Messages
never repeat a value: a key may have been written in the wrong place.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from amsread.app.sources import read_small_file
from amsread.dlms.keys import readable_by_others
from amsread.errors import UsageError
from amsread.link.framing import FRAMINGS

ENV_PREFIX = "AMSREAD_"
#: A configuration file is a few hundred bytes; refuse to parse a wrong path's megabytes.
MAX_CONFIG_SIZE = 1024 * 1024

Check = Callable[[Any], Any]


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def _choice(*choices: str) -> Check:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError("one of " + ", ".join(repr(c) for c in choices))

    return check


def _baud(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValueError('a positive number of bits per second, such as 2400, or "auto"')
    return str(number)


def _parity(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().upper() in ("N", "E", "O"):
        return value.strip().upper()
    raise ValueError('"N" (none), "E" (even), "O" (odd) or "auto"')


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        # From the environment: several paths separated like $PATH.
        value = [part for part in value.split(os.pathsep) if part]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("a list of file paths")
    return tuple(value)


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(value, bool) or seconds <= 0:
        raise ValueError("a positive number of seconds")
    return seconds


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: its click parameter and how to check a value."""

    param: str | None
    check: Check
    #: Keys are never echoed, not even their type.
    secret: bool = False


#: Every key the file may hold. ``param`` None: read by the CLI itself (logging).
SETTINGS: dict[str, Setting] = {
    "port": Setting("port", _text),
    "baud": Setting("baud", _baud),
    "parity": Setting("parity", _parity),
    "framing": Setting("framing", _choice(*FRAMINGS)),
    "format": Setting("fmt", _choice("jsonl", "csv", "influx", "none")),
    "output": Setting("output", _text),
    "save_raw": Setting("save_raw", _text),
    "redact": Setting("redact", _bool),
    "metrics": Setting("metrics", _text),
    "silence_limit": Setting("silence_limit", _seconds),
    "time": Setting("time_source", _choice("meter", "host")),
    "profiles": Setting("profiles", _paths),
    "key": Setting("key", _text, secret=True),
    "auth_key": Setting("auth_key", _text, secret=True),
    "key_file": Setting("key_file", _text),
    "auth_key_file": Setting("auth_key_file", _text),
    "state_file": Setting("state_file", _text),
    "allow_replay": Setting("allow_replay", _bool),
    "log_level": Setting(None, _choice("debug", "info", "warning", "error")),
    "log_format": Setting(None, _choice("console", "json")),
    # MQTT (amsread/app/mqtt_options.py); the password never sits in this file.
    "mqtt": Setting("mqtt", _text),
    "mqtt_password_file": Setting("mqtt_password_file", _text),
    "mqtt_ca": Setting("mqtt_ca", _text),
    "mqtt_cert": Setting("mqtt_cert", _text),
    "mqtt_key": Setting("mqtt_key", _text),
    "mqtt_spool": Setting("mqtt_spool", _text),
    "ha_prefix": Setting("ha_prefix", _text),
    "ha_discovery": Setting("ha_discovery", _bool),
}
#: Settings naming files; relative ones in a config file are relative to it.
PATH_KEYS = frozenset({"output", "save_raw", "profiles", "key_file", "auth_key_file", "state_file"})
PATH_KEYS |= {"mqtt_password_file", "mqtt_ca", "mqtt_cert", "mqtt_key", "mqtt_spool"}
#: Set in the result when the file holds a key and others may read it (the CLI warns).
READABLE_SECRET = "_readable_secret"


def check_settings(raw: Mapping[str, Any], name: Callable[[str], str]) -> dict[str, Any]:
    """Validate ``{key: value}``; errors say where the key came from (``name(key)``)."""
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise UsageError(f"{name(key)} is not a setting{_did_you_mean(key)}")
        try:
            settings[key] = setting.check(value)
        except ValueError as exc:
            expected = "32 hex digits as a string" if setting.secret else str(exc)
            raise UsageError(f"{name(key)} must be {expected}") from None
    return settings


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key.replace("-", "_").lower(), SETTINGS, n=1)
    known = ", ".join(SETTINGS)
    return f"; did you mean {close[0]!r}?" if close else f"; known settings: {known}"


def load_file(path: str) -> dict[str, Any]:
    """Read and check a TOML configuration file."""
    data = read_small_file(path, "config file", MAX_CONFIG_SIZE)
    if len(data) > MAX_CONFIG_SIZE:
        raise UsageError(f"config file {path} is larger than 1 MiB: is it the right file?")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # The message names line and column; TOML errors never quote values.
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    for key, value in document.items():
        if isinstance(value, dict):
            raise UsageError(
                f"config file {path}: unknown table [{key}];"
                " settings are plain 'name = value' lines"
            )
    settings = check_settings(document, lambda key: f"config file {path}: {key!r}")
    base = os.path.dirname(os.path.abspath(path))
    for key in PATH_KEYS.intersection(settings):
        # Relative paths in a file mean "next to the file", not the daemon's cwd ("/").
        value = settings[key]
        settings[key] = (
            tuple(os.path.join(base, v) for v in value)
            if isinstance(value, tuple)
            else os.path.join(base, value)
        )
    if "port" in settings:
        # A device path too ("ttyV0" next to the file); URLs stay as they are.
        from amsread.app.options import resolve_port

        settings["port"] = resolve_port(settings["port"], base)
    if any(SETTINGS[k].secret for k in settings) and readable_by_others(path):
        settings[READABLE_SECRET] = True
    return settings


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings given as ``AMSREAD_<NAME>`` environment variables (empty ones ignored)."""
    env = os.environ if environ is None else environ
    raw = {
        key: env[ENV_PREFIX + key.upper()]
        for key in SETTINGS
        if env.get(ENV_PREFIX + key.upper(), "").strip()
    }
    return check_settings(raw, lambda key: ENV_PREFIX + key.upper())


def merged(path: str | None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """File settings overridden by environment settings (flags come on top, in click)."""
    settings = load_file(path) if path else {}
    settings.update(from_environment(environ))
    return settings


def default_map(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{click parameter: value}`` for the settings that are command parameters."""
    params = {key: SETTINGS[key].param for key in settings if key in SETTINGS}
    return {param: settings[key] for key, param in params.items() if param is not None}


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """What the file and environment tell ``listen`` beyond its parameters."""

    #: A daemon logs at info unless told otherwise (-v/-q win over it).
    log_level: str = "info"
    log_format: str = "console"
    #: The file holds a key and other users may read it: listen warns.
    key_readable_by_others: bool = False


def daemon_settings(settings: Mapping[str, Any]) -> DaemonSettings:
    """The settings of ``merged`` that are no command parameter, typed."""
    return DaemonSettings(
        log_level=settings.get("log_level", "info"),
        log_format=settings.get("log_format", "console"),
        key_readable_by_others=bool(settings.get(READABLE_SECRET)),
    )
