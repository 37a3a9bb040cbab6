"""``explain`` for DSMR P1 text telegrams, plain or inside general-glo-ciphering (Smarty).

The DSMR framer runs on the whole input, as the pipeline's; each telegram
becomes a section with its identification line, every data line annotated
(code, name, value, unit, and what ``data/dsmr.toml`` says of the code), the
CRC computed and received, and the readings the parser makes of it. A
rejected telegram says why (bad CRC, cut short, a CRC missing); bytes outside
telegrams are checked for a telegram sent with 7 data bits and parity.
"""

from __future__ import annotations

from amsread.diagnose.explain.fields import ciphered_header, tag_field
from amsread.diagnose.explain.model import Block, Field, Problem, ReadingLine, Report, Section
from amsread.diagnose.explain.model import upper_hex as _hex
from amsread.diagnose.explain.problems import (
    REPORT_IT,
    auth_failed_problem,
    decrypt_failed_problem,
    no_key_problem,
)
from amsread.diagnose.redact import IDENTIFYING_NAMES, Redactor
from amsread.dlms.ciphering import Ciphered, Decryptor, open_ciphered, parse_ciphered
from amsread.dlms.keys import Keys
from amsread.errors import (
    ApduError,
    AuthenticationError,
    DecodeError,
    NoKeyError,
    UnsupportedSecurityError,
)
from amsread.link.dsmr import (
    DSMR_LINE,
    CipheredTelegram,
    DsmrEvent,
    DsmrFramer,
    Telegram,
    crc16_arc,
)
from amsread.model import Reading, Rejected
from amsread.readings.dsmr import Code, TelegramParser, describe_code, expected_units
from amsread.readings.manufacturers import manufacturer_name
from amsread.readings.telegrams import inner_telegram

#: What each ``kind`` of data/dsmr.toml means, as said next to a line.
KIND_MEANINGS = {
    "text": "text, kept as sent",
    "hex_text": "hex-encoded text, decoded when printable",
    "timestamp": "a time YYMMDDhhmmssX (X: S summer +02:00, W winter +01:00)",
    "failure_log": "the power failure log: a count, then (end)(duration) pairs",
    "legacy_gas": "DSMR 2.2/3 gas: (time)(status)(period)(count)(code)(unit)(value)",
}
#: Readings that name a meter or a sub-meter: replaced under --redact.
_IDENTIFYING = IDENTIFYING_NAMES | {"mbus_device_id"}
_SETTINGS = "115200 8N1 (DSMR 2.2 and 3: 9600 7E1)"
_DAMAGED_NEXT = (
    f"occasional damage is normal; if frequent, check the P1 cable and that the port is {_SETTINGS}"
)
_LOST_NEXT = (
    "bytes were lost on the line: check the P1 cable and its data-request line (it must be"
    f" powered), that the port is {_SETTINGS}, and that the reader keeps up"
)
#: Bytes with the top bit cleared: a telegram sent with 7 data bits and parity, read as 8.
_SEVEN_BITS = bytes(b & 0x7F for b in range(256))


def telegram_framing(data: bytes, binary_frames: int) -> bool:
    """True when the input reads better as DSMR telegrams than as ``binary_frames`` frames."""
    events = _events(data)
    text = sum(isinstance(e, Telegram) or _is_text_rejection(e) for e in events)
    if text:
        return text > binary_frames
    if binary_frames:
        return False
    return _ciphered_stream(events) or _parity_telegram(data)


def _events(data: bytes) -> list[DsmrEvent]:
    framer = DsmrFramer()
    return [*framer.feed(data), *framer.close()]


def _is_text_rejection(event: DsmrEvent) -> bool:
    """A rejected telegram that reads as text (a ``/`` in binary data starts none)."""
    if not isinstance(event, Rejected) or event.reason == "garbage" or event.data[:1] != b"/":
        return False
    return b"\n" in event.data and all(0x20 <= b < 0x7F or b in b"\r\n" for b in event.data)


def _ciphered_stream(events: list[DsmrEvent]) -> bool:
    """Ciphered telegrams from the input's first byte, or back to back.

    The APDU of an HDLC or M-Bus frame (DB 08 …) reads as a ciphered telegram
    too, but behind a frame header, one per frame.
    """
    ciphered = [e for e in events if isinstance(e, CipheredTelegram)]
    starts = {e.offset for e in ciphered}
    return any(e.offset == 0 or e.offset + len(e.raw) in starts for e in ciphered)


def _parity_telegram(region: bytes) -> bool:
    """Bytes that are a telegram once the top bit of each is cleared (7E1 read as 8N1)."""
    if max(region, default=0) < 0x80:
        return False
    text = region.translate(_SEVEN_BITS)
    return b"/" in text and b"!" in text and DSMR_LINE.search(text) is not None


class TelegramExplainer:
    """Explains the telegrams of one input; keys and the redactor are explain's own."""

    def __init__(self, keys: Keys, secrets: Redactor) -> None:
        self.keys = keys
        self.secrets = secrets
        self.parser = TelegramParser()

    def stream(self, data: bytes, report: Report, limit: int) -> Report:
        """Fill ``report`` with a section per telegram, rejection and run of garbage."""
        for event in _events(data):
            section = self._section(data, event, len(report.sections) + 1)
            report.add(section, limit)
        return report

    def _section(self, data: bytes, event: DsmrEvent, index: int) -> Section:
        if isinstance(event, Telegram):
            section = Section(index, "frame", event.offset, len(event.raw), summary="")
            block = Block("DSMR P1 telegram (offsets from the '/')")
            section.blocks.append(block)
            self.telegram(section, event, block)
            return section
        if isinstance(event, CipheredTelegram):
            return self.ciphered(event, index)
        region = data[event.offset : event.offset + event.size]
        if event.reason == "garbage":
            return self.garbage(region, event.offset, index, whole=len(region) == len(data))
        return self.damaged(region, event, index, at_end=event.offset + event.size == len(data))

    # -- one telegram --------------------------------------------------------

    def telegram(self, section: Section, telegram: Telegram, block: Block) -> None:
        """Annotate a whole telegram (its CRC matched, or it sends none) and read it."""
        raw = telegram.raw
        lines = _lines(raw)
        ident = lines[0][1]
        section.summary = "DSMR P1 telegram · " + ident.decode("ascii", "replace")[1:]
        block.fields.append(_ident_field(ident))
        media: dict[int, str] = {}
        unknown = 0
        for offset, line in lines[1:]:
            if line.startswith(b"!"):
                block.fields.append(_crc_field(raw, offset, telegram.crc))
                continue
            text = line.decode("ascii", "replace")
            reading = self.parser.line_reading(text, media)
            code = describe_code(text[: text.find("(")]) if "(" in text else None
            unknown += code is None
            block.fields.append(self._line_field(offset, line, code, reading, media))
        try:
            message = self.parser.parse(raw)
        except DecodeError as exc:
            section.outcome = "failed"
            section.problems.append(Problem(exc.reason, str(exc), REPORT_IT))
            return
        section.outcome = "decoded"
        section.readings = [_reading_line(r) for r in message.readings]
        if telegram.crc is None:
            section.notes.append(
                "no CRC: DSMR 2.2 and 3 send none, so only the shape of the lines shows damage"
            )
        if unknown:
            section.problems.append(
                Problem(
                    "unknown_line",
                    f"{unknown} line{'s' if unknown > 1 else ''} with no OBIS code:"
                    " output with their raw text (never dropped)",
                    "if the meter's manual names them, " + REPORT_IT,
                    "warning",
                )
            )

    def _line_field(
        self,
        offset: int,
        line: bytes,
        code: Code | None,
        reading: Reading | None,
        media: dict[int, str],
    ) -> Field:
        text = line.decode("ascii", "replace")
        if code is None or reading is None:
            return Field(offset, _hex(line), "?", f"no OBIS code: kept as text {text!r}", "bad")
        value = reading.value
        if reading.name in _IDENTIFYING and isinstance(value, str):
            kind = "meter-id" if reading.name != "mbus_device_id" else "device-id"
            self.secrets.add(kind, value, value.encode("ascii", "replace"))
            raw_value = text[text.find("(") + 1 : text.rfind(")")]
            if raw_value != value:  # the hex of a hex-coded id identifies the meter as well
                self.secrets.add(kind, raw_value, raw_value.encode("ascii"))
        shown = _value_text(value) + (f" {reading.unit}" if reading.unit else "")
        if reading.name == "mbus_device_type" and code.channel in media:
            shown += f" ({media[code.channel].removesuffix('_delivered').replace('_', ' ')})"
        if reading.captured_at is not None:
            shown += f" (captured {reading.captured_at})"
        meaning = f"{reading.name or '(no name)'} = {shown}; {_definition(code, reading)}"
        units = expected_units(code.obis)
        if units and reading.unit not in units:
            sent = f"unit {reading.unit}" if reading.unit else "no unit"
            meaning += f"; {sent} where the specifications give {' or '.join(units)}"
            return Field(offset, _hex(line), text[: text.find("(")], meaning, "bad")
        return Field(offset, _hex(line), text[: text.find("(")], meaning)

    # -- ciphered (Smarty, Austrian P1) ---------------------------------------

    def ciphered(self, event: CipheredTelegram, index: int) -> Section:
        raw = event.raw
        section = Section(index, "frame", event.offset, len(raw), summary="DSMR P1 telegram")
        section.summary += ", ciphered (general-glo-ciphering)"
        block = Block("Ciphered telegram (offsets from the DB tag)")
        section.blocks.append(block)
        ciphered_header(raw, 0, block, self.secrets)
        try:
            ciphered = parse_ciphered(raw)
        except ApduError as exc:
            problem = Problem("bad_apdu", f"the ciphered telegram is malformed: {exc}", REPORT_IT)
            section.problems.append(problem)
            return section
        try:
            plain, verdict = self._open(ciphered, section)
        except NoKeyError:
            tag_field(ciphered, raw, 0, block, "not checked")
            section.problems.append(no_key_problem(ciphered))
            return section
        except UnsupportedSecurityError as exc:
            section.problems.append(Problem("unsupported_security", str(exc), REPORT_IT))
            return section
        except AuthenticationError:
            tag_field(ciphered, raw, 0, block, "MISMATCH", "bad")
            section.problems.append(auth_failed_problem(self.keys))
            return section
        tag_field(ciphered, raw, 0, block, verdict, "bad" if "MISMATCH" in verdict else "ok")
        text = inner_telegram(plain, need_crc=False)
        if text is None:
            why = "decryption gave no telegram with a valid CRC"
            section.problems.append(decrypt_failed_problem(why))
            return section
        inner = Block(f"Decrypted telegram ({len(text)} bytes, offsets from its '/')")
        section.blocks.append(inner)
        telegram = next(e for e in _events(text) if isinstance(e, Telegram))
        self.telegram(section, telegram, inner)
        section.summary = section.summary.replace("telegram", "telegram, ciphered", 1)
        return section

    def _open(self, ciphered: Ciphered, section: Section) -> tuple[bytes, str]:
        """The plaintext and what its tag said; a tag that fails may still give a telegram."""
        try:
            plain = Decryptor(self.keys).decrypt(ciphered)
        except AuthenticationError:
            key = self.keys.encryption
            if key is None:
                raise
            text = open_ciphered(Keys(key), ciphered).apdu
            if inner_telegram(text, need_crc=True) is None:
                raise
            section.problems.append(
                Problem(
                    "unauthenticated",
                    "the authentication tag does not verify with --auth-key (the published"
                    " Smarty key fails on some meters): decrypted without verifying it; the"
                    " telegram's CRC matches",
                    "ask the grid operator for this meter's authentication key, or run"
                    " without --auth-key",
                    "warning",
                )
            )
            return text, "MISMATCH (decrypted without it; the telegram CRC matches)"
        verdict = {True: "verified", False: "not checked (no --auth-key)", None: ""}
        return plain.apdu, verdict[plain.authenticated]

    # -- rejected telegrams and garbage ---------------------------------------

    def damaged(self, region: bytes, event: Rejected, index: int, *, at_end: bool) -> Section:
        section = Section(index, "damaged frame", event.offset, len(region), outcome="damaged")
        section.summary = "DSMR P1 telegram damaged on the line"
        block = Block("DSMR P1 telegram as received (offsets from the '/')")
        section.blocks.append(block)
        lines = _lines(region)
        block.fields.append(_ident_field(lines[0][1]))
        complete = [line for _, line in lines[1:] if _is_data_line(line)]
        end = region.find(b"!")
        for offset, line in lines[1:]:
            if line.startswith(b"!") and offset == end:
                received = line[1:].strip()
                crc = int(received, 16) if _is_hex(received) else None
                block.fields.append(_crc_field(region, offset, crc))
            elif not _is_data_line(line):
                why = "cut here" if offset + len(line) >= len(region) - 2 else "damaged"
                meaning = f"not a data line: {why}"
                block.fields.append(Field(offset, _hex(line), "?", meaning, "bad"))
        if event.reason == "bad_crc":
            section.notes.append(f"{len(complete)} data lines look whole: the damage may be in any")
        else:
            section.notes.append(f"{len(complete)} whole data lines before the cut")
        if event.reason == "truncated" and at_end and "ended" in event.detail:
            next_step = "copy the complete telegram (a capture that stops early cuts the last one)"
            section.problems.append(Problem("truncated", event.detail, next_step))
        elif event.reason == "truncated":
            section.problems.append(Problem("truncated", event.detail, _LOST_NEXT))
        elif _crc_matches_with_crlf(region):
            summary = (
                f"{event.detail}; it matches once each line ends in CR LF: the text lost its"
                " CRs when it was copied (an editor, a forum), the telegram itself is intact"
            )
            next_step = "explain a capture of the bytes as read (--save-raw, then --capture)"
            section.problems.append(Problem(event.reason, summary, next_step))
        else:
            summary = f"{event.detail}: bytes were changed or lost on the line"
            section.problems.append(Problem(event.reason, summary, _DAMAGED_NEXT))
        return section

    def garbage(self, region: bytes, offset: int, index: int, *, whole: bool) -> Section:
        section = Section(index, "garbage", offset, len(region), "garbage")
        section.summary = f"{len(region)} bytes outside any telegram"
        shown = f"first 64 of {len(region)} bytes" if len(region) > 64 else f"{len(region)} bytes"
        section.blocks.append(
            Block(
                "bytes outside any telegram",
                [Field(0, _hex(region[:64]), "bytes", f"{shown}; belong to no telegram")],
            )
        )
        if _parity_telegram(region):
            section.problems.append(
                Problem(
                    "seven_bits",
                    "these bytes are a telegram once the top bit of each is cleared: the meter"
                    " sends 7 data bits with even parity (DSMR 2.2/3), the port reads 8 bits",
                    "set the port to 9600 baud 7E1 (7 data bits, even parity, 1 stop bit)",
                )
            )
        elif offset == 0 and not whole and len(region) <= 2048:
            section.outcome = "skipped"
            section.notes.append(
                f"the input starts in the middle of a telegram ({len(region)} bytes skipped):"
                " normal when a capture begins while the meter is sending"
            )
        else:
            section.problems.append(
                Problem(
                    "garbage",
                    f"{len(region)} bytes belong to no telegram: noise, or a telegram damaged"
                    " beyond recognition",
                    _DAMAGED_NEXT,
                )
            )
        return section


# -- fields ---------------------------------------------------------------------


def _lines(raw: bytes) -> list[tuple[int, bytes]]:
    """(offset, line without CR LF) of each line; a ``(`` continuation joined to its line."""
    out: list[tuple[int, bytes]] = []
    offset = 0
    for piece in raw.split(b"\n"):
        line = piece.rstrip(b"\r")
        if line.startswith(b"(") and len(out) > 1:
            start, previous = out[-1]
            out[-1] = (start, previous + line)  # DSMR 2.2/3 gas: the value on the next line
        elif line:
            out.append((offset, line))
        offset += len(piece) + 1
    return out or [(0, b"")]


def _ident_field(ident: bytes) -> Field:
    text = ident.decode("ascii", "replace")
    flag = text[1:4]
    maker = manufacturer_name(flag) or "not in amsread's list"
    meaning = f"manufacturer {flag} ({maker}), baud-rate character {text[4:5]!r}, type {text[5:]}"
    return Field(0, _hex(ident), "identification", meaning)


def _crc_field(raw: bytes, offset: int, received: int | None) -> Field:
    sent = raw[offset : raw.find(b"\n", offset) if b"\n" in raw[offset:] else len(raw)]
    line = sent.rstrip(b"\r")
    if received is None:
        meaning = "end; no CRC (DSMR 2.2 and 3 send none)"
        return Field(offset, _hex(line), "end", meaning)
    computed = crc16_arc(raw[: offset + 1])
    digits = len(line) - 1
    short = f", sent as {digits} digits (leading zero dropped)" if digits < 4 else ""
    verdict = "ok" if computed == received else "MISMATCH"
    meaning = (
        f"CRC-16/ARC of '/' … '!' ({offset + 1} bytes): computed {computed:04X},"
        f" received {received:04X}{short}: {verdict}"
    )
    return Field(offset, _hex(line), "CRC", meaning, "ok" if computed == received else "bad")


def _definition(code: Code, reading: Reading) -> str:
    """What data/dsmr.toml says about the code, or how its value was read without it."""
    if code.table:
        where = f"dsmr.toml [{code.table}]"
        if code.channel:
            where += f", M-Bus channel {code.channel}"
        return f"{where}: {KIND_MEANINGS.get(code.kind, 'read by its shape')}"
    if reading.captured_at is not None:
        return "read by its shape: (time)(number*unit)"
    if reading.unit is not None or isinstance(reading.value, int | float):
        return "read by its shape: (number*unit)"
    return "not in dsmr.toml and no number: kept as sent"


def _value_text(value: object) -> str:
    if isinstance(value, list):
        events = "; ".join(f"{e['end']} for {e['duration_s']} s" for e in value)
        return f"{len(value)} power failures" + (f": {events}" if events else "")
    if value == "":
        return "(empty)"
    return "null" if value is None else str(value)


def _reading_line(reading: Reading) -> ReadingLine:
    value = reading.value
    shown = _value_text(value) if isinstance(value, list) else value
    return ReadingLine(reading.obis, reading.name, shown, reading.unit)


def _is_data_line(line: bytes) -> bool:
    text = line.decode("ascii", "replace")
    paren = text.find("(")
    balanced = text.count("(") == text.count(")") and text.endswith(")")
    return paren > 0 and balanced and describe_code(text[:paren]) is not None


def _crc_matches_with_crlf(region: bytes) -> bool:
    """A telegram whose lines end in LF alone, and whose CRC matches them as CR LF."""
    end = region.find(b"!")
    if end < 0 or b"\r\n" in region[:end]:
        return False
    received = region[end + 1 : end + 5].strip()
    body = region[: end + 1].replace(b"\n", b"\r\n")
    return _is_hex(received) and crc16_arc(body) == int(received, 16)


def _is_hex(text: bytes) -> bool:
    return 1 <= len(text) <= 4 and all(c in b"0123456789ABCDEFabcdef" for c in text)
