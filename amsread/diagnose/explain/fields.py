"""Byte annotators: the fields of HDLC and M-Bus frames and of APDU headers, with their meaning."""

from __future__ import annotations

from collections.abc import Sequence

from amsread.diagnose.explain.model import (
    Block,
    Field,
    Section,
    plural,
    spaced_hex,
    upper_hex,
)
from amsread.diagnose.redact import Redactor
from amsread.dlms import axdr
from amsread.dlms.apdu import (
    apdu_name,
)
from amsread.dlms.ciphering import TAG_SIZE, Ciphered
from amsread.errors import (
    AxdrError,
)
from amsread.link.crc import crc16_x25
from amsread.link.hdlc import (
    LLC_HEADERS,
    address_value,
    control_name,
)
from amsread.link.mbus import MbusFrame
from amsread.link.spans import (
    ADDRESS,
    CHECKSUM,
    CONTROL,
    DESTINATION,
    FORMAT,
    HCS,
    LENGTH,
    LLC,
    SECOND_START,
    SOURCE,
    START,
    STOP,
    Span,
    find_span,
)
from amsread.readings.manufacturers import decode_system_title
from amsread.readings.timestamps import cosem_datetime_iso

U_FRAMES = {
    "SNRM": "set normal response mode: a client opens a connection",
    "UA": "unnumbered acknowledge: the meter accepts the connection",
    "DISC": "disconnect",
    "DM": "disconnected mode",
    "FRMR": "frame reject",
    "UI": "unnumbered information",
}


def hdlc_header(raw: bytes, spans: Sequence[Span], block: Block) -> int:
    """Fields from the opening flag to the HCS, where the framer found them.

    Returns the offset of the information field: 0 if the frame has none, or
    if ``raw`` (a damaged frame) ends before it.
    """
    fields = block.fields
    fields.append(Field(0, "7E", "flag", "start of frame"))
    for span in spans:
        present = span.end <= len(raw)
        if span.name == FORMAT:
            if not present:
                return 0
            fields.append(_format_field(span.of(raw)))
        elif span.name in _ADDRESS_NAMES:
            name = _ADDRESS_NAMES[span.name]
            if not present:
                cut = raw[span.start : span.start + 4]
                fields.append(Field(span.start, upper_hex(cut), name, "incomplete or invalid"))
                return 0
            address = span.of(raw)
            fields.append(Field(span.start, upper_hex(address), name, _address_meaning(address)))
        elif span.name == CONTROL:
            if not present:
                return 0
            control = raw[span.start]
            fields.append(Field(span.start, f"{control:02X}", "control", _control_meaning(control)))
        elif span.name == HCS:
            if not present:
                return 0
            computed = crc16_x25(raw[1 : span.start]).to_bytes(2, "little")
            fields.append(_check_field(span.start, "HCS", "header check", computed, span.of(raw)))
            return span.end
    return 0


_ADDRESS_NAMES = {DESTINATION: "destination address", SOURCE: "source address"}


def _format_field(raw: bytes) -> Field:
    fmt = raw[0] << 8 | raw[1]
    kind = fmt >> 12
    length = fmt & 0x7FF
    segmented = bool(fmt & 0x0800)
    kind_text = "type 3" if kind == 0xA else f"type 0x{kind:X} (DLMS uses type 3, 0xA)"
    return Field(
        1,
        upper_hex(raw),
        "frame format",
        f"{kind_text}; {'segmented' if segmented else 'not segmented'};"
        f" length {length} bytes between the flags",
        "" if kind == 0xA else "bad",
    )


def _check_field(offset: int, name: str, what: str, computed: bytes, received: bytes) -> Field:
    if computed == received:
        return Field(offset, upper_hex(received), name, f"{what}: ok", "ok")
    return Field(
        offset,
        upper_hex(received),
        name,
        f"{what}: MISMATCH, computed {spaced_hex(computed)}, received {spaced_hex(received)}",
        "bad",
    )


def fcs_field(raw: bytes, at: int, block: Block, where: str = "") -> None:
    computed = crc16_x25(raw[1:at]).to_bytes(2, "little")
    what = "frame check" + (f" ({where})" if where else "")
    block.fields.append(_check_field(at, "FCS", what, computed, raw[at : at + 2]))


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
    description = U_FRAMES.get(name)
    return f"{name} ({description}); {final}" if description else f"{name}; {final}"


def llc_field(information: bytes, base: int, block: Block) -> int:
    """The LLC header at the start of ``information`` (bytes of a damaged frame), if any."""
    if information[:3] not in LLC_HEADERS:
        return 0
    llc_span_field(information, Span(LLC, 0, 3), base, block)
    return 3


def llc_span_field(raw: bytes, span: Span, base: int, block: Block) -> None:
    """The LLC header where ``span`` puts it in ``raw``; ``base`` is added to its offset."""
    header = span.of(raw)
    direction = "response (meter to client)" if header[1] == 0xE7 else "command (client to meter)"
    block.fields.append(
        Field(base + span.start, upper_hex(header), "LLC", f"{direction}, quality 00")
    )


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


def mbus_header_fields(raw: bytes, spans: Sequence[Span], block: Block, overflow: bool) -> None:
    """A long frame's fields from the start byte to A, where the framer found them."""
    note = " (+256: this meter sends only the low byte of the length)" if overflow else ""
    fields = block.fields
    for span in spans:
        if span.end > len(raw):
            break
        at = span.start
        if span.name == START:
            fields.append(Field(at, "68", "start", "long frame"))
        elif span.name == LENGTH:
            what = f"{raw[at]} bytes from C to the data{note}"
            fields.append(Field(at, upper_hex(span.of(raw)), "length (twice)", what))
        elif span.name == SECOND_START:
            fields.append(Field(at, "68", "start", "second start byte"))
        elif span.name in (CONTROL, ADDRESS):
            fields.append(_mbus_link_field(raw, span))


def _mbus_link_field(raw: bytes, span: Span) -> Field:
    value = raw[span.start]
    if span.name == CONTROL:
        meaning = _MBUS_CONTROL.get(value, f"0x{value:02X}")
        return Field(span.start, f"{value:02X}", "C (control)", meaning)
    return Field(span.start, f"{value:02X}", "A (address)", _mbus_address(value))


def mbus_trailer_fields(raw: bytes, spans: Sequence[Span], block: Block) -> None:
    """Checksum (over C to the data) and stop byte."""
    control, checksum, stop = (find_span(spans, name) for name in (CONTROL, CHECKSUM, STOP))
    assert control is not None and checksum is not None and stop is not None
    computed = bytes([sum(raw[control.start : checksum.start]) & 0xFF])
    block.fields.append(_check_field(checksum.start, "CS", "checksum", computed, checksum.of(raw)))
    block.fields.append(Field(stop.start, "16", "stop", "end of frame"))


def mbus_short_fields(frame: MbusFrame, block: Block) -> None:
    raw, spans = frame.raw, frame.spans
    if frame.kind == "ack":
        block.fields.append(Field(0, "E5", "acknowledge", "single character"))
        return
    block.fields.append(Field(0, "10", "start", "short frame"))
    block.fields += [_mbus_link_field(raw, s) for s in spans if s.name in (CONTROL, ADDRESS)]
    mbus_trailer_fields(raw, spans, block)


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


def ciphered_header(apdu: bytes, base: int, block: Block, secrets: Redactor) -> bytes:
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
    fields.append(Field(base + 2, upper_hex(title), "system title", decoded.describe()))
    pos = 2 + size
    try:
        length, after = axdr.decode_length(apdu, pos)
    except AxdrError:
        return title
    form = (
        "short form" if after == pos + 1 else f"long form, {plural(after - pos - 1, 'length byte')}"
    )
    fields.append(
        Field(base + pos, upper_hex(apdu[pos:after]), "length", f"{length} bytes ({form})")
    )
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
                upper_hex(counter),
                "invocation counter",
                f"{int.from_bytes(counter, 'big')} (frame counter; IV = system title ‖ this)",
            )
        )
    return title


def tag_field(
    c: Ciphered, apdu: bytes, base: int, block: Block, verdict: str, status: str = ""
) -> None:
    start = len(apdu) - len(c.payload) - (TAG_SIZE if c.auth_tag else 0)
    name = "ciphertext" if c.encrypted else "APDU (in clear)"
    block.fields.append(Field(base + start, upper_hex(c.payload), name, f"{len(c.payload)} bytes"))
    if c.auth_tag is not None:
        block.fields.append(
            Field(
                base + len(apdu) - TAG_SIZE,
                upper_hex(c.auth_tag),
                "authentication tag",
                f"{TAG_SIZE} bytes: {verdict}",
                status,
            )
        )


def ciphered_length_note(section: Section, apdu: bytes) -> None:
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


def block_fields(apdu: bytes, base: int, block: Block) -> None:
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
        Field(base + 2, upper_hex(apdu[2:4]), "block number", str(int.from_bytes(apdu[2:4], "big")))
    )
    fields.append(
        Field(base + 4, upper_hex(apdu[4:6]), "acknowledged", str(int.from_bytes(apdu[4:6], "big")))
    )
    try:
        length, after = axdr.decode_length(apdu, 6)
    except AxdrError:
        return
    fields.append(Field(base + 6, upper_hex(apdu[6:after]), "length", f"{length} bytes"))
    fields.append(
        Field(base + after, upper_hex(apdu[after:]), "block data", f"{len(apdu) - after} bytes")
    )


def notification_header(apdu: bytes, base: int, block: Block) -> int:
    """Fields of the data-notification header; returns the body's offset (with ``base``)."""
    fields = block.fields
    fields.append(Field(base, "0F", "APDU tag", "data-notification"))
    invoke = apdu[1:5]
    if len(invoke) == 4:
        fields.append(
            Field(base + 1, upper_hex(invoke), "invoke id, priority", _invoke_meaning(invoke))
        )
    marker = apdu[5] if len(apdu) > 5 else None
    if marker == 0x00:
        fields.append(Field(base + 5, "00", "date-time", "absent"))
        return base + 6
    if marker == 0x0C:
        raw = apdu[6:18]
        fields.append(Field(base + 5, upper_hex(apdu[5:18]), "date-time", _datetime_meaning(raw)))
        return base + 18
    if marker == 0x09 and apdu[6:7] == b"\x0c":
        raw = apdu[7:19]
        fields.append(
            Field(
                base + 5,
                upper_hex(apdu[5:19]),
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
