"""Output writers: one decoded message in, text out. No protocol knowledge.

``jsonl``: one JSON object per message (``message_dict`` is the schema).
``csv``: a header once, then one row per reading.
``influx``: InfluxDB line protocol, one point per message, for Telegraf's
``inputs.execd`` or ``influx write``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import stat
from dataclasses import replace
from json.encoder import encode_basestring
from typing import Any, Protocol, TextIO

from amsread.errors import UsageError
from amsread.events import Message, Reading

FORMATS = ("jsonl", "csv", "influx")
TIME_SOURCES = ("meter", "host")

CSV_COLUMNS = (
    "received_at",
    "meter_time",
    "system_title",
    "meter_id",
    "obis",
    "name",
    "value",
    "unit",
)
INFLUX_MEASUREMENT = "amsread"


def iso_utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds")


def message_dict(message: Message) -> dict[str, Any]:
    """The JSON-lines schema (documented in the README)."""
    return {
        "received_at": iso_utc(message.received_at),
        "meter_time": message.meter_time,
        "system_title": message.system_title,
        "invocation_counter": message.invocation_counter,
        "list_id": message.list_id,
        "authenticated": message.authenticated,
        "profile": message.profile,
        "readings": [
            {"obis": r.obis, "name": r.name, "value": r.value, "unit": r.unit}
            for r in message.readings
        ],
    }


class Writer(Protocol):
    def write(self, message: Message) -> None: ...

    def flush(self) -> None: ...


#: Reading templates kept by a JsonlWriter (one per obis/name/unit seen).
JSONL_TEMPLATES = 1024


class JsonlWriter:
    """One JSON object per message, one line each.

    The text is exactly ``json.dumps(message_dict(message))`` (compact, UTF-8),
    but built faster: a meter sends the same OBIS codes, names and units in
    every message, so each reading's JSON around its value is encoded once and
    kept; only the values are encoded per message. Encoding dozens of small
    dicts was the largest cost of a replay.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self._templates: dict[tuple[str | None, str | None, str | None], tuple[str, str]] = {}

    def write(self, message: Message) -> None:
        # message_dict stays the one schema; "readings" is its last key, so the
        # encoded head ends with "[]}" and the readings go between the brackets.
        head = self._dumps(message_dict(replace(message, readings=[])))
        dumps, known = self._dumps, self._templates.get
        parts = []
        for reading in message.readings:  # one loop, no calls: the hot path of a replay
            template = known((reading.obis, reading.name, reading.unit))
            if template is None:
                template = self._template(reading)
            value = reading.value
            kind = type(value)
            if kind is int:
                text = int.__repr__(value)
            elif kind is float and math.isfinite(value):  # type: ignore[arg-type]
                text = float.__repr__(value)
            elif kind is str:
                text = encode_basestring(value)  # type: ignore[arg-type]
            elif value is None:
                text = "null"
            else:  # NaN, infinities, bools, subclasses: the encoder's own rules
                text = dumps(value)
            parts.append(f"{template[0]}{text}{template[1]}")
        self._stream.write(f"{head[:-2]}{','.join(parts)}]}}\n")

    def _template(self, reading: Reading) -> tuple[str, str]:
        """The reading's JSON before and after its value."""
        if len(self._templates) >= JSONL_TEMPLATES:
            self._templates.clear()
        dumps = self._dumps
        template = (
            f'{{"obis":{dumps(reading.obis)},"name":{dumps(reading.name)},"value":',
            f',"unit":{dumps(reading.unit)}}}',
        )
        self._templates[(reading.obis, reading.name, reading.unit)] = template
        return template

    def flush(self) -> None:
        self._stream.flush()


class CsvWriter:
    """One row per reading; the header once, and not again when appending to a file."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        # RFC 4180 quoting from the csv module; "\n" line ends, as Unix tools expect.
        self._csv = csv.writer(stream, lineterminator="\n")
        self._header_due = not _has_content(stream)

    def write(self, message: Message) -> None:
        if self._header_due:
            self._csv.writerow(CSV_COLUMNS)
            self._header_due = False
        received = iso_utc(message.received_at)
        meter_id = message.meter_id
        self._csv.writerows(
            (
                received,
                _cell(message.meter_time),
                _cell(message.system_title),
                _cell(meter_id),
                _cell(reading.obis),
                _cell(reading.name),
                _cell(reading.value),
                _cell(reading.unit),
            )
            for reading in message.readings
        )

    def flush(self) -> None:
        self._stream.flush()


def _cell(value: object) -> object:
    return "" if value is None else value


class InfluxWriter:
    """InfluxDB line protocol: ``amsread,meter_id=…,system_title=… field=1.0,… <ns>``.

    Numbers are written as floats so that a field keeps one type when meters
    send it with different scalers (InfluxDB rejects a field that changes type).
    The timestamp is the meter's own when it carries a UTC offset and
    ``time_source`` is ``meter``; otherwise the time amsread received it.
    """

    def __init__(self, stream: TextIO, time_source: str = "meter") -> None:
        if time_source not in TIME_SOURCES:
            raise ValueError(f"unknown time source {time_source!r}")
        self._stream = stream
        self._meter_time = time_source == "meter"

    def write(self, message: Message) -> None:
        line = influx_line(message, meter_time=self._meter_time)
        if line is not None:
            self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()


def influx_line(message: Message, *, meter_time: bool = True) -> str | None:
    """One point for a message; None if it carries no value a field can hold."""
    meter_id = message.meter_id
    tags = "".join(
        f",{key}={_escape_key(value)}"
        for key, value in (("meter_id", meter_id), ("system_title", message.system_title))
        if value
    )
    fields = _influx_fields(message.readings, tagged=meter_id)
    if not fields:
        return None
    stamp = trusted_meter_ns(message.meter_time) if meter_time else None
    if stamp is None:
        stamp = _ns(message.received_at)
    return f"{INFLUX_MEASUREMENT}{tags} {','.join(fields)} {stamp}"


def _influx_fields(readings: list[Reading], tagged: str | None) -> list[str]:
    fields: list[str] = []
    used: set[str] = set()
    for reading in readings:
        if reading.name in ("meter_id", "meter_number", "meter_serial") and tagged is not None:
            continue  # already the meter_id tag
        value = _field_value(reading.value)
        # Unnamed readings keep their OBIS code, and so does a repeated name.
        key = reading.name if reading.name and reading.name not in used else reading.obis
        if value is None or not key or key in used:
            continue
        used.add(key)
        fields.append(f"{_escape_key(key)}={value}")
    return fields


def _field_value(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    if isinstance(value, str):
        text = " ".join(value.splitlines())  # line protocol has no newlines in values
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def _escape_key(text: str) -> str:
    """Escape a tag key/value or field key (commas, equals signs, spaces)."""
    text = " ".join(text.splitlines())
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def trusted_meter_ns(meter_time: str | None) -> int | None:
    """The meter's time stamp in ns since the epoch, if it names an instant (has an offset)."""
    if not meter_time:
        return None
    try:
        stamp = dt.datetime.fromisoformat(meter_time)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None  # local time of an unknown zone: not an instant
    delta = stamp - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _ns(timestamp: float) -> int:
    # Microsecond resolution: a float of seconds holds no more.
    return round(timestamp * 1_000_000) * 1_000


def _has_content(stream: TextIO) -> bool:
    """True for a regular file that already holds data (we are appending to it)."""
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def open_output(path: str) -> TextIO:
    """Open ``--output FILE`` for appending; a bad path is a configuration error."""
    try:
        # newline="": the csv module writes its own line ends.
        return open(path, "a", encoding="utf-8", newline="")
    except FileNotFoundError:
        raise UsageError(f"cannot open output file {path}: its directory does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"cannot open output file {path}: it is a directory") from None
    except OSError as exc:
        raise UsageError(
            f"cannot open output file {path}: {exc.strerror}; check the path and permissions"
        ) from None


def make_writer(fmt: str, stream: TextIO, *, time_source: str = "meter") -> Writer:
    if fmt == "jsonl":
        return JsonlWriter(stream)
    if fmt == "csv":
        return CsvWriter(stream)
    if fmt == "influx":
        return InfluxWriter(stream, time_source)
    raise ValueError(f"unknown output format {fmt!r}")
