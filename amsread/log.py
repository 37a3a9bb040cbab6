"""Logging: structlog to stderr, human-readable on a terminal or JSON.

``console`` is for people (colours only on a terminal); ``json`` is one object
per line with an ISO 8601 UTC ``timestamp``, for journald, Loki or jq. Bytes
from the line shown as hex are debugging material: below debug level they are
dropped from every log line, whoever logs them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

LEVELS = {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
LEVEL_NAMES = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FORMATS = ("console", "json")
#: Log fields that may carry bytes from the line as hex (shown only at debug level).
HEX_FIELDS = frozenset({"start", "hex", "raw", "frame", "data", "bytes_hex"})
_HEXLIKE = re.compile(r"[0-9a-fA-F]{2}( ?[0-9a-fA-F]{2})*( …|…)?")


def level_for(verbosity: int) -> int:
    """``verbosity``: -v count minus -q count; 2 or more is debug."""
    return logging.DEBUG if verbosity >= 2 else LEVELS.get(max(verbosity, -2), logging.WARNING)


def configure(verbosity: int = 0, fmt: str = "console", *, level: int | None = None) -> None:
    """Set up logging to stderr; ``level`` (a logging level) overrides ``verbosity``."""
    if level is None:
        level = level_for(verbosity)
    renderer: Any
    if fmt == "json":
        stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
        renderer = structlog.processors.JSONRenderer()
    else:
        stamper = structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False)
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    processors: list[Any] = [structlog.processors.add_log_level, stamper]
    if level > logging.DEBUG:
        processors.append(_drop_hex_dumps)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
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


def get_logger() -> Any:
    return structlog.get_logger("amsread")
