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

from amsread.dlms.apdu import (
    DATA_NOTIFICATION,
    GENERAL_BLOCK_TRANSFER,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    apdu_name,
    parse_data_notification,
)
from amsread.dlms.blocks import BlockAssembler, parse_block
from amsread.dlms.ciphering import Ciphered, Decryptor, Plaintext, parse_ciphered
from amsread.dlms.keys import Keys
from amsread.dlms.replay import InvocationTracker
from amsread.errors import ApduError, DecodeError, DecryptionError, ReplayError
from amsread.link.framing import LinkEvent, make_link
from amsread.link.hdlc import strip_llc
from amsread.model import Event, Failure, Message, Notice, Rejected, Security, Skipped
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.profiles import ProfileSet
from amsread.readings.telegrams import TelegramReader
from amsread.stats import Counters

_CIPHERED = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)
_GBT_TAG = bytes([GENERAL_BLOCK_TRANSFER])


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
        self._blocks = BlockAssembler()
        self._clock = clock
        #: DSMR P1 telegrams, text or ciphered (Smarty): their own decoding path.
        self.telegrams = TelegramReader(self)
        #: Shown every valid frame's payload (the CLI sets it at debug level: -vv).
        self.on_frame: Callable[[bytes], object] | None = None

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
        for lost in self._blocks.discard("the stream ended before the last block"):
            self._on_block_event(lost, out)
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
        if isinstance(event, Notice):
            out.append(event)
            return
        if isinstance(event, Rejected):
            self._reject(event, out)
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
        if apdu[:1] != _GBT_TAG:
            out.append(self.handle_apdu(apdu))
            return
        try:
            block = parse_block(apdu)
        except ApduError as exc:
            for lost in self._blocks.discard("a malformed block came between its blocks"):
                self._on_block_event(lost, out)
            out.append(self._fail(exc))
            return
        for event in self._blocks.push(block):
            self._on_block_event(event, out)

    def _on_block_event(self, event: bytes | Rejected | Skipped, out: list[Event]) -> None:
        """A completed block transfer is an APDU again, often ciphered."""
        if isinstance(event, Rejected):
            self._reject(event, out)
        elif isinstance(event, Skipped):
            self.counters["skipped"] += 1
            out.append(event)
        elif event[:1] == _GBT_TAG:
            out.append(self._fail(ApduError("a general-block-transfer inside another one")))
        else:
            out.append(self.handle_apdu(event))

    def handle_apdu(self, apdu: bytes) -> Event:
        """Decode one complete APDU into a Message, or say why not."""
        if not apdu:
            return self._fail(ApduError("empty APDU"))
        tag = apdu[0]
        try:
            if tag == DATA_NOTIFICATION:
                return self._message(apdu)
            if tag in _CIPHERED:
                return self._ciphered(parse_ciphered(apdu))
        except DecodeError as exc:
            return self._fail(exc)
        self.counters["skipped"] += 1
        return Skipped(apdu_name(tag))

    def _ciphered(self, ciphered: Ciphered) -> Event:
        try:
            self._check_replay(ciphered)
            plain = self.decryptor.decrypt(ciphered)
            inner = plain.apdu
            if inner[:1] != bytes([DATA_NOTIFICATION]) and plain.authenticated is True:
                self._accept(ciphered, plain)
                self.counters["skipped"] += 1
                return Skipped(f"ciphered {apdu_name(inner[0]) if inner else 'empty APDU'}")
            try:
                security = self._security(ciphered, plain)
                message = self._message(inner, ciphered.system_title, security)
            except ApduError as exc:
                if plain.authenticated is True or not ciphered.encrypted:
                    raise
                # Nothing authenticates this plaintext: a parse failure means a wrong key.
                raise DecryptionError(
                    "decryption gave no valid APDU: wrong encryption key or damaged frame"
                ) from exc
        except DecodeError as exc:
            return self._fail(exc, ciphered)
        if plain.authenticated is False:
            self.counters["unauthenticated"] += 1
        self._accept(ciphered, plain)
        return message

    def _security(self, ciphered: Ciphered, plain: Plaintext) -> Security:
        """What the message says of its protection; ``_accept`` counts the same missed pushes."""
        proven = plain.authenticated is True or ciphered.encrypted
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

    def _accept(self, ciphered: Ciphered, plain: Plaintext) -> int:
        """Advance the counter for a frame that verified or decrypted; return pushes missed."""
        # A tag that verified, or ciphertext that decrypted to a complete APDU,
        # proves the key; cleartext with an unchecked tag proves nothing.
        if plain.authenticated is not True and not ciphered.encrypted:
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
