"""COSEM date-time (12 bytes), date (5) and time (4) to ISO 8601 text."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

_UNSPECIFIED_DEVIATION = -0x8000
_NOT_SPECIFIED = 0xFF
#: Deviations a real clock can have (UTC-12:00 … UTC+14:00), in minutes.
_MIN_DEVIATION, _MAX_DEVIATION = -720, 840


@lru_cache(maxsize=64)
def _zone(deviation: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(minutes=-deviation))


# The header time and a clock register in the same push are often the same
# bytes; a small cache makes the second conversion free.
@lru_cache(maxsize=256)
def cosem_datetime_iso(raw: bytes) -> str | None:
    """ISO 8601 text for a COSEM date-time, or None if it names no instant.

    The deviation is minutes *behind* UTC (0xFFC4 = -60 = UTC+01:00), so the
    offset printed is its negation. 0x8000 means the meter did not say.
    Unspecified hour, minute or second (0xFF) count as 0.
    """
    if len(raw) != 12:
        return None
    year = (raw[0] << 8) | raw[1]
    month, day, hour, minute, second, hundredths = raw[2], raw[3], raw[5], raw[6], raw[7], raw[8]
    try:
        stamp = dt.datetime(
            year,
            month,
            day,
            0 if hour == _NOT_SPECIFIED else hour,
            0 if minute == _NOT_SPECIFIED else minute,
            0 if second == _NOT_SPECIFIED else second,
            0 if hundredths in (_NOT_SPECIFIED, 0) or hundredths > 99 else hundredths * 10_000,
        )
    except ValueError:
        return None
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if deviation != _UNSPECIFIED_DEVIATION and _MIN_DEVIATION <= deviation <= _MAX_DEVIATION:
        stamp = stamp.replace(tzinfo=_zone(deviation))
    return stamp.isoformat()


def cosem_date_iso(raw: bytes) -> str | None:
    """``YYYY-MM-DD`` for a 5-byte COSEM date, or None if it is incomplete."""
    if len(raw) != 5:
        return None
    try:
        return dt.date((raw[0] << 8) | raw[1], raw[2], raw[3]).isoformat()
    except ValueError:
        return None


def cosem_time_iso(raw: bytes) -> str | None:
    """``HH:MM:SS`` for a 4-byte COSEM time (unspecified fields count as 0)."""
    if len(raw) != 4:
        return None
    hour, minute, second = (0 if b == _NOT_SPECIFIED else b for b in raw[:3])
    try:
        return dt.time(hour, minute, second).isoformat()
    except ValueError:
        return None


def looks_like_datetime(value: object) -> bool:
    """True for a 12-byte octet-string that decodes as a COSEM date-time."""
    return isinstance(value, bytes) and len(value) == 12 and cosem_datetime_iso(value) is not None
