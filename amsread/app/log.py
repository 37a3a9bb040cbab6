"""Logging: structlog to stderr, human-readable on a terminal or JSON.

``console`` is for people (colours only on a terminal); ``json`` is one object
per line with an ISO 8601 UTC ``timestamp``, for journald, Loki or jq. Bytes
from the line shown as hex are debugging material: below debug level they are
dropped from every log line, whoever logs them.

structlog is imported (and set up as ``configure`` said) on the first line
that passes the level: it pulls in asyncio and logging, ~30 ms of a start-up,
and a clean ``decode`` or ``replay`` at the default level logs nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, TextIO

# The standard library's level numbers (logging.DEBUG …), without importing logging.
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
LEVELS = {-2: CRITICAL, -1: ERROR, 0: WARNING, 1: INFO}
LEVEL_NAMES = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR}
FORMATS = ("console", "json")
#: Log fields that may carry bytes from the line as hex (shown only at debug level).
HEX_FIELDS = frozenset({"start", "hex", "raw", "frame", "data", "bytes_hex"})
_HEXLIKE = re.compile(r"[0-9a-fA-F]{2}( ?[0-9a-fA-F]{2})*( …|…)?")


@dataclass(frozen=True)
class _Settings:
    level: int
    fmt: str
    #: stderr when configure() was called (tests swap it; structlog keeps the one it got).
    stream: TextIO


#: What configure() asked for; None: never called (structlog's own defaults apply).
_settings: _Settings | None = None
#: True once structlog has been set up with _settings.
_applied = False
#: The lowest level logged (0 until configured: everything goes to structlog).
_level = 0
#: Log lines that could not be written (stderr gone).
lines_lost = 0


def level_for(verbosity: int) -> int:
    """``verbosity``: -v count minus -q count; 2 or more is debug."""
    return DEBUG if verbosity >= 2 else LEVELS.get(max(verbosity, -2), WARNING)


def configure(verbosity: int = 0, fmt: str = "console", *, level: int | None = None) -> None:
    """Set up logging to stderr; ``level`` (a logging level) overrides ``verbosity``."""
    global _settings, _applied, _level
    _level = level_for(verbosity) if level is None else level
    _settings = _Settings(_level, fmt, sys.stderr)
    _applied = False
    if "structlog" in sys.modules:
        # Already imported (by a test, or a line logged): set it up now, as
        # code using structlog directly would expect.
        _apply()


def _apply() -> None:
    """Configure structlog as ``_settings`` say (imports it)."""
    global _applied
    import structlog

    settings = _settings
    _applied = True
    if settings is None:
        return
    renderer: Any
    if settings.fmt == "json":
        stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
        renderer = structlog.processors.JSONRenderer()
    else:
        stamper = structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False)
        renderer = structlog.dev.ConsoleRenderer(colors=settings.stream.isatty())
    processors: list[Any] = [structlog.processors.add_log_level, stamper]
    if settings.level > DEBUG:
        processors.append(_drop_hex_dumps)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(settings.level),
        logger_factory=structlog.PrintLoggerFactory(file=settings.stream),
        cache_logger_on_first_use=False,
    )


def _drop_hex_dumps(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for name in HEX_FIELDS.intersection(event):
        value = event[name]
        if isinstance(value, bytes | bytearray) or (
            isinstance(value, str) and _HEXLIKE.fullmatch(value)
        ):
            del event[name]
    return event


class Logger:
    """structlog's logger for ``amsread``, behind a level check that needs no import.

    A line below the configured level costs one comparison (the reporter's
    per-message debug line); one that passes goes to structlog, with the
    current configuration, as ``structlog.get_logger("amsread")`` would.
    """

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        self._context = context or {}

    def bind(self, **values: Any) -> Logger:
        return Logger({**self._context, **values})

    def debug(self, event: str, **fields: Any) -> None:
        if _level <= DEBUG:
            self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        if _level <= INFO:
            self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        if _level <= WARNING:
            self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        if _level <= ERROR:
            self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        if _level <= CRITICAL:
            self._emit("critical", event, fields)

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        if not _applied:
            _apply()
        import structlog

        logger = structlog.get_logger("amsread")
        if self._context:
            logger = logger.bind(**self._context)
        try:
            getattr(logger, method)(event, **fields)
        except (OSError, ValueError):
            # stderr gone (journald restarted, a closed pipe): the readings
            # matter more than the log, so the reader goes on without it.
            global lines_lost
            lines_lost += 1


def enabled(level: int) -> bool:
    """True when a line at ``level`` (DEBUG, INFO, …) is logged."""
    return _level <= level


def get_logger() -> Logger:
    return Logger()
