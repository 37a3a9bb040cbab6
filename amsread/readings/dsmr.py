"""DSMR P1 telegram text to a ``Message``, sans I/O.

Each data line ``A-B:C.D.E(value*unit)…`` becomes a reading: the OBIS code in
six dotted groups (F = 255), the value as sent (a number, or text), the unit
as sent. How a code's value is written is data (``data/dsmr.toml``, citing the
DSMR, e-MUCS and Smarty specifications); names come from ``data/obis.toml``.
A line no definition knows is kept with its code and raw text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from amsread.errors import DecodeError
from amsread.model import (
    Label,
    ListLayout,
    Message,
    Reading,
    Security,
    shared_labels,
    shared_layout,
)
from amsread.readings.obis import describe

_GROUP = re.compile(r"\(([^()]*)\)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_STAMP = re.compile(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)([SW]?)")
_OFFSETS = {"S": "+02:00", "W": "+01:00", "": ""}


class TelegramError(DecodeError):
    """A telegram whose CRC matched (or that sends none) but whose text is no telegram."""

    reason = "bad_telegram"


@dataclass(frozen=True, slots=True)
class _Spec:
    objects: dict[str, dict[str, str]]
    mbus: dict[str, dict[str, str]]
    media: dict[int, str]
    #: A.C.D of a code -> the units the specifications give for its value.
    units: dict[str, tuple[str, ...]]


@cache
def _spec() -> _Spec:
    text = resources.files("amsread.readings").joinpath("data/dsmr.toml").read_text("utf-8")
    data = tomllib.loads(text)
    media = {int(key): name for key, name in data["media"].items()}
    units = {key: tuple(names) for key, names in data["units"].items()}
    return _Spec(data["objects"], data["mbus"], media, units)


def expected_units(obis: str) -> tuple[str, ...]:
    """The units the specifications give for a code's value (``()``: none, or not listed)."""
    medium, _channel, c, d, *_ = obis.split(".")
    return _spec().units.get(f"{medium}.{c}.{d}", ())


def number(text: str) -> int | float | None:
    """``"000123.456"`` -> 123.456, ``"00004"`` -> 4; None if not a number."""
    if not _NUMBER.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)


def timestamp(text: str) -> str | None:
    """``YYMMDDhhmmssX`` to ISO 8601, X = S (+02:00) or W (+01:00); None if no time."""
    match = _STAMP.fullmatch(text)
    if match is None:
        return None
    yy, mo, dd, hh, mi, ss, season = match.groups()
    if not ("01" <= mo <= "12" and "01" <= dd <= "31" and hh <= "23" and mi <= "59" and ss <= "59"):
        return None  # e.g. 632525252525W: an M-Bus device that sent no time
    return f"20{yy}-{mo}-{dd}T{hh}:{mi}:{ss}{_OFFSETS[season]}"


def hex_text(text: str) -> str:
    """Hex-encoded text decoded, when it decodes to printable ASCII; else as sent."""
    if len(text) % 2 or not text:
        return text
    try:
        decoded = bytes.fromhex(text).decode("ascii")
    except ValueError:
        return text
    return decoded if decoded.isprintable() else text


def _with_unit(text: str) -> tuple[Any, str | None]:
    value, star, unit = text.partition("*")
    parsed = number(value)
    if parsed is None:
        return text, None
    return parsed, unit if star else None


def _failure_log(groups: list[str]) -> list[dict[str, Any]] | None:
    """``(n)(0-0:96.7.19)(end)(duration*s)…`` to ``[{end, duration_s}, …]``."""
    if not groups or (count := number(groups[0] or "0")) is None:
        return None
    pairs = groups[2:]
    if len(pairs) != 2 * int(count):
        return None
    log = []
    for end, duration in zip(pairs[::2], pairs[1::2], strict=True):
        seconds = number(duration.partition("*")[0])
        log.append({"end": timestamp(end) or end, "duration_s": seconds})
    return log


#: Codes a parser remembers (obis, name, kind, channel); a meter sends a few dozen.
MAX_CODES = 1024
_CODE = re.compile(r"(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True, slots=True)
class Code:
    """What a code text (``1-0:1.8.1``) means: its OBIS code, name and how its value is sent."""

    obis: str
    name: str | None
    #: How ``data/dsmr.toml`` says the value is sent; "" when read by its shape.
    kind: str
    #: The M-Bus channel (group B) of a sub-meter object, else 0.
    channel: int
    #: The table of ``data/dsmr.toml`` that lists the code ("objects", "mbus"), or "".
    table: str = ""


#: Lines a parser remembers whole; a meter repeats a few dozen, its changing values fill the rest.
MAX_LINES = 2048
#: Telegram layouts (list id and the labels of its lines, in order) a parser keeps.
MAX_LAYOUTS = 256
#: Distinct labels (obis, name, unit) a parser numbers before starting afresh.
MAX_LABELS = 4096
#: A line as parsed: obis, name, value, unit, captured_at, M-Bus channel.
_Line = tuple[str | None, str | None, Any, str | None, str | None, int]
#: A line no code knows (kept as text), and one that is no data line (the end, "!CRC").
_UNKNOWN_LINE: _Line = (None, None, None, None, None, 0)
_NO_LINE: _Line = (None, "", None, None, None, 0)
#: A line as a telegram uses it: its label's number, its value, and for the
#: few lines that need more (an M-Bus channel, a capture time) the parsed line;
#: label -1 for a line that gives no reading.
_Entry = tuple[int, Any, _Line | None]
_CLOCK = "0.0.1.0.0.255"


@dataclass(frozen=True, slots=True)
class _Layout:
    """A telegram layout's shared ``ListLayout``, and where the meter's clock is in its values."""

    list_layout: ListLayout
    #: Indices of the clock readings, last first: the last with a text value is the meter time.
    clock_indices: tuple[int, ...]


class TelegramParser:
    """Turns telegram text into a ``Message``; one per pipeline (it caches per code).

    A meter sends the same lines in the same order in every telegram, so a
    telegram's labels are looked up as one layout (``Message.in_layout``)
    and its readings are only its values: no ``Reading`` objects are made
    unless something reads them.
    """

    def __init__(self) -> None:
        # What each code text ("1-0:1.8.1") means, looked up once: most of a
        # telegram's cost was finding it again on every line.
        self._codes: dict[str, Code | None] = {}
        # Whole lines seen before: most lines of a telegram (ids, versions,
        # counters, tariff, often voltages and currents) repeat in the next.
        self._lines: dict[str, _Entry] = {}
        # Labels by number: a layout is then known by a tuple of small ints,
        # cheaper to hash than the labels themselves.
        self._label_numbers: dict[Label, int] = {}
        self._labels: list[Label] = []
        self._layouts: dict[tuple[str | None, tuple[int, ...]], _Layout] = {}

    def parse(
        self,
        raw: bytes,
        system_title: bytes | None = None,
        *,
        security: Security | None = None,
        received_at: float = 0.0,
    ) -> Message:
        """One telegram's readings; ``TelegramError`` if it is no telegram text."""
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise TelegramError(f"non-ASCII byte 0x{raw[exc.start]:02X} in the telegram") from None
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        ident = lines[0].strip()[1:] or None
        if len(self._labels) >= MAX_LABELS:
            self._forget()  # between telegrams: this one's label numbers stay valid
        numbers: list[int] = []
        values: list[Any] = []
        captured: dict[int, str] = {}
        media: dict[int, str] = {}
        known = self._lines
        for line in _joined(lines[1:]):
            number, value, parsed = known.get(line) or self._entry(line)
            if parsed is not None:
                if number < 0:
                    continue
                number = self._special(parsed, media)
                if parsed[4] is not None:
                    captured[len(values)] = parsed[4]
            numbers.append(number)
            values.append(value)
        key = tuple(numbers)
        layout = self._layouts.get((ident, key)) or self._layout(ident, key)
        meter_time = None
        for index in layout.clock_indices:
            if isinstance(clock := values[index], str):
                meter_time = clock
                break
        capture_times: tuple[str | None, ...] = ()
        if captured:
            capture_times = tuple(map(captured.get, range(len(values))))
        return Message.in_layout(
            layout.list_layout,
            tuple(values),
            meter_time,
            system_title.hex().upper() if system_title is not None else None,
            received_at,
            security,
            capture_times,
        )

    def line_reading(self, line: str, media: dict[int, str]) -> Reading | None:
        """The reading of one data line (None for the end line); ``media`` by M-Bus channel.

        ``media`` collects what the channels' device-type lines said, so that a
        later line of that channel is named for its medium (``gas_delivered``).
        """
        if len(self._labels) >= MAX_LABELS:
            self._forget()  # explain reads lines one by one, maybe never a whole telegram
        number, value, parsed = self._lines.get(line) or self._entry(line)
        if number < 0:
            return None
        captured_at = None
        if parsed is not None:
            number, captured_at = self._special(parsed, media), parsed[4]
        obis, name, unit = self._labels[number]
        return Reading(obis, name, value, unit, False, captured_at)

    def _entry(self, line: str) -> _Entry:
        """A line not seen before (or forgotten): parsed, and kept unless its value is a list."""
        parsed = self._parse_line(line)
        obis, name, value, unit, captured_at, channel = parsed
        entry: _Entry
        if obis is None and name is None:
            entry = (self._number((None, None, None)), line, None)  # unknown: kept as text
        elif obis is None:
            entry = (-1, None, parsed)
        else:
            number = self._number((obis, name, unit))
            entry = (number, value, parsed if channel or captured_at is not None else None)
        # A list (the failure log) is not shared between messages: a consumer may change it.
        if not isinstance(value, list):
            if len(self._lines) >= MAX_LINES:
                self._lines.clear()
            self._lines[line] = entry
        return entry

    def _special(self, parsed: _Line, media: dict[int, str]) -> int:
        """The label number of an M-Bus channel's line, which its medium may name."""
        obis, name, value, unit, _captured_at, channel = parsed
        if channel:
            if name == "mbus_device_type" and isinstance(value, int):
                media[channel] = _spec().media.get(value, "mbus_delivered")
            elif name == "mbus_delivered":
                name = media.get(channel, name)
        return self._number((obis, name, unit))

    def _number(self, label: Label) -> int:
        number = self._label_numbers.get(label)
        if number is None:
            number = self._label_numbers[label] = len(self._labels)
            self._labels.append(label)
        return number

    def _forget(self) -> None:
        """Start afresh: lines and layouts hold label numbers, so they go with the labels."""
        self._label_numbers.clear()
        self._labels.clear()
        self._lines.clear()
        self._layouts.clear()

    def _layout(self, ident: str | None, numbers: tuple[int, ...]) -> _Layout:
        labels = [self._labels[number] for number in numbers]
        clocks = [i for i, (obis, _, _) in enumerate(labels) if obis == _CLOCK]
        layout = _Layout(shared_layout(shared_labels(labels), ident), tuple(reversed(clocks)))
        if len(self._layouts) >= MAX_LAYOUTS:
            self._layouts.clear()
        self._layouts[(ident, numbers)] = layout
        return layout

    def _parse_line(self, line: str) -> _Line:
        """What one data line says, before the M-Bus channel's medium names it."""
        paren = line.find("(")
        code = self._code(line[:paren]) if paren > 0 else None
        if code is None:
            if line and not line.startswith("!"):
                return _UNKNOWN_LINE  # kept as text: never dropped
            return _NO_LINE
        rest = line[paren:]
        if not code.kind and rest.find("(", 1) < 0 and rest[-1] == ")":
            value, unit = _with_unit(rest[1:-1])  # one group, as most lines are
            return code.obis, code.name, value, unit, None, code.channel
        reading = _value(code.obis, code.name, code.kind, _GROUP.findall(rest), rest)
        return code.obis, code.name, reading.value, reading.unit, reading.captured_at, code.channel

    def _code(self, text: str) -> Code | None:
        if text in self._codes:
            return self._codes[text]
        if len(self._codes) >= MAX_CODES:
            self._codes.clear()
        code = self._codes[text] = describe_code(text)
        return code


def describe_code(text: str) -> Code | None:
    """What a code text means; None if it is no OBIS code (the line is kept as text)."""
    match = _CODE.fullmatch(text)
    if match is None:
        return None
    groups = tuple(int(group) for group in match.groups())
    if max(groups) > 255:
        return None
    medium, channel, c, d, e = groups
    key = f"{medium}.{c}.{d}.{e}"
    spec = _spec()
    mbus = spec.mbus.get(key) if medium == 0 and channel != 0 else None
    listed = spec.objects.get(key)
    definition = mbus or listed or {}
    name = definition.get("name") or describe(bytes((*groups, 255)))[0]
    obis = f"{medium}.{channel}.{c}.{d}.{e}.255"
    table = "mbus" if mbus else "objects" if listed else ""
    return Code(obis, name, definition.get("kind", ""), channel if mbus else 0, table)


def _value(obis: str, name: str | None, kind: str, groups: list[str], rest: str) -> Reading:
    """A reading from the value groups, by the code's kind, else by their shape."""
    raw = rest if len(groups) != 1 else groups[0]
    if kind == "text":
        return Reading(obis, name, raw, None)
    if kind == "hex_text" and len(groups) == 1:
        return Reading(obis, name, hex_text(groups[0]), None)
    if kind == "timestamp" and len(groups) == 1:
        return Reading(obis, name, timestamp(groups[0]) or groups[0], None)
    if kind == "failure_log" and (log := _failure_log(groups)) is not None:
        return Reading(obis, name, log, None)  # type: ignore[arg-type]
    if kind == "legacy_gas" and len(groups) == 7:
        value, unit = _with_unit(groups[6])
        return Reading(obis, name, value, groups[5] or unit, captured_at=timestamp(groups[0]))
    if len(groups) == 1:
        value, unit = _with_unit(groups[0])
        return Reading(obis, name, value, unit)
    if len(groups) == 2 and (captured := timestamp(groups[0])) is not None:
        value, unit = _with_unit(groups[1])
        return Reading(obis, name, value, unit, captured_at=captured)
    return Reading(obis, name, raw, None)


def joined_lines(lines: list[str]) -> list[str]:
    """Data lines, a continuation (``(`` first, DSMR 2.2/3 gas value) joined to its line."""
    return _joined(lines)


def _joined(lines: list[str]) -> list[str]:
    """Data lines, a continuation (``(`` first, DSMR 2.2/3 gas value) joined to its line."""
    kept = [line for line in lines if line]
    if "(" not in {line[0] for line in kept}:
        return kept  # DSMR 4 and 5: no continuation lines, nothing to join
    out: list[str] = []
    for line in lines:
        if not line:
            continue
        if line.startswith("(") and out:
            out[-1] += line
        else:
            out.append(line)
    return out
