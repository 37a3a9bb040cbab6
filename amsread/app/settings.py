"""The options a command runs with, as frozen values (built by ``options``' decorators).

click resolves each value first: a flag, else the option's environment
variable, else ``listen``'s config file (click's ``default_map``), else the
built-in default. Kept apart from the click declarations so that ``--help``,
which only lists options, never builds these classes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    """Where the keys come from, and how replayed frames are guarded against."""

    key: str | None = None
    auth_key: str | None = None
    key_file: str | None = None
    auth_key_file: str | None = None
    #: Keeps the last invocation counter per meter across restarts.
    state_file: str | None = None
    allow_replay: bool = False


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """What is written where: ``--format``, ``--output``, ``--time``, ``--profile``."""

    fmt: str = "jsonl"
    #: None: stdout.
    path: str | None = None
    time_source: str = "meter"
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogChoice:
    """-v minus -q and --log-format, before or after the command; None: not given."""

    verbosity: int | None
    fmt: str | None


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    """Where to publish (``url`` None: nowhere) and how: TLS, spool, Home Assistant."""

    url: str | None = None
    password_file: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    spool: str | None = None
    ha_prefix: str = "homeassistant"
    ha_discovery: bool = True


@dataclass(frozen=True, slots=True)
class ListenOptions:
    """listen's own options: the port, how to read it, what to keep of it."""

    port: str | None
    baud: str = "auto"
    parity: str = "auto"
    save_raw: str | None = None
    redact: bool = False
    metrics: str | None = None
    #: Seconds per auto-detected setting (tests); None: the built-in value.
    probe_seconds: float | None = None
    #: The first retry delay (tests); None: the built-in value.
    retry_first: float | None = None
    silence_limit: float = 300.0
