"""Output writers: one decoded message in, text out. No protocol knowledge."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol, TextIO

from amsread.events import Message

FORMATS = ("jsonl",)


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


class JsonlWriter:
    """One JSON object per message, one line each."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write(self, message: Message) -> None:
        self._stream.write(self._dumps(message_dict(message)) + "\n")

    def flush(self) -> None:
        self._stream.flush()


def make_writer(fmt: str, stream: TextIO) -> Writer:
    if fmt == "jsonl":
        return JsonlWriter(stream)
    raise ValueError(f"unknown output format {fmt!r}")
