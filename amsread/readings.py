"""From a decoded notification body to readings, whatever shape the list has.

The shape is read from the data, never assumed from the meter make:

* flat OBIS/value pairs, maybe led by a list-version string (Kamstrup);
* flat OBIS/value/{scaler, unit} triplets, with an unlabelled leading
  date-time and trailing meter number (Austria);
* bare values with no OBIS codes at all, named by a profile's positions.

Scalers and units the meter does not send come from the chosen profile, then
from the OBIS table. An item nothing names keeps ``obis: None`` and its raw value.
"""

from __future__ import annotations

from dataclasses import dataclass

from amsread.apdu import DataNotification
from amsread.axdr import Array, Enum, Structure
from amsread.events import Message, Reading
from amsread.obis import OBIS_SIZE, describe, format_obis
from amsread.profiles import Profile, ProfileSet, Rule
from amsread.timestamps import cosem_datetime_iso, looks_like_datetime
from amsread.units import unit_symbol

_PRINTABLE = frozenset(range(0x20, 0x7F))


@dataclass(slots=True)
class Item:
    """One value as found in the list, before profiles and scalers."""

    obis: bytes | None
    value: object
    scaler: int | None = None
    unit_code: int | None = None


@dataclass(slots=True)
class Extracted:
    items: list[Item]
    count: int
    list_id: str | None = None
    leading_time: bytes | None = None
    shape: str = "empty"


def _is_obis(value: object) -> bool:
    return type(value) is bytes and len(value) == OBIS_SIZE


def _scaler_unit(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, Structure)
        and len(value) == 2
        and type(value[0]) is int
        and isinstance(value[1], Enum)
    ):
        return value[0], int(value[1])
    return None


def extract(body: object) -> Extracted:
    """Find the items of a notification body and the list's shape."""
    if not isinstance(body, Structure | Array):
        return Extracted([Item(None, body)], 1, shape="single value")
    elements = list(body)
    out = Extracted([], len(elements))
    if not elements:
        return out
    labelled = 0
    i = 0
    n = len(elements)
    while i < n:
        element = elements[i]
        if _is_obis(element) and i + 1 < n:
            item = Item(element, elements[i + 1])
            i += 2
            if i < n:
                scaler_unit = _scaler_unit(elements[i])
                if scaler_unit is not None:
                    item.scaler, item.unit_code = scaler_unit
                    i += 1
            out.items.append(item)
            labelled += 1
            continue
        if labelled == 0 and not out.items:
            if isinstance(element, str) or (
                isinstance(element, bytes) and not looks_like_datetime(element)
            ):
                if i == 0 and n > 1 and _is_obis(elements[1]):
                    out.list_id = _text(element)
            elif looks_like_datetime(element) and out.leading_time is None:
                out.leading_time = element
                i += 1
                continue
        out.items.append(Item(None, element))
        i += 1
    if labelled == 0:
        out.shape = "positional"
    elif any(item.scaler is not None for item in out.items):
        out.shape = "obis-value-scaler triplets"
    else:
        out.shape = "obis-value pairs"
    return out


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) and value and all(b in _PRINTABLE for b in value.rstrip(b"\0")):
        return value.rstrip(b"\0").decode("ascii")
    return None


def scale(value: object, scaler: int | None) -> object:
    """Apply a power-of-ten scaler exactly: int/int division rounds correctly."""
    if not scaler or (type(value) is not int and not isinstance(value, float)):
        return value
    if isinstance(value, bool):
        return value
    if scaler > 0:
        return value * 10**scaler
    return value / 10**-scaler


def present(value: object) -> int | float | str | None:
    """A JSON-ready value: numbers stay numbers, strings text, dates ISO."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        # Printable text never parses as a date-time (its month byte is > 12).
        iso = cosem_datetime_iso(value) if len(value) == 12 else None
        if iso is not None:
            return iso
        text = _text(value)
        return text if text is not None else value.hex()
    if isinstance(value, Structure | Array):
        return str([present(v) for v in value])
    return str(value)


class ReadingsBuilder:
    """Turns data-notifications into ``Message`` objects using the profiles."""

    def __init__(self, profiles: ProfileSet | None = None) -> None:
        self.profiles = profiles or ProfileSet()

    def build(self, notification: DataNotification, system_title: bytes | None = None) -> Message:
        extracted = extract(notification.body)
        manufacturer = _manufacturer(system_title)
        profile = self.profiles.select(extracted.list_id, extracted.count, manufacturer)
        readings = self._readings(extracted, profile)
        meter_time = notification.meter_time
        if meter_time is None and extracted.leading_time is not None:
            meter_time = cosem_datetime_iso(extracted.leading_time)
        return Message(
            readings=readings,
            meter_time=meter_time,
            system_title=system_title.hex().upper() if system_title else None,
            list_id=extracted.list_id,
            profile=profile.name if profile else None,
            extra={"shape": extracted.shape},
        )

    def _readings(self, extracted: Extracted, profile: Profile | None) -> list[Reading]:
        readings = []
        positions = profile.positions if profile else ()
        for index, item in enumerate(extracted.items):
            code = item.obis
            rule: Rule | None = None
            if code is None:
                if positions and index < len(positions):
                    rule = positions[index]
                    code = rule.obis
                elif index == 0 and extracted.list_id is not None and profile:
                    code = profile.leading_obis
            if code is not None and rule is None and profile is not None:
                rule = profile.implied_for(code)
            reading = self._reading(item, code, rule)
            if reading is not None:
                readings.append(reading)
        return readings

    @staticmethod
    def _reading(item: Item, code: bytes | None, rule: Rule | None) -> Reading | None:
        if item.value is None:
            return None  # null-data placeholder, e.g. an absent phase
        name, unit = describe(code) if code is not None else (None, None)
        scaler = item.scaler
        if item.unit_code is not None:
            unit = unit_symbol(item.unit_code)
        if rule is not None:
            if scaler is None:
                scaler = rule.scaler
            if item.unit_code is None and rule.unit is not None:
                unit = rule.unit
            if rule.name:
                name = rule.name
        value = item.value
        if isinstance(value, Enum):
            value = int(value)
        return Reading(
            obis=format_obis(code) if code is not None else None,
            name=name,
            value=present(scale(value, scaler)),
            unit=unit,
        )


def _manufacturer(system_title: bytes | None) -> str | None:
    if system_title and all(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in system_title[:3]):
        return system_title[:3].decode("ascii").upper()
    return None
