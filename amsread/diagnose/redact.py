"""Redaction: meter identities out, everything else kept, so users can post publicly.

Two tools, both without I/O:

* ``Redactor`` collects identifying values while ``explain`` analyses frames
  (system-title serials, meter ids and serial numbers from the readings) and
  then rewrites a finished report: each value becomes a stable placeholder
  (``<serial-1>``, ``<meter-id-1>``: the same value always the same one, in
  order of appearance), its bytes in hex dumps become ``xx``.
* ``CaptureRedactor`` rewrites a raw capture as it streams (``--save-raw
  --redact``): the serial in every system title and identifying strings in
  unencrypted pushes are replaced, and each changed frame gets a fresh FCS so
  the capture still frames. A redacted ciphered frame no longer decrypts (the
  system title is part of the IV): that is the point of sharing it.

Keys are never part of either: nothing here sees them.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from amsread.dlms import axdr
from amsread.dlms.apdu import CIPHERED_TAGS, DATA_NOTIFICATION
from amsread.errors import AxdrError
from amsread.link.crc import crc16_x25
from amsread.link.detect import CANDIDATES, Framer, FramerEvent, FramingDetector, make_framer
from amsread.link.hdlc import HdlcFrame
from amsread.link.mbus import MbusFrame
from amsread.link.spans import CHECKSUM, CONTROL, INFORMATION, Span, find_span
from amsread.readings.manufacturers import SYSTEM_TITLE_SIZE, decode_system_title
from amsread.readings.obis import OBIS_SIZE, describe

T = TypeVar("T")

#: Shorter values are not replaced in free text: "0" or "12" would hit everywhere.
MIN_SECRET_TEXT = 4
#: Names (from data/obis.toml) of readings that identify a meter or a customer.
IDENTIFYING_NAMES = frozenset(
    {"meter_id", "meter_serial", "meter_serial_2", "meter_number", "logical_device_name"}
)
_MASK = "xx"
#: Bytes outside frames kept back between feeds, so no system title is cut in two.
_LOOSE_TAIL = 2 + SYSTEM_TITLE_SIZE
#: A ciphered APDU's start: tag DB/DC, title length 8, three letters.
_CIPHERED_HEADER = re.compile(rb"[\xdb\xdc]\x08[A-Za-z]{3}")
#: An OBIS code (octet string of 6) followed by a string's tag and length: how
#: a plaintext list names its meter id. Found byte-wise, so also in one frame
#: of a message sent in several (which alone does not decode).
_OBIS_THEN_STRING = re.compile(rb"\x09\x06([\x00-\xff]{6})[\x09\x0a\x0c]([\x00-\xff])")


def is_identifying(name: str | None, obis: str | None, value: object) -> bool:
    """True for a reading that names the meter: a meter id, or a bare serial number."""
    if name in IDENTIFYING_NAMES:
        return True
    # Austrian lists end with the serial number as digits, sent without OBIS code.
    return obis is None and isinstance(value, str) and len(value) >= 8 and value.isdigit()


class Redactor:
    """Collects identifying values, then rewrites strings and hex dumps."""

    def __init__(self) -> None:
        self._placeholders: dict[str, str] = {}
        self._kinds: Counter[str] = Counter()
        self._bytes: set[bytes] = set()
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self._placeholders or self._bytes)

    def add(self, kind: str, text: str | None = None, data: bytes | None = None) -> str:
        """Register a value (as text and/or bytes); return its placeholder."""
        if data:
            self._bytes.add(bytes(data))
        if text is None:
            return f"<{kind}>"
        existing = self._placeholders.get(text)
        if existing is not None:
            return existing
        self._kinds[kind] += 1
        placeholder = f"<{kind}-{self._kinds[kind]}>"
        if len(text) >= MIN_SECRET_TEXT:
            self._placeholders[text] = placeholder
            self._pattern = None
        return placeholder

    def text(self, value: str) -> str:
        """``value`` with every registered text replaced by its placeholder."""
        if not self._placeholders:
            return value
        if self._pattern is None:
            # Longest first, so a serial inside a longer meter id is not cut in two.
            ordered = sorted(self._placeholders, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(t) for t in ordered))
        return self._pattern.sub(lambda m: self._placeholders[m.group()], value)

    def hex(self, value: str) -> str:
        """A compact hex string with registered byte sequences shown as ``xx``."""
        if not self._bytes or not value:
            return value
        out = value
        upper = value.upper()
        for secret in sorted(self._bytes, key=len, reverse=True):
            needle = secret.hex().upper()
            start = upper.find(needle)
            while start >= 0:
                if start % 2 == 0:
                    out = out[:start] + _MASK * len(secret) + out[start + len(needle) :]
                start = upper.find(needle, start + 1)
        return out

    def apply(self, obj: T) -> T:
        """A copy of a report (dataclasses, lists, strings) with everything replaced.

        Fields named ``hex`` are hex dumps; every other string is free text.
        """
        return self._walk(obj, hexdump=False)  # type: ignore[no-any-return]

    def _walk(self, obj: Any, hexdump: bool) -> Any:
        if isinstance(obj, str):
            return self.hex(obj) if hexdump else self.text(obj)
        if type(obj) is int and str(obj) in self._placeholders:
            return self._placeholders[str(obj)]  # a meter number sent as a number
        if isinstance(obj, list):
            return [self._walk(item, hexdump) for item in obj]
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            changes = {
                f.name: self._walk(getattr(obj, f.name), f.name == "hex")
                for f in dataclasses.fields(obj)
            }
            return dataclasses.replace(obj, **changes)
        return obj


# -- captures ---------------------------------------------------------------


class CaptureRedactor:
    """Rewrites a byte stream so that it no longer identifies the meter.

    ``feed(bytes) -> bytes`` returns what can be written so far (bytes that
    may still belong to an unfinished frame are held back, at most one
    frame); ``close() -> bytes`` returns the rest. Bytes that are not a valid
    frame pass unchanged, so a redacted capture shows the same line errors.

    The framing is the one the ``auto`` link detects (``link.detect``): every
    candidate framer reads the bytes until the detector names one, which is
    used from then on. Each frame is rewritten where its spans put its
    fields. In M-Bus frames the system title (in the first transport segment)
    is replaced and the checksum recomputed; text telegrams pass as they are,
    but for system titles (``_redact_loose``).
    """

    def __init__(self) -> None:
        self._framers: dict[str, Framer] = {name: make_framer(name) for name in CANDIDATES}
        self._detector = FramingDetector()
        #: The framing detected; None until a frame is evidence of one.
        self.framing: str | None = None
        self._pending = bytearray()
        #: Stream offset of ``_pending[0]``: the framers tell where each frame starts.
        self._pending_at = 0
        #: System-title serial bytes -> their replacement (same length).
        self._serials: dict[bytes, bytes] = {}
        self._replacements: set[bytes] = set()
        self._texts: dict[bytes, bytes] = {}
        #: Frames whose content was changed (for tests and a summary line).
        self.frames_redacted = 0

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        self._pending += data
        events = {name: framer.feed(data) for name, framer in self._framers.items()}
        return self._emit(self._choose(events), final=False)

    def close(self) -> bytes:
        events = {name: framer.close() for name, framer in self._framers.items()}
        return self._emit(self._choose(events), final=True)

    def _choose(self, events: Mapping[str, Sequence[FramerEvent]]) -> Sequence[FramerEvent]:
        """The detected framer's events; none while the detector is undecided."""
        if self.framing is None:
            for name, found in events.items():
                self._detector.observe(name, found)
            self.framing = self._detector.detected
            if self.framing is None:
                return []  # nothing in the input is a frame yet
            self._framers = {self.framing: self._framers[self.framing]}
        return events[self.framing]

    def _emit(self, events: Sequence[FramerEvent], *, final: bool) -> bytes:
        out = bytearray()
        pending = self._pending
        cursor = 0
        for event in events:
            if not _is_frame(event):
                continue  # rejected bytes and garbage are copied unchanged below
            assert isinstance(event, HdlcFrame | MbusFrame)
            start = event.offset - self._pending_at
            if start < cursor:
                continue  # never: a frame's bytes stay pending until its framer found it
            out += self._redact_loose(pending[cursor:start])
            if isinstance(event, HdlcFrame):
                out += self.redact_frame(event)
            else:
                out += self._redact_mbus(event)
            cursor = start + len(event.raw)
        held = max(framer.buffered for framer in self._framers.values())
        # Everything the framer no longer holds is decided: no frame, copied as it was
        # but for system titles that survived in damaged frames.
        decided = max(cursor, len(pending) - held)
        pending[cursor:decided] = self._redact_loose(pending[cursor:decided])
        # A serial may straddle this feed and the next: keep a title's length back.
        safe = decided if final else max(cursor, decided - _LOOSE_TAIL)
        out += pending[cursor:safe]
        del pending[:safe]
        self._pending_at += safe
        return bytes(out)

    def _redact_loose(self, region: bytearray) -> bytes:
        """Bytes outside valid frames: a damaged frame may still hold a system title."""
        if len(region) < 2 + SYSTEM_TITLE_SIZE:
            return bytes(region)
        out = bytearray(region)
        for match in _CIPHERED_HEADER.finditer(out):
            at = match.start()
            if at + 2 + SYSTEM_TITLE_SIZE <= len(out):
                apdu = out[at : at + 2 + SYSTEM_TITLE_SIZE]
                if self._redact_system_title(apdu):
                    out[at : at + len(apdu)] = apdu
        # A header lost on the line may leave the serial without its "DB 08 ISK".
        for secret, replacement in self._serials.items():
            if len(secret) >= 4:
                out = out.replace(secret, replacement)
        return bytes(out)

    def _redact_mbus(self, frame: MbusFrame) -> bytes:
        """An M-Bus frame with identities replaced and a fresh checksum."""
        raw = bytearray(frame.raw)
        spans = frame.spans
        # What follows CI, after the transport header (STSAP, DTSAP) of a DLMS segment.
        data, control, checksum = (_span(spans, name) for name in (INFORMATION, CONTROL, CHECKSUM))
        apdu = raw[data.start : data.end]
        if not self._redact_apdu(apdu):
            return bytes(raw)
        raw[data.start : data.end] = apdu
        raw[checksum.start] = sum(raw[control.start : checksum.start]) & 0xFF
        self.frames_redacted += 1
        return bytes(raw)

    def redact_frame(self, frame: HdlcFrame) -> bytes:
        """The frame's bytes with identifying content replaced and a fresh FCS."""
        raw = frame.raw
        # The APDU: the information field after the LLC header.
        info = find_span(frame.spans, INFORMATION)
        if info is None:
            return raw
        apdu = bytearray(info.of(raw))
        if not self._redact_apdu(apdu):
            return raw
        # Lengths never change, so the header and its HCS stay valid; only the FCS moves.
        body = raw[1 : info.start] + bytes(apdu)
        self.frames_redacted += 1
        return raw[:1] + body + _fcs(body)

    def _redact_apdu(self, apdu: bytearray) -> bool:
        # The tags as dlms.unwrap dispatches on them. Not its steps: a frame may hold
        # only the start of an APDU (a first segment), whose header is still redacted.
        tag = apdu[0] if apdu else None
        if tag in CIPHERED_TAGS:
            return self._redact_system_title(apdu)
        changed = tag == DATA_NOTIFICATION and self._redact_notification(apdu)
        return self._redact_plain(apdu) or changed

    def _redact_plain(self, data: bytearray) -> bool:
        """Identifying strings found byte-wise, and every id seen before, replaced."""
        changed = False
        for match in _OBIS_THEN_STRING.finditer(data):
            start, size = match.end(), match.group(2)[0]
            if describe(match.group(1))[0] not in IDENTIFYING_NAMES or start + size > len(data):
                continue
            secret = bytes(data[start : start + size])
            if len(secret) >= MIN_SECRET_TEXT and secret not in self._texts.values():
                self._texts.setdefault(secret, _placeholder_text(size, len(self._texts) + 1))
        for secret, replacement in self._texts.items():
            if len(secret) >= MIN_SECRET_TEXT and secret in data:
                data[:] = data.replace(secret, replacement)
                changed = True
        return changed

    def _redact_system_title(self, apdu: bytearray) -> bool:
        if len(apdu) < 2 + SYSTEM_TITLE_SIZE or apdu[1] != SYSTEM_TITLE_SIZE:
            return False
        title = decode_system_title(bytes(apdu[2:10]))
        secret = title.serial_bytes
        if secret in self._replacements:
            return False  # redacted already (bytes looked at again after a short feed)
        replacement = self._serials.get(secret)
        if replacement is None:
            replacement = _placeholder_serial(title.raw, secret, len(self._serials) + 1)
            self._serials[secret] = replacement
            self._replacements.add(replacement)
        apdu[10 - len(secret) : 10] = replacement
        return replacement != secret

    def _redact_notification(self, apdu: bytearray) -> bool:
        """Overwrite identifying strings in a plaintext push, keeping every length."""
        body = _notification_body_start(apdu)
        if body is None:
            return False
        try:
            root = axdr.decode_node(bytes(apdu), body)
        except AxdrError:
            return False
        changed = False
        for node in _identifying_nodes(root):
            secret = bytes(apdu[node.content : node.end])
            replacement = self._texts.setdefault(
                secret, _placeholder_text(len(secret), len(self._texts) + 1)
            )
            apdu[node.content : node.end] = replacement
            changed = changed or replacement != secret
        return changed


def _span(spans: tuple[Span, ...], name: str) -> Span:
    span = find_span(spans, name)
    assert span is not None, name  # every long M-Bus frame has it
    return span


def _is_frame(event: object) -> bool:
    if isinstance(event, MbusFrame):
        return event.kind == "long"
    return isinstance(event, HdlcFrame)


def _fcs(body: bytes) -> bytes:
    return crc16_x25(body).to_bytes(2, "little")


def _placeholder_serial(title: bytes, secret: bytes, number: int) -> bytes:
    """Same length as ``secret``; keeps the IDIS function-type nibble."""
    if len(secret) == 4 and title[3:4] and secret == title[4:]:
        value = (title[4] & 0xF0) << 24 | number
        return value.to_bytes(4, "big")
    digits = str(number).rjust(len(secret), "0")[-len(secret) :]
    return digits.encode("ascii")


def _placeholder_text(size: int, number: int) -> bytes:
    """Same length as the original: ``0000…01`` style digits (valid for any parser)."""
    return str(number).rjust(size, "0")[-size:].encode("ascii")


def _notification_body_start(apdu: bytearray) -> int | None:
    if len(apdu) < 6:
        return None
    marker = apdu[5]
    if marker == 0x00:
        return 6
    if marker == 0x0C:
        return 18
    if marker == 0x09 and apdu[6:7] == b"\x0c":
        return 19
    return None


def _identifying_nodes(root: axdr.Node) -> list[axdr.Node]:
    """String nodes that follow an identifying OBIS code, at any depth."""
    found: list[axdr.Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        children = node.children
        for i, child in enumerate(children[:-1]):
            value = child.value
            if type(value) is bytes and len(value) == OBIS_SIZE:
                name = describe(value)[0]
                following = children[i + 1]
                if name in IDENTIFYING_NAMES and following.tag in (
                    axdr.OCTET_STRING,
                    axdr.VISIBLE_STRING,
                    axdr.UTF8_STRING,
                ):
                    found.append(following)
        # A trailing bare serial (Austrian lists): digits without an OBIS code before it.
        if children:
            last = children[-1]
            before = children[-2].value if len(children) > 1 else None
            text = last.value.decode("latin-1") if type(last.value) is bytes else last.value
            if not (type(before) is bytes and len(before) == OBIS_SIZE) and is_identifying(
                None, None, text
            ):
                found.append(last)
        stack.extend(c for c in children if c.children)
    return found
