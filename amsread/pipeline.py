"""The decoding pipeline, without I/O: bytes in, events out.

    link (hdlc | mbus | raw | auto) -> LLC -> APDU [-> block transfer]
        -> security -> data-notification -> readings

``Pipeline.feed(bytes)`` returns ``Message``, ``Rejected``, ``Failure``,
``Skipped`` and ``Notice`` events and keeps per-layer counters. The CLI, the daemon and the
tests all drive it the same way; none of them needs to know the layers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from amsread.dlms.apdu import parse_data_notification
from amsread.dlms.ciphering import Ciphered, Decryptor, Plaintext, proves_key
from amsread.dlms.keys import Keys
from amsread.dlms.replay import InvocationTracker
from amsread.dlms.unwrap import (
    BlockLost,
    Failed,
    NotificationReady,
    OtherApdu,
    Step,
    Unwrapper,
)
from amsread.errors import ApduError, DecodeError, ReplayError
from amsread.link.framing import LinkEvent, LinkMessage, make_link
from amsread.link.hdlc import strip_llc
from amsread.model import Event, Failure, Message, Rejected, Security, Skipped
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.profiles import ProfileSet
from amsread.stats import Counters

if TYPE_CHECKING:
    from amsread.readings.telegrams import TelegramReader


class Pipeline:
    """Everything between the bytes read from a meter and its readings."""

    def __init__(
        self,
        keys: Keys | None = None,
        *,
        profiles: ProfileSet | None = None,
        clock: Callable[[], float] = time.time,
        invocations: InvocationTracker | None = None,
        allow_replay: bool = False,
        framing: str = "hdlc",
    ) -> None:
        self.counters = Counters()
        self.decryptor = Decryptor(keys)
        #: Last accepted invocation counter per system title (replay guard).
        self.invocations = invocations if invocations is not None else InvocationTracker()
        self.allow_replay = allow_replay
        self.builder = ReadingsBuilder(profiles)
        #: The link layer (framing.FRAMINGS); "auto" locks onto HDLC or M-Bus.
        self.link = make_link(framing)
        #: Block transfer, ciphering and the push test: the one APDU dispatch.
        self.unwrapper = Unwrapper(self.decryptor.decrypt, self._check_replay, trace=False)
        self._clock = clock
        #: Shown every valid frame's payload (the CLI sets it at debug level: -vv).
        self.on_frame: Callable[[bytes], object] | None = None

    @cached_property
    def telegrams(self) -> TelegramReader:
        """DSMR P1 telegrams, text or ciphered (Smarty): their own decoding path.

        Made for the first telegram, so that a DLMS pipeline (``amsread decode``
        of one frame, a start-up) does not load the DSMR parser.
        """
        from amsread.readings.telegrams import TelegramReader

        return TelegramReader(self)

    @property
    def framing(self) -> str:
        """The framing in use: hdlc, mbus, raw, or auto while still undecided."""
        return self.link.name

    # -- input -----------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes as read from the line; returns the events they complete."""
        self.counters["bytes_read"] += len(data)
        out: list[Event] = []
        for event in self.link.feed(data):
            self._on_link_event(event, out)
        return out

    def close(self) -> list[Event]:
        """End of input: report what is left in the buffers."""
        out: list[Event] = []
        for event in self.link.close():
            self._on_link_event(event, out)
        for step in self.unwrapper.close("the stream ended before the last block"):
            self._on_step(step, out)
        return out

    def feed_apdu(self, data: bytes) -> list[Event]:
        """One message without link framing (an APDU, optionally after LLC).

        Usually one event; none for a block of a general-block-transfer that
        is not the last.
        """
        self.counters["bytes_read"] += len(data)
        out: list[Event] = []
        self._on_apdu(strip_llc(data), out)
        return out

    # -- layers ----------------------------------------------------------

    def _on_link_event(self, event: LinkEvent, out: list[Event]) -> None:
        if not isinstance(event, LinkMessage):  # one test for the common case, a frame
            if isinstance(event, Rejected):
                self._reject(event, out)
            else:
                out.append(event)
            return
        self.counters["frames_ok"] += event.frames
        if self.on_frame is not None:
            self.on_frame(event.payload)
        if event.skip is not None:
            self.counters["skipped"] += 1
            out.append(Skipped(event.skip))
            return
        if event.telegram:
            self.telegrams.read(event.payload, out)
            return
        self._on_apdu(strip_llc(event.payload), out)

    def _reject(self, event: Rejected, out: list[Event]) -> None:
        key = "garbage_bytes" if event.reason == "garbage" else event.reason
        self.counters[key] += event.size if event.reason == "garbage" else 1
        out.append(event)

    def _on_apdu(self, apdu: bytes, out: list[Event]) -> None:
        for step in self.unwrapper.feed(apdu):
            if type(step) is NotificationReady:  # the hot path, tested first
                out.append(self._notification(step))
            else:
                self._on_step(step, out)

    def _on_step(self, step: Step, out: list[Event]) -> None:
        """The unwrapper's last step of an APDU becomes an event; the steps before, nothing."""
        if isinstance(step, NotificationReady):
            out.append(self._notification(step))
        elif isinstance(step, Failed):
            out.append(self._fail(step.error, step.ciphered))
        elif isinstance(step, OtherApdu):
            self._other(step, out)
        elif isinstance(step, BlockLost):
            if isinstance(step.event, Rejected):
                self._reject(step.event, out)
            else:
                self.counters["skipped"] += 1
                out.append(step.event)

    def _notification(self, step: NotificationReady) -> Event:
        ciphered, plain = step.ciphered, step.plain
        if ciphered is None or plain is None:
            try:
                return self._message(step.apdu)
            except DecodeError as exc:
                return self._fail(exc)
        proven = proves_key(ciphered, plain)
        try:
            security = self._security(ciphered, plain, proven)
            message = self._message(step.apdu, ciphered.system_title, security)
        except ApduError as exc:
            return self._fail(step.parse_failure(exc), ciphered)
        except DecodeError as exc:
            return self._fail(exc, ciphered)
        if plain.authenticated is False:
            self.counters["unauthenticated"] += 1
        self._accept(ciphered, proven)
        return message

    def _other(self, step: OtherApdu, out: list[Event]) -> None:
        if step.ciphered is not None and step.plain is not None:
            self._accept(step.ciphered, proves_key(step.ciphered, step.plain))
        self.counters["skipped"] += 1
        out.append(Skipped(step.what))

    def _security(self, ciphered: Ciphered, plain: Plaintext, proven: bool) -> Security:
        """What the message says of its protection; ``_accept`` counts the same missed pushes.

        ``proven``: ``proves_key(ciphered, plain)``, asked once per push by the caller.
        """
        missed = (
            self.invocations.missed(ciphered.system_title, ciphered.invocation_counter)
            if proven
            else 0
        )
        return Security(
            ciphered.invocation_counter, plain.authenticated, plain.keys_swapped, missed
        )

    def _check_replay(self, ciphered: Ciphered) -> None:
        title, counter = ciphered.system_title, ciphered.invocation_counter
        if self.allow_replay or not self.invocations.is_replay(title, counter):
            return
        raise ReplayError(
            f"invocation counter {counter} is not above {self.invocations.last(title)},"
            " the last accepted from this meter: a replayed or repeated frame, dropped"
        )

    def _accept(self, ciphered: Ciphered, proven: bool) -> int:
        """Advance the counter for a push that proved the key; return pushes missed."""
        if not proven:
            return 0
        missed = self.invocations.accept(ciphered.system_title, ciphered.invocation_counter)
        self.counters["missed_pushes"] += missed
        return missed

    def _message(
        self, apdu: bytes, system_title: bytes | None = None, security: Security | None = None
    ) -> Message:
        # Lazy: the builder decodes the body only for a layout it has not seen.
        notification = parse_data_notification(apdu, lazy=True)
        message = self.builder.build(
            notification, system_title, security=security, received_at=self._clock()
        )
        self.counters["messages"] += 1
        return message

    def _fail(self, exc: DecodeError, ciphered: Ciphered | None = None) -> Failure:
        self.counters[exc.reason] += 1
        return Failure(
            exc.reason,
            str(exc),
            ciphered.system_title.hex().upper() if ciphered else None,
            ciphered.invocation_counter if ciphered else None,
        )
