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
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring as _encode_basestring
from typing import Any, Protocol, TextIO

from amsread.errors import UsageError
from amsread.model import Label, ListLayout, Message, Reading, ReadingLabels

#: Line separators that json leaves raw with ensure_ascii=False; escaped so that
#: consumers splitting lines with str.splitlines() (or JavaScript) see one line.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def encode_basestring(text: str) -> str:
    """A JSON string literal for ``text``, with Unicode line separators escaped."""
    encoded = _encode_basestring(text)
    return encoded if text.isascii() else encoded.translate(_LINE_BREAKS)


def _json_dumps(value: object) -> str:
    return _JSON_ENCODER.encode(value).translate(_LINE_BREAKS)


_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


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
    "raw",
)
INFLUX_MEASUREMENT = "amsread"
RAW_LEFT_OUT = (
    "readings whose scale is unknown (raw: true) are left out of the influx output:"
    " a dashboard would show them as scaled numbers; a profile giving their scaler adds them"
)


#: The last whole second iso_utc formatted, and its text up to the seconds.
_last_second: tuple[float, str] = (math.nan, "")


def iso_utc(timestamp: float) -> str:
    """``datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")``.

    The date and time of day are formatted once per second: a replay stamps
    thousands of messages a second, and the datetime round trip was ~1 µs each.
    """
    global _last_second
    # Microseconds as datetime.fromtimestamp takes them: the fraction rounded
    # half to even (which round() does), carried into the seconds.
    fraction, whole = math.modf(timestamp)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    second, text = _last_second
    if whole != second:
        stamp = dt.datetime.fromtimestamp(whole, dt.UTC).replace(tzinfo=None)
        text = stamp.isoformat(timespec="seconds")
        _last_second = (whole, text)  # one tuple: safe to share between threads
    return f"{text}.{micros // 1000:03d}+00:00"


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
        "readings": [_reading_dict(r) for r in message.readings],
    }


def _reading_dict(reading: Reading) -> dict[str, Any]:
    out = {"obis": reading.obis, "name": reading.name, "value": reading.value, "unit": reading.unit}
    if reading.raw:
        out["raw"] = True  # only on readings whose scale is unknown
    if reading.captured_at is not None:
        out["captured_at"] = reading.captured_at  # DSMR sub-meters' own capture time
    return out


class Writer(Protocol):
    def write(self, message: Message) -> None: ...

    def flush(self) -> None: ...


#: Reading layouts (labels and value types) a JsonlWriter keeps a template for.
JSONL_TEMPLATES = 256
#: Message heads (list layout, system title, authentication) it keeps.
JSONL_HEADS = 64


class _Template:
    """The JSON of one reading layout, with a ``%s`` for each value.

    Which values need more than ``str()`` to be their JSON text is known per
    layout from the value types: ``str()`` of an exact int or a finite float is
    its JSON (both are ``repr``); strings need quoting; anything else (None,
    bools, subclasses) goes through the encoder. A reading with a capture time
    of its own (``capture_types``: its type, else NoneType) has a second ``%s``.
    """

    __slots__ = ("captured", "floats", "others", "strings", "text")

    def __init__(
        self,
        labels: Sequence[Label],
        raw: Sequence[bool],
        types: tuple[type, ...],
        dumps: Callable[[Any], str],
        capture_types: tuple[type, ...] = (),
    ) -> None:
        def literal(value: str | None) -> str:
            return dumps(value).replace("%", "%%")  # no % formatting inside a label

        flags = raw or (False,) * len(labels)
        captured = [kind is not type(None) for kind in capture_types] or [False] * len(labels)
        self.text = ",".join(
            f'{{"obis":{literal(obis)},"name":{literal(name)},"value":%s,"unit":{literal(unit)}'
            + (',"raw":true' if is_raw else "")
            + (',"captured_at":%s}' if has_time else "}")
            for (obis, name, unit), is_raw, has_time in zip(labels, flags, captured, strict=True)
        )
        #: Readings with a capture time, last first (their texts go in after their values).
        self.captured = tuple(i for i in reversed(range(len(captured))) if captured[i])
        self.strings = tuple(i for i, kind in enumerate(types) if kind is str)
        self.floats = tuple(i for i, kind in enumerate(types) if kind is float)
        self.others = tuple(i for i, kind in enumerate(types) if kind not in (int, float, str))


class JsonlWriter:
    """One JSON object per message, one line each.

    The text is exactly ``json.dumps(message_dict(message))`` (compact, UTF-8;
    ``tests/output/test_jsonl_writer.py`` holds them equal), but built faster: a
    meter sends the same OBIS codes, names and units in every message, so the
    JSON around the values is kept per layout (``_Template``) and per message
    head, and a message is two ``%`` formats of its values, written from its
    labels and values without making its ``Reading`` objects.
    Encoding dozens of small dicts was the largest cost of a replay.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._dumps = _json_dumps
        self._templates: dict[
            tuple[ReadingLabels, tuple[type, ...], tuple[type, ...]], _Template
        ] = {}
        self._heads: dict[tuple[ListLayout, str | None, bool | None], str] = {}

    def write(self, message: Message) -> None:
        layout, values, capture_times = message.list_layout, message.values, message.capture_times
        # Labels and layouts are shared per layout and hashed by identity: cheap.
        capture_types = tuple(map(type, capture_times)) if capture_times else ()
        key = (layout.labels, tuple(map(type, values)), capture_types)
        template = self._templates.get(key)
        if template is None:
            template = self._template(*key)
        texts = list(values)
        dumps = self._dumps
        for i in template.strings:
            texts[i] = encode_basestring(texts[i])
        for i in template.floats:
            if not math.isfinite(texts[i]):
                texts[i] = dumps(texts[i])  # NaN and infinities, as json.dumps writes them
        for i in template.others:
            texts[i] = dumps(texts[i])
        for i in template.captured:  # DSMR sub-meters' own capture times
            texts.insert(i + 1, self._scalar(capture_times[i]))
        head = self._heads.get((layout, message.system_title, message.authenticated))
        if head is None:
            head = self._head(message)
        self._stream.write(
            head
            % (
                encode_basestring(iso_utc(message.received_at)),
                self._scalar(message.meter_time),
                self._scalar(message.invocation_counter),
                template.text % tuple(texts),
            )
        )

    def _scalar(self, value: object) -> str:
        """The JSON of a head field that changes from message to message."""
        if type(value) is str:
            return encode_basestring(value)
        if type(value) is int:
            return int.__repr__(value)
        if value is None:
            return "null"
        return self._dumps(value)

    def _template(
        self, labels: ReadingLabels, types: tuple[type, ...], capture_types: tuple[type, ...]
    ) -> _Template:
        if len(self._templates) >= JSONL_TEMPLATES:
            self._templates.clear()
        template = _Template(labels.labels, labels.raw, types, self._dumps, capture_types)
        self._templates[(labels, types, capture_types)] = template
        return template

    def _head(self, message: Message) -> str:
        """The line around the values that change in every message, as a % format.

        The keys are message_dict's, in its order.
        """
        if len(self._heads) >= JSONL_HEADS:
            self._heads.clear()

        def literal(value: object) -> str:
            return self._dumps(value).replace("%", "%%")

        head = (
            '{"received_at":%s,"meter_time":%s,'
            f'"system_title":{literal(message.system_title)},"invocation_counter":%s,'
            f'"list_id":{literal(message.list_id)},'
            f'"authenticated":{literal(message.authenticated)},'
            f'"profile":{literal(message.profile)},"readings":[%s]}}\n'
        )
        key = (message.list_layout, message.system_title, message.authenticated)
        self._heads[key] = head
        return head

    def flush(self) -> None:
        self._stream.flush()


class CsvWriter:
    """One row per reading; the header once, and not again when appending to a file."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        # RFC 4180 quoting from the csv module; "\n" line ends, as Unix tools expect.
        self._csv = csv.writer(stream, lineterminator="\n")
        self._header_due = not _has_content(stream)
        self._header_remembered = False

    def write(self, message: Message) -> None:
        if self._header_due:
            self._csv.writerow(CSV_COLUMNS)
            self._header_due = False
        remember = getattr(self._stream, "remember_header", None)
        if remember is not None and not self._header_remembered:
            # A rotated output (amsread.app.outfile) starts each new file with it.
            self._header_remembered = True
            remember(",".join(CSV_COLUMNS) + "\n")
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
                "true" if reading.raw else "",
            )
            for reading in message.readings
        )

    def flush(self) -> None:
        self._stream.flush()


def _cell(value: object) -> object:
    if isinstance(value, list):
        return _json_dumps(value)  # a DSMR power failure log: JSON, not Python's repr
    return "" if value is None else value


class InfluxWriter:
    """InfluxDB line protocol: ``amsread,meter_id=…,system_title=… field=1.0,… <ns>``.

    Numbers are written as floats so that a field keeps one type when meters
    send it with different scalers (InfluxDB rejects a field that changes type).
    The timestamp is the meter's own when it carries a UTC offset and
    ``time_source`` is ``meter``; otherwise the time amsread received it.
    """

    def __init__(
        self,
        stream: TextIO,
        time_source: str = "meter",
        on_raw_dropped: Callable[[str], object] | None = None,
    ) -> None:
        if time_source not in TIME_SOURCES:
            raise ValueError(f"unknown time source {time_source!r}")
        self._stream = stream
        self._meter_time = time_source == "meter"
        #: Told once, the first time a raw reading is left out.
        self._on_raw_dropped = on_raw_dropped

    def write(self, message: Message) -> None:
        if self._on_raw_dropped is not None and any(r.raw for r in message.readings):
            self._on_raw_dropped(RAW_LEFT_OUT)
            self._on_raw_dropped = None
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
        if reading.raw:
            continue  # no dashboard may show an unscaled register as a measurement
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


class NullWriter:
    """``--format none``: nothing on stdout (``--mqtt`` publishes the messages)."""

    def write(self, message: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def make_writer(
    fmt: str,
    stream: TextIO,
    *,
    time_source: str = "meter",
    on_raw_dropped: Callable[[str], object] | None = None,
) -> Writer:
    if fmt == "none":
        return NullWriter()
    if fmt == "jsonl":
        return JsonlWriter(stream)
    if fmt == "csv":
        return CsvWriter(stream)
    if fmt == "influx":
        return InfluxWriter(stream, time_source, on_raw_dropped)
    raise ValueError(f"unknown output format {fmt!r}")
