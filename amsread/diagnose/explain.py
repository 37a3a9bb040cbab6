"""``amsread explain``: a layer-by-layer breakdown, like a protocol analyser.

For every frame: the bytes of each field and what they mean (flags, frame
format, addresses, control, HCS/FCS computed against received, LLC, APDU tag,
system title with the maker decoded, BER length, security control bits,
invocation counter, tag), then the decrypted APDU as an A-XDR tree with OBIS
codes named and scalers applied, the readings, and which profile matched and
why. Every failure gets a named cause and a next step.

The analysis builds a ``Report`` (plain dataclasses, no I/O); ``render_text``
and ``render_json`` turn it into text that reads well pasted into a forum or
an issue, or into data. The layers themselves (framer, ciphering, A-XDR,
readings, profiles) are the ones the pipeline uses: explain only watches them
work and annotates the bytes they consumed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter, deque
from dataclasses import dataclass, field

from amsread.diagnose.redact import Redactor, is_identifying
from amsread.dlms import axdr
from amsread.dlms.apdu import (
    APDU_NAMES,
    DATA_NOTIFICATION,
    GENERAL_BLOCK_TRANSFER,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    apdu_name,
    parse_data_notification,
)
from amsread.dlms.blocks import BlockAssembler, parse_block
from amsread.dlms.ciphering import TAG_SIZE, Ciphered, Decryptor, parse_ciphered
from amsread.dlms.keys import Keys
from amsread.errors import (
    ApduError,
    AuthenticationError,
    AxdrError,
    NoKeyError,
    UnsupportedSecurityError,
)
from amsread.link.crc import crc16_x25
from amsread.link.hdlc import (
    FLAG,
    LLC_HEADERS,
    HdlcFrame,
    HdlcFramer,
    HdlcReassembler,
    address_value,
    control_name,
)
from amsread.link.mbus import MbusFrame, MbusFramer, MbusMessage, MbusReassembler
from amsread.model import Message, Reading, Rejected
from amsread.readings.builder import Extracted, Item, ReadingsBuilder, extract
from amsread.readings.manufacturers import decode_system_title
from amsread.readings.obis import OBIS_SIZE, describe, format_obis, parse_obis
from amsread.readings.profiles import Profile, ProfileSet
from amsread.readings.timestamps import cosem_datetime_iso, looks_like_datetime
from amsread.readings.units import unit_symbol

#: Frames explained in full by default; the rest are only counted.
DEFAULT_LIMIT = 20
#: Bytes shown in a field's hex column before "…".
HEX_SHOWN = 8
#: OBIS value group A runs 0 (abstract) to 15; six bytes starting higher are data.
MAX_OBIS_A = 15
#: A-XDR tree lines shown per frame (a push list has a few hundred at most).
MAX_TREE_LINES = 1000

_CIPHERED = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)
_U_FRAMES = {
    "SNRM": "set normal response mode: a client opens a connection",
    "UA": "unnumbered acknowledge: the meter accepts the connection",
    "DISC": "disconnect",
    "DM": "disconnected mode",
    "FRMR": "frame reject",
    "UI": "unnumbered information",
}

# -- the report ---------------------------------------------------------------


@dataclass
class Problem:
    """A named cause (stable slug), what is wrong, and what to do next."""

    cause: str
    summary: str
    next_step: str
    #: "error" (nothing decoded because of it) or "warning".
    severity: str = "error"


@dataclass
class Field:
    offset: int
    hex: str
    name: str
    meaning: str
    #: "ok", "bad" or "" (nothing to check).
    status: str = ""


@dataclass
class Block:
    title: str
    fields: list[Field] = field(default_factory=list)


@dataclass
class TreeLine:
    offset: int
    depth: int
    hex: str
    type: str
    value: str
    note: str = ""


@dataclass
class ReadingLine:
    obis: str | None
    name: str | None
    value: int | float | str | None
    unit: str | None


@dataclass
class ProfileCheck:
    name: str
    origin: str
    checks: list[str]
    #: Criteria met, or -1 when a criterion fails.
    score: int
    chosen: bool = False


@dataclass
class ProfileInfo:
    chosen: str | None
    title: str
    reason: str
    candidates: list[ProfileCheck] = field(default_factory=list)


@dataclass
class Section:
    """One frame, damaged frame, run of garbage or bare APDU."""

    index: int
    kind: str
    offset: int | None
    size: int
    #: "decoded", "failed", "skipped" (valid, not a push), "damaged", "garbage".
    outcome: str = "failed"
    summary: str = ""
    blocks: list[Block] = field(default_factory=list)
    tree: list[TreeLine] = field(default_factory=list)
    readings: list[ReadingLine] = field(default_factory=list)
    profile: ProfileInfo | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    source: str
    size: int
    verdict: str = ""
    ok: bool = False
    sections: list[Section] = field(default_factory=list)
    #: Frames past the limit, by outcome, and their problems by cause.
    omitted: dict[str, int] = field(default_factory=dict)
    omitted_problems: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    redacted: bool = False


# -- entry points -------------------------------------------------------------


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
        report.sections.append(explainer.bare_apdu(apdu, len(report.sections) + 1))
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
        self.keys = keys or Keys()
        self.profiles = profiles or ProfileSet()
        self.builder = ReadingsBuilder(self.profiles)
        #: Identifying values seen so far (used only with --redact).
        self.secrets = Redactor()
        self.link = "hdlc"
        self.pasted = False
        #: Segments of a message not complete yet: (raw frame, its section).
        self._pending: list[tuple[bytes, Section]] = []
        #: Segmented HDLC messages as the reassembler joined them, by their frames' bytes.
        self._joined: dict[bytes, HdlcFrame] = {}
        self._messages: deque[MbusMessage] = deque()
        self._blocks = BlockAssembler()
        self._block_count = 0

    # -- streams ----------------------------------------------------------

    def stream(self, data: bytes, source: str, limit: int) -> Report:
        report = Report(source, len(data))
        hdlc = _framer_events(HdlcFramer(), data)
        mbus = _framer_events(MbusFramer(), data)
        self.link = "mbus" if _long_frames(mbus) > _frames(hdlc) else "hdlc"
        if self.link == "mbus":
            located = _locate(data, mbus)
            self._messages = deque(_mbus_messages(data))
        else:
            located = _locate(data, hdlc)
            self._joined = _hdlc_joined(data)
        if not located and data:
            located = [(0, len(data), Rejected("garbage", len(data), data[:64]))]
        shown = 0
        i = 0
        while i < len(located):
            start, end, event = located[i]
            i += 1
            # A header-checksum failure and the garbage right after it are one damaged frame.
            if isinstance(event, Rejected) and event.reason == "bad_hcs" and i < len(located):
                nxt_start, nxt_end, nxt = located[i]
                if isinstance(nxt, Rejected) and nxt.reason == "garbage" and nxt_start == end:
                    end = nxt_end
                    i += 1
            index = len(report.sections) + 1
            section = self._section(data, start, end, event, index)
            if limit and shown >= limit:
                report.omitted[section.outcome] = report.omitted.get(section.outcome, 0) + 1
                for problem in section.problems:
                    if problem.severity == "error":
                        count = report.omitted_problems.get(problem.cause, 0)
                        report.omitted_problems[problem.cause] = count + 1
                continue
            shown += 1
            report.sections.append(section)
        self._lose_pending("the input ended before its last segment")
        return report

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
        info_at = _hdlc_header(raw, block)
        info = frame.information
        if info and (frame.segmented or (self._pending and info[:3] not in LLC_HEADERS)):
            self._hdlc_segment(section, frame, info_at, block, apdu_block)
        elif info:
            self._lose_pending("a new message started before its last segment")
            llc_size = _llc_field(info, info_at, block)
            self.apdu(section, info[llc_size:], info_at + llc_size, apdu_block)
        else:
            name = frame.control_name
            section.outcome = "skipped"
            section.notes.append(
                f"{name}: {_U_FRAMES.get(name, 'link layer frame')}; no information field,"
                " not a push message"
            )
        # The frame's last bytes come right after the APDU, before any decrypted layer.
        trailer = Block("HDLC frame end")
        section.blocks.insert(section.blocks.index(apdu_block) + 1, trailer)
        _fcs_field(raw, len(raw) - 2, trailer)
        if closing:
            trailer.fields.append(Field(len(raw), "7E", "flag", "end of frame"))
        if not apdu_block.fields:
            section.blocks.remove(apdu_block)
        return section

    def _hdlc_segment(
        self, section: Section, frame: HdlcFrame, info_at: int, header: Block, block: Block
    ) -> None:
        """One frame of a segmented message; the last one explains the joined APDU."""
        info = frame.information
        llc_size = _llc_field(info, info_at, header) if not self._pending else 0
        if llc_size:
            self._lose_pending("a new message started before its last segment")
        self._pending.append((frame.raw, section))
        number = len(self._pending)
        what = "continues in the next frame" if frame.segmented else "last segment"
        block.fields.append(
            Field(
                info_at + llc_size,
                _hex(info[llc_size:]),
                f"segment {number}",
                f"{len(info) - llc_size} bytes of the APDU; {what}",
            )
        )
        if frame.segmented:
            section.outcome = "segment"
            section.summary += f" · segment {number}"
            return
        joined = self._joined.get(b"".join(raw for raw, _ in self._pending))
        self._pending = []
        if joined is None:
            section.problems.append(_segments_lost("its segments do not join into one message"))
            return
        section.summary += f" · last of {joined.segments} segments"
        message = Block(f"APDU joined from {joined.segments} segments (offsets in the APDU)")
        section.blocks.insert(section.blocks.index(block) + 1, message)
        apdu = joined.information
        llc = 3 if apdu[:3] in LLC_HEADERS else 0
        self.apdu(section, apdu[llc:], 0, message)
        _joined_note(section, joined.segments)

    def _lose_pending(self, why: str) -> None:
        """Earlier segments (HDLC or M-Bus) whose message never completed."""
        for _, section in self._pending:
            section.outcome = "failed"
            section.problems.append(_segments_lost(why))
        self._pending = []

    # -- M-Bus ------------------------------------------------------------

    def mbus_frame(self, start: int, frame: MbusFrame, index: int) -> Section:
        raw = frame.raw
        section = Section(index, "frame", start, len(raw), summary=frame.kind)
        block = Block("M-Bus frame (offsets from the first start byte)")
        section.blocks.append(block)
        if frame.kind != "long":
            _mbus_short_fields(frame, block)
            section.summary = frame.describe()
            section.outcome = "skipped"
            section.notes.append(f"{frame.describe()}: no DLMS data, not a push message")
            return section
        _mbus_header_fields(raw, block, frame.length_overflow)
        ci = raw[6]
        section.summary = "M-Bus long frame"
        if not frame.is_transport_segment:
            block.fields.append(Field(6, f"{ci:02X}", "CI", "not a DLMS transport segment"))
            block.fields.append(Field(7, _hex(frame.data), "data", f"{len(frame.data)} bytes"))
            section.outcome = "skipped"
            section.notes.append(f"CI 0x{ci:02X}: not DLMS data, not a push message")
        else:
            self._mbus_segment(section, frame, block)
        _mbus_trailer_fields(raw, block)
        return section

    def _mbus_segment(self, section: Section, frame: MbusFrame, block: Block) -> None:
        raw = frame.raw
        ci = raw[6]
        number, last = ci & 0x0F, bool(ci & 0x10)
        end = "; last segment" if last else "; more follow"
        block.fields.append(
            Field(6, f"{ci:02X}", "CI", f"DLMS transport layer: segment {number}{end}")
        )
        if len(frame.data) < 2:
            section.problems.append(_segments_lost("the segment has no transport header"))
            return
        block.fields.append(
            Field(7, _hex(raw[7:9]), "STSAP, DTSAP", f"transport access points {raw[7]}, {raw[8]}")
        )
        block.fields.append(
            Field(9, _hex(frame.data[2:]), f"segment {number}", f"{len(frame.data) - 2} bytes")
        )
        if number == 0:
            self._lose_pending("a new message started before its last segment")
        self._pending.append((raw, section))
        if not last:
            section.outcome = "segment"
            section.summary += f" · DLMS segment {number}"
            return
        count = len(self._pending)
        # The reassembler's message, if these very segments made one (data after STSAP, DTSAP).
        mine = b"".join(frame_raw[9:-2] for frame_raw, _ in self._pending)
        self._pending = []
        message = self._messages[0] if self._messages else None
        if message is None or message.apdu != mine:
            section.problems.append(_segments_lost("its segments do not join into one message"))
            return
        self._messages.popleft()
        section.summary += f" · last of {count} segments"
        joined = Block(f"APDU joined from {count} segments (offsets in the APDU)")
        section.blocks.append(joined)
        apdu = message.apdu
        llc = 3 if apdu[:3] in LLC_HEADERS else 0
        self.apdu(section, apdu[llc:], llc, joined)
        _joined_note(section, count)

    def mbus_damaged(
        self, data: bytes, start: int, end: int, event: Rejected, index: int
    ) -> Section:
        region = data[start:end]
        section = Section(index, "damaged frame", start, len(region), outcome="damaged")
        section.summary = "M-Bus frame damaged on the line"
        block = Block("M-Bus frame as received (offsets from the first start byte)")
        section.blocks.append(block)
        if len(region) >= 7:
            _mbus_header_fields(region, block, False)
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

    # -- APDUs ------------------------------------------------------------

    def bare_apdu(self, data: bytes, index: int) -> Section:
        section = Section(index, "apdu", None, len(data), summary="APDU without link framing")
        block = Block("APDU (offsets from its first byte)")
        section.blocks.append(block)
        base = 0
        if data[:3] in LLC_HEADERS:
            base = _llc_field(data, 0, block)
        self.apdu(section, data[base:], base, block)
        return section

    def apdu(self, section: Section, apdu: bytes, base: int, block: Block) -> None:
        if not apdu:
            section.problems.append(
                Problem("bad_apdu", "the information field is empty", "report this frame")
            )
            return
        tag = apdu[0]
        if tag in _CIPHERED:
            self.ciphered(section, apdu, base, block)
        elif tag == GENERAL_BLOCK_TRANSFER:
            self.block_transfer(section, apdu, base, block)
        elif tag == DATA_NOTIFICATION:
            section.summary += " · data-notification"
            self.notification(section, apdu, base, block, None, None)
        else:
            self._not_push(section, apdu, base, block, tag)

    def block_transfer(self, section: Section, apdu: bytes, base: int, block: Block) -> None:
        """One block of a general-block-transfer; the last explains the joined APDU."""
        section.summary += " · general-block-transfer"
        _block_fields(apdu, base, block)
        try:
            parsed = parse_block(apdu)
        except ApduError as exc:
            section.problems.append(Problem("bad_apdu", str(exc), _REPORT_IT))
            return
        self._block_count += 1
        joined: bytes | None = None
        for event in self._blocks.push(parsed):
            if isinstance(event, bytes):
                joined = event
            elif isinstance(event, Rejected):
                section.problems.append(
                    Problem(
                        "blocks_lost",
                        event.detail,
                        "a block was lost on the line or the meter restarted the transfer",
                    )
                )
                self._block_count = 1
            else:
                section.notes.append(event.what)
        if joined is None:
            if not section.problems:
                section.outcome = "segment"
                section.notes.append(f"block {parsed.number}: the APDU continues in the next block")
            return
        count, self._block_count = self._block_count, 0
        message = Block(f"APDU joined from {count} blocks (offsets in the APDU)")
        section.blocks.append(message)
        if joined[:1] == bytes([GENERAL_BLOCK_TRANSFER]):
            section.problems.append(
                Problem("bad_apdu", "a general-block-transfer inside another one", _REPORT_IT)
            )
            return
        self.apdu(section, joined, 0, message)

    def _not_push(self, section: Section, apdu: bytes, base: int, block: Block, tag: int) -> None:
        name = apdu_name(tag)
        block.fields.append(Field(base, f"{tag:02X}", "APDU tag", name))
        if len(apdu) > 1:
            block.fields.append(
                Field(base + 1, _hex(apdu[1:]), "content", f"{len(apdu) - 1} bytes (not decoded)")
            )
        section.summary += f" · {name}"
        section.outcome = "skipped"
        section.notes.append(
            f"{name}: client/server traffic, not a push message (amsread reads pushes only)"
        )

    def ciphered(self, section: Section, apdu: bytes, base: int, block: Block) -> None:
        section.summary += f" · {apdu_name(apdu[0])}"
        title = _ciphered_header(apdu, base, block, self.secrets)
        try:
            ciphered = parse_ciphered(apdu)
        except ApduError as exc:
            section.problems.append(
                Problem("bad_apdu", f"the ciphered APDU is malformed: {exc}", _REPORT_IT)
            )
            return
        try:
            plain = Decryptor(self.keys).decrypt(ciphered)
        except NoKeyError:
            _tag_field(ciphered, apdu, base, block, "not checked")
            section.problems.append(_no_key(ciphered))
            return
        except AuthenticationError:
            _tag_field(ciphered, apdu, base, block, "MISMATCH", "bad")
            section.problems.append(_auth_failed(self.keys))
            return
        except UnsupportedSecurityError as exc:
            section.problems.append(Problem("unsupported_security", str(exc), _REPORT_IT))
            return
        verdict = {True: "verified", False: "not checked (no --auth-key)", None: ""}
        _tag_field(ciphered, apdu, base, block, verdict[plain.authenticated], "ok")
        if getattr(plain, "keys_swapped", False):
            section.problems.append(_SWAPPED)
        if plain.authenticated is False:
            section.notes.append(
                "the authentication tag was not checked: pass --auth-key to verify it"
            )
        inner = Block(f"Decrypted APDU ({len(plain.apdu)} bytes, offsets from its first byte)")
        section.blocks.append(inner)
        self.decrypted(section, plain.apdu, inner, title, plain.authenticated is True)

    def decrypted(
        self, section: Section, apdu: bytes, block: Block, title: bytes, trusted: bool
    ) -> None:
        if apdu[:1] == bytes([DATA_NOTIFICATION]):
            self.notification(section, apdu, 0, block, title, trusted)
            return
        first = f"0x{apdu[0]:02X}" if apdu else "nothing"
        if trusted and apdu and apdu[0] in APDU_NAMES:
            self._not_push(section, apdu, 0, block, apdu[0])
            return
        block.fields.append(
            Field(0, _hex(apdu), "plaintext", f"{len(apdu)} bytes, starting with {first}", "bad")
        )
        section.problems.append(_wrong_key(f"decryption gave bytes that are no APDU ({first})"))

    # -- data-notification ------------------------------------------------

    def notification(
        self,
        section: Section,
        apdu: bytes,
        base: int,
        block: Block,
        title: bytes | None,
        trusted: bool | None,
    ) -> None:
        """``trusted``: None for plaintext on the line, True/False for a decrypted APDU."""
        body_at = _notification_header(apdu, base, block)
        try:
            notification = parse_data_notification(apdu)
            root = axdr.decode_node(apdu, body_at - base)
        except (ApduError, AxdrError) as exc:
            if trusted is False:
                section.problems.append(
                    _wrong_key(f"the decrypted bytes start like a push but do not parse ({exc})")
                )
            else:
                section.problems.append(
                    Problem("bad_apdu", f"the data-notification does not parse: {exc}", _REPORT_IT)
                )
            return
        # The builder makes the readings exactly as the pipeline does; the tree,
        # decoded from the same bytes, is only for annotating them.
        try:
            message = self.builder.build(notification, title)
        except ApduError as exc:
            section.problems.append(Problem("bad_apdu", str(exc), _REPORT_IT))
            return
        extracted = extract(root.value)
        profile = self._profile(message)
        notes, value_nodes = _annotate(root, extracted, message, profile)
        section.tree = _tree_lines(apdu, root, notes, base)
        section.readings = [ReadingLine(r.obis, r.name, r.value, r.unit) for r in message.readings]
        section.profile = self._profile_info(extracted, title, profile)
        section.outcome = "decoded"
        section.summary += f" → {len(message.readings)} readings"
        self._collect_secrets(message, value_nodes)
        hint = message.extra.get("hint")
        positional = getattr(extracted, "positional", extracted.shape == "positional")
        if hint or (positional and profile is None):
            section.outcome = "failed"
            section.problems.append(_unknown_layout(extracted, str(hint) if hint else None))
        elif any(r.obis is None for r in message.readings):
            section.notes.append(
                "some values have no OBIS code and no profile names them; they keep"
                " 'obis: null' (a profile could name them by position)"
            )

    def _profile(self, message: Message) -> Profile | None:
        return next((p for p in self.profiles.profiles if p.name == message.profile), None)

    def _profile_info(
        self, extracted: Extracted, title: bytes | None, chosen: Profile | None
    ) -> ProfileInfo:
        flag = decode_system_title(title).flag if title else None
        positional = bool(getattr(extracted, "positional", extracted.shape == "positional"))
        candidates = [
            _check_profile(p, extracted, flag, p is chosen, positional)
            for p in self.profiles.profiles
            if bool(getattr(p, "positional", False)) == positional
        ]
        if chosen is None:
            kind = "positional " if positional else ""
            reason = (
                f"no {kind}profile matches: names come from the OBIS codes in the data and"
                " amsread's OBIS table; scalers only as the meter sent them"
            )
            return ProfileInfo(None, "", reason, candidates)
        matching = sum(c.score >= 0 for c in candidates)
        mine = next((c for c in candidates if c.chosen), None)
        met = "; ".join(c for c in mine.checks if c.endswith("✓")) if mine else ""
        score = mine.score if mine else 0
        reason = f"{met or 'it matches'}: {score} {'criterion' if score == 1 else 'criteria'} met"
        if matching > 1:
            reason += f", the most specific of {matching} matching profiles"
        return ProfileInfo(chosen.name, chosen.title, reason, candidates)

    def _collect_secrets(self, message: Message, value_nodes: list[axdr.Node]) -> None:
        for reading, node in zip(message.readings, value_nodes, strict=False):
            if is_identifying(reading.name, reading.obis, reading.value):
                self.secrets.add("meter-id", str(reading.value), node_content(node))

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
        info_at = _hdlc_header(region, block)
        announced = ((region[1] & 0x07) << 8 | region[2]) if len(region) > 2 else 0
        trailer = 2 if closed else 0
        if info_at and info_at < len(region) - trailer:
            self._damaged_info(section, region[info_at : len(region) - trailer], info_at, block)
        if closed and len(region) >= 5:
            where = "" if full else "last 2 bytes before the closing flag"
            _fcs_field(region, len(region) - 2, block, where)
        if flag_after:
            block.fields.append(Field(len(region), "7E", "flag", "end of frame"))
        section.problems.append(_damage_problem(event, announced, between, closed))
        return section

    def _damaged_info(self, section: Section, info: bytes, base: int, block: Block) -> None:
        """Annotate what survives of the information field, to show where bytes went missing."""
        llc = 0
        if info[:3] in LLC_HEADERS:
            llc = _llc_field(info, base, block)
        elif info[:2] in (b"\xe6\xe7", b"\xe6\xe6"):
            block.fields.append(
                Field(base, _hex(info[:2]), "LLC", "only 2 of 3 bytes: the 00 is missing", "bad")
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
        if apdu[:1] and apdu[0] in _CIPHERED:
            _ciphered_header(apdu, base + llc, block, self.secrets)
            _ciphered_length_note(section, apdu)
        elif apdu:
            block.fields.append(
                Field(base + llc, _hex(apdu), "information", f"{len(apdu)} bytes (incomplete)")
            )

    def garbage(self, data: bytes, start: int, end: int, index: int, total: int) -> Section:
        region = data[start:end]
        section = Section(index, "garbage", start, len(region), "garbage")
        section.summary = f"{len(region)} bytes outside any frame"
        section.blocks.append(
            Block(
                "bytes outside any frame",
                [Field(0, _hex(region[:64]), "bytes", _garbage_meaning(region))],
            )
        )
        whole = len(region) == total
        problem = diagnose_garbage(region, at_start=start == 0, whole=whole)
        if whole and self.pasted and problem is not None and problem.cause == "no_frames":
            problem = _not_a_frame(region)
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
        report.problems = _report_problems(report)
        report.verdict, report.ok = _verdict(report)
        if redact:
            report = self.secrets.apply(report)
            report.redacted = True
        return report


def node_content(node: axdr.Node) -> bytes | None:
    """The raw content of a string or number node (what to mask in hex dumps)."""
    value = node.value
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1", "replace")
    if type(value) is int:
        size = node.end - node.content
        return value.to_bytes(size, "big", signed=value < 0) if size else None
    return None


# -- link layer fields ----------------------------------------------------------


def _hdlc_header(raw: bytes, block: Block) -> int:
    """Fields from the opening flag to the HCS; returns the offset of the information field."""
    fields = block.fields
    fields.append(Field(0, "7E", "flag", "start of frame"))
    if len(raw) < 3:
        return 0
    fmt = raw[1] << 8 | raw[2]
    kind = fmt >> 12
    length = fmt & 0x7FF
    segmented = bool(fmt & 0x0800)
    kind_text = "type 3" if kind == 0xA else f"type 0x{kind:X} (DLMS uses type 3, 0xA)"
    fields.append(
        Field(
            1,
            _hex(raw[1:3]),
            "frame format",
            f"{kind_text}; {'segmented' if segmented else 'not segmented'};"
            f" length {length} bytes between the flags",
            "" if kind == 0xA else "bad",
        )
    )
    pos = 3
    for name in ("destination address", "source address"):
        size = _address_size(raw, pos)
        if size == 0:
            fields.append(Field(pos, _hex(raw[pos : pos + 4]), name, "incomplete or invalid"))
            return 0
        address = raw[pos : pos + size]
        fields.append(Field(pos, _hex(address), name, _address_meaning(address)))
        pos += size
    if pos >= len(raw):
        return 0
    fields.append(Field(pos, f"{raw[pos]:02X}", "control", _control_meaning(raw[pos])))
    pos += 1
    if length == pos - 1 + 2:
        return 0  # no information field: the next two bytes are the FCS
    if pos + 2 > len(raw):
        return 0
    computed = crc16_x25(raw[1:pos]).to_bytes(2, "little")
    received = raw[pos : pos + 2]
    fields.append(_check_field(pos, "HCS", "header check", computed, received))
    return pos + 2


def _check_field(offset: int, name: str, what: str, computed: bytes, received: bytes) -> Field:
    if computed == received:
        return Field(offset, _hex(received), name, f"{what}: ok", "ok")
    return Field(
        offset,
        _hex(received),
        name,
        f"{what}: MISMATCH, computed {_spaced(computed)}, received {_spaced(received)}",
        "bad",
    )


def _fcs_field(raw: bytes, at: int, block: Block, where: str = "") -> None:
    computed = crc16_x25(raw[1:at]).to_bytes(2, "little")
    what = "frame check" + (f" ({where})" if where else "")
    block.fields.append(_check_field(at, "FCS", what, computed, raw[at : at + 2]))


def _address_size(raw: bytes, pos: int) -> int:
    """Bytes in the address at ``pos`` (1, 2 or 4); 0 if incomplete or invalid."""
    for size in (1, 2, 3, 4):
        if pos + size > len(raw):
            return 0
        if raw[pos + size - 1] & 0x01:
            return size if size != 3 else 0
    return 0


def _address_meaning(address: bytes) -> str:
    if len(address) == 1:
        return f"{address_value(address)} (1 byte)"
    half = len(address) // 2
    upper = address_value(address[:half])
    lower = address_value(address[half:])
    return f"upper {upper} (logical device), lower {lower} (physical device) ({len(address)} bytes)"


def _control_meaning(control: int) -> str:
    name = control_name(control)
    final = "poll/final bit set" if control & 0x10 else "poll/final bit clear"
    if name == "I":
        sequences = f"send sequence {(control >> 1) & 7}, receive sequence {control >> 5}"
        return f"I-frame (information), {sequences}; {final}"
    if name in ("RR", "RNR", "REJ", "SREJ"):
        return f"{name} (supervisory), receive sequence {control >> 5}; {final}"
    description = _U_FRAMES.get(name)
    return f"{name} ({description}); {final}" if description else f"{name}; {final}"


def _llc_field(information: bytes, base: int, block: Block) -> int:
    header = information[:3]
    if header not in LLC_HEADERS:
        return 0
    direction = "response (meter to client)" if header[1] == 0xE7 else "command (client to meter)"
    block.fields.append(Field(base, _hex(header), "LLC", f"{direction}, quality 00"))
    return 3


# -- M-Bus fields -----------------------------------------------------------------

_MBUS_CONTROL = {
    0x40: "SND_NKE (link reset)",
    0x53: "SND_UD (send user data)",
    0x73: "SND_UD (send user data, FCB set)",
    0x5A: "REQ_UD1",
    0x7A: "REQ_UD1 (FCB set)",
    0x5B: "REQ_UD2",
    0x7B: "REQ_UD2 (FCB set)",
    0x08: "RSP_UD (response with user data)",
    0x18: "RSP_UD",
    0x28: "RSP_UD",
    0x38: "RSP_UD",
}


def _mbus_address(address: int) -> str:
    if address == 0xFE:
        return "254 (test / any device)"
    if address == 0xFF:
        return "255 (broadcast)"
    if address == 0xFD:
        return "253 (secondary addressing)"
    return f"{address} (primary address)"


def _mbus_header_fields(raw: bytes, block: Block, overflow: bool) -> None:
    length = raw[1]
    note = " (+256: this meter sends only the low byte of the length)" if overflow else ""
    fields = block.fields
    fields.append(Field(0, "68", "start", "long frame"))
    fields.append(
        Field(1, _hex(raw[1:3]), "length (twice)", f"{length} bytes from C to the data{note}")
    )
    fields.append(Field(3, "68", "start", "second start byte"))
    if len(raw) > 5:
        control = _MBUS_CONTROL.get(raw[4], f"0x{raw[4]:02X}")
        fields.append(Field(4, f"{raw[4]:02X}", "C (control)", control))
        fields.append(Field(5, f"{raw[5]:02X}", "A (address)", _mbus_address(raw[5])))


def _mbus_trailer_fields(raw: bytes, block: Block) -> None:
    computed = bytes([sum(raw[4:-2]) & 0xFF])
    block.fields.append(_check_field(len(raw) - 2, "CS", "checksum", computed, raw[-2:-1]))
    block.fields.append(Field(len(raw) - 1, "16", "stop", "end of frame"))


def _mbus_short_fields(frame: MbusFrame, block: Block) -> None:
    raw = frame.raw
    if frame.kind == "ack":
        block.fields.append(Field(0, "E5", "acknowledge", "single character"))
        return
    block.fields.append(Field(0, "10", "start", "short frame"))
    control = _MBUS_CONTROL.get(raw[1], f"0x{raw[1]:02X}")
    block.fields.append(Field(1, f"{raw[1]:02X}", "C (control)", control))
    block.fields.append(Field(2, f"{raw[2]:02X}", "A (address)", _mbus_address(raw[2])))
    _mbus_trailer_fields(raw, block)


# -- ciphered APDU fields -------------------------------------------------------


_SECURITY_BITS = (
    (0x10, "authenticated"),
    (0x20, "encrypted"),
)


def _security_meaning(control: int) -> str:
    kinds = [name for bit, name in _SECURITY_BITS if control & bit] or ["no protection"]
    suite = control & 0x0F
    suite_name = "AES-GCM-128" if suite in (0, 1) else "not supported"
    key = "broadcast key" if control & 0x40 else "unicast key"
    compressed = "compressed" if control & 0x80 else "not compressed"
    return (
        f"0x{control:02X}: {' and '.join(kinds)}; suite {suite} ({suite_name}); {key}; {compressed}"
    )


def _ciphered_header(apdu: bytes, base: int, block: Block, secrets: Redactor) -> bytes:
    """Fields from the tag to the invocation counter; returns the system title."""
    fields = block.fields
    fields.append(Field(base, f"{apdu[0]:02X}", "APDU tag", apdu_name(apdu[0])))
    if len(apdu) < 2:
        return b""
    size = apdu[1]
    fields.append(Field(base + 1, f"{size:02X}", "system title length", f"{size} bytes"))
    title = apdu[2 : 2 + size]
    if len(title) < size or size == 0:
        return title
    decoded = decode_system_title(title)
    if decoded.serial is not None:
        secrets.add("serial", str(decoded.serial), decoded.serial_bytes)
    fields.append(Field(base + 2, _hex(title), "system title", decoded.describe()))
    pos = 2 + size
    try:
        length, after = axdr.decode_length(apdu, pos)
    except AxdrError:
        return title
    form = (
        "short form" if after == pos + 1 else f"long form, {_count(after - pos - 1, 'length byte')}"
    )
    fields.append(Field(base + pos, _hex(apdu[pos:after]), "length", f"{length} bytes ({form})"))
    if after < len(apdu):
        control = apdu[after]
        fields.append(
            Field(base + after, f"{control:02X}", "security control", _security_meaning(control))
        )
    counter = apdu[after + 1 : after + 5]
    if len(counter) == 4:
        fields.append(
            Field(
                base + after + 1,
                _hex(counter),
                "invocation counter",
                f"{int.from_bytes(counter, 'big')} (frame counter; IV = system title ‖ this)",
            )
        )
    return title


def _tag_field(
    c: Ciphered, apdu: bytes, base: int, block: Block, verdict: str, status: str = ""
) -> None:
    start = len(apdu) - len(c.payload) - (TAG_SIZE if c.auth_tag else 0)
    name = "ciphertext" if c.encrypted else "APDU (in clear)"
    block.fields.append(Field(base + start, _hex(c.payload), name, f"{len(c.payload)} bytes"))
    if c.auth_tag is not None:
        block.fields.append(
            Field(
                base + len(apdu) - TAG_SIZE,
                _hex(c.auth_tag),
                "authentication tag",
                f"{TAG_SIZE} bytes: {verdict}",
                status,
            )
        )


def _ciphered_length_note(section: Section, apdu: bytes) -> None:
    size = apdu[1] if len(apdu) > 1 else 0
    try:
        length, after = axdr.decode_length(apdu, 2 + size)
    except AxdrError:
        return
    present = len(apdu) - after
    if present < length:
        section.notes.append(
            f"the ciphered APDU announces {length} bytes after its length field;"
            f" {present} arrived before the frame check"
        )


def _block_fields(apdu: bytes, base: int, block: Block) -> None:
    fields = block.fields
    fields.append(Field(base, "E0", "APDU tag", "general-block-transfer"))
    if len(apdu) < 6:
        return
    control = apdu[1]
    last = "last block" if control & 0x80 else "more blocks follow"
    streaming = "streaming" if control & 0x40 else "not streaming"
    fields.append(
        Field(
            base + 1,
            f"{control:02X}",
            "block control",
            f"{last}; {streaming}; window {control & 0x3F}",
        )
    )
    fields.append(
        Field(base + 2, _hex(apdu[2:4]), "block number", str(int.from_bytes(apdu[2:4], "big")))
    )
    fields.append(
        Field(base + 4, _hex(apdu[4:6]), "acknowledged", str(int.from_bytes(apdu[4:6], "big")))
    )
    try:
        length, after = axdr.decode_length(apdu, 6)
    except AxdrError:
        return
    fields.append(Field(base + 6, _hex(apdu[6:after]), "length", f"{length} bytes"))
    fields.append(
        Field(base + after, _hex(apdu[after:]), "block data", f"{len(apdu) - after} bytes")
    )


# -- data-notification fields ---------------------------------------------------


def _notification_header(apdu: bytes, base: int, block: Block) -> int:
    """Fields of the data-notification header; returns the body's offset (with ``base``)."""
    fields = block.fields
    fields.append(Field(base, "0F", "APDU tag", "data-notification"))
    invoke = apdu[1:5]
    if len(invoke) == 4:
        fields.append(Field(base + 1, _hex(invoke), "invoke id, priority", _invoke_meaning(invoke)))
    marker = apdu[5] if len(apdu) > 5 else None
    if marker == 0x00:
        fields.append(Field(base + 5, "00", "date-time", "absent"))
        return base + 6
    if marker == 0x0C:
        raw = apdu[6:18]
        fields.append(Field(base + 5, _hex(apdu[5:18]), "date-time", _datetime_meaning(raw)))
        return base + 18
    if marker == 0x09 and apdu[6:7] == b"\x0c":
        raw = apdu[7:19]
        fields.append(
            Field(
                base + 5,
                _hex(apdu[5:19]),
                "date-time",
                _datetime_meaning(raw) + " (as octet-string)",
            )
        )
        return base + 19
    return base + 6


def _invoke_meaning(raw: bytes) -> str:
    value = int.from_bytes(raw, "big")
    priority = "high" if value & 0x80000000 else "normal"
    service = "confirmed" if value & 0x40000000 else "unconfirmed"
    return f"invoke id {value & 0xFFFFFF}; priority {priority}; {service}"


def _datetime_meaning(raw: bytes) -> str:
    iso = cosem_datetime_iso(raw)
    if iso is None:
        return f"{len(raw)} bytes, not a valid date-time"
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    offset = "deviation not specified" if deviation == -0x8000 else f"deviation {deviation} min"
    return f"{iso}; {offset}; clock status 0x{raw[11]:02X}" if len(raw) == 12 else iso


# -- the A-XDR tree -------------------------------------------------------------


def _tree_lines(apdu: bytes, root: axdr.Node, notes: dict[int, str], base: int) -> list[TreeLine]:
    lines: list[TreeLine] = []
    stack: list[tuple[axdr.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if len(lines) >= MAX_TREE_LINES:
            lines.append(TreeLine(node.start + base, depth, "", "…", "more values not shown"))
            break
        end = (
            node.content if node.children or node.tag in (axdr.STRUCTURE, axdr.ARRAY) else node.end
        )
        lines.append(
            TreeLine(
                node.start + base,
                depth,
                _hex(apdu[node.start : end]),
                node.type_name,
                _value_text(node),
                notes.get(id(node), ""),
            )
        )
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return lines


def _value_text(node: axdr.Node) -> str:
    value = node.value
    if node.tag in (axdr.STRUCTURE, axdr.ARRAY):
        return f"{len(node.children)} elements"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, axdr.Enum) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return _bytes_text(value)
    return str(value)


def _bytes_text(value: bytes) -> str:
    if len(value) == 12 and looks_like_datetime(value):
        return str(cosem_datetime_iso(value))
    if len(value) == OBIS_SIZE and value[5] == 0xFF:
        return format_obis(value)
    if value and all(0x20 <= b < 0x7F for b in value):
        return json.dumps(value.decode("ascii"))
    shown = _spaced(value[:16])
    return shown + (f" … ({len(value)} bytes)" if len(value) > 16 else "")


def _obis_note(code: bytes) -> str:
    name = describe(code)[0]
    return f"OBIS code: {name}" if name else "OBIS code (not in amsread's table)"


def _scaler_unit_note(scaler: int, unit_code: int | None) -> str:
    unit = unit_symbol(unit_code) if unit_code is not None else None
    return f"scaler {scaler}, unit {unit_code} ({unit or 'none'})"


def _annotate(
    root: axdr.Node, extracted: Extracted, message: Message, profile: Profile | None
) -> tuple[dict[int, str], list[axdr.Node]]:
    """Notes for tree nodes (by ``id``), and the value node of each reading, in order.

    OBIS codes and {scaler, unit} structures are named wherever they are;
    each item's value node is found by its path in the tree (``Item.path``),
    and readings pair with the items that have a value, in order.
    """
    notes: dict[int, str] = {}
    nodes = _all_nodes(root)
    for node in nodes:
        note = _generic_note(node)
        if note:
            notes[id(node)] = note
    time_path = getattr(extracted, "leading_time_path", None)
    time_node = _node_at(root, time_path) if time_path is not None else None
    if time_node is None and extracted.leading_time is not None:
        time_node = next((n for n in nodes if n.value is extracted.leading_time), None)
    if time_node is not None and extracted.leading_time is not None:
        notes[id(time_node)] = f"meter time {cosem_datetime_iso(extracted.leading_time)}"
    value_nodes: list[axdr.Node] = []
    readings = iter(message.readings)
    for index, item in enumerate(extracted.items):
        if item.value is None:
            continue
        reading = next(readings, None)
        found = _item_node(root, nodes, item)
        if reading is None or found is None:
            break
        value_nodes.append(found)
        notes[id(found)] = _value_note(item, found, reading, profile, extracted, index)
    return notes, value_nodes


def _all_nodes(root: axdr.Node) -> list[axdr.Node]:
    out = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def _node_at(root: axdr.Node, path: tuple[int, ...]) -> axdr.Node | None:
    node = root
    for i in path:
        if i >= len(node.children):
            return None
        node = node.children[i]
    return node


def _item_node(root: axdr.Node, nodes: list[axdr.Node], item: Item) -> axdr.Node | None:
    path = getattr(item, "path", None)
    if path is not None:
        node = _node_at(root, path)
        if node is not None and node.value is item.value:
            return node
    # The value is the very object in the tree (a string or number as sent).
    return next((n for n in nodes if n.value is item.value), None)


def _generic_note(node: axdr.Node) -> str:
    value = node.value
    if type(value) is bytes and len(value) == OBIS_SIZE and value[0] <= MAX_OBIS_A:
        return _obis_note(value)
    if (
        isinstance(value, axdr.Structure)
        and len(value) == 2
        and type(value[0]) is int
        and isinstance(value[1], axdr.Enum)
    ):
        return _scaler_unit_note(value[0], int(value[1]))
    return ""


def _value_note(
    item: Item,
    node: axdr.Node,
    reading: Reading,
    profile: Profile | None,
    extracted: Extracted,
    index: int,
) -> str:
    parts = []
    if item.obis is None:
        if reading.obis is None:
            parts.append("sent without OBIS code; no profile names it")
        elif index == getattr(extracted, "list_id_index", 0) and extracted.list_id is not None:
            by = f" by profile {profile.name}" if profile else ""
            parts.append(f"list version, {reading.obis}{by}")
        else:
            by = f"profile {profile.name}" if profile else "a profile"
            parts.append(f"{reading.obis} by position {index + 1} in {by}")
    # Next to its OBIS code the value needs no name; elsewhere (positions, capture lists) it does.
    if reading.name and (item.obis is None or extracted.shape == "capture-object list"):
        parts.append(reading.name)
    shown = f"{reading.value}" + (f" {reading.unit}" if reading.unit else "")
    scaling = _scaling(item, node.value, reading, profile)
    parts.append(f"{scaling} = {shown}" if scaling else f"= {shown}")
    return "; ".join(parts)


def _scaling(item: Item, raw: object, reading: Reading, profile: Profile | None) -> str:
    """``× 10^-2 (sent by the meter)`` when a scaler changed the value, else ""."""
    if item.scaler:
        return f"× 10^{item.scaler} (sent by the meter)"
    value = reading.value
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float) or value == raw:
        if profile is None or reading.obis is None or not isinstance(value, float):
            return ""
        # 0 scaled is still 0: the profile's rule says what was applied.
        rule = profile.implied_for(parse_obis(reading.obis))
        scaler = getattr(rule, "scaler", None)
        return f"× 10^{scaler} ({_rule_origin(profile)})" if scaler else ""
    ratio = value / raw if raw else 0
    exponent = round(math.log10(abs(ratio))) if ratio else 0
    factor = f"10^{exponent}" if ratio and math.isclose(ratio, 10.0**exponent) else f"{ratio:g}"
    return f"× {factor} ({_rule_origin(profile)})"


def _rule_origin(profile: Profile | None) -> str:
    return f"implied by profile {profile.name}" if profile else "implied"


# -- profiles -------------------------------------------------------------------


def _check_profile(
    profile: Profile, extracted: Extracted, flag: str | None, chosen: bool, positional: bool
) -> ProfileCheck:
    criteria: list[tuple[str, tuple[object, ...], object]] = [
        ("list_id", profile.list_ids, extracted.list_id),
        ("manufacturer", profile.manufacturers, flag),
    ]
    if not positional:
        criteria.insert(1, ("items", profile.items, extracted.count))
    checks = []
    score = 0
    failed = False
    for label, wanted, actual in criteria:
        if not wanted:
            continue
        shown = json.dumps(actual) if isinstance(actual, str) else str(actual)
        if actual in wanted:
            checks.append(f"{label} {shown} ✓")
            score += 1
        else:
            want = ", ".join(json.dumps(w) if isinstance(w, str) else str(w) for w in wanted)
            checks.append(f"{label} {shown} ✗ (wants {want})")
            failed = True
    if positional:
        sizes = sorted({len(getattr(layout, "positions", ())) for layout in profile.layouts})
        fits = extracted.count in sizes
        mark = "✓" if fits else f"✗ (layouts of {', '.join(map(str, sizes))})"
        checks.append(f"values {extracted.count} {mark}")
        score += fits
        failed = failed or not fits
    if not checks:
        failed = True  # a profile without criteria never matches on its own
    return ProfileCheck(profile.name, profile.origin, checks, -1 if failed else score, chosen)


# -- problems and their next steps --------------------------------------------


_REPORT_IT = "please open an issue with this output (use --redact to hide the meter's identity)"

_SWAPPED = Problem(
    "keys_swapped",
    "the tag verified only with --key and --auth-key exchanged",
    "swap the two keys: --key is the encryption key (GUEK), --auth-key the"
    " authentication key (GAK)",
    "warning",
)


def _no_key(c: Ciphered) -> Problem:
    needs = "--key (the encryption key, GUEK)"
    if c.authenticated:
        needs += " and --auth-key (the authentication key, GAK) to verify the tag"
    return Problem(
        "no_key",
        f"the APDU is encrypted (security control 0x{c.security_control:02X}) and no key was given",
        f"pass {needs}: 32 hex digits each, from your grid operator",
    )


def _auth_failed(keys: Keys) -> Problem:
    return Problem(
        "auth_failed",
        "the authentication tag does not match: a key is wrong, or the frame was damaged",
        "run 'amsread check-key' with the same frame and keys: it tells which key is wrong"
        + ("" if keys.authentication else " (and pass --auth-key)"),
    )


def _wrong_key(why: str) -> Problem:
    return Problem(
        "wrong_key",
        f"{why}: the encryption key is wrong, or the frame is damaged",
        "check the key with 'amsread check-key'; it must be the encryption key (GUEK)"
        " for exactly this meter",
    )


def _joined_note(section: Section, parts: int) -> None:
    if any(p.cause == "bad_apdu" for p in section.problems):
        section.notes.append(
            f"the APDU was joined from {parts} segments: a segment lost on the line (the"
            " link layer cannot always tell) gives exactly this kind of malformed APDU"
        )


def _not_a_frame(data: bytes) -> Problem:
    return Problem(
        "not_a_frame",
        f"the hex is no HDLC frame (7E A…), M-Bus frame (68 L L 68) or push APDU (0F, DB,"
        f" DC, E0); it starts with {data[:1].hex().upper() or 'nothing'}",
        "paste the bytes exactly as read from the meter, from the first 7E; bytes that"
        " came out of a decryption tool mean the key was wrong",
    )


def _segments_lost(why: str) -> Problem:
    return Problem(
        "segments_lost",
        f"part of a message split over several frames: {why}",
        "a frame in between was lost or damaged on the line; check the connection",
    )


def _unknown_layout(extracted: Extracted, hint: str | None) -> Problem:
    return Problem(
        "unknown_layout",
        f"the list has {extracted.count} values but no OBIS codes, and no profile names"
        " them by position",
        hint
        or "write a profile with one [[position]] entry (OBIS code, scaler, unit) per value,"
        " in order, and pass it with --profile"
        " (see amsread/readings/data/profiles/ for the format)",
    )


def _damage_problem(event: Rejected, announced: int, between: int, closed: bool) -> Problem:
    missing = announced - between
    lost = "bytes lost on the line; check the IR head's alignment and the baud rate"
    if event.reason == "truncated" and not closed:
        return Problem(
            "truncated",
            f"{_count(missing, 'byte')} missing at the end: the input stops inside the frame"
            f" ({between} of the {announced} bytes its length field announces, no closing flag)",
            "copy the complete frame (a log or capture that stops early cuts the last frame);"
            " if it came from the line, " + lost,
        )
    if missing > 0:
        where = "header checksum mismatch; " if event.reason == "bad_hcs" else ""
        return Problem(
            "truncated",
            f"{where}{_count(missing, 'byte')} missing: the frame has {between} of the {announced}"
            " bytes its length field announces",
            lost,
        )
    if event.reason == "bad_hcs":
        return Problem(
            "bad_hcs",
            "header checksum mismatch: the frame header was damaged on the line",
            "occasional damage is normal; if frequent, check the cable or IR head and that the"
            " port is 8N1 (8E1 for M-Bus)",
        )
    return Problem(
        "bad_fcs",
        f"{event.detail or 'frame checksum mismatch'}: bytes were changed on the line",
        "occasional damage is normal; if frequent, check the cable or IR head and the serial"
        " settings (8N1; 8E1 for M-Bus)",
    )


# -- garbage: what serial problem it points to --------------------------------------

#: Bytes made of at most two runs of equal bits: what a too-fast port samples.
_RUN_BYTES = frozenset(
    b for b in range(256) if sum(1 for i in range(7) if (b >> i & 1) != (b >> (i + 1) & 1)) <= 1
)


def _garbage_meaning(region: bytes) -> str:
    shown = f"first 64 of {len(region)} bytes" if len(region) > 64 else f"{len(region)} bytes"
    return f"{shown}; belong to no valid frame"


def diagnose_garbage(region: bytes, *, at_start: bool, whole: bool) -> Problem | None:
    """Name the likely cause of bytes outside frames; None for a harmless partial frame."""
    settings = "the serial settings (2400 or 9600 baud, 8N1; M-Bus adapters 2400 8E1)"
    text = region.lstrip(b"\r\n")
    printable = sum(0x20 <= b < 0x7F or b in (0x0A, 0x0D) for b in region)
    mostly_text = printable > 0.8 * len(region)
    if mostly_text and (text[:1] == b"/" or b"1-0:" in region):
        return Problem(
            "text_telegram",
            "this is a text telegram (DSMR P1 / IEC 62056-21), not DLMS binary push data",
            "amsread reads DLMS/COSEM push messages (HDLC); use a DSMR reader for this meter",
        )
    if len(region) >= 4 and region[0] == 0x68 and region[3] == 0x68 and region[1] == region[2]:
        return Problem(
            "mbus_frames",
            "the bytes look like M-Bus long frames (68 L L 68), not HDLC",
            "this version of explain reads HDLC; 'amsread decode' reads M-Bus if your version"
            " supports it",
        )
    if len(region) >= 16 and max(region) < 0x80:
        hint = ""
        if b"\x7e\x20" in region or b"\x7e\x28" in region:
            hint = " (7E 20 … where frames start 7E A0 …)"
        return Problem(
            "seven_bits",
            f"every byte has its top bit cleared{hint}: the port reads 7 data bits",
            "set the port to 8 data bits: 8N1 (M-Bus adapters 8E1)",
        )
    if len(region) >= 16 and sum(b in _RUN_BYTES for b in region) > 0.7 * len(region):
        return Problem(
            "baud_rate",
            "the bytes are runs of 0 and 1 bits (00, FF, F0, 80…): the port samples faster"
            " than the meter sends",
            "lower the baud rate (meters push at 2400 or 9600 baud, some at 115200)",
        )
    if whole:
        return Problem(
            "no_frames",
            f"no HDLC frame in {len(region)} bytes: wrong baud rate or parity, an inverted"
            " signal, or not a DLMS/HDLC meter",
            f"check {settings} and the IR head's position",
        )
    if at_start and len(region) <= 2048:
        return None
    return Problem(
        "garbage",
        f"{len(region)} bytes between frames belong to no frame: noise, or a frame damaged"
        " beyond recognition",
        f"occasional noise is normal; if frequent, check the wiring or IR head and {settings}",
    )


# -- report summary ---------------------------------------------------------------


def _report_problems(report: Report) -> list[Problem]:
    frames = [s for s in report.sections if s.kind in ("frame", "apdu")]
    if frames and all(s.outcome == "skipped" for s in frames):
        kinds = list(dict.fromkeys(_short_kind(s.summary) for s in frames))
        return [
            Problem(
                "not_push",
                f"no push messages: {len(frames)} valid frames of client/server traffic"
                f" ({', '.join(kinds)})",
                "amsread reads the push messages a meter sends by itself; this is a client"
                " talking to the meter. Check that the meter's push interface is enabled"
                " (ask the grid operator) and that you read the right port",
            )
        ]
    return []


def _short_kind(summary: str) -> str:
    parts = [p.strip() for p in summary.split("·")]
    last = parts[-1]
    if last.startswith("HDLC "):
        return last[5:]
    return last.split(" (")[0]


def _verdict(report: Report) -> tuple[str, bool]:
    units = [s for s in report.sections if s.kind in ("frame", "apdu")]
    damaged = sum(s.kind == "damaged frame" for s in report.sections)
    messages = [s for s in units if s.outcome != "segment"]
    omitted = sum(n for outcome, n in report.omitted.items() if outcome != "segment")
    decoded = sum(s.outcome == "decoded" for s in messages) + report.omitted.get("decoded", 0)
    total = len(messages) + damaged + omitted
    if not total:
        return "nothing to explain: no frame found", False
    errors = [p for s in report.sections for p in s.problems if p.severity == "error"]
    errors += report.problems
    split = len(messages) < len(units)
    what = "APDUs" if units and units[0].kind == "apdu" else "messages" if split else "frames"
    verdict = f"decoded {decoded} of {total} {what}"
    if split:
        verdict += f" ({len(units) + damaged} frames)"
    causes = Counter(p.cause for p in errors)
    causes.update(report.omitted_problems)
    if causes:
        verdict += "; problems: " + ", ".join(f"{n}× {c}" for c, n in causes.most_common())
    return verdict, decoded == total and not causes


# -- locating framer events in the input -------------------------------------------


_LinkEvent = HdlcFrame | MbusFrame | Rejected


def _framer_events(framer: HdlcFramer | MbusFramer, data: bytes) -> list[_LinkEvent]:
    return [*framer.feed(data), *framer.close()]


def _frames(events: list[_LinkEvent]) -> int:
    return sum(isinstance(e, HdlcFrame) for e in events)


def _long_frames(events: list[_LinkEvent]) -> int:
    return sum(isinstance(e, MbusFrame) and e.kind == "long" for e in events)


def _hdlc_joined(data: bytes) -> dict[bytes, HdlcFrame]:
    """Segmented messages as the reassembler joins them, by the bytes of their frames."""
    reassembler = HdlcReassembler()
    events = [*reassembler.feed(data), *reassembler.close()]
    return {e.raw: e for e in events if isinstance(e, HdlcFrame) and e.segments > 1}


def _mbus_messages(data: bytes) -> list[MbusMessage]:
    reassembler = MbusReassembler()
    events = [*reassembler.feed(data), *reassembler.close()]
    return [e for e in events if isinstance(e, MbusMessage)]


def _locate(data: bytes, events: list[_LinkEvent]) -> list[tuple[int, int, _LinkEvent]]:
    """(start, end, event) for each event, in input order.

    The framer reports events in order and each covers a contiguous run of
    the input; flags between frames belong to no event.
    """
    out = []
    cursor = 0
    for event in events:
        if isinstance(event, Rejected):
            needle, size = event.data, event.size
        else:
            needle, size = event.raw, len(event.raw)
        start = data.find(needle, cursor) if needle else cursor
        if start < 0:
            start = cursor
        end = min(start + size, len(data))
        out.append((start, end, event))
        cursor = end
    return out


# -- small helpers ------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _hex(data: bytes) -> str:
    return data.hex().upper()


def _spaced(data: bytes) -> str:
    return data.hex(" ").upper()


# -- rendering -----------------------------------------------------------------------

_COLORS = {"ok": "32", "bad": "31", "head": "1", "error": "31;1", "warning": "33", "dim": "2"}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not text:
            return text
        return f"\x1b[{_COLORS[style]}m{text}\x1b[0m"


def render_text(report: Report, color: bool = False) -> str:
    """The report as plain text (ANSI colours only if ``color``)."""
    paint = _Painter(color)
    out = [paint(f"amsread explain: {report.source}, {report.size} bytes", "head")]
    if report.redacted:
        out.append("(redacted: meter serials and ids replaced by placeholders, keys never shown)")
    out.append(paint(f"Result: {report.verdict}", "ok" if report.ok else "error"))
    for problem in report.problems:
        out.extend(_problem_lines(problem, paint, "  "))
    for section in report.sections:
        out.append("")
        out.extend(_section_lines(section, paint))
    if report.omitted:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(report.omitted.items()))
        out.append("")
        out.append(
            f"… {sum(report.omitted.values())} more frames not shown ({counts});"
            " use --limit 0 to show all"
        )
    return "\n".join(out) + "\n"


def _section_lines(section: Section, paint: _Painter) -> list[str]:
    where = "" if section.offset is None else f" at byte {section.offset}"
    label = "APDU" if section.kind == "apdu" else section.kind.capitalize()
    head = f"{label} {section.index}{where}, {section.size} bytes: {section.summary}"
    lines = [paint(f"── {head}", "head")]
    for block in section.blocks:
        lines.append(f"  {block.title}")
        lines.extend(_field_line(f, paint) for f in block.fields)
    if section.tree:
        lines.append("  Data (A-XDR; offsets in the APDU)")
        lines.extend(_tree_line(t) for t in section.tree)
    if section.readings:
        lines.append(f"  Readings ({len(section.readings)})")
        lines.extend(_reading_lines(section.readings))
    if section.profile is not None:
        lines.extend(_profile_lines(section.profile))
    for note in section.notes:
        lines.append(f"  note: {note}")
    for problem in section.problems:
        lines.extend(_problem_lines(problem, paint, "  "))
    return lines


def _short_hex(text: str, shown: int = HEX_SHOWN) -> str:
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    if len(pairs) <= shown:
        return " ".join(pairs)
    return " ".join(pairs[: shown - 1]) + " …"


def _field_line(f: Field, paint: _Painter) -> str:
    meaning = paint(f.meaning, f.status) if f.status == "bad" else f.meaning
    return f"  {f.offset:>6}  {_short_hex(f.hex):<24} {f.name:<21} {meaning}".rstrip()


def _tree_line(t: TreeLine) -> str:
    indent = "  " * t.depth
    text = f"  {t.offset:>6}  {_short_hex(t.hex):<24} {indent}{t.type} {t.value}"
    return f"{text}  — {t.note}" if t.note else text


def _reading_lines(readings: list[ReadingLine]) -> list[str]:
    width = max(len(r.obis or "-") for r in readings)
    name_width = max(len(r.name or "-") for r in readings)
    lines = []
    for r in readings:
        value = "null" if r.value is None else str(r.value)
        unit = f" {r.unit}" if r.unit else ""
        lines.append(f"    {r.obis or '-':<{width}}  {r.name or '-':<{name_width}}  {value}{unit}")
    return lines


def _profile_lines(info: ProfileInfo) -> list[str]:
    if info.chosen is None:
        lines = [f"  Profile: none. {info.reason}"]
    else:
        lines = [f"  Profile: {info.chosen} ({info.title})", f"    why: {info.reason}"]
    for c in info.candidates:
        checks = "; ".join(c.checks) or "no criteria"
        mark = " (chosen)" if c.chosen else (" (does not match)" if c.score < 0 else "")
        lines.append(f"    {c.name}: {checks}{mark} [{c.origin}]")
    return lines


def _problem_lines(problem: Problem, paint: _Painter, indent: str) -> list[str]:
    label = "problem" if problem.severity == "error" else "warning"
    return [
        indent + paint(f"{label} ({problem.cause}): {problem.summary}", problem.severity),
        f"{indent}  next step: {problem.next_step}",
    ]


def render_json(report: Report) -> str:
    """The same report as one JSON document."""
    return json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2) + "\n"
