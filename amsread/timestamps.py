"""COSEM date-time (12 bytes) to ISO 8601 text."""

from __future__ import annotations

import datetime as dt

_UNSPECIFIED_DEVIATION = -0x8000


def cosem_datetime_iso(raw: bytes) -> str | None:
    """ISO 8601 text for a COSEM date-time, or None if it names no instant.

    The deviation is minutes *behind* UTC (0xFFC4 = -60 = UTC+01:00), so the
    offset printed is its negation. 0x8000 means the meter did not say.
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
            0 if hour == 0xFF else hour,
            0 if minute == 0xFF else minute,
            0 if second == 0xFF else second,
            0 if hundredths in (0xFF, 0) or hundredths > 99 else hundredths * 10_000,
        )
    except ValueError:
        return None
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if deviation != _UNSPECIFIED_DEVIATION and -720 <= deviation <= 840:
        stamp = stamp.replace(tzinfo=dt.timezone(dt.timedelta(minutes=-deviation)))
    return stamp.isoformat()


def looks_like_datetime(value: object) -> bool:
    """True for a 12-byte octet-string that decodes as a COSEM date-time."""
    return isinstance(value, bytes) and len(value) == 12 and cosem_datetime_iso(value) is not None
