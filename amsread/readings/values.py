"""From a found item to a reading's value: names, units, scalers, raw marking.

Scalers and units the meter does not send come from the chosen profile, then
from the OBIS table. An item nothing names keeps ``obis: None`` and its raw
value; a coded quantity whose scale nothing gives is marked raw (``raw:
true``, no unit) and logged once with the profile line that would scale it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amsread.dlms import axdr
from amsread.dlms.axdr import Array, Structure
from amsread.readings.obis import describe, format_obis, needs_scale
from amsread.readings.profiles import Layout, Profile, Rule
from amsread.readings.shapes import (
    CAPTURE_TIME_ATTRIBUTE,
    LOGICAL_NAME_ATTRIBUTE,
    VALUE_ATTRIBUTE,
    Extracted,
    Item,
    printable_text,
)
from amsread.readings.timestamps import cosem_date_iso, cosem_datetime_iso, cosem_time_iso
from amsread.readings.units import unit_symbol

#: Turns one unpacked value into the reading's value (scaling, text, dates).
Converter = Callable[[Any], Any]


def scale(value: object, scaler: int | None) -> object:
    """Apply a power-of-ten scaler exactly: int/int division rounds correctly."""
    if not scaler or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if scaler > 0:
        return value * 10**scaler
    return value / 10**-scaler


def _present_bytes(value: bytes) -> str:
    # Printable text never parses as a date-time (its month byte is > 12).
    iso = cosem_datetime_iso(value) if len(value) == 12 else None
    if iso is not None:
        return iso
    text = printable_text(value)
    return text if text is not None else value.hex()


def present(value: object) -> int | float | str | None:
    """A JSON-ready value: numbers stay numbers, strings text, dates ISO."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN or infinity: no number, and not valid JSON either
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, axdr.CosemDate):
        return cosem_date_iso(value) or value.hex()
    if isinstance(value, axdr.CosemTime):
        return cosem_time_iso(value) or value.hex()
    if isinstance(value, bytes):
        return _present_bytes(value)
    if isinstance(value, Structure | Array):
        return str([present(v) for v in value])
    return str(value)


def _number_converter(scaler: int | None, factor: int | float | None) -> Converter | None:
    """Scale exactly: int x 10^k stays int; int / 10^k rounds once, as a float."""
    if not scaler:
        if factor is None:
            return None
        return lambda v: v * factor
    if scaler > 0:
        multiplier = 10**scaler * (1 if factor is None else factor)
        return lambda v: v * multiplier
    divisor = 10**-scaler
    if factor is None:
        return lambda v: v / divisor
    return lambda v: v * factor / divisor


def _finite(value: float) -> float | None:
    # NaN or infinity (sent, or a scaled float overflowing) is no number, and no JSON.
    return value if math.isfinite(value) else None


def _bcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0x0F)


def _visible(value: bytes) -> str:
    return value.rstrip(b"\0").decode("latin-1", "replace")


def _utf8(value: bytes) -> str:
    return value.rstrip(b"\0").decode("utf-8", "replace")


def _date(value: bytes) -> str:
    return cosem_date_iso(value) or value.hex()


def _time(value: bytes) -> str:
    return cosem_time_iso(value) or value.hex()


#: struct codes of the fixed-size types (the others unpack as bytes).
STRUCT_CODES = {
    axdr.BOOLEAN: "?",
    axdr.DOUBLE_LONG: "i",
    axdr.DOUBLE_LONG_UNSIGNED: "I",
    axdr.INTEGER: "b",
    axdr.LONG: "h",
    axdr.UNSIGNED: "B",
    axdr.LONG_UNSIGNED: "H",
    axdr.LONG64: "q",
    axdr.LONG64_UNSIGNED: "Q",
    axdr.ENUM: "B",
    axdr.BCD: "B",
    axdr.FLOAT32: "f",
    axdr.FLOAT64: "d",
}
_TEXT_CONVERTERS: dict[int, Converter] = {
    axdr.VISIBLE_STRING: _visible,
    axdr.UTF8_STRING: _utf8,
    axdr.OCTET_STRING: _present_bytes,
    axdr.BIT_STRING: _present_bytes,
    axdr.DATE_TIME: _present_bytes,
    axdr.DATE: _date,
    axdr.TIME: _time,
}


def value_converter(tag: int, scaler: int | None, factor: int | float | None) -> Converter | None:
    """How a raw unpacked value becomes the reading's value."""
    if tag in _TEXT_CONVERTERS:
        return _TEXT_CONVERTERS[tag]
    if tag == axdr.BOOLEAN:
        return None
    number = _number_converter(scaler, factor)
    if tag in (axdr.FLOAT32, axdr.FLOAT64):
        return _finite if number is None else lambda v: _finite(number(v))
    if tag != axdr.BCD:
        return number
    if number is None:
        return _bcd
    return lambda v: number(_bcd(v))


#: Tags of numbers a scaler applies to.
NUMERIC_TAGS = frozenset(STRUCT_CODES) - {axdr.BOOLEAN, axdr.ENUM}


def raw_note(resolved: ResolvedItem, index: int, layout: Layout | None) -> str:
    """What one raw reading is, and the profile line that would scale it."""
    assert resolved.obis is not None  # only a coded quantity is raw
    obis = format_obis(resolved.obis)
    what = f"{resolved.name} ({obis})" if resolved.name else obis
    unit = f', unit = "{resolved.raw_unit}"' if resolved.raw_unit else ""
    if layout is not None:
        return f'{what}: position {index + 1} {{ obis = "{obis}", scaler = N{unit} }}'
    return f'{what}: [[implied]] obis = "{obis}", scaler = N{unit}'


def raw_summary(notes: list[str], layout: Layout | None) -> str:
    """One log line for a layout's raw readings (said once per meter and layout)."""
    where = f" of layout {layout.name!r}" if layout is not None else ""
    return (
        f"{len(notes)} readings are output raw (raw: true, unit: null): no scaler was sent"
        f" and no profile gives one. Profile lines{where} that would scale them"
        f" (value x 10^N; check against the meter's display): {'; '.join(notes)}"
    )


@dataclass(slots=True)
class ResolvedItem:
    """What one item reads as: its code, name, unit and how to scale it."""

    obis: bytes | None
    name: str | None
    unit: str | None
    scaler: int | None
    factor: int | float | None
    #: A quantity with a unit (or a power factor) whose scale nothing gives.
    raw: bool = False
    #: The unit the OBIS table gives it, for the log line of a raw reading.
    raw_unit: str | None = None


def resolve_item(
    item: Item,
    index: int,
    extracted: Extracted,
    profile: Profile | None,
    layout: Layout | None,
) -> ResolvedItem:
    """OBIS code, name, unit, scaler and factor for one item."""
    code = item.obis
    rule = None
    if code is None:
        if layout is not None:
            rule = layout.positions[index]
            code = rule.obis
        elif index == extracted.list_id_index and profile is not None:
            code = profile.leading_obis
    if code is not None and rule is None and profile is not None and not profile.positional:
        rule = profile.implied_for(code)
    name, unit = describe(code) if code is not None else (None, None)
    scaler = item.scaler
    factor = None
    if item.unit_code is not None:
        unit = unit_symbol(item.unit_code)
    if rule is not None:
        if scaler is None:
            scaler = rule.scaler
        if item.unit_code is None and rule.unit is not None:
            unit = rule.unit
        name = rule.name or name
        factor = rule.scale
    if item.attribute not in (None, VALUE_ATTRIBUTE):
        # Another attribute of the object (logical name, capture time…).
        if name is not None and item.attribute == CAPTURE_TIME_ATTRIBUTE:
            name = f"{name}_capture_time"
        elif name is not None and item.attribute != LOGICAL_NAME_ATTRIBUTE:
            name = f"{name}_attribute_{item.attribute}"
        unit = scaler = factor = None
    elif code is not None and scaler is None and _unscaled(rule) and needs_scale(code):
        # Neither the meter nor a profile says the scale: the register is not
        # presented as a scaled number with a unit (output with raw: true).
        return ResolvedItem(code, name, None, None, factor, raw=True, raw_unit=unit)
    return ResolvedItem(code, name, unit, scaler, factor)


def _unscaled(rule: Rule | None) -> bool:
    # A profile rule giving a unit or a factor states the scale (scaler 0 implied).
    return rule is None or (rule.scaler is None and rule.unit is None and rule.scale is None)
