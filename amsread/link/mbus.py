"""Wired M-Bus framing (EN 13757-2) and the DLMS transport layer on it, sans I/O.

A long frame on the line::

    68 | L | L | 68 | C | A | CI | data … | CS | 16

L counts C, A, CI and the data; CS is their sum modulo 256. Short frames
(``10 C A CS 16``) and the single-character acknowledgement (``E5``) carry no
data. Austrian meters (Kaifa MA309, Sagemcom T210-D) push one DLMS APDU in
two or more long frames at 2400 baud 8E1, using the DLMS/COSEM transport
layer: CI 0x00–0x1F, the low nibble a sequence number counted from 0 and bit 4
(0x10) set on the last segment; each segment's data starts with the source
and destination transport access points (STSAP, DTSAP: ``01 67`` seen), which
are not part of the APDU.

Sagemcom T210-D puts only the low byte of a 257-byte length into L
(``68 01 01 68``). A frame whose checksum and stop byte do not sit where L
says is therefore tried again at L + 256 before it is rejected.

``MbusFramer.feed(bytes)`` returns frames and rejections; after a bad frame it
resumes at the next start byte *inside* the rejected bytes, so a good frame
after damaged bytes is never lost. ``MbusReassembler`` joins the segments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from amsread.link.scanner import MAX_REJECTED_KEEP as MAX_REJECTED_KEEP
from amsread.link.scanner import Scanner
from amsread.link.segments import Reassembler, segment_lost
from amsread.link.spans import ACK as ACK_SPAN
from amsread.link.spans import (
    ADDRESS,
    CHECKSUM,
    CI,
    CONTROL,
    INFORMATION,
    LENGTH,
    SECOND_START,
    START,
    TRANSPORT,
    Span,
)
from amsread.link.spans import STOP as STOP_SPAN
from amsread.model import Notice, Rejected, Skipped

LONG_START = 0x68
SHORT_START = 0x10
ACK = 0xE5
STOP = 0x16
#: C, A and CI: the least a long frame's L field can count.
MIN_LENGTH = 3
#: L is one byte; the Sagemcom quirk adds 256 to it.
OVERFLOW = 256
#: Start bytes, length twice, C…data with the quirk, checksum and stop byte.
MAX_FRAME = 4 + 255 + OVERFLOW + 2
SHORT_FRAME = 5
#: Bytes kept between feeds: at most one incomplete frame.
MAX_BUFFER = MAX_FRAME
#: Largest APDU the segments of one message may add up to; longer ones are dropped.
MAX_MESSAGE = 8 * 1024
#: Most segments one message may take: empty segments must not grow memory either.
MAX_SEGMENTS = 256
#: CI values of the DLMS/COSEM transport layer; others are no DLMS segments.
TRANSPORT_CI_MAX = 0x1F
LAST_SEGMENT = 0x10
SEQUENCE_MASK = 0x0F

_STARTS = re.compile(b"[\\x68\\x10\\xe5]")

#: A long frame's header up to CI: what the framer has read of a frame it rejects.
LONG_HEADER_SPANS = (
    Span(START, 0, 1),
    Span(LENGTH, 1, 3),
    Span(SECOND_START, 3, 4),
    Span(CONTROL, 4, 5),
    Span(ADDRESS, 5, 6),
    Span(CI, 6, 7),
)
_SHORT_SPANS = (
    Span(START, 0, 1),
    Span(CONTROL, 1, 2),
    Span(ADDRESS, 2, 3),
    Span(CHECKSUM, 3, 4),
    Span(STOP_SPAN, 4, 5),
)
_ACK_SPANS = (Span(ACK_SPAN, 0, 1),)


@dataclass(frozen=True, slots=True)
class MbusFrame:
    """One valid frame: ``kind`` is ``long``, ``short`` or ``ack``.

    ``data`` is what follows CI in a long frame; ``raw`` runs from the first
    start byte to the stop byte. ``length_overflow`` marks a frame accepted at
    L + 256 (the Sagemcom T210-D quirk).
    """

    kind: str
    control: int | None
    address: int | None
    ci: int | None
    data: bytes
    raw: bytes
    length_overflow: bool = False
    #: Where ``raw`` starts in the stream fed to the framer.
    offset: int = field(default=-1, compare=False)

    @property
    def is_transport_segment(self) -> bool:
        return self.kind == "long" and self.ci is not None and self.ci <= TRANSPORT_CI_MAX

    @property
    def spans(self) -> tuple[Span, ...]:
        """Where each field sits in ``raw`` (the transport header only in a DLMS segment)."""
        if self.kind == "ack":
            return _ACK_SPANS
        if self.kind == "short":
            return _SHORT_SPANS
        size = len(self.raw)
        data_start = 7
        spans = list(LONG_HEADER_SPANS)
        if self.is_transport_segment and len(self.data) >= 2:
            spans.append(Span(TRANSPORT, 7, 9))
            data_start = 9
        spans += (
            Span(INFORMATION, data_start, size - 2),
            Span(CHECKSUM, size - 2, size - 1),
            Span(STOP_SPAN, size - 1, size),
        )
        return tuple(spans)

    def describe(self) -> str:
        if self.kind == "ack":
            return "M-Bus acknowledgement (E5)"
        if self.kind == "short":
            return f"M-Bus short frame (C=0x{self.control or 0:02X})"
        return f"M-Bus frame with CI 0x{self.ci or 0:02X}: not a DLMS transport segment"


MbusEvent = MbusFrame | Rejected

# What _frame_at() found at a start byte.
_WAIT, _NONE, _BAD, _OK = range(4)


class _Found(NamedTuple):  # a tuple: made for every frame, and cheaper than a dataclass
    status: int
    end: int = 0
    reason: str = ""
    detail: str = ""
    overflow: bool = False


_MORE = _Found(_WAIT)
_NOTHING = _Found(_NONE)


class MbusFramer(Scanner[MbusFrame]):
    """Finds M-Bus frames in a byte stream. Feed it bytes, get events back."""

    def __init__(self) -> None:
        super().__init__()
        # True right after a frame (or at the start): only there is a lone E5 an ACK.
        self._clean = True

    def feed(self, data: bytes | bytearray | memoryview) -> list[MbusEvent]:
        self._buf += data
        return self._scan(final=False)

    def close(self) -> list[MbusEvent]:
        """End of stream: whatever is left is a truncated frame or garbage."""
        events = self._scan(final=True)
        if self._buf:
            self._garbage(0, len(self._buf))
        self._finish(events)
        self._clean = True
        return events

    # -- scanning ----------------------------------------------------------

    def _scan(self, *, final: bool) -> list[MbusEvent]:
        buf = self._buf
        events: list[MbusEvent] = []
        pos, n = 0, len(buf)
        while pos < n:
            match = _STARTS.search(buf, pos)
            if match is None:
                self._garbage(pos, n)
                pos = n
                break
            start = match.start()
            if start > pos:
                self._garbage(pos, start)
            found = self._frame_at(start, n, final)
            if found.status == _WAIT:
                pos = start
                break
            if found.status == _NONE:
                self._garbage(start, start + 1)
                pos = start + 1
            elif found.status == _BAD:
                # Only a long frame is rejected: its header is all the framer could read.
                self._reject(
                    events, found.reason, start, found.end, found.detail, LONG_HEADER_SPANS
                )
                pos = start + 1
            else:
                self._flush_garbage(events)
                events.append(self._frame(start, found.end, found.overflow))
                self._clean = True
                pos = found.end
        self._consume(pos)
        return events

    def _frame_at(self, start: int, n: int, final: bool) -> _Found:
        """What starts at ``start``: a frame, a rejected one, nothing, or too few bytes yet."""
        buf = self._buf
        first = buf[start]
        if first == ACK:
            return _Found(_OK, start + 1) if self._clean else _NOTHING
        if n - start < (SHORT_FRAME if first == SHORT_START else 4):
            return _NOTHING if final else _MORE
        if first == SHORT_START:
            ok = (
                buf[start + 4] == STOP
                and (buf[start + 1] + buf[start + 2]) & 0xFF == buf[start + 3]
            )
            return _Found(_OK, start + SHORT_FRAME) if ok else _NOTHING
        length = buf[start + 1]
        if buf[start + 3] != LONG_START or buf[start + 2] != length:
            return _NOTHING
        return self._long_at(start, length, n, final)

    def _long_at(self, start: int, length: int, n: int, final: bool) -> _Found:
        nominal_end = start + 4 + length + 2
        overflow_end = nominal_end + OVERFLOW
        if length >= MIN_LENGTH:
            if nominal_end > n:
                if not final:
                    return _MORE
                inner = self._inner_frame(start + 1, n)
                return self._truncated(start, inner if inner >= 0 else n, nominal_end)
            if self._valid(start, length):
                return _Found(_OK, nominal_end)
        # The frame cannot end where L says: is the next frame already here?
        inner = self._inner_frame(start + 1, min(n, overflow_end))
        if inner >= 0 and length < MIN_LENGTH:
            return self._truncated(start, inner, overflow_end)
        if 0 <= inner < nominal_end:
            return self._truncated(start, inner, nominal_end)
        if inner >= 0:
            return _Found(_BAD, nominal_end, "bad_checksum", self._checksum_detail(start))
        if overflow_end > n:
            if not final:
                return _MORE
            if length >= MIN_LENGTH:
                return _Found(_BAD, nominal_end, "bad_checksum", self._checksum_detail(start))
            return self._truncated(start, n, overflow_end)
        if self._valid(start, length + OVERFLOW):
            return _Found(_OK, overflow_end, overflow=True)
        end = nominal_end if length >= MIN_LENGTH else overflow_end
        return _Found(_BAD, end, "bad_checksum", self._checksum_detail(start))

    def _truncated(self, start: int, end: int, announced_end: int) -> _Found:
        """A frame cut short, by the next frame (``end`` < n) or by the end of the stream."""
        have, want = end - start, announced_end - start
        if end < len(self._buf):
            detail = (
                f"{want - have} bytes missing: the next frame starts {have} bytes into this one"
            )
        else:
            detail = f"the stream ended {want - have} byte(s) before the end of this frame"
        return _Found(_BAD, end, "truncated", detail)

    def _valid(self, start: int, length: int) -> bool:
        """Checksum and stop byte where ``length`` puts them (all bytes present)."""
        buf = self._buf
        end = start + 4 + length
        # sum() over a bytes slice runs in C.
        return buf[end + 1] == STOP and sum(buf[start + 4 : end]) & 0xFF == buf[end]

    def _inner_frame(self, lo: int, hi: int) -> int:
        """Start of a complete, valid long frame inside [lo, hi); -1 if none."""
        buf = self._buf
        at = buf.find(LONG_START, lo, hi)
        while at >= 0:
            length = buf[at + 1] if at + 1 < len(buf) else 0
            if (
                length >= MIN_LENGTH
                and at + 4 + length + 2 <= len(buf)
                and buf[at + 2] == length
                and buf[at + 3] == LONG_START
                and self._valid(at, length)
            ):
                return at
            at = buf.find(LONG_START, at + 1, hi)
        return -1

    def _frame(self, start: int, end: int, overflow: bool) -> MbusFrame:
        buf = self._buf
        raw = bytes(buf[start:end])
        at = self._offset + start
        if raw[0] == ACK:
            return MbusFrame("ack", None, None, None, b"", raw, False, at)
        if raw[0] == SHORT_START:
            return MbusFrame("short", raw[1], raw[2], None, b"", raw, False, at)
        return MbusFrame("long", raw[4], raw[5], raw[6], raw[7:-2], raw, overflow, at)

    # -- rejections ----------------------------------------------------------

    def _checksum_detail(self, start: int) -> str:
        buf = self._buf
        length = buf[start + 1]
        if length < MIN_LENGTH:
            return (
                f"length field 0x{length:02X} is too short for a long frame, and no frame"
                f" ends at 0x{length + OVERFLOW:X} either"
            )
        end = start + 4 + length
        if buf[end + 1] != STOP:
            return (
                "no stop byte (16) where the length field says the frame ends"
                f" (found {buf[end + 1]:02X})"
            )
        computed = sum(buf[start + 4 : end]) & 0xFF
        return f"checksum mismatch: computed {computed:02X}, received {buf[end]:02X}"

    def _reject(
        self,
        events: list[MbusEvent],
        reason: str,
        start: int,
        end: int,
        detail: str,
        spans: Sequence[Span] = (),
    ) -> None:
        super()._reject(events, reason, start, end, detail, spans)
        self._clean = False

    def _garbage(self, start: int, end: int) -> None:
        super()._garbage(start, end)
        self._clean = False


@dataclass(frozen=True, slots=True)
class MbusMessage:
    """A DLMS APDU carried by one or more transport segments."""

    apdu: bytes
    address: int
    stsap: int
    dtsap: int
    #: Frames it was reassembled from.
    frames: int


MbusMessageEvent = MbusMessage | MbusFrame | Rejected | Skipped | Notice


class MbusReassembler(Reassembler[MbusFrame, MbusMessage | MbusFrame | Notice]):
    """M-Bus frames in, DLMS APDUs out: joins transport-layer segments.

    Segment 0 starts a message; each next one must carry the next sequence
    number (modulo 16) and the same address and access points; the one with
    bit 4 of CI set ends it. A missing, repeated or out-of-order segment, a
    damaged frame between segments or a message beyond ``MAX_MESSAGE`` drops
    the partial message as one ``segments_lost`` rejection; segments that
    follow a loss or damaged bytes, up to the next segment 0, are ``Skipped``
    rather than reported again. Frames that are no DLMS segments (short frames,
    ACKs, other CI values) pass through and interrupt nothing.
    """

    framer: MbusFramer

    def __init__(self) -> None:
        super().__init__(MbusFramer())
        self._key: tuple[int | None, int, int] = (None, 0, 0)
        self._next = 0

    def _on_frame(self, frame: MbusFrame, out: list[MbusMessageEvent]) -> None:
        if frame.length_overflow:
            out.append(_overflow_notice(frame))
        if frame.is_transport_segment:
            self._on_segment(frame, out)
        else:
            out.append(frame)

    def _on_segment(self, frame: MbusFrame, out: list[MbusMessageEvent]) -> None:
        ci = frame.ci or 0
        sequence, last = ci & SEQUENCE_MASK, bool(ci & LAST_SEGMENT)
        if len(frame.data) < 2:
            if self._frames:
                self._lose(out, "a segment without its transport header came between its segments")
            detail = "DLMS segment too short for its transport header (STSAP, DTSAP)"
            out.append(segment_lost(frame, detail))
            return
        key = (frame.address, frame.data[0], frame.data[1])
        if self._frames:
            if key != self._key:
                self._lose(out, "a segment from another address came between its segments")
            elif sequence != self._next:
                self._lose(out, f"segment {sequence} came where segment {self._next} was expected")
        if not self._frames:
            if sequence != 0:
                self._orphan(frame, sequence, out)
                return
            self._dropping = False
            self._key = key
        self._hold(frame, len(frame.data) - 2)
        self._next = (sequence + 1) & SEQUENCE_MASK
        if self._size > MAX_MESSAGE or len(self._frames) > MAX_SEGMENTS:
            self._lose(
                out,
                f"the segmented message grew beyond {MAX_MESSAGE} bytes or {MAX_SEGMENTS} segments",
            )
        elif last:
            frames = self._take()
            apdu = b"".join(f.data[2:] for f in frames)
            out.append(MbusMessage(apdu, frame.address or 0, key[1], key[2], len(frames)))

    def _orphan(self, frame: MbusFrame, sequence: int, out: list[MbusMessageEvent]) -> None:
        if self._dropping:
            out.append(Skipped(f"M-Bus segment {sequence} of a message already lost"))
        else:
            detail = f"segment {sequence} arrived without the segments before it"
            out.append(segment_lost(frame, detail))
        # Until the next segment 0, what comes belongs to this lost message.
        self._dropping = True


def _overflow_notice(frame: MbusFrame) -> Notice:
    announced = frame.raw[1]
    return Notice(
        "mbus_length_overflow",
        f"M-Bus frame of {announced + OVERFLOW} bytes announced as 0x{announced:02X}"
        " (Sagemcom T210-D sends only the low byte of the length): accepted, its"
        " checksum and stop byte are where the full length puts them",
    )
