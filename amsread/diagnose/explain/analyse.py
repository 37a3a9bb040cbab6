"""Walks the input as the link layer sees it: frames, damaged frames, garbage.

The framers run on the whole input and the framing is the one the ``auto``
link would detect (``link.detect``); each of that framer's events becomes a
section, annotated from the spans and offset the framer gave it, and the
information field of each frame goes to ``ApduExplainer``.
"""

from __future__ import annotations

from amsread.diagnose.explain.apdu import CIPHERED, ApduExplainer
from amsread.diagnose.explain.fields import (
    U_FRAMES,
    ciphered_header,
    ciphered_length_note,
    fcs_field,
    hdlc_header,
    llc_field,
    llc_span_field,
    mbus_header_fields,
    mbus_short_fields,
    mbus_trailer_fields,
)
from amsread.diagnose.explain.model import (
    Block,
    Field,
    Problem,
    Report,
    Section,
    upper_hex,
)
from amsread.diagnose.explain.problems import (
    damage_problem,
    diagnose_garbage,
    garbage_meaning,
    joined_note,
    not_a_frame_problem,
    report_problems,
    report_verdict,
    segments_lost_problem,
)
from amsread.diagnose.explain.telegram import TelegramExplainer, telegram_framing
from amsread.dlms.apdu import APDU_NAMES, DATA_NOTIFICATION
from amsread.dlms.keys import Keys
from amsread.link.detect import Detection, detect_framing
from amsread.link.hdlc import FLAG, LLC_HEADERS, HdlcFrame, HdlcReassembler, strip_llc
from amsread.link.mbus import MbusFrame, MbusMessage, MbusReassembler
from amsread.link.spans import CI, FCS, INFORMATION, LLC, TRANSPORT, Span, find_span
from amsread.model import Rejected
from amsread.readings.profiles import ProfileSet

#: Frames explained in full by default; the rest are only counted.
DEFAULT_LIMIT = 20


def explain_stream(
    data: bytes,
    keys: Keys | None = None,
    *,
    profiles: ProfileSet | None = None,
    source: str = "input",
    limit: int = DEFAULT_LIMIT,
    redact: bool = False,
    pasted: bool = False,
) -> Report:
    """Explain bytes as read from the line (HDLC frames, garbage and all).

    ``pasted``: the bytes were typed or pasted as hex, not captured from the
    line, so bytes that are no frame say less about the serial settings.
    """
    explainer = Explainer(keys, profiles)
    explainer.pasted = pasted
    report = explainer.stream(data, source, limit)
    return explainer.finish(report, redact)


def explain_apdus(
    apdus: list[bytes],
    keys: Keys | None = None,
    *,
    profiles: ProfileSet | None = None,
    source: str = "input",
    redact: bool = False,
) -> Report:
    """Explain bare APDUs (no link framing), one section each."""
    explainer = Explainer(keys, profiles)
    report = Report(source, sum(len(a) for a in apdus))
    for apdu in apdus:
        report.sections.append(explainer.apdus.bare_apdu(apdu, len(report.sections) + 1))
    return explainer.finish(report, redact)


def looks_like_apdu(data: bytes) -> bool:
    """True if hex input is an APDU (with or without LLC), not a byte stream."""
    if data[:3] in LLC_HEADERS:
        return True
    # Low tag values (initiate-request 0x01…) are too common in noise to mean "APDU".
    return bool(data) and data[0] >= DATA_NOTIFICATION and data[0] in APDU_NAMES


class Explainer:
    """Runs the layers on the input and records what each one saw."""

    def __init__(self, keys: Keys | None = None, profiles: ProfileSet | None = None) -> None:
        #: The layers above the link (block transfer, ciphering, data-notification).
        self.apdus = ApduExplainer(keys, profiles)
        self.link = "hdlc"
        self.pasted = False
        #: Segments of a message not complete yet: (frame, its section).
        self._pending: list[tuple[HdlcFrame | MbusFrame, Section]] = []
        #: Segmented HDLC messages as the reassembler joined them, by their frames' bytes.
        #: The link's reassembler, watching the events as they are explained.
        self._reassembler: HdlcReassembler | MbusReassembler = HdlcReassembler()
        #: What it handed up for the event being explained: a joined message, if complete.
        self._handed_up: list[object] = []

    # -- streams ----------------------------------------------------------

    def stream(self, data: bytes, source: str, limit: int) -> Report:
        report = Report(source, len(data))
        detection = detect_framing(data)
        binary_frames = max(detection.evidence["hdlc"], detection.evidence["mbus"])
        # Telegrams are judged on the detection's binary evidence; explain also
        # knows damaged ones (7E1 read as 8N1, cut text) that are no evidence.
        if telegram_framing(data, binary_frames):
            telegrams = TelegramExplainer(self.apdus.keys, self.apdus.secrets)
            return telegrams.stream(data, report, limit)
        self.link = detection.framing
        located = _locate(self._link_events(detection))
        if not located and data:
            located = [(0, len(data), Rejected("garbage", len(data), data[:64], "", 0))]
        i = 0
        while i < len(located):
            start, end, event = located[i]
            i += 1
            watched = [event]
            # A header-checksum failure and the garbage right after it are one damaged frame.
            if isinstance(event, Rejected) and event.reason == "bad_hcs" and i < len(located):
                nxt_start, nxt_end, nxt = located[i]
                if isinstance(nxt, Rejected) and nxt.reason == "garbage" and nxt_start == end:
                    end = nxt_end
                    i += 1
                    watched.append(nxt)
            self._watch(watched)
            index = len(report.sections) + 1
            section = self._section(data, start, end, event, index)
            report.add(section, limit)
        self._lose_pending("the input ended before its last segment")
        return report

    def _link_events(self, detection: Detection) -> list[_LinkEvent]:
        """The detected framer's events, with a fresh reassembler of that link to watch them."""
        if self.link == "mbus":
            self._reassembler = MbusReassembler()
            return list(detection.mbus)
        # Text telegrams (dsmr) are shown as the bytes outside HDLC frames they are to it.
        self._reassembler = HdlcReassembler()
        return list(detection.hdlc)

    def _watch(self, events: list[_LinkEvent]) -> None:
        """Hand the events about to be explained to the reassembler, as the link does."""
        reassembler = self._reassembler
        if isinstance(reassembler, MbusReassembler):
            mbus = [e for e in events if not isinstance(e, HdlcFrame)]
            self._handed_up = list(reassembler.reassemble(mbus))
        else:
            hdlc = [e for e in events if not isinstance(e, MbusFrame)]
            self._handed_up = list(reassembler.reassemble(hdlc))

    def _section(self, data: bytes, start: int, end: int, event: _LinkEvent, index: int) -> Section:
        if isinstance(event, HdlcFrame):
            return self.frame(data, start, event, index)
        if isinstance(event, MbusFrame):
            return self.mbus_frame(start, event, index)
        if event.reason == "garbage":
            return self.garbage(data, start, end, index, len(data))
        if self.link == "mbus":
            return self.mbus_damaged(data, start, end, event, index)
        return self.damaged(data, start, end, event, index)

    # -- one valid HDLC frame ---------------------------------------------

    def frame(self, data: bytes, start: int, frame: HdlcFrame, index: int) -> Section:
        raw = frame.raw
        closing = data[start + len(raw) : start + len(raw) + 1] == bytes([FLAG])
        size = len(raw) + closing
        section = Section(index, "frame", start, size, summary=f"HDLC {frame.control_name}")
        block = Block("HDLC frame (offsets from the opening flag)")
        apdu_block = Block("APDU (offsets from the opening flag)")
        section.blocks += [block, apdu_block]
        spans = frame.spans
        hdlc_header(raw, spans, block)
        llc, info = find_span(spans, LLC), find_span(spans, INFORMATION)
        if info and (frame.segmented or (self._pending and llc is None)):
            self._hdlc_segment(section, frame, block, apdu_block)
        elif info:
            self._lose_pending("a new message started before its last segment")
            if llc is not None:
                llc_span_field(raw, llc, 0, block)
            self.apdus.explain(section, info.of(raw), info.start, apdu_block)
        else:
            name = frame.control_name
            section.outcome = "skipped"
            section.notes.append(
                f"{name}: {U_FRAMES.get(name, 'link layer frame')}; no information field,"
                " not a push message"
            )
        # The frame's last bytes come right after the APDU, before any decrypted layer.
        trailer = Block("HDLC frame end")
        section.blocks.insert(section.blocks.index(apdu_block) + 1, trailer)
        fcs_field(raw, _span(spans, FCS).start, trailer)
        if closing:
            trailer.fields.append(Field(len(raw), "7E", "flag", "end of frame"))
        if not apdu_block.fields:
            section.blocks.remove(apdu_block)
        return section

    def _hdlc_segment(
        self, section: Section, frame: HdlcFrame, header: Block, block: Block
    ) -> None:
        """One frame of a segmented message; the last one explains the joined APDU."""
        raw, spans = frame.raw, frame.spans
        llc, info = find_span(spans, LLC), _span(spans, INFORMATION)
        if llc is not None and not self._pending:
            llc_span_field(raw, llc, 0, header)
            self._lose_pending("a new message started before its last segment")
        self._pending.append((frame, section))
        number = len(self._pending)
        what = "continues in the next frame" if frame.segmented else "last segment"
        # After the first segment an LLC-like start is APDU data.
        start = llc.start if llc is not None and number > 1 else info.start
        block.fields.append(
            Field(
                start,
                upper_hex(raw[start : info.end]),
                f"segment {number}",
                f"{info.end - start} bytes of the APDU; {what}",
            )
        )
        if frame.segmented:
            section.outcome = "segment"
            section.summary += f" · segment {number}"
            return
        mine = b"".join(f.raw for f, _ in self._pending)
        self._pending = []
        # The message the reassembler completed with this frame, if it joined these very frames.
        joined = next(
            (e for e in self._handed_up if isinstance(e, HdlcFrame) and e.raw == mine), None
        )
        if joined is None or joined.segments < 2:
            section.problems.append(
                segments_lost_problem("its segments do not join into one message")
            )
            return
        section.summary += f" · last of {joined.segments} segments"
        message = Block(f"APDU joined from {joined.segments} segments (offsets in the APDU)")
        section.blocks.insert(section.blocks.index(block) + 1, message)
        self.apdus.explain(section, strip_llc(joined.information), 0, message)
        joined_note(section, joined.segments)

    def _lose_pending(self, why: str) -> None:
        """Earlier segments (HDLC or M-Bus) whose message never completed."""
        for _, section in self._pending:
            section.outcome = "failed"
            section.problems.append(segments_lost_problem(why))
        self._pending = []

    # -- M-Bus ------------------------------------------------------------

    def mbus_frame(self, start: int, frame: MbusFrame, index: int) -> Section:
        raw = frame.raw
        section = Section(index, "frame", start, len(raw), summary=frame.kind)
        block = Block("M-Bus frame (offsets from the first start byte)")
        section.blocks.append(block)
        if frame.kind != "long":
            mbus_short_fields(frame, block)
            section.summary = frame.describe()
            section.outcome = "skipped"
            section.notes.append(f"{frame.describe()}: no DLMS data, not a push message")
            return section
        spans = frame.spans
        mbus_header_fields(raw, spans, block, frame.length_overflow)
        ci_at = _span(spans, CI).start
        ci = raw[ci_at]
        section.summary = "M-Bus long frame"
        if not frame.is_transport_segment:
            data = _span(spans, INFORMATION)
            block.fields.append(Field(ci_at, f"{ci:02X}", "CI", "not a DLMS transport segment"))
            block.fields.append(
                Field(data.start, upper_hex(data.of(raw)), "data", f"{len(frame.data)} bytes")
            )
            section.outcome = "skipped"
            section.notes.append(f"CI 0x{ci:02X}: not DLMS data, not a push message")
        else:
            self._mbus_segment(section, frame, block)
        mbus_trailer_fields(raw, spans, block)
        return section

    def _mbus_segment(self, section: Section, frame: MbusFrame, block: Block) -> None:
        raw, spans = frame.raw, frame.spans
        ci_at = _span(spans, CI).start
        ci = raw[ci_at]
        number, last = ci & 0x0F, bool(ci & 0x10)
        end = "; last segment" if last else "; more follow"
        block.fields.append(
            Field(ci_at, f"{ci:02X}", "CI", f"DLMS transport layer: segment {number}{end}")
        )
        transport = find_span(spans, TRANSPORT)
        if transport is None:
            section.problems.append(segments_lost_problem("the segment has no transport header"))
            return
        stsap, dtsap = transport.of(raw)
        block.fields.append(
            Field(
                transport.start,
                upper_hex(transport.of(raw)),
                "STSAP, DTSAP",
                f"transport access points {stsap}, {dtsap}",
            )
        )
        data = _span(spans, INFORMATION)
        block.fields.append(
            Field(
                data.start,
                upper_hex(data.of(raw)),
                f"segment {number}",
                f"{data.end - data.start} bytes",
            )
        )
        if number == 0:
            self._lose_pending("a new message started before its last segment")
        self._pending.append((frame, section))
        if not last:
            section.outcome = "segment"
            section.summary += f" · DLMS segment {number}"
            return
        count = len(self._pending)
        # The reassembler's message, if these very segments made one (data after STSAP, DTSAP).
        mine = b"".join(_span(f.spans, INFORMATION).of(f.raw) for f, _ in self._pending)
        self._pending = []
        message = next((e for e in self._handed_up if isinstance(e, MbusMessage)), None)
        if message is None or message.apdu != mine:
            section.problems.append(
                segments_lost_problem("its segments do not join into one message")
            )
            return
        section.summary += f" · last of {count} segments"
        joined = Block(f"APDU joined from {count} segments (offsets in the APDU)")
        section.blocks.append(joined)
        apdu = message.apdu
        llc = 3 if apdu[:3] in LLC_HEADERS else 0
        self.apdus.explain(section, apdu[llc:], llc, joined)
        joined_note(section, count)

    def mbus_damaged(
        self, data: bytes, start: int, end: int, event: Rejected, index: int
    ) -> Section:
        region = data[start:end]
        section = Section(index, "damaged frame", start, len(region), outcome="damaged")
        section.summary = "M-Bus frame damaged on the line"
        block = Block("M-Bus frame as received (offsets from the first start byte)")
        section.blocks.append(block)
        if len(region) >= 7:
            mbus_header_fields(region, event.spans, block, False)
        lost = "bytes lost on the line; check the M-Bus adapter and the serial settings (2400 8E1)"
        if event.reason == "truncated":
            problem = Problem("truncated", event.detail, lost)
        else:
            problem = Problem(
                event.reason,
                event.detail or "checksum mismatch",
                "bytes were changed on the line; if frequent, check the adapter and that the"
                " port is 2400 baud 8E1",
            )
        section.problems.append(problem)
        self._lose_pending(f"a damaged frame ({event.reason}) came between its segments")
        return section

    # -- damaged frames and garbage ---------------------------------------

    def damaged(self, data: bytes, start: int, end: int, event: Rejected, index: int) -> Section:
        region = data[start:end]
        # Where the frame's own end is: at the announced length (a bad FCS), at the
        # flag before the next frame (bytes were lost), or nowhere (the input stopped).
        full = event.reason == "bad_fcs"
        cut = event.reason == "truncated" and end == len(data)
        if not full and not cut and len(region) > 4 and region[-1] == FLAG:
            region = region[:-1]
        flag_after = data[start + len(region) : start + len(region) + 1] == bytes([FLAG])
        closed = not cut and (full or flag_after)
        between = len(region) - 1
        section = Section(
            index, "damaged frame", start, len(region) + flag_after, outcome="damaged"
        )
        section.summary = "HDLC frame damaged on the line"
        block = Block("HDLC frame as received (offsets from the opening flag)")
        section.blocks.append(block)
        info_at = hdlc_header(region, event.spans, block)
        announced = ((region[1] & 0x07) << 8 | region[2]) if len(region) > 2 else 0
        trailer = 2 if closed else 0
        if info_at and info_at < len(region) - trailer:
            self._damaged_info(section, region[info_at : len(region) - trailer], info_at, block)
        if closed and len(region) >= 5:
            # Where the framer found the FCS (damaged in place), or the bytes before the flag.
            fcs = find_span(event.spans, FCS) if full else None
            where = "" if fcs else "last 2 bytes before the closing flag"
            fcs_field(region, fcs.start if fcs else len(region) - 2, block, where)
        if flag_after:
            block.fields.append(Field(len(region), "7E", "flag", "end of frame"))
        section.problems.append(damage_problem(event, announced, between, closed))
        return section

    def _damaged_info(self, section: Section, info: bytes, base: int, block: Block) -> None:
        """Annotate what survives of the information field, to show where bytes went missing."""
        llc = 0
        if info[:3] in LLC_HEADERS:
            llc = llc_field(info, base, block)
        elif info[:2] in (b"\xe6\xe7", b"\xe6\xe6"):
            block.fields.append(
                Field(
                    base, upper_hex(info[:2]), "LLC", "only 2 of 3 bytes: the 00 is missing", "bad"
                )
            )
            section.notes.append(
                f"the LLC header is cut short at offset {base + 2}: bytes were lost right there"
            )
            llc = 2
        elif info[:1] not in (b"\x0f", b"\xdb", b"\xdc", b"\xe0"):
            section.notes.append(
                "the information field does not start with the LLC header (E6 E7 00) or a"
                " push APDU: bytes were lost at its start"
            )
        apdu = info[llc:]
        if apdu[:1] and apdu[0] in CIPHERED:
            ciphered_header(apdu, base + llc, block, self.apdus.secrets)
            ciphered_length_note(section, apdu)
        elif apdu:
            block.fields.append(
                Field(base + llc, upper_hex(apdu), "information", f"{len(apdu)} bytes (incomplete)")
            )

    def garbage(self, data: bytes, start: int, end: int, index: int, total: int) -> Section:
        region = data[start:end]
        section = Section(index, "garbage", start, len(region), "garbage")
        section.summary = f"{len(region)} bytes outside any frame"
        section.blocks.append(
            Block(
                "bytes outside any frame",
                [Field(0, upper_hex(region[:64]), "bytes", garbage_meaning(region))],
            )
        )
        whole = len(region) == total
        problem = diagnose_garbage(region, at_start=start == 0, whole=whole)
        if whole and self.pasted and problem is not None and problem.cause == "no_frames":
            problem = not_a_frame_problem(region)
        if problem is None:
            section.notes.append(
                f"the input starts in the middle of a frame ({len(region)} bytes skipped):"
                " normal when a capture begins while the meter is sending"
            )
            section.outcome = "skipped"
        else:
            section.problems.append(problem)
        return section

    # -- the end ----------------------------------------------------------

    def finish(self, report: Report, redact: bool) -> Report:
        report.problems = report_problems(report)
        report.verdict, report.ok = report_verdict(report)
        if redact:
            report = self.apdus.secrets.apply(report)
            report.redacted = True
        return report


_LinkEvent = HdlcFrame | MbusFrame | Rejected


def _span(spans: tuple[Span, ...], name: str) -> Span:
    """A field every frame of its kind has."""
    span = find_span(spans, name)
    assert span is not None, name
    return span


def _locate(events: list[_LinkEvent]) -> list[tuple[int, int, _LinkEvent]]:
    """(start, end, event) for each event, in input order, where the framer found it.

    Each event covers a contiguous run of the input; flags between frames
    belong to no event.
    """
    out = []
    for event in events:
        size = event.size if isinstance(event, Rejected) else len(event.raw)
        out.append((event.offset, event.offset + size, event))
    return out
