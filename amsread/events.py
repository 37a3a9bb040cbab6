"""What the pipeline hands back: small immutable records, as in h11.

``Message`` is a decoded push with its readings; ``Rejected`` is bytes from the
line that made no valid frame; ``Failure`` is a frame that was valid on the
line but could not be turned into readings; ``Skipped`` is a valid frame that
carries no push (client/server traffic, link-layer frames); ``Notice`` says
something about the stream that is no fault (the framing detected, a meter quirk).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Reading:
    obis: str | None
    name: str | None
    value: int | float | str | None
    unit: str | None


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
            if reading.name in ("meter_id", "meter_number", "meter_serial"):
                return None if reading.value is None else str(reading.value)
        return None


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
