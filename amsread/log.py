"""Logging: structlog to stderr, human-readable on a terminal or JSON."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}


def configure(verbosity: int = 0, fmt: str = "console") -> None:
    """``verbosity``: -v count minus -q count; 2 or more is debug."""
    level = logging.DEBUG if verbosity >= 2 else LEVELS.get(max(verbosity, -2), logging.WARNING)
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger("amsread")
