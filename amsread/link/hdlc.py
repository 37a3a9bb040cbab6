"""DLMS HDLC framing (IEC 62056-46 flavour), sans I/O.

A frame on the line::

    7E | format (2) | dest (1,2,4) | src (1,2,4) | control | [HCS (2) | info] | FCS (2) | 7E

The format field is ``1010 S LLL LLLLLLLL``: type 0xA, segmentation bit, 11-bit
length counting every byte between the flags. There is no byte stuffing, so
0x7E occurs inside payloads and checksums: only the length field ends a frame.

``HdlcFramer.feed(bytes)`` returns the complete frames and rejections found so
far. After a bad frame it resumes at the next 0x7E *inside* the rejected
bytes, so a good frame that follows damaged bytes is never lost.

``HdlcReassembler`` sits on top of the framer and joins segmented frames (the
S bit set on all but the last; only the first carries the LLC header) into
one message, as Iskraemeco AM550 meters send their longer pushes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amsread.link.crc import crc16_x25
from amsread.link.scanner import MAX_REJECTED_KEEP as MAX_REJECTED_KEEP
from amsread.link.scanner import Scanner
from amsread.link.segments import Reassembler, segment_lost
from amsread.link.spans import (
    CONTROL,
    DESTINATION,
    FCS,
    FORMAT,
    HCS,
    INFORMATION,
    LLC,
    SOURCE,
    Span,
)
from amsread.link.spans import FLAG as FLAG_SPAN
from amsread.model import Rejected, Skipped

FLAG = 0x7E
#: The 11-bit length field caps a frame at 2047 bytes between the flags.
MAX_FRAME = 0x7FF
#: Bytes kept between feeds: at most one incomplete frame and its opening flag.
MAX_BUFFER = MAX_FRAME + 2
#: Format, two shortest addresses, control and a checksum.
MIN_FRAME = 7
#: Largest information field a segmented message may add up to; longer ones are dropped.
MAX_MESSAGE = 8 * 1024

LLC_HEADERS = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")

# Unnumbered frames, without the poll/final bit (0x10).
CONTROL_NAMES = {0x83: "SNRM", 0x63: "UA", 0x43: "DISC", 0x0F: "DM", 0x87: "FRMR", 0x03: "UI"}


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """One checksum-valid frame. ``raw`` runs from the opening flag to the FCS."""

    segmented: bool
    destination: bytes
    source: bytes
    control: int
    information: bytes
    raw: bytes
    #: Frames this message was reassembled from (1 for a frame sent whole).
    segments: int = 1
    #: Where ``raw`` starts in the stream fed to the framer (-1 for a joined message).
    offset: int = field(default=-1, compare=False)

    @property
    def control_name(self) -> str:
        return control_name(self.control)

    @property
    def spans(self) -> tuple[Span, ...]:
        """Where each field sits in ``raw``: none for a message joined from segments.

        Derived from the fields the framer cut out (their sizes say where they
        end), so the frames nobody looks at pay nothing for them.
        """
        if self.segments > 1:
            return ()
        size, information = len(self.raw), self.information
        dest_end = 3 + len(self.destination)
        src_end = dest_end + len(self.source)
        llc = information[:3] in LLC_HEADERS
        return tuple(frame_spans(dest_end, src_end, size - 2 - len(information), size, llc))


HdlcEvent = HdlcFrame | Rejected
#: What the reassembler hands up: whole messages, rejections, and segments it had to drop.
HdlcMessageEvent = HdlcFrame | Rejected | Skipped


def control_name(control: int) -> str:
    """Name an HDLC control byte: I-frame, UI, SNRM, UA, RR, …"""
    if control & 0x01 == 0:
        return "I"
    if control & 0x03 == 0x01:
        return ("RR", "RNR", "REJ", "SREJ")[(control >> 2) & 0x03]
    return CONTROL_NAMES.get(control & 0xEF, f"U(0x{control:02X})")


def address_value(address: bytes) -> int:
    """The numeric value of an HDLC address field (each byte holds 7 bits)."""
    if len(address) == 4:
        upper = ((address[0] >> 1) << 7) | (address[1] >> 1)
        lower = ((address[2] >> 1) << 7) | (address[3] >> 1)
        return (upper << 16) | lower
    value = 0
    for byte in address:
        value = (value << 7) | (byte >> 1)
    return value


def header_spans(dest_end: int, src_end: int, header_end: int) -> list[Span]:
    """Flag to HCS, from where the addresses and the header end (counted from the flag).

    A header that ends right after the control byte has no HCS: the frame
    carries no information field.
    """
    spans = [
        Span(FLAG_SPAN, 0, 1),
        Span(FORMAT, 1, 3),
        Span(DESTINATION, 3, dest_end),
        Span(SOURCE, dest_end, src_end),
        Span(CONTROL, src_end, src_end + 1),
    ]
    if header_end > src_end + 1:
        spans.append(Span(HCS, src_end + 1, header_end))
    return spans


def frame_spans(dest_end: int, src_end: int, header_end: int, size: int, llc: bool) -> list[Span]:
    """Every field of a frame of ``size`` bytes (flag to FCS), given where its header parts end.

    The information field runs from the header's end to the FCS, after the LLC
    header if ``llc``; a frame without one ends its header at the control byte.
    """
    spans = header_spans(dest_end, src_end, header_end)
    if header_end < size - 2:
        if llc:
            spans.append(Span(LLC, header_end, header_end + 3))
            header_end += 3
        spans.append(Span(INFORMATION, header_end, size - 2))
    spans.append(Span(FCS, size - 2, size))
    return spans


def strip_llc(information: bytes) -> bytes:
    """Return the APDU after the LLC header, or the bytes unchanged if none."""
    if information[:3] in LLC_HEADERS:
        return information[3:]
    return information


def _address_end(buf: bytearray, i: int, limit: int) -> int:
    """Index after the address starting at ``i``; -1 if incomplete, -2 if invalid."""
    if i < limit and buf[i] & 0x01:
        return i + 1  # one byte, as most meters send it
    # The extension bit (bit 0) ends an address of 1, 2 or 4 bytes, never 3.
    for j in range(i, i + 4):
        if j >= limit:
            return -1
        if buf[j] & 0x01:
            return j + 1 if j - i != 2 else -2
    return -2


# What _header() found at a flag.
_OK, _WAIT, _BAD, _BAD_HCS = range(4)
_WAIT_MORE = (_WAIT, 0, 0, 0)
_NO_FRAME = (_BAD, 0, 0, 0)


class HdlcFramer(Scanner[HdlcFrame]):
    """Finds HDLC frames in a byte stream. Feed it bytes, get events back."""

    def feed(self, data: bytes | bytearray | memoryview) -> list[HdlcEvent]:
        buf = self._buf
        buf += data
        events: list[HdlcEvent] = []
        pos = 0
        n = len(buf)
        while pos < n:
            start = buf.find(FLAG, pos)
            if start < 0:
                self._garbage(pos, n)
                pos = n
                break
            if start > pos:
                self._garbage(pos, start)
            pos = start
            status, dest_end, src_end, header_end = self._header(buf, start, n)
            if status == _WAIT:
                break
            if status == _BAD:
                pos = start + 1
                continue
            if status == _BAD_HCS:
                spans = header_spans(dest_end - start, src_end - start, header_end - start)
                detail = "header checksum mismatch"
                self._reject(events, "bad_hcs", start, header_end, detail, spans)
                pos = start + 1
                continue
            end = start + 1 + (((buf[start + 1] & 0x07) << 8) | buf[start + 2])
            if end > n:
                break
            if crc16_x25(buf[start + 1 : end - 2]) != buf[end - 2] | (buf[end - 1] << 8):
                self._reject_fcs(events, start, end, (dest_end, src_end, header_end))
                pos = start + 1
                continue
            self._flush_garbage(events)
            # One copy of the frame out of the buffer; its fields are cut from that.
            raw = bytes(buf[start:end])
            at = self._offset + start
            frame = self._frame(raw, dest_end - start, src_end - start, header_end - start, at)
            events.append(frame)
            pos = end
        self._consume(pos)
        return events

    def close(self) -> list[HdlcEvent]:
        """End of stream: a frame still waiting for bytes is truncated or garbage.

        Whole frames that arrived after the start of that frame still count:
        scanning resumes at the next flag, as after any rejected frame.
        """
        buf = self._buf
        events: list[HdlcEvent] = []
        while buf.strip(b"\x7e"):
            status, dest_end, src_end, header_end = (
                self._header(buf, 0, len(buf)) if buf[0] == FLAG else _NO_FRAME
            )
            inner = buf.find(FLAG, 1)
            end = inner if inner > 0 else len(buf)
            if status == _OK and len(buf) > MIN_FRAME:
                length = ((buf[1] & 0x07) << 8) | buf[2]
                missing = length + 1 - len(buf)
                self._reject(
                    events,
                    "truncated",
                    0,
                    end,
                    f"the stream ended {missing} byte(s) before the end of this frame",
                    header_spans(dest_end, src_end, header_end),
                )
            else:
                self._garbage(1 if buf[0] == FLAG else 0, end)
            # Flags are idle fill, not garbage; what follows is scanned afresh.
            self._consume(end)
            events += self.feed(b"")
        self._finish(events)
        return events

    # -- parsing helpers -------------------------------------------------

    @staticmethod
    def _header(buf: bytearray, start: int, n: int) -> tuple[int, int, int, int]:
        """Check the frame header at ``start``.

        Returns (_OK, end of destination, end of source, index after
        control/HCS); (_WAIT, …) if more bytes are needed, (_BAD, …) if no
        frame starts here, (_BAD_HCS, …, header end) for a header checksum
        mismatch.
        """
        if n - start < 3:
            return _WAIT_MORE
        if buf[start + 1] & 0xF0 != 0xA0:
            return _NO_FRAME
        length = ((buf[start + 1] & 0x07) << 8) | buf[start + 2]
        if length < MIN_FRAME:
            return _NO_FRAME
        dest_end = _address_end(buf, start + 3, n)
        if dest_end < 0:
            return _WAIT_MORE if dest_end == -1 else _NO_FRAME
        src_end = _address_end(buf, dest_end, n)
        if src_end < 0:
            return _WAIT_MORE if src_end == -1 else _NO_FRAME
        control_end = src_end + 1
        header_len = control_end - (start + 1)
        if length == header_len + 2:
            return _OK, dest_end, src_end, control_end
        if length < header_len + 5:
            return _NO_FRAME
        if n < control_end + 2:
            return _WAIT_MORE
        hcs = buf[control_end] | (buf[control_end + 1] << 8)
        if crc16_x25(buf[start + 1 : control_end]) != hcs:
            return _BAD_HCS, dest_end, src_end, control_end + 2
        return _OK, dest_end, src_end, control_end + 2

    @staticmethod
    def _frame(raw: bytes, dest_end: int, src_end: int, header_end: int, at: int) -> HdlcFrame:
        """The frame in ``raw`` (flag to FCS), given where its header parts end."""
        # Positional: keywords cost a third more, on every frame. An empty
        # information field when there is none (header_end == len(raw) - 2).
        segmented = bool(raw[1] & 0x08)
        destination, source, control = raw[3:dest_end], raw[dest_end:src_end], raw[src_end]
        return HdlcFrame(segmented, destination, source, control, raw[header_end:-2], raw, 1, at)

    def _reject_fcs(
        self, events: list[HdlcEvent], start: int, end: int, header: tuple[int, int, int]
    ) -> None:
        """Tell a frame cut short by the next one from one damaged in place.

        ``header``: where its addresses and header end, as ``_header`` found them.
        """
        buf = self._buf
        dest_end, src_end, header_end = (at - start for at in header)
        spans = header_spans(dest_end, src_end, header_end)
        inner = buf.find(FLAG, start + 1, end)
        while inner >= 0:
            if self._header(buf, inner, len(buf))[0] == _OK:
                actual = inner - start - 1 - (1 if buf[inner - 1] == FLAG else 0)
                length = end - start - 1
                self._reject(
                    events,
                    "truncated",
                    start,
                    inner,
                    f"{length - actual} bytes missing: the frame has {actual} of the"
                    f" {length} bytes its length field announces",
                    spans,
                )
                return
            inner = buf.find(FLAG, inner + 1, end)
        computed = crc16_x25(buf[start + 1 : end - 2])
        received = buf[end - 2] | (buf[end - 1] << 8)
        self._reject(
            events,
            "bad_fcs",
            start,
            end,
            f"frame checksum mismatch: computed {computed:04X}, received {received:04X}",
            # Damaged in place: every field is where the header says.
            frame_spans(
                dest_end,
                src_end,
                header_end,
                end - start,
                buf[start + header_end : start + header_end + 3] in LLC_HEADERS,
            ),
        )


#: APDU tags a whole push can start with when a meter sends no LLC header: after
#: damaged bytes, such a frame is taken as a message, not as a lost tail (if it
#: were a tail, its APDU would fail to parse or to authenticate, never decode).
_PUSH_APDU_TAGS = frozenset({0x0F, 0xDB, 0xDC, 0xE0})


def _has_llc(information: bytes) -> bool:
    return information[:3] in LLC_HEADERS


def _send(frame: HdlcFrame) -> int | None:
    """The send sequence number N(S) of an I-frame; None for other frames."""
    return (frame.control >> 1) & 0x07 if frame.control & 0x01 == 0 else None


def _next_send_number(frame: HdlcFrame) -> int | None:
    # UI frames (most pushes) carry no sequence number: nothing to check.
    number = _send(frame)
    return None if number is None else (number + 1) & 0x07


class HdlcReassembler(Reassembler[HdlcFrame, HdlcFrame]):
    """HDLC frames in, whole messages out: joins segmented frames.

    A segmented message is a run of frames from the same addresses with the
    segmentation bit set on all but the last; only the first segment starts
    with the LLC header. Their information fields are joined into one
    ``HdlcFrame`` (``segments`` says how many). Frames sent whole pass through.

    A segment that goes missing drops the partial message as one
    ``segments_lost`` rejection: a damaged frame between segments, a new
    first segment (LLC header), another address pair, a segment repeated, an
    I-frame out of N(S) order, or a message longer than ``MAX_MESSAGE``. (UI
    frames, which most pushes use, carry no sequence number: a segment that
    vanishes without a trace leaves an APDU that fails to decode or to
    authenticate.) The rest of a lost message (continuation segments
    after a loss or after damaged bytes) is reported as ``Skipped`` rather than
    decoded as if it were a message of its own. Frames without an information
    field (RR, UA, …) pass through and interrupt nothing: in client/server
    traffic they acknowledge segments.
    """

    framer: HdlcFramer

    def __init__(self) -> None:
        super().__init__(HdlcFramer())

    def _on_frame(self, frame: HdlcFrame, out: list[HdlcMessageEvent]) -> None:
        if not (self._frames or self._dropping or frame.segmented) or not frame.information:
            # A frame sent whole, as most pushes are, or one that carries no message.
            out.append(frame)
            return
        first = _has_llc(frame.information)
        if self._frames:
            head, previous = self._frames[0], self._frames[-1]
            if (frame.destination, frame.source) != (head.destination, head.source):
                self._lose(out, "a frame from other addresses came between its segments")
            elif first:
                self._lose(out, "a new message started before its last segment")
            elif frame.raw == previous.raw:
                self._lose(out, "a segment came twice")
            elif (expected := _next_send_number(previous)) not in (None, _send(frame)):
                self._lose(out, f"segment N(S)={_send(frame)} came where N(S)={expected} was due")
        if not self._frames:
            if first:
                self._dropping = False
            elif self._dropping and not (
                not frame.segmented and frame.information[0] in _PUSH_APDU_TAGS
            ):
                # The rest of a message already reported lost.
                self._dropping = frame.segmented
                out.append(Skipped("HDLC segment of a message already lost"))
                return
            elif frame.segmented:
                detail = "a continuation segment arrived without the segments before it"
                out.append(segment_lost(frame, detail))
                self._dropping = True
                return
            if not frame.segmented:
                out.append(frame)
                return
        self._hold(frame, len(frame.information))
        if self._size > MAX_MESSAGE:
            self._lose(out, f"the segmented message grew beyond {MAX_MESSAGE} bytes")
            self._dropping = frame.segmented
        elif not frame.segmented:
            out.append(self._joined())

    def _joined(self) -> HdlcFrame:
        parts = self._take()
        last = parts[-1]
        return HdlcFrame(
            segmented=False,
            destination=last.destination,
            source=last.source,
            control=last.control,
            information=b"".join(p.information for p in parts),
            raw=b"".join(p.raw for p in parts),
            segments=len(parts),
        )
