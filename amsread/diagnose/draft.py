"""``amsread profile draft``: a TOML profile drafted from decoded messages. Sans-I/O.

For a list that no profile fully describes, ``draft_profile`` writes a
complete profile that ``--profile`` accepts: one ``[[position]]`` per value of
a list of bare values, or one ``[[implied]]`` per unscaled code of a list with
OBIS codes. What the messages make plain is filled in and marked
``# inferred:`` (a value type; a list version, meter number or clock; a
voltage of about 230 V sent in 0.1 V; a 50 Hz frequency; a register that
only grows); everything else gets a placeholder name and ``# check against
your meter's display``. Nothing is guessed silently: several messages of the
same list give better guesses (a value that changes, a register that grows).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from amsread.model import Message, Reading

_CHECK = "check against your meter's display"
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DIGITS = re.compile(r"\d{8,}\Z")
#: (low, high, scaler, unit, code C group, what): ranges that make a number plain.
_PLAIN_RANGES = (
    (1900, 2600, -1, "V", "voltage", "about 230 V sent in 0.1 V"),
    (190, 260, 0, "V", "voltage", "about 230 V sent in whole volts"),
    (4900, 5100, -2, "Hz", "frequency", "about 50 Hz sent in 0.01 Hz"),
    (49000, 51000, -3, "Hz", "frequency", "about 50 Hz sent in 0.001 Hz"),
)
_VOLTAGE_CODES = ("1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255")
_FREQUENCY_CODE = "1.0.14.7.0.255"


@dataclass
class _Position:
    """One drafted ``[[position]]`` and the comment saying how it was found."""

    fields: dict[str, object]
    comment: str


def draft_profile(messages: Sequence[Message], name: str = "my-meter") -> str:
    """A loadable TOML profile for the list of ``messages`` (at least one)."""
    if not messages:
        raise ValueError("no message to draft a profile from")
    first = messages[0]
    count = len(first.readings)
    same = [m for m in messages if len(m.readings) == count]
    head = _head(first, name, len(same))
    if all(r.obis is None for r in first.readings):
        return head + _positional(same)
    return head + _labelled(same)


def _head(first: Message, name: str, used: int) -> str:
    lines = [
        f"# Drafted by 'amsread profile draft' from {used} message(s) of one list.",
        "# Lines marked 'inferred' follow from the data; the others need your meter's",
        "# display or its documentation. Use it with: amsread decode --profile FILE …",
        f"name = {_toml(name)}",
        f'title = "Drafted profile for {_text(first.list_id or "an unknown list")}"',
        "sources = [\"Drafted by 'amsread profile draft' from captured messages; replace with the"
        " list's public description\"]",
        "",
    ]
    return "\n".join(lines) + "\n"


def _positional(messages: Sequence[Message]) -> str:
    first = messages[0]
    positions = _positions(messages)
    match = []
    manufacturer = _manufacturer(first)
    if manufacturer is not None:
        match.append(f"manufacturer = [{_toml(manufacturer)}]  # inferred: system title")
    lines = ["[match]", *match, "", "[[layout]]", 'name = "drafted"']
    lines.append(f"items = {len(positions)}  # inferred: values in the list")
    if first.list_id:
        lines.append(f"list_id = [{_toml(first.list_id)}]  # inferred: list version sent")
    for position in positions:
        lines += ["", "[[layout.position]]  " + position.comment]
        lines += [f"{key} = {_toml(value)}" for key, value in position.fields.items()]
    return "\n".join(lines) + "\n"


def _positions(messages: Sequence[Message]) -> list[_Position]:
    first = messages[0]
    columns = [[m.readings[i].value for m in messages] for i in range(len(first.readings))]
    positions = []
    voltages = 0
    for index, column in enumerate(columns):
        is_list_id = index == 0 and bool(first.list_id) and column[0] == first.list_id
        position = _position(index, column, is_list_id, voltages)
        if position.fields.get("unit") == "V":
            voltages += 1
        positions.append(position)
    return positions


def _position(index: int, column: Sequence[object], is_list_id: bool, voltages: int) -> _Position:
    sample = column[0]
    number = f"value_{index + 1}"
    if is_list_id:
        return _Position(
            {"obis": "1.1.0.2.129.255", "type": "text"}, "# inferred: list version text"
        )
    if isinstance(sample, str) and _ISO_DATETIME.match(sample):
        return _Position({"obis": "0.0.1.0.0.255", "type": "date-time"}, "# inferred: date-time")
    if isinstance(sample, str):
        if _DIGITS.match(sample):
            return _Position(
                {"obis": "0.0.96.1.0.255", "type": "text"},
                f"# {_CHECK}: inferred a meter number (a text of digits)",
            )
        return _Position({"name": f"text_{index + 1}", "type": "text"}, f"# {_CHECK}: a text")
    if not _is_number(sample):
        return _Position({"name": number, "type": "any"}, f"# {_CHECK}: neither number nor text")
    return _number_position(number, [v for v in column if _is_number(v)], voltages)


def _number_position(name: str, values: list[object], voltages: int) -> _Position:
    numbers = [float(v) for v in values]  # type: ignore[arg-type]
    low, high = min(numbers), max(numbers)
    for start, end, scaler, unit, kind, what in _PLAIN_RANGES:
        if start <= low and high <= end and (kind != "voltage" or voltages < len(_VOLTAGE_CODES)):
            code = _VOLTAGE_CODES[voltages] if kind == "voltage" else _FREQUENCY_CODE
            fields = {"obis": code, "scaler": scaler, "unit": unit, "type": "number"}
            phase = f" (phase L{voltages + 1}? {_CHECK})" if kind == "voltage" else ""
            return _Position(fields, f"# inferred: {what}{phase}")
    grows = len(numbers) > 1 and high > low and numbers == sorted(numbers)
    if grows:
        return _Position(
            {"name": name.replace("value", "register"), "type": "number"},
            f"# {_CHECK}: inferred an energy register (it only grows across the messages):"
            ' add obis (1.0.1.8.0.255 +A, 1.0.2.8.0.255 -A …), scaler and unit = "Wh"',
        )
    return _Position({"name": name, "type": "number"}, f"# {_CHECK}: a number")


def _labelled(messages: Sequence[Message]) -> str:
    first = messages[0]
    lines = ["[match]"]
    if first.list_id:
        lines.append(f"list_id = [{_toml(first.list_id)}]  # inferred: list version sent")
    manufacturer = _manufacturer(first)
    if manufacturer is not None:
        lines.append(f"manufacturer = [{_toml(manufacturer)}]  # inferred: system title")
    lines.append(f"items = [{_item_count(first)}]  # inferred: elements in the list")
    rules = _implied(first.readings)
    if not rules:
        lines.append("# every value already has its scale: no [[implied]] rule is needed")
    for reading in rules:
        lines += [
            "",
            f"[[implied]]  # {_CHECK}: {reading.name or reading.obis} is sent without a scaler",
            f"obis = {_toml(reading.obis)}",
            "# scaler = N  (value x 10^N), and unit: until set, the value stays raw",
        ]
    return "\n".join(lines) + "\n"


def _implied(readings: Sequence[Reading]) -> list[Reading]:
    seen: set[str | None] = set()
    rules = []
    for reading in readings:
        if reading.raw and reading.obis not in seen:
            seen.add(reading.obis)
            rules.append(reading)
    return rules


def _item_count(message: Message) -> int:
    """The body's element count (what match.items compares), from the list's shape."""
    per_value = {"obis-value pairs": 2, "obis-value-scaler triplets": 3}
    coded = per_value.get(str(message.shape), 1)
    return max(1, sum(coded if r.obis is not None else 1 for r in message.readings))


def _manufacturer(message: Message) -> str | None:
    title = message.system_title
    if title is None or len(title) < 6:
        return None
    try:
        flag = bytes.fromhex(title[:6]).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return flag.upper() if flag.isalpha() else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: str) -> str:
    """``value`` escaped for the inside of a TOML basic string."""
    return "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if _is_control(c) else c) for c in value)


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F


_ESCAPES = {'"': '\\"', "\\": "\\\\"}


def _toml(value: object) -> str:
    """A TOML literal (strings as basic strings, control characters escaped)."""
    if isinstance(value, str):
        return f'"{_text(value)}"'
    return str(value)
