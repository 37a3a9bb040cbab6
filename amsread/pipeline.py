"""The decoding pipeline, without I/O: bytes in, events out.

    framer (hdlc) -> LLC -> APDU -> security -> data-notification -> readings

``Pipeline.feed(bytes)`` returns ``Message``, ``Rejected``, ``Failure`` and
``Skipped`` events and keeps per-layer counters. The CLI, the daemon and the
tests all drive it the same way; none of them needs to know the layers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from amsread.apdu import (
    DATA_NOTIFICATION,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    apdu_name,
    parse_data_notification,
)
from amsread.errors import ApduError, DecodeError, DecryptionError
from amsread.events import Event, Failure, Message, Rejected, Skipped
from amsread.hdlc import HdlcFrame, HdlcFramer, strip_llc
from amsread.keys import Keys
from amsread.profiles import ProfileSet
from amsread.readings import ReadingsBuilder
from amsread.security import Ciphered, Decryptor, parse_ciphered
from amsread.stats import Counters

_CIPHERED = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)


class Pipeline:
    """Everything between the bytes read from a meter and its readings."""

    def __init__(
        self,
        keys: Keys | None = None,
        *,
        profiles: ProfileSet | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = Counters()
        self.decryptor = Decryptor(keys)
        self.builder = ReadingsBuilder(profiles)
        self._framer = HdlcFramer()
        self._clock = clock

    # -- input -----------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes as read from the line; returns the events they complete."""
        self.counters["bytes_read"] += len(data)
        out: list[Event] = []
        for event in self._framer.feed(data):
            self._on_link_event(event, out)
        return out

    def close(self) -> list[Event]:
        """End of input: report what is left in the buffers."""
        out: list[Event] = []
        for event in self._framer.close():
            self._on_link_event(event, out)
        return out

    def feed_apdu(self, data: bytes) -> list[Event]:
        """One message without link framing (an APDU, optionally after LLC)."""
        self.counters["bytes_read"] += len(data)
        return [self.handle_apdu(strip_llc(data))]

    # -- layers ----------------------------------------------------------

    def _on_link_event(self, event: HdlcFrame | Rejected, out: list[Event]) -> None:
        if isinstance(event, Rejected):
            key = "garbage_bytes" if event.reason == "garbage" else event.reason
            self.counters[key] += event.size if event.reason == "garbage" else 1
            out.append(event)
            return
        self.counters["frames_ok"] += 1
        if not event.information:
            self.counters["skipped"] += 1
            out.append(Skipped(f"{event.control_name} frame without information field"))
            return
        out.append(self.handle_apdu(strip_llc(event.information)))

    def handle_apdu(self, apdu: bytes) -> Event:
        """Decode one complete APDU into a Message, or say why not."""
        if not apdu:
            return self._fail(ApduError("empty APDU"))
        tag = apdu[0]
        try:
            if tag == DATA_NOTIFICATION:
                return self._message(apdu, None)
            if tag in _CIPHERED:
                return self._ciphered(parse_ciphered(apdu))
        except DecodeError as exc:
            return self._fail(exc)
        self.counters["skipped"] += 1
        return Skipped(apdu_name(tag))

    def _ciphered(self, ciphered: Ciphered) -> Event:
        try:
            plain = self.decryptor.decrypt(ciphered)
            inner = plain.apdu
            if inner[:1] != bytes([DATA_NOTIFICATION]) and plain.authenticated is True:
                self.counters["skipped"] += 1
                return Skipped(f"ciphered {apdu_name(inner[0]) if inner else 'empty APDU'}")
            try:
                message = self._message(inner, ciphered)
            except ApduError as exc:
                if plain.authenticated is True:
                    raise
                # Nothing authenticates this plaintext: a parse failure means a wrong key.
                raise DecryptionError(
                    "decryption gave no valid APDU: wrong encryption key or damaged frame"
                ) from exc
        except DecodeError as exc:
            return self._fail(exc, ciphered)
        message.authenticated = plain.authenticated
        if plain.authenticated is False:
            self.counters["unauthenticated"] += 1
        return message

    def _message(self, apdu: bytes, ciphered: Ciphered | None) -> Message:
        notification = parse_data_notification(apdu)
        message = self.builder.build(notification, ciphered.system_title if ciphered else None)
        if ciphered is not None:
            message.invocation_counter = ciphered.invocation_counter
        message.received_at = self._clock()
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
