"""Byte annotators: the fields of HDLC and M-Bus frames and of APDU headers, with their meaning."""

from __future__ import annotations

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


def hdlc_header(raw: bytes, block: Block) -> int:
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
            upper_hex(raw[1:3]),
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
            fields.append(Field(pos, upper_hex(raw[pos : pos + 4]), name, "incomplete or invalid"))
            return 0
        address = raw[pos : pos + size]
        fields.append(Field(pos, upper_hex(address), name, _address_meaning(address)))
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
    description = U_FRAMES.get(name)
    return f"{name} ({description}); {final}" if description else f"{name}; {final}"


def llc_field(information: bytes, base: int, block: Block) -> int:
    header = information[:3]
    if header not in LLC_HEADERS:
        return 0
    direction = "response (meter to client)" if header[1] == 0xE7 else "command (client to meter)"
    block.fields.append(Field(base, upper_hex(header), "LLC", f"{direction}, quality 00"))
    return 3


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


def mbus_header_fields(raw: bytes, block: Block, overflow: bool) -> None:
    length = raw[1]
    note = " (+256: this meter sends only the low byte of the length)" if overflow else ""
    fields = block.fields
    fields.append(Field(0, "68", "start", "long frame"))
    fields.append(
        Field(1, upper_hex(raw[1:3]), "length (twice)", f"{length} bytes from C to the data{note}")
    )
    fields.append(Field(3, "68", "start", "second start byte"))
    if len(raw) > 5:
        control = _MBUS_CONTROL.get(raw[4], f"0x{raw[4]:02X}")
        fields.append(Field(4, f"{raw[4]:02X}", "C (control)", control))
        fields.append(Field(5, f"{raw[5]:02X}", "A (address)", _mbus_address(raw[5])))


def mbus_trailer_fields(raw: bytes, block: Block) -> None:
    computed = bytes([sum(raw[4:-2]) & 0xFF])
    block.fields.append(_check_field(len(raw) - 2, "CS", "checksum", computed, raw[-2:-1]))
    block.fields.append(Field(len(raw) - 1, "16", "stop", "end of frame"))


def mbus_short_fields(frame: MbusFrame, block: Block) -> None:
    raw = frame.raw
    if frame.kind == "ack":
        block.fields.append(Field(0, "E5", "acknowledge", "single character"))
        return
    block.fields.append(Field(0, "10", "start", "short frame"))
    control = _MBUS_CONTROL.get(raw[1], f"0x{raw[1]:02X}")
    block.fields.append(Field(1, f"{raw[1]:02X}", "C (control)", control))
    block.fields.append(Field(2, f"{raw[2]:02X}", "A (address)", _mbus_address(raw[2])))
    mbus_trailer_fields(raw, block)


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
