"""From a notification body to readings, whatever shape the list has.

The shape is read from the data, never assumed from the meter make:

* flat OBIS/value pairs, maybe led by a list-version string (Kamstrup);
* flat OBIS/value/{scaler, unit} triplets, with an unlabelled leading
  date-time and trailing meter number (Austria: EVN, Netz NÖ);
* nested ``{OBIS, value[, {scaler, unit}]}`` structures in an array or a
  structure (Aidon, Landis+Gyr E350, Kaifa MA309M);
* a capture-object list ``[{class id, OBIS, attribute, …}]`` followed by the
  values in the same order (Landis+Gyr, Iskraemeco in Switzerland);
* bare values with no OBIS codes at all, named by a profile's positions
  (Kaifa in Norway and Sweden, Wiener Netze, Landis+Gyr E450 in Austria).

A body nested one level deeper (a list inside a one-element structure) is
unwrapped first. ``null-data`` stands in for absent values (a single-phase
meter sending the three-phase list) and gives no reading.

Scalers and units the meter does not send come from the chosen profile, then
from the OBIS table. An item nothing names keeps ``obis: None`` and its raw
value; an unknown positional list is output raw, and the message carries a
hint (``extra["hint"]``) naming the profile fields that would decode it.

Speed: a meter sends the same layout every few seconds, and only the values
change. The first message of a layout is decoded in full and compiled into a
*plan*: a bit mask of the bytes that must not change (tags, lengths, OBIS
codes, scalers, the list id), one ``struct`` format that unpacks every value
at once, and a converter per reading. Later messages with the same bytes
outside the value fields skip A-XDR decoding entirely; anything else is
decoded afresh and gets its own plan. A message is a ``LazyMessage``: the
layout's labels and the values, with ``Reading`` objects made only if
something reads ``readings`` (the JSON-lines writer does not).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from amsread.dlms import axdr
from amsread.dlms.apdu import DataNotification
from amsread.dlms.axdr import Array, Structure
from amsread.errors import ApduError, AxdrError
from amsread.model import LazyMessage, ReadingLabels
from amsread.readings.described import described_tree
from amsread.readings.obis import OBIS_SIZE, describe, format_obis, needs_scale
from amsread.readings.profiles import Layout, Profile, ProfileSet, Rule
from amsread.readings.timestamps import (
    cosem_date_iso,
    cosem_datetime_iso,
    cosem_time_iso,
    looks_like_datetime,
)
from amsread.readings.units import unit_symbol

Path = tuple[int, ...]
Converter = Callable[[Any], Any]

_PRINTABLE = frozenset(range(0x20, 0x7F))
#: OBIS value group A runs 0 (abstract) … 15 (other media); an octet-string of
#: six bytes starting higher is data (e.g. ASCII digits), not an OBIS code.
MAX_OBIS_A = 15
_CLOCK = b"\x01\x00\x00"  # C.D.E of the clock, 0.0.1.0.0.255
_LIST_VERSION = b"\x00\x02\x81"  # C.D.E of the list version, 1.1.0.2.129.255
_VALUE_ATTRIBUTE = 2
_LOGICAL_NAME_ATTRIBUTE = 1
_SCALER_UNIT_ATTRIBUTE = 3
_CAPTURE_TIME_ATTRIBUTE = 5
#: Layouts remembered per (manufacturer, body size), and (manufacturer, size) keys kept.
PLANS_PER_KEY = 4
MAX_PLAN_KEYS = 256
MAX_TITLES = 1024


# -- finding the items -----------------------------------------------------


@dataclass(slots=True)
class Item:
    """One value as found in the list, before profiles and scalers."""

    obis: bytes | None
    value: object
    scaler: int | None = None
    unit_code: int | None = None
    #: Where the value sits in the body tree (indices from the root).
    path: Path = ()
    #: Capture-object attribute (2 = value) when the list says so.
    attribute: int | None = None
    #: Part of the list's fixed layout (list id, logical names), not a measurement.
    constant: bool = False


Guard = tuple[Path, Callable[[object], bool], bool]


@dataclass(slots=True)
class Extracted:
    items: list[Item]
    count: int
    list_id: str | None = None
    leading_time: bytes | None = None
    leading_time_path: Path | None = None
    shape: str = "empty"
    #: True for a list of bare values (no OBIS codes at all).
    positional: bool = False
    #: OBIS codes of a capture-object list, in order (empty for other shapes).
    captures: tuple[bytes, ...] = ()
    #: Index in ``items`` of an unlabelled leading list-version string.
    list_id_index: int | None = None
    #: Decisions taken on a value's content: (path, predicate, outcome). A
    #: cached plan is only reused while each predicate gives the same outcome.
    guards: list[Guard] = field(default_factory=list)


#: The range of an A-XDR integer, the type of a scaler.
SCALER_MIN, SCALER_MAX = -128, 127


def _is_obis(value: object) -> bool:
    return type(value) is bytes and len(value) == OBIS_SIZE and value[0] <= MAX_OBIS_A


def _scaler_unit(value: object) -> tuple[int, int] | None:
    # A scaler is an A-XDR integer (int8): a wider one is no scaler_unit, and
    # 10**(2**31) would hang the reader.
    if (
        isinstance(value, Structure)
        and len(value) == 2
        and type(value[0]) is int
        and SCALER_MIN <= value[0] <= SCALER_MAX
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    ):
        return value[0], int(value[1])
    return None


def _nested_item(value: object) -> bool:
    """``{OBIS, value}`` or ``{OBIS, value, {scaler, unit}}``."""
    return (
        isinstance(value, Structure)
        and len(value) in (2, 3)
        and _is_obis(value[0])
        and (len(value) == 2 or _scaler_unit(value[2]) is not None)
    )


def _capture_defs(value: object) -> list[tuple[int, bytes, int]] | None:
    """``[{class id, OBIS, attribute, data index}, …]`` as (class, code, attribute)."""
    if not isinstance(value, Array | Structure) or not value:
        return None
    defs = []
    for entry in value:
        if not (
            isinstance(entry, Structure)
            and len(entry) >= 3
            and type(entry[0]) is int
            and _is_obis(entry[1])
            and type(entry[2]) is int
        ):
            return None
        defs.append((entry[0], entry[1], entry[2]))
    return defs


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) and value:
        stripped = value.rstrip(b"\0")
        if stripped and all(b in _PRINTABLE for b in stripped):
            return stripped.decode("ascii")
    return None


def _is_text(value: object) -> bool:
    return _text(value) is not None


def _unwrap(body: object) -> tuple[Path, Sequence[object] | None]:
    """The list's elements, looking through one-element wrapper containers."""
    if not isinstance(body, Structure | Array):
        return (), None
    path: Path = ()
    while (
        len(body) == 1
        and isinstance(body[0], Structure | Array)
        and not _nested_item(body[0])
        and _capture_defs(body[0]) is None
    ):
        body = body[0]
        path += (0,)
    return path, body


def extract(body: object) -> Extracted:
    """Find the items of a notification body and the list's shape."""
    base, elements = _unwrap(body)
    if elements is None:
        return Extracted([Item(None, body)], 1, shape="single value")
    out = Extracted([], len(elements))
    if elements and not (
        _described_list(elements, base, out) or _capture_list(elements, base, out)
    ):
        _scan(elements, base, out)
    if out.list_id is None:
        _labelled_list_id(out)
    return out


def _scan(elements: Sequence[object], base: Path, out: Extracted) -> None:
    n = len(elements)
    labelled = nested = triplets = 0
    i = 0
    while i < n:
        element = elements[i]
        if _nested_item(element):
            assert isinstance(element, Structure)
            scaler_unit = _scaler_unit(element[2]) if len(element) == 3 else None
            scaler, unit = scaler_unit if scaler_unit else (None, None)
            out.items.append(Item(element[0], element[1], scaler, unit, (*base, i, 1)))
            nested += 1
            i += 1
            continue
        if i + 1 < n:
            if _is_obis(element):
                assert isinstance(element, bytes)
                item = Item(element, elements[i + 1], path=(*base, i + 1))
                i += 2
                scaler_unit = _scaler_unit(elements[i]) if i < n else None
                if scaler_unit is not None:
                    item.scaler, item.unit_code = scaler_unit
                    triplets += 1
                    i += 1
                out.items.append(item)
                labelled += 1
                continue
            if type(element) is bytes and len(element) == OBIS_SIZE:
                out.guards.append(((*base, i), _is_obis, False))
        out.items.append(Item(None, element, path=(*base, i)))
        i += 1
    if labelled == 0 and nested == 0:
        out.positional = True
        out.shape = "positional"
        _positional_leaders(out)
        return
    if nested:
        out.shape = "nested obis structures"
    else:
        out.shape = "obis-value-scaler triplets" if triplets else "obis-value pairs"
    _labelled_leaders(out)
    if triplets:
        _trailing_meter_number(out)


def _positional_leaders(out: Extracted) -> None:
    """A leading list-version string, then a leading date-time, of a bare list."""
    items = out.items
    if len(items) > 1 and _leading_text(items[0], out):
        out.list_id_index = 0
    start = 1 if out.list_id_index is not None else 0
    if start < len(items) and _leading_time(items[start], out):
        # Kept as an item: the profile's positions name every element.
        out.leading_time = items[start].value  # type: ignore[assignment]
        out.leading_time_path = items[start].path


def _labelled_leaders(out: Extracted) -> None:
    """Unlabelled items before the first OBIS code: list id, leading date-time."""
    items = out.items
    leads = len(items) > 1 and items[0].obis is None and items[1].obis is not None
    if leads and _leading_text(items[0], out):
        out.list_id_index = 0
    for k, item in enumerate(items):
        if item.obis is not None:
            return
        if k == out.list_id_index:
            continue
        if _leading_time(item, out):
            # The meter's time stamp for the list, not a register: it becomes
            # the message's meter_time when the header carries none.
            out.leading_time = item.value  # type: ignore[assignment]
            out.leading_time_path = item.path
            del items[k]
            return


#: The meter number's code (0.0.96.1.0.255), given to the unlabelled text that
#: ends an Austrian triplet list (Kaifa MA309: ASCII digits, no OBIS code).
METER_NUMBER_OBIS = bytes((0, 0, 96, 1, 0, 255))


def _trailing_meter_number(out: Extracted) -> None:
    """An unlabelled text after the last OBIS triplet is the meter number."""
    items = out.items
    if len(items) < 2 or items[-1].obis is not None or items[-2].obis is None:
        return
    last = items[-1]
    if not isinstance(last.value, bytes):
        return
    found = _is_text(last.value)
    out.guards.append((last.path, _is_text, found))
    if found:
        last.obis = METER_NUMBER_OBIS


def _leading_text(item: Item, out: Extracted) -> bool:
    value = item.value
    if isinstance(value, str):
        found = True
    elif isinstance(value, bytes) and not looks_like_datetime(value):
        found = _is_text(value)
        if not found:
            out.guards.append((item.path, _is_text, False))
    else:
        return False
    if found:
        out.list_id = _text(value)
        item.constant = True
    return found


def _leading_time(item: Item, out: Extracted) -> bool:
    if type(item.value) is not bytes or len(item.value) != 12:
        return False
    found = looks_like_datetime(item.value)
    out.guards.append((item.path, looks_like_datetime, found))
    return found


def _labelled_list_id(out: Extracted) -> None:
    """A list version sent with its OBIS code (Aidon, Kaifa MA309M) is the list id."""
    for item in out.items:
        if item.obis is not None and item.obis[2:5] == _LIST_VERSION:
            text = _text(item.value)
            if text is not None:
                out.list_id = text
                item.constant = True
            return


def _described_entry(entry: object) -> bool:
    """``{class id, OBIS, attribute, value}``: an element that names itself."""
    return (
        isinstance(entry, Structure)
        and len(entry) == 4
        and type(entry[0]) is int
        and _is_obis(entry[1])
        and type(entry[2]) is int
    )


def _described_list(elements: Sequence[object], base: Path, out: Extracted) -> bool:
    """``{enum, [{class id, OBIS, attribute, value}, …]}`` (Sagemcom XT211, ``described``)."""
    if not (
        len(elements) == 2
        and type(elements[0]) is int
        and isinstance(elements[1], Array)
        and elements[1]
        and all(_described_entry(entry) for entry in elements[1])
    ):
        return False
    for j, entry in enumerate(elements[1]):
        out.items.append(Item(entry[1], entry[3], path=(*base, 1, j, 3), attribute=entry[2]))
    out.count = len(elements[1])
    out.shape = "class-obis-attribute-value list"
    return True


def _capture_list(elements: Sequence[object], base: Path, out: Extracted) -> bool:
    """A push that lists its capture objects first, then their values in order."""
    defs = _capture_defs(elements[0])
    if defs is None:
        return False
    if len(elements) == len(defs):  # the list is the value of the first object
        values, vbase, offset = elements, base, 0
    elif len(elements) == len(defs) + 1:
        values, vbase, offset = elements[1:], base, 1
    elif (
        len(elements) == 2
        and isinstance(elements[1], Structure | Array)
        and len(elements[1]) == len(defs)
    ):
        values, vbase, offset = elements[1], (*base, 1), 0
    else:
        return False
    out.captures = tuple(code for _, code, _ in defs)
    scalers: dict[bytes, tuple[int, int]] = {}
    for j, ((_, code, attribute), value) in enumerate(zip(defs, values, strict=True)):
        if value is elements[0]:
            continue  # the capture list itself (push setup, attribute 2)
        scaler_unit = _scaler_unit(value) if attribute == _SCALER_UNIT_ATTRIBUTE else None
        if scaler_unit is not None:
            scalers[code] = scaler_unit
            continue
        item = Item(code, value, path=(*vbase, j + offset), attribute=attribute)
        if attribute == _LOGICAL_NAME_ATTRIBUTE:
            item.constant = True
            if _is_obis(value):
                assert isinstance(value, bytes)
                item.value = format_obis(value)
        out.items.append(item)
    for item in out.items:
        if item.attribute == _VALUE_ATTRIBUTE and item.obis in scalers:
            item.scaler, item.unit_code = scalers[item.obis]
    out.shape = "capture-object list"
    return True


# -- values ------------------------------------------------------------------


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
    text = _text(value)
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
_CODES = {
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


def _converter(tag: int, scaler: int | None, factor: int | float | None) -> Converter | None:
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
_NUMERIC_TAGS = frozenset(_CODES) - {axdr.BOOLEAN, axdr.ENUM}


def _raw_note(resolved: _Resolved, index: int, layout: Layout | None) -> str:
    """What one raw reading is, and the profile line that would scale it."""
    assert resolved.obis is not None  # only a coded quantity is raw
    obis = format_obis(resolved.obis)
    what = f"{resolved.name} ({obis})" if resolved.name else obis
    unit = f', unit = "{resolved.raw_unit}"' if resolved.raw_unit else ""
    if layout is not None:
        return f'{what}: position {index + 1} {{ obis = "{obis}", scaler = N{unit} }}'
    return f'{what}: [[implied]] obis = "{obis}", scaler = N{unit}'


def _raw_summary(notes: list[str], layout: Layout | None) -> str:
    """One log line for a layout's raw readings (said once per meter and layout)."""
    where = f" of layout {layout.name!r}" if layout is not None else ""
    return (
        f"{len(notes)} readings are output raw (raw: true, unit: null): no scaler was sent"
        f" and no profile gives one. Profile lines{where} that would scale them"
        f" (value x 10^N; check against the meter's display): {'; '.join(notes)}"
    )


# -- plans -------------------------------------------------------------------


Spec = tuple[int, str | None, str | None, str | None, Converter | None]


class _Plan:
    """A compiled layout: how to turn one body of this exact shape into readings.

    ``specs`` (value index, obis, name, unit, converter), one per reading, are
    kept as the pieces a message needs: the labels (shared by every message of
    the layout), one C-level pick of the values in reading order, and the few
    converters (scalers, text, dates) to run on them.
    """

    __slots__ = (
        "constants",
        "converters",
        "extra",
        "guards",
        "labels",
        "list_id",
        "mask",
        "pick",
        "profile",
        "skeleton",
        "time_index",
        "unpack",
    )

    def __init__(
        self,
        mask: int,
        skeleton: int,
        unpack: Callable[[bytes], tuple[Any, ...]],
        constants: tuple[Any, ...],
        specs: tuple[Spec, ...],
        raw: tuple[bool, ...],
        guards: tuple[tuple[int, Callable[[object], bool], bool], ...],
        time_index: int,
        list_id: str | None,
        profile: str | None,
        extra: dict[str, object],
    ) -> None:
        self.mask = mask
        self.skeleton = skeleton
        self.unpack = unpack
        self.constants = constants
        self.labels = ReadingLabels([(obis, name, unit) for _, obis, name, unit, _ in specs], raw)
        self.pick = _picker([index for index, *_ in specs])
        self.converters = tuple(
            (position, spec[4]) for position, spec in enumerate(specs) if spec[4] is not None
        )
        self.guards = guards
        self.time_index = time_index
        self.list_id = list_id
        self.profile = profile
        self.extra = extra


def _picker(indexes: list[int]) -> Callable[[tuple[Any, ...]], list[Any]]:
    """The values at ``indexes``, in that order, as a new list."""
    if len(indexes) > 1:
        get = itemgetter(*indexes)  # one C call instead of a loop over the readings
        return lambda values: list(get(values))
    return lambda values: [values[i] for i in indexes]  # itemgetter(i) gives no tuple


@dataclass(slots=True)
class _Resolved:
    obis: bytes | None
    name: str | None
    unit: str | None
    scaler: int | None
    factor: int | float | None
    #: A quantity with a unit (or a power factor) whose scale nothing gives.
    raw: bool = False
    #: The unit the OBIS table gives it, for the log line of a raw reading.
    raw_unit: str | None = None


def _leaves(node: axdr.Node, path: Path, out: dict[Path, axdr.Node]) -> None:
    if node.tag in (axdr.STRUCTURE, axdr.ARRAY):
        for i, child in enumerate(node.children):
            _leaves(child, (*path, i), out)
    else:
        out[path] = node


def _resolve(
    item: Item,
    index: int,
    extracted: Extracted,
    profile: Profile | None,
    layout: Layout | None,
) -> _Resolved:
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
    if item.attribute not in (None, _VALUE_ATTRIBUTE):
        # Another attribute of the object (logical name, capture time…).
        if name is not None and item.attribute == _CAPTURE_TIME_ATTRIBUTE:
            name = f"{name}_capture_time"
        elif name is not None and item.attribute != _LOGICAL_NAME_ATTRIBUTE:
            name = f"{name}_attribute_{item.attribute}"
        unit = scaler = factor = None
    elif code is not None and scaler is None and _unscaled(rule) and needs_scale(code):
        # Neither the meter nor a profile says the scale: the register is not
        # presented as a scaled number with a unit (output with raw: true).
        return _Resolved(code, name, None, None, factor, raw=True, raw_unit=unit)
    return _Resolved(code, name, unit, scaler, factor)


def _unscaled(rule: Rule | None) -> bool:
    # A profile rule giving a unit or a factor states the scale (scaler 0 implied).
    return rule is None or (rule.scaler is None and rule.unit is None and rule.scale is None)


def _describe_types(leaves: dict[Path, axdr.Node], items: list[Item]) -> str:
    """``octet-string, 8 x double-long-unsigned``: the A-XDR types in order."""
    names = []
    for item in items:
        node = leaves.get(item.path)
        if node is not None:
            names.append(node.type_name)
        else:
            names.append("structure" if isinstance(item.value, Structure) else "array")
    runs = [(name, len(list(group))) for name, group in groupby(names)]
    return ", ".join(name if n == 1 else f"{n} x {name}" for name, n in runs)


def _hint(extracted: Extracted, leaves: dict[Path, axdr.Node], manufacturer: str | None) -> str:
    """One line for the log: which profile fields would decode this bare list."""
    n = extracted.count
    criteria = []
    if extracted.list_id is not None:
        criteria.append(f'list_id = "{extracted.list_id}"')
    if manufacturer is not None:
        criteria.append(f'manufacturer = "{manufacturer}"')
    match = f" and [match] {', '.join(criteria)}" if criteria else ""
    return (
        f"a list of {n} values without OBIS codes matches no profile, so its values are"
        f" output unnamed; a profile with {n} [[position]] entries in order (obis; scaler"
        f" and unit for numbers){match} would decode it. The values are:"
        f" {_describe_types(leaves, extracted.items)}"
        " (see README, 'Supported list shapes and profiles')"
    )


class ReadingsBuilder:
    """Turns data-notifications into ``Message`` objects using the profiles."""

    def __init__(self, profiles: ProfileSet | None = None) -> None:
        self.profiles = profiles or ProfileSet()
        self._plans: dict[tuple[str | None, int], list[_Plan]] = {}
        self._titles: dict[bytes, tuple[str, str | None]] = {}

    def build(
        self, notification: DataNotification, system_title: bytes | None = None
    ) -> LazyMessage:
        """Readings for one notification; ``ApduError`` if its body is malformed."""
        body = notification.body_bytes
        title, manufacturer = self._title(system_title)
        key = (manufacturer, len(body))
        plans = self._plans.get(key)
        if plans:
            number = int.from_bytes(body, "big")
            for plan in plans:
                if number & plan.mask == plan.skeleton:
                    message = self._apply(plan, body, notification.meter_time, title, True)
                    if message is not None:
                        return message
        plan = self._compile(body, manufacturer)
        self._remember(key, plan)
        message = self._apply(plan, body, notification.meter_time, title, False)
        assert message is not None  # guards hold on the body they were taken from
        return message

    def _title(self, system_title: bytes | None) -> tuple[str | None, str | None]:
        if system_title is None:
            return None, None
        known = self._titles.get(system_title)
        if known is None:
            if len(self._titles) >= MAX_TITLES:
                self._titles.clear()
            known = (system_title.hex().upper(), _manufacturer(system_title))
            self._titles[system_title] = known
        return known

    def _remember(self, key: tuple[str | None, int], plan: _Plan) -> None:
        if key not in self._plans and len(self._plans) >= MAX_PLAN_KEYS:
            self._plans.clear()
        plans = self._plans.setdefault(key, [])
        plans.insert(0, plan)
        del plans[PLANS_PER_KEY:]

    @staticmethod
    def _apply(
        plan: _Plan, body: bytes, header_time: str | None, title: str | None, check: bool
    ) -> LazyMessage | None:
        values = plan.unpack(body)
        if plan.constants:
            values += plan.constants
        if check:
            for index, predicate, expected in plan.guards:
                if predicate(values[index]) is not expected:
                    return None
        ordered = plan.pick(values)
        for position, convert in plan.converters:
            ordered[position] = convert(ordered[position])
        meter_time = header_time
        if meter_time is None and plan.time_index >= 0:
            raw = values[plan.time_index]
            meter_time = cosem_datetime_iso(raw) if isinstance(raw, bytes) else None
        message = LazyMessage(
            readings=[],
            meter_time=meter_time,
            system_title=title,
            list_id=plan.list_id,
            profile=plan.profile,
            extra=dict(plan.extra),
        )
        # Reading objects only if someone asks: the writer needs just these two.
        message.defer(plan.labels, tuple(ordered))
        return message

    def _compile(self, body: bytes, manufacturer: str | None) -> _Plan:
        try:
            root = axdr.decode_node(body)
            if root.end != len(body):
                raise AxdrError(f"{len(body) - root.end} unexpected bytes after the data", root.end)
        except AxdrError as exc:
            described = described_tree(body)  # not A-XDR: bare class/OBIS/attribute fields?
            if described is None:
                raise ApduError(f"notification body: {exc}") from exc
            root = described
        leaves: dict[Path, axdr.Node] = {}
        _leaves(root, (), leaves)
        extracted = extract(root.value)
        profile, layout = self._select(extracted, manufacturer)
        return _PlanMaker(body, leaves, extracted).make(
            profile,
            layout,
            _hint(extracted, leaves, manufacturer)
            if extracted.positional and layout is None
            else None,
        )

    def _select(
        self, extracted: Extracted, manufacturer: str | None
    ) -> tuple[Profile | None, Layout | None]:
        if extracted.positional:
            values = [item.value for item in extracted.items]
            found = self.profiles.select_positional(extracted.list_id, values, manufacturer)
            return found if found is not None else (None, None)
        if extracted.shape == "single value":
            return None, None
        labelled = self.profiles.select(
            extracted.list_id, extracted.count, manufacturer, extracted.captures
        )
        return labelled, None


class _PlanMaker:
    """Compiles one decoded body into a ``_Plan``."""

    def __init__(self, body: bytes, leaves: dict[Path, axdr.Node], extracted: Extracted) -> None:
        self.body = body
        self.leaves = leaves
        self.extracted = extracted
        self.slots: dict[Path, tuple[int, int, str]] = {}
        self.constants: list[object] = []

    def _slot(self, path: Path) -> tuple[str, int] | None:
        """Make the leaf at ``path`` a value field: (path key, tag), or None if no leaf."""
        node = self.leaves.get(path)
        if node is None or node.tag == axdr.NULL_DATA:
            return None
        code = _CODES.get(node.tag, f"{node.end - node.content}s")
        self.slots[path] = (node.content, node.end, code)
        return code, node.tag

    def _constant(self, value: object) -> int:
        self.constants.append(value)
        return -len(self.constants)  # resolved once the slot count is known

    def make(self, profile: Profile | None, layout: Layout | None, hint: str | None) -> _Plan:
        extracted = self.extracted
        raw_specs: list[tuple[Path | int, str | None, str | None, str | None, Converter | None]]
        raw_specs = []
        raw_flags: list[bool] = []
        raw_notes: list[str] = []
        clock_path: Path | None = None
        for index, item in enumerate(extracted.items):
            if item.value is None:
                continue  # null-data: an absent value, e.g. a phase the meter lacks
            resolved = _resolve(item, index, extracted, profile, layout)
            obis = format_obis(resolved.obis) if resolved.obis is not None else None
            node = self.leaves.get(item.path)
            raw_flags.append(self._raw_flag(resolved, node))
            if raw_flags[-1]:
                raw_notes.append(_raw_note(resolved, index, layout))
            if node is None or item.constant or item.value is not node.value:
                # A container, or a value that is part of the fixed layout.
                value = item.value
                if node is not None and item.value is node.value:
                    convert = _converter(node.tag, resolved.scaler, resolved.factor)
                    value = self._raw(node)
                    value = value if convert is None else convert(value)
                ref: Path | int = self._constant(present(value))
                raw_specs.append((ref, obis, resolved.name, resolved.unit, None))
                continue
            slot = self._slot(item.path)
            assert slot is not None
            convert = _converter(slot[1], resolved.scaler, resolved.factor)
            raw_specs.append((item.path, obis, resolved.name, resolved.unit, convert))
            if (
                clock_path is None
                and resolved.obis is not None
                and resolved.obis[2:5] == _CLOCK
                and node.end - node.content == 12
            ):
                clock_path = item.path
        time_path = extracted.leading_time_path or clock_path
        if time_path is not None and time_path not in self.slots:
            self._slot(time_path)
        order = sorted(self.slots, key=lambda p: self.slots[p][0])
        index_of = {path: i for i, path in enumerate(order)}
        count = len(order)

        def ref_index(ref: Path | int) -> int:
            return index_of[ref] if isinstance(ref, tuple) else count - ref - 1

        specs = tuple((ref_index(r), o, n, u, c) for r, o, n, u, c in raw_specs)
        guards = tuple(
            (index_of[path], predicate, outcome)
            for path, predicate, outcome in extracted.guards
            if path in index_of
        )
        extra: dict[str, object] = {"shape": extracted.shape}
        if hint is not None:
            extra["hint"] = hint
        if raw_notes:
            extra["raw_readings"] = (_raw_summary(raw_notes, layout),)
        if layout is not None and len(profile.layouts if profile else ()) > 1:
            extra["layout"] = layout.name
        return _Plan(
            *self._masks(order),
            unpack=self._unpacker(order),
            constants=tuple(self.constants),
            specs=specs,
            raw=tuple(raw_flags),
            guards=guards,
            time_index=index_of[time_path] if time_path is not None else -1,
            list_id=extracted.list_id,
            profile=profile.name if profile else None,
            extra=extra,
        )

    @staticmethod
    def _raw_flag(resolved: _Resolved, node: axdr.Node | None) -> bool:
        """Whether the reading goes out raw: unscaled, and a number."""
        if not resolved.raw:
            return False
        if node is not None and node.tag in _NUMERIC_TAGS:
            return True
        resolved.unit = resolved.raw_unit  # text or a structure: no scale to miss
        return False

    def _raw(self, node: axdr.Node) -> object:
        code = _CODES.get(node.tag, f"{node.end - node.content}s")
        return struct.unpack_from(">" + code, self.body, node.content)[0]

    def _masks(self, order: list[Path]) -> tuple[int, int]:
        mask = bytearray(b"\xff") * len(self.body)
        for path in order:
            start, end, _ = self.slots[path]
            mask[start:end] = bytes(end - start)
        mask_int = int.from_bytes(mask, "big")
        return mask_int, int.from_bytes(self.body, "big") & mask_int

    def _unpacker(self, order: list[Path]) -> Callable[[bytes], tuple[Any, ...]]:
        parts = [">"]
        cursor = 0
        for path in order:
            start, end, code = self.slots[path]
            if start > cursor:
                parts.append(f"{start - cursor}x")
            parts.append(code)
            cursor = end
        return struct.Struct("".join(parts)).unpack_from


def _manufacturer(system_title: bytes | None) -> str | None:
    if (
        system_title
        and len(system_title) >= 3
        and all(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in system_title[:3])
    ):
        return system_title[:3].decode("ascii").upper()
    return None
