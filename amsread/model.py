"""What the pipeline hands back: small immutable records, as in h11.

``Message`` is a decoded push with its readings; ``Rejected`` is bytes from the
line that made no valid frame; ``Failure`` is a frame that was valid on the
line but could not be turned into readings; ``Skipped`` is a valid frame that
carries no push (client/server traffic, link-layer frames); ``Notice`` says
something about the stream that is no fault (the framing detected, a meter quirk).

A ``Message`` holds its readings as the labels of its list layout (shared by
every message of that layout) and its values; the ``Reading`` objects are made
only when something reads ``readings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
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


#: A reading's fixed part: (obis, name, unit).
Label = tuple[str | None, str | None, str | None]


class ReadingLabels:
    """The fixed part of the readings of one list layout: (obis, name, unit) of each, in order.

    One object per layout, shared by all its messages and compared by
    identity, so a consumer can keep what it derives from the labels (a JSON
    template, which readings are voltages) per layout for one dict lookup.
    ``shared_labels`` gives messages built from readings the same object for
    the same labels.
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


@dataclass(frozen=True, slots=True, eq=False)
class ListLayout:
    """What every message of one list layout shares, made once per layout.

    The readings plan makes one per compiled layout; a ``Message`` built from
    readings gets one from ``shared_layout``. Compared by identity, like its labels.
    """

    labels: ReadingLabels
    list_id: str | None = None
    profile: str | None = None
    #: How the list is built (``obis-value pairs``, ``positional``, ...); None if not decoded here.
    shape: str | None = None
    #: The name of the profile's positional layout, when the profile has several.
    layout: str | None = None
    #: For an unknown list of bare values: the profile fields that would decode it.
    hint: str | None = None
    #: One line per reading family output raw (unknown scale): the profile line to add.
    raw_notes: tuple[str, ...] = ()


#: Labels and layouts kept by ``shared_labels``/``shared_layout`` before starting afresh.
MAX_SHARED = 256
_labels_by_content: dict[tuple[tuple[Label, ...], tuple[bool, ...]], ReadingLabels] = {}
_layouts_by_content: dict[tuple[object, ...], ListLayout] = {}


def shared_labels(labels: Sequence[Label], raw: Sequence[bool] = ()) -> ReadingLabels:
    """The one ``ReadingLabels`` for these labels and raw flags (made on first use)."""
    key = (tuple(labels), tuple(raw) if any(raw) else ())
    found = _labels_by_content.get(key)
    if found is None:
        if len(_labels_by_content) >= MAX_SHARED:
            _labels_by_content.clear()
        found = _labels_by_content[key] = ReadingLabels(*key)
    return found


def shared_layout(
    labels: ReadingLabels,
    list_id: str | None = None,
    profile: str | None = None,
    shape: str | None = None,
    layout: str | None = None,
    hint: str | None = None,
    raw_notes: Sequence[str] = (),
) -> ListLayout:
    """The one ``ListLayout`` with these facts (made on first use)."""
    key = (labels, list_id, profile, shape, layout, hint, tuple(raw_notes))
    found = _layouts_by_content.get(key)
    if found is None:
        if len(_layouts_by_content) >= MAX_SHARED:
            _layouts_by_content.clear()
        found = _layouts_by_content[key] = ListLayout(*key)
    return found


_LABEL = attrgetter("obis", "name", "unit")
_RAW = attrgetter("raw")
_VALUE = attrgetter("value")
_CAPTURED = attrgetter("captured_at")


class Message:
    """A decoded push: its list layout, the readings' values, when, from whom, how protected.

    Built once, with every fact set (the readings plan uses ``in_layout``, which
    takes the shared ``ListLayout`` as it is; ``Message(readings, ...)`` works
    the labels and values out of the readings). ``labels`` and ``values`` are
    what the JSON-lines writer and the plausibility checks read; ``readings``
    (``Reading`` objects, ~7 µs for 30) is made the first time something asks,
    and kept. Two messages are equal when they say the same: same readings,
    same facts. Nothing changes a message once built (its readings included):
    ``replace`` makes a changed copy.
    """

    __slots__ = (
        "_readings",
        "authenticated",
        "capture_times",
        "invocation_counter",
        "keys_swapped",
        "list_layout",
        "meter_time",
        "missed_pushes",
        "received_at",
        "system_title",
        "values",
    )
    list_layout: ListLayout
    #: The readings' values, in the order of ``labels``.
    values: tuple[Any, ...]
    #: Per reading, its own capture time (``Reading.captured_at``); empty when none has one.
    capture_times: tuple[str | None, ...]
    meter_time: str | None
    system_title: str | None
    received_at: float
    invocation_counter: int | None
    #: True: tag verified; False: ciphered with a tag we could not check;
    #: None: the meter sent no authentication at all.
    authenticated: bool | None
    #: The encryption and authentication keys were given the other way round.
    keys_swapped: bool
    #: Invocation counters skipped since the last accepted push.
    missed_pushes: int
    _readings: list[Reading] | None

    def __init__(
        self,
        readings: Iterable[Reading] = (),
        meter_time: str | None = None,
        system_title: str | None = None,
        invocation_counter: int | None = None,
        list_id: str | None = None,
        authenticated: bool | None = None,
        profile: str | None = None,
        received_at: float = 0.0,
        *,
        security: Security | None = None,
        shape: str | None = None,
        layout: str | None = None,
        hint: str | None = None,
        raw_notes: Sequence[str] = (),
        keys_swapped: bool = False,
        missed_pushes: int = 0,
    ) -> None:
        readings = readings if isinstance(readings, list) else list(readings)
        labels = shared_labels(tuple(map(_LABEL, readings)), tuple(map(_RAW, readings)))
        self.list_layout = shared_layout(labels, list_id, profile, shape, layout, hint, raw_notes)
        self.values = tuple(map(_VALUE, readings))
        captured = tuple(map(_CAPTURED, readings))
        self.capture_times = captured if any(t is not None for t in captured) else ()
        self.meter_time, self.system_title, self.received_at = meter_time, system_title, received_at
        if security is not None:
            invocation_counter, authenticated = security.invocation_counter, security.authenticated
            keys_swapped, missed_pushes = security.keys_swapped, security.missed_pushes
        self.invocation_counter, self.authenticated = invocation_counter, authenticated
        self.keys_swapped, self.missed_pushes = keys_swapped, missed_pushes
        self._readings = readings

    @classmethod
    def in_layout(
        cls,
        list_layout: ListLayout,
        values: tuple[Any, ...],
        meter_time: str | None = None,
        system_title: str | None = None,
        received_at: float = 0.0,
        security: Security | None = None,
        capture_times: tuple[str | None, ...] = (),
    ) -> Message:
        """A message of a known layout: its values in the order of ``list_layout.labels``.

        ``capture_times``: per value, when the meter captured it if not at the
        message's time (DSMR M-Bus sub-meters), else None; empty when none has one.
        """
        count = len(list_layout.labels.labels)
        if len(values) != count:
            raise ValueError(f"{count} labels for {len(values)} values")
        if capture_times and len(capture_times) != count:
            raise ValueError(f"{count} labels for {len(capture_times)} capture times")
        self = cls.__new__(cls)
        if capture_times.count(None) == len(capture_times):
            capture_times = ()  # as Message(readings) keeps them: equal messages compare equal
        self.list_layout, self.values, self.capture_times = list_layout, values, capture_times
        self.meter_time, self.system_title, self.received_at = meter_time, system_title, received_at
        if security is None:
            self.invocation_counter = self.authenticated = None
            self.keys_swapped, self.missed_pushes = False, 0
        else:
            self.invocation_counter = security.invocation_counter
            self.authenticated = security.authenticated
            self.keys_swapped, self.missed_pushes = security.keys_swapped, security.missed_pushes
        self._readings = None
        return self

    @property
    def readings(self) -> list[Reading]:
        readings = self._readings
        if readings is None:
            labels = self.list_layout.labels
            readings = [
                Reading(obis, name, value, unit)
                for (obis, name, unit), value in zip(labels.labels, self.values, strict=True)
            ]
            for index, flag in enumerate(labels.raw):
                readings[index].raw = flag
            for index, captured in enumerate(self.capture_times):
                readings[index].captured_at = captured
            self._readings = readings
        return readings

    @property
    def labels(self) -> ReadingLabels:
        return self.list_layout.labels

    @property
    def list_id(self) -> str | None:
        return self.list_layout.list_id

    @property
    def profile(self) -> str | None:
        return self.list_layout.profile

    @property
    def shape(self) -> str | None:
        return self.list_layout.shape

    @property
    def layout(self) -> str | None:
        return self.list_layout.layout

    @property
    def hint(self) -> str | None:
        return self.list_layout.hint

    @property
    def raw_notes(self) -> tuple[str, ...]:
        return self.list_layout.raw_notes

    @property
    def security(self) -> Security | None:
        """How the push was protected; None for a cleartext push (no invocation counter)."""
        if self.invocation_counter is None:
            return None
        return Security(
            self.invocation_counter, self.authenticated, self.keys_swapped, self.missed_pushes
        )

    @property
    def meter_id(self) -> str | None:
        index = self.list_layout.labels.meter_id_index
        value = self.values[index] if index >= 0 else None
        return None if value is None else str(value)

    @property
    def reading_count(self) -> int:
        """``len(readings)``, without making the ``Reading`` objects."""
        return len(self.values)

    def replace(self, **changes: Any) -> Message:
        """A copy with some of ``Message(...)``'s arguments changed."""
        arguments = self._arguments()
        arguments.update(changes)
        return Message(**arguments)

    def _arguments(self) -> dict[str, Any]:
        layout = self.list_layout
        return {
            "readings": self.readings,
            "meter_time": self.meter_time,
            "system_title": self.system_title,
            "invocation_counter": self.invocation_counter,
            "list_id": layout.list_id,
            "authenticated": self.authenticated,
            "profile": layout.profile,
            "received_at": self.received_at,
            "shape": layout.shape,
            "layout": layout.layout,
            "hint": layout.hint,
            "raw_notes": layout.raw_notes,
            "keys_swapped": self.keys_swapped,
            "missed_pushes": self.missed_pushes,
        }

    def _compared(self) -> tuple[Any, ...]:
        layout = self.list_layout
        labels = layout.labels
        return (
            labels.labels,
            labels.raw,
            self.values,
            self.capture_times,
            self.meter_time,
            self.system_title,
            self.invocation_counter,
            self.authenticated,
            self.received_at,
            self.keys_swapped,
            self.missed_pushes,
            layout.list_id,
            layout.profile,
            layout.shape,
            layout.layout,
            layout.hint,
            layout.raw_notes,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self is other or self._compared() == other._compared()

    __hash__ = None  # type: ignore[assignment]  # equal messages need not be one message

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._arguments().items())
        return f"Message({shown})"


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
