"""What the pipeline hands back: small immutable records, as in h11.

``Message`` is a decoded push with its readings; ``Rejected`` is bytes from the
line that made no valid frame; ``Failure`` is a frame that was valid on the
line but could not be turned into readings; ``Skipped`` is a valid frame that
carries no push (client/server traffic, link-layer frames); ``Notice`` says
something about the stream that is no fault (the framing detected, a meter quirk).

The pipeline's messages are ``LazyMessage``s: the same as a ``Message``, their
``Reading`` objects made only when something reads ``readings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from amsread.link.spans import Span

#: Reading names whose value is the meter's id (``Message.meter_id``, CSV, Influx tags).
METER_ID_NAMES = ("meter_id", "meter_number", "meter_serial")


@dataclass(slots=True)
class Reading:
    obis: str | None
    name: str | None
    value: int | float | str | None
    unit: str | None
    #: True: a quantity whose scale is unknown (no scaler sent, none in a
    #: profile): ``value`` is the register as sent and ``unit`` is None.
    raw: bool = False
    #: When the meter captured the value, if not at the message's time (DSMR
    #: M-Bus sub-meters); omitted from JSON when None.
    captured_at: str | None = None


@dataclass(slots=True)
class Message:
    readings: list[Reading]
    meter_time: str | None = None
    system_title: str | None = None
    invocation_counter: int | None = None
    list_id: str | None = None
    #: True: tag verified; False: ciphered with a tag we could not check;
    #: None: the meter sent no authentication at all.
    authenticated: bool | None = None
    profile: str | None = None
    received_at: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def meter_id(self) -> str | None:
        for reading in self.readings:
            if reading.name in METER_ID_NAMES:
                return None if reading.value is None else str(reading.value)
        return None

    @property
    def reading_count(self) -> int:
        """``len(readings)``, without building the readings of a ``LazyMessage``."""
        return len(self.readings)


#: A reading's fixed part: (obis, name, unit).
Label = tuple[str | None, str | None, str | None]


class ReadingLabels:
    """The fixed part of the readings of one list layout: (obis, name, unit) of each, in order.

    One object per layout, shared by all its messages and compared by
    identity, so a consumer can keep what it derives from the labels (a JSON
    template, which readings are voltages) per layout for one dict lookup.
    """

    __slots__ = ("labels", "meter_id_index", "raw")

    def __init__(self, labels: Sequence[Label], raw: Sequence[bool] = ()) -> None:
        self.labels: tuple[Label, ...] = tuple(labels)
        #: Per reading, True when its scale is unknown (``Reading.raw``); all
        #: False when empty.
        self.raw: tuple[bool, ...] = tuple(raw) if any(raw) else ()
        if self.raw and len(self.raw) != len(self.labels):
            raise ValueError(f"{len(self.raw)} raw flags for {len(self.labels)} labels")
        #: Index of the first reading named like a meter id, or -1.
        self.meter_id_index = next(
            (i for i, (_, name, _) in enumerate(self.labels) if name in METER_ID_NAMES), -1
        )


#: The storage of ``Message.readings``, beneath ``LazyMessage``'s property of that name.
_READINGS_SLOT: Any = Message.__dict__["readings"]


class LazyMessage(Message):
    """A ``Message`` whose ``Reading`` objects are made when something reads them.

    The readings plan (``readings.py``) gives each message the layout's labels
    and the values; the JSON-lines writer and the plausibility checks work on
    those, so a replay makes no ``Reading`` objects at all (30-odd a message,
    ~7 µs). Reading ``readings`` builds the list once; from then on (``values``
    is None) the message is an ordinary ``Message``. Equality and ``repr`` are
    ``Message``'s: a LazyMessage equals the Message it stands for.
    """

    __slots__ = ("labels", "values")
    labels: ReadingLabels | None
    #: The readings' values in order; None once ``readings`` is built.
    values: tuple[Any, ...] | None

    def defer(self, labels: ReadingLabels, values: tuple[Any, ...]) -> None:
        """Set the readings as labels and values, to be built when first read."""
        if len(labels.labels) != len(values):
            raise ValueError(f"{len(labels.labels)} labels for {len(values)} values")
        self.labels, self.values = labels, values

    @property
    def readings(self) -> list[Reading]:
        if self.values is not None:
            assert self.labels is not None
            labels, raw = self.labels.labels, self.labels.raw
            built = [
                Reading(obis, name, value, unit)
                for (obis, name, unit), value in zip(labels, self.values, strict=True)
            ]
            for index, flag in enumerate(raw):
                built[index].raw = flag
            self.readings = built
        readings: list[Reading] = _READINGS_SLOT.__get__(self)
        return readings

    @readings.setter
    def readings(self, readings: list[Reading]) -> None:
        _READINGS_SLOT.__set__(self, readings)
        self.labels = self.values = None

    @property
    def meter_id(self) -> str | None:
        if self.values is None or self.labels is None:
            return super().meter_id
        index = self.labels.meter_id_index
        value = self.values[index] if index >= 0 else None
        return None if value is None else str(value)

    @property
    def reading_count(self) -> int:
        return len(self.values) if self.values is not None else len(self.readings)

    def __eq__(self, other: object) -> bool:
        # Message's generated __eq__ wants both of exactly one class.
        if not isinstance(other, Message):
            return NotImplemented
        return _field_values(self) == _field_values(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like Message

    def __repr__(self) -> str:
        return repr(Message(*_field_values(self)))


def _field_values(message: Message) -> tuple[Any, ...]:
    return tuple(getattr(message, f.name) for f in fields(Message))


@dataclass(frozen=True, slots=True)
class Security:
    """How a ciphered push was protected and counted; a cleartext push has none."""

    invocation_counter: int
    #: True: tag verified; False: ciphered with a tag we could not check;
    #: None: the meter sent no authentication at all.
    authenticated: bool | None
    #: The meter's encryption and authentication keys were given the other way round.
    keys_swapped: bool = False
    #: Invocation counters skipped since the last accepted push: pushes lost on the way.
    missed_pushes: int = 0


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bytes that made no valid frame.

    ``reason``: ``bad_hcs``, ``bad_fcs``, ``truncated``, ``garbage``, or a
    framer-specific slug; ``size`` counts the bytes, ``data`` keeps the first few.
    """

    reason: str
    size: int
    data: bytes
    detail: str = ""
    #: Where the bytes start in the stream fed to the framer; -1 when they are no
    #: stretch of it (blocks of a transfer, segments of a message).
    offset: int = field(default=-1, compare=False)
    #: The header fields the framer read before it gave up, from the first byte.
    spans: tuple[Span, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Failure:
    """A frame that arrived intact but gave no readings, and why.

    ``reason`` is the slug of the ``DecodeError`` subclass that stopped it.
    """

    reason: str
    detail: str
    system_title: str | None = None
    invocation_counter: int | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A valid frame that is not a push message (named in ``what``)."""

    what: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth saying about the stream that is no fault of the data.

    ``what`` is a slug (``framing_detected``, ``mbus_length_overflow``);
    ``level`` is the log level the runner should use: ``debug``, ``info`` or
    ``warning``.
    """

    what: str
    detail: str
    level: str = "debug"


Event = Message | Rejected | Failure | Skipped | Notice
