"""OBIS codes: formatting, and names and default units from ``data/obis.toml``."""

from __future__ import annotations

import tomllib
from functools import cache, lru_cache
from importlib import resources

OBIS_SIZE = 6
#: Distinct codes remembered by ``format_obis``: a meter sends a few dozen;
#: the bound keeps a stream of ever-new codes from growing memory.
FORMAT_CACHE_SIZE = 1024


@lru_cache(maxsize=FORMAT_CACHE_SIZE)
def format_obis(code: bytes) -> str:
    """Six dotted decimal groups, exactly as sent (never rewrite A or B)."""
    # Cached: every message formats the same codes again (a hot spot in replay).
    return ".".join(str(group) for group in code)


def parse_obis(text: str) -> bytes:
    """``"1.0.1.8.0.255"`` (also with ``-``, ``:``, ``*`` separators) to 6 bytes."""
    groups = text.replace("-", ".").replace(":", ".").replace("*", ".").split(".")
    if len(groups) != OBIS_SIZE:
        raise ValueError(f"OBIS code {text!r} does not have six groups")
    values = [int(group) for group in groups]
    if any(not 0 <= value <= 255 for value in values):
        raise ValueError(f"OBIS code {text!r} has a group outside 0-255")
    return bytes(values)


@cache
def _table() -> dict[tuple[int, int, int, int], tuple[str, str | None]]:
    text = resources.files("amsread.readings").joinpath("data/obis.toml").read_text("utf-8")
    table = {}
    for key, entry in tomllib.loads(text)["codes"].items():
        a, c, d, e = (int(part) for part in key.split("."))
        table[(a, c, d, e)] = (entry["name"], entry.get("unit") or None)
    return table


# Bounded like format_obis: the codes come from the line.
@lru_cache(maxsize=FORMAT_CACHE_SIZE)
def describe(code: bytes) -> tuple[str | None, str | None]:
    """(stable snake_case name, default unit) for an OBIS code, or (None, None)."""
    if len(code) != OBIS_SIZE:
        return None, None
    return _table().get((code[0], code[2], code[3], code[4]), (None, None))


#: C groups of the power factors (total, L1, L2, L3): no unit, but a scale.
_POWER_FACTOR_C = frozenset({13, 33, 53, 73})
_INSTANTANEOUS_D = 7


def needs_scale(code: bytes) -> bool:
    """True for a quantity whose register means nothing without its scaler.

    Every code with a unit (energy, power, voltage, current, frequency…) and
    the power factors, which are dimensionless but sent in thousandths or
    hundredths.
    """
    if describe(code)[1] is not None:
        return True
    return len(code) == OBIS_SIZE and code[2] in _POWER_FACTOR_C and code[3] == _INSTANTANEOUS_D
