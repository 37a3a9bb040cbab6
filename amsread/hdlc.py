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

from dataclasses import dataclass

from amsread.crc import crc16_x25
from amsread.events import Rejected, Skipped

FLAG = 0x7E
#: The 11-bit length field caps a frame at 2047 bytes between the flags.
MAX_FRAME = 0x7FF
#: Bytes kept between feeds: at most one incomplete frame and its opening flag.
MAX_BUFFER = MAX_FRAME + 2
#: Format, two shortest addresses, control and a checksum.
MIN_FRAME = 7
#: Kept of a rejected region, for diagnostics; the rest is only counted.
MAX_REJECTED_KEEP = 64
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

    @property
    def control_name(self) -> str:
        return control_name(self.control)


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


def strip_llc(information: bytes) -> bytes:
    """Return the APDU after the LLC header, or the bytes unchanged if none."""
    if information[:3] in LLC_HEADERS:
        return information[3:]
    return information


def _address_end(buf: bytearray, i: int, limit: int) -> int:
    """Index after the address starting at ``i``; -1 if incomplete, -2 if invalid."""
    for j in range(i, i + 4):
        if j >= limit:
            return -1
        if buf[j] & 0x01:
            size = j - i + 1
            return j + 1 if size != 3 else -2
    return -2


class HdlcFramer:
    """Finds HDLC frames in a byte stream. Feed it bytes, get events back."""

    def __init__(self) -> None:
        self._buf = bytearray()
        # Bytes at the head of the buffer that belong to a frame already rejected.
        self._covered = 0
        self._garbage_size = 0
        self._garbage_head = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[HdlcEvent]:
        buf = self._buf
        buf += data
        events: list[HdlcEvent] = []
        pos = 0
        n = len(buf)
        while pos < n:
            start = buf.find(FLAG, pos)
            if start < 0:
                self._garbage(events, pos, n)
                pos = n
                break
            if start > pos:
                self._garbage(events, pos, start)
            pos = start
            status, header_end = self._header(buf, start, n)
            if status == "wait":
                break
            if status == "bad":
                pos = start + 1
                continue
            if status == "bad_hcs":
                self._reject(events, "bad_hcs", start, header_end, "header checksum mismatch")
                pos = start + 1
                continue
            length = ((buf[start + 1] & 0x07) << 8) | buf[start + 2]
            end = start + 1 + length
            if end > n:
                break
            if crc16_x25(buf[start + 1 : end - 2]) != buf[end - 2] | (buf[end - 1] << 8):
                self._reject_fcs(events, start, end)
                pos = start + 1
                continue
            self._flush_garbage(events)
            events.append(self._frame(buf, start, header_end, end))
            pos = end
        del buf[:pos]
        self._covered = max(0, self._covered - pos)
        return events

    def close(self) -> list[HdlcEvent]:
        """End of stream: a frame still waiting for bytes is truncated or garbage.

        Whole frames that arrived after the start of that frame still count:
        scanning resumes at the next flag, as after any rejected frame.
        """
        buf = self._buf
        events: list[HdlcEvent] = []
        while buf.strip(b"\x7e"):
            status, _ = self._header(buf, 0, len(buf)) if buf[0] == FLAG else ("bad", 0)
            inner = buf.find(FLAG, 1)
            end = inner if inner > 0 else len(buf)
            if status == "ok" and len(buf) > MIN_FRAME:
                length = ((buf[1] & 0x07) << 8) | buf[2]
                missing = length + 1 - len(buf)
                self._reject(
                    events,
                    "truncated",
                    0,
                    end,
                    f"the stream ended {missing} byte(s) before the end of this frame",
                )
            else:
                self._garbage(events, 1 if buf[0] == FLAG else 0, end)
            # Flags are idle fill, not garbage; what follows is scanned afresh.
            del buf[:end]
            self._covered = max(0, self._covered - end)
            events += self.feed(b"")
        self._flush_garbage(events)
        buf.clear()
        self._covered = 0
        return events

    # -- parsing helpers -------------------------------------------------

    @staticmethod
    def _header(buf: bytearray, start: int, n: int) -> tuple[str, int]:
        """Check the frame header at ``start``.

        Returns ("ok", index after control/HCS), ("wait", 0) if more bytes are
        needed, ("bad", 0) if no frame starts here, ("bad_hcs", header end).
        """
        if n - start < 3:
            return "wait", 0
        if buf[start + 1] & 0xF0 != 0xA0:
            return "bad", 0
        length = ((buf[start + 1] & 0x07) << 8) | buf[start + 2]
        if length < MIN_FRAME:
            return "bad", 0
        dest_end = _address_end(buf, start + 3, n)
        if dest_end < 0:
            return ("wait", 0) if dest_end == -1 else ("bad", 0)
        src_end = _address_end(buf, dest_end, n)
        if src_end < 0:
            return ("wait", 0) if src_end == -1 else ("bad", 0)
        control_end = src_end + 1
        header_len = control_end - (start + 1)
        if length == header_len + 2:
            return "ok", control_end
        if length < header_len + 5:
            return "bad", 0
        if n < control_end + 2:
            return "wait", 0
        hcs = buf[control_end] | (buf[control_end + 1] << 8)
        if crc16_x25(buf[start + 1 : control_end]) != hcs:
            return "bad_hcs", control_end + 2
        return "ok", control_end + 2

    @staticmethod
    def _frame(buf: bytearray, start: int, header_end: int, end: int) -> HdlcFrame:
        dest_end = _address_end(buf, start + 3, end)
        src_end = _address_end(buf, dest_end, end)
        length = ((buf[start + 1] & 0x07) << 8) | buf[start + 2]
        has_info = length > (src_end + 1 - (start + 1)) + 2
        return HdlcFrame(
            segmented=bool(buf[start + 1] & 0x08),
            destination=bytes(buf[start + 3 : dest_end]),
            source=bytes(buf[dest_end:src_end]),
            control=buf[src_end],
            information=bytes(buf[header_end : end - 2]) if has_info else b"",
            raw=bytes(buf[start:end]),
        )

    def _reject_fcs(self, events: list[HdlcEvent], start: int, end: int) -> None:
        """Tell a frame cut short by the next one from one damaged in place."""
        buf = self._buf
        inner = buf.find(FLAG, start + 1, end)
        while inner >= 0:
            if self._header(buf, inner, len(buf))[0] == "ok":
                actual = inner - start - 1 - (1 if buf[inner - 1] == FLAG else 0)
                length = end - start - 1
                self._reject(
                    events,
                    "truncated",
                    start,
                    inner,
                    f"{length - actual} bytes missing: the frame has {actual} of the"
                    f" {length} bytes its length field announces",
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
        )

    def _reject(
        self, events: list[HdlcEvent], reason: str, start: int, end: int, detail: str
    ) -> None:
        self._flush_garbage(events)
        data = bytes(self._buf[start : min(end, start + MAX_REJECTED_KEEP)])
        events.append(Rejected(reason, end - start, data, detail))
        self._covered = max(self._covered, end)

    def _garbage(self, events: list[HdlcEvent], start: int, end: int) -> None:
        """Note skipped bytes not already part of a rejected frame.

        A run of garbage is reported once, when it ends, however many feeds
        it took: a serial port that delivers noise byte by byte gives one event.
        """
        start = max(start, self._covered)
        if end <= start:
            return
        room = MAX_REJECTED_KEEP - len(self._garbage_head)
        if room > 0:
            # Only the garbage itself: bytes after ``end`` may be the next frame.
            self._garbage_head += self._buf[start : min(end, start + room)]
        self._garbage_size += end - start
        self._covered = max(self._covered, end)

    def _flush_garbage(self, events: list[HdlcEvent]) -> None:
        if self._garbage_size:
            head = bytes(self._garbage_head[:MAX_REJECTED_KEEP])
            events.append(Rejected("garbage", self._garbage_size, head))
            self._garbage_size = 0
            self._garbage_head = bytearray()


def _has_llc(information: bytes) -> bool:
    return information[:3] in LLC_HEADERS


def _send(frame: HdlcFrame) -> int | None:
    """The send sequence number N(S) of an I-frame; None for other frames."""
    return (frame.control >> 1) & 0x07 if frame.control & 0x01 == 0 else None


def _next_send_number(frame: HdlcFrame) -> int | None:
    # UI frames (most pushes) carry no sequence number: nothing to check.
    number = _send(frame)
    return None if number is None else (number + 1) & 0x07


class HdlcReassembler:
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

    def __init__(self) -> None:
        self.framer = HdlcFramer()
        self._parts: list[HdlcFrame] = []
        self._size = 0
        # Set after a loss or damaged bytes: continuation segments that follow
        # belong to a message that cannot be completed any more.
        self._dropping = False

    @property
    def buffered(self) -> int:
        """Bytes held: the framer's buffer plus the partial message."""
        return self.framer.buffered + self._size

    def feed(self, data: bytes | bytearray | memoryview) -> list[HdlcMessageEvent]:
        return self._reassemble(self.framer.feed(data))

    def close(self) -> list[HdlcMessageEvent]:
        """End of stream: a partial message left over is lost."""
        out = self._reassemble(self.framer.close())
        if self._parts:
            self._lose(out, "the stream ended before its last segment")
        self._dropping = False
        return out

    def _reassemble(self, events: list[HdlcEvent]) -> list[HdlcMessageEvent]:
        out: list[HdlcMessageEvent] = []
        for event in events:
            if isinstance(event, Rejected):
                out.append(event)
                if self._parts:
                    self._lose(out, f"a damaged frame ({event.reason}) came between its segments")
                self._dropping = True
            elif not event.information:
                out.append(event)
            else:
                self._on_frame(event, out)
        return out

    def _on_frame(self, frame: HdlcFrame, out: list[HdlcMessageEvent]) -> None:
        first = _has_llc(frame.information)
        if self._parts:
            head = self._parts[0]
            if (frame.destination, frame.source) != (head.destination, head.source):
                self._lose(out, "a frame from other addresses came between its segments")
            elif first:
                self._lose(out, "a new message started before its last segment")
            elif frame.raw == self._parts[-1].raw:
                self._lose(out, "a segment came twice")
            elif (expected := _next_send_number(self._parts[-1])) not in (None, _send(frame)):
                self._lose(out, f"segment N(S)={_send(frame)} came where N(S)={expected} was due")
        if not self._parts:
            if first:
                self._dropping = False
            elif self._dropping:
                # The rest of a message already reported lost.
                self._dropping = frame.segmented
                out.append(Skipped("HDLC segment of a message already lost"))
                return
            elif frame.segmented:
                self._orphan(frame, out)
                return
            if not frame.segmented:
                out.append(frame)
                return
        self._parts.append(frame)
        self._size += len(frame.information)
        if self._size > MAX_MESSAGE:
            self._lose(out, f"the segmented message grew beyond {MAX_MESSAGE} bytes")
            self._dropping = frame.segmented
        elif not frame.segmented:
            out.append(self._joined())

    def _joined(self) -> HdlcFrame:
        parts, last = self._parts, self._parts[-1]
        message = HdlcFrame(
            segmented=False,
            destination=last.destination,
            source=last.source,
            control=last.control,
            information=b"".join(p.information for p in parts),
            raw=b"".join(p.raw for p in parts),
            segments=len(parts),
        )
        self._parts, self._size = [], 0
        return message

    def _lose(self, out: list[HdlcMessageEvent], why: str) -> None:
        parts = self._parts
        size = sum(len(p.raw) for p in parts)
        detail = f"{len(parts)} segment(s) of a message dropped: {why}"
        out.append(Rejected("segments_lost", size, parts[0].raw[:MAX_REJECTED_KEEP], detail))
        self._parts, self._size = [], 0
        self._dropping = True

    def _orphan(self, frame: HdlcFrame, out: list[HdlcMessageEvent]) -> None:
        detail = "a continuation segment arrived without the segments before it"
        out.append(Rejected("segments_lost", len(frame.raw), frame.raw[:MAX_REJECTED_KEEP], detail))
        self._dropping = True
