"""Finding the items of a notification body, whatever shape the list has.

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from amsread.dlms.axdr import Array, Structure
from amsread.readings.obis import OBIS_SIZE, format_obis
from amsread.readings.timestamps import looks_like_datetime

#: Where a value sits in the body tree (indices from the root).
Path = tuple[int, ...]

_PRINTABLE = frozenset(range(0x20, 0x7F))
#: OBIS value group A runs 0 (abstract) … 15 (other media); an octet-string of
#: six bytes starting higher is data (e.g. ASCII digits), not an OBIS code.
MAX_OBIS_A = 15
_LIST_VERSION = b"\x00\x02\x81"  # C.D.E of the list version, 1.1.0.2.129.255
#: COSEM attribute numbers a capture-object list names.
VALUE_ATTRIBUTE = 2
LOGICAL_NAME_ATTRIBUTE = 1
SCALER_UNIT_ATTRIBUTE = 3
CAPTURE_TIME_ATTRIBUTE = 5


class Guard(NamedTuple):
    """A decision taken on a value's content, re-checked before reusing a plan."""

    #: The value's place in the body tree.
    path: Path
    #: The test applied to the value (is it an OBIS code, text, a date-time…).
    predicate: Callable[[object], bool]
    #: What the test gave on the body the shape was read from.
    outcome: bool


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


@dataclass(slots=True)
class Extracted:
    """The items of one body, its shape, and what the shape was decided on."""

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


def printable_text(value: object) -> str | None:
    """The value as text if it is a string or printable ASCII (trailing NULs dropped)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) and value:
        stripped = value.rstrip(b"\0")
        if stripped and all(b in _PRINTABLE for b in stripped):
            return stripped.decode("ascii")
    return None


def _is_text(value: object) -> bool:
    return printable_text(value) is not None


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
                out.guards.append(Guard((*base, i), _is_obis, False))
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
    out.guards.append(Guard(last.path, _is_text, found))
    if found:
        last.obis = METER_NUMBER_OBIS


def _leading_text(item: Item, out: Extracted) -> bool:
    value = item.value
    if isinstance(value, str):
        found = True
    elif isinstance(value, bytes) and not looks_like_datetime(value):
        found = _is_text(value)
        if not found:
            out.guards.append(Guard(item.path, _is_text, False))
    else:
        return False
    if found:
        out.list_id = printable_text(value)
        item.constant = True
    return found


def _leading_time(item: Item, out: Extracted) -> bool:
    if type(item.value) is not bytes or len(item.value) != 12:
        return False
    found = looks_like_datetime(item.value)
    out.guards.append(Guard(item.path, looks_like_datetime, found))
    return found


def _labelled_list_id(out: Extracted) -> None:
    """A list version sent with its OBIS code (Aidon, Kaifa MA309M) is the list id."""
    for item in out.items:
        if item.obis is not None and item.obis[2:5] == _LIST_VERSION:
            text = printable_text(item.value)
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
    # The elements name their objects as a capture-object list does, so a
    # profile may match on them the same way (``[match] capture_object``).
    out.captures = tuple(entry[1] for entry in elements[1])
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
        scaler_unit = _scaler_unit(value) if attribute == SCALER_UNIT_ATTRIBUTE else None
        if scaler_unit is not None:
            scalers[code] = scaler_unit
            continue
        item = Item(code, value, path=(*vbase, j + offset), attribute=attribute)
        if attribute == LOGICAL_NAME_ATTRIBUTE:
            item.constant = True
            if _is_obis(value):
                assert isinstance(value, bytes)
                item.value = format_obis(value)
        out.items.append(item)
    for item in out.items:
        if item.attribute == VALUE_ATTRIBUTE and item.obis in scalers:
            item.scaler, item.unit_code = scalers[item.obis]
    out.shape = "capture-object list"
    return True
