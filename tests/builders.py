"""Build valid frames and ciphered APDUs for tests, independently of the decoders.

The encryption side uses ``cryptography``'s AESGCM directly (full 16-byte tag,
truncated to 12) so that tests do not check the decoder against itself.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amsread.link.crc import crc16_x25

LLC = b"\xe6\xe7\x00"


def hdlc_frame(
    information: bytes,
    *,
    destination: bytes = b"\x41",
    source: bytes = b"\x03",
    control: int = 0x13,
    segmented: bool = False,
    closing_flag: bool = True,
) -> bytes:
    """One HDLC frame with valid HCS and FCS, opening flag included."""
    header_len = 2 + len(destination) + len(source) + 1
    length = header_len + 2 + (len(information) + 2 if information else 0)
    fmt = 0xA000 | (0x0800 if segmented else 0) | length
    header = fmt.to_bytes(2, "big") + destination + source + bytes([control])
    body = header
    if information:
        body += crc16_x25(header).to_bytes(2, "little") + information
    body += crc16_x25(body).to_bytes(2, "little")
    return b"\x7e" + body + (b"\x7e" if closing_flag else b"")


def cipher_apdu(
    plaintext: bytes,
    *,
    key: bytes,
    auth_key: bytes | None = None,
    system_title: bytes = b"KAMtest1",
    invocation_counter: int = 1,
    security_control: int = 0x30,
    tag: int = 0xDB,
    length_form: str = "short",
) -> bytes:
    """A general-glo/ded-ciphering APDU as a meter would send it."""
    iv = system_title + invocation_counter.to_bytes(4, "big")
    header = bytes([security_control])
    aead = AESGCM(key)
    if security_control & 0x20:
        aad = header + (auth_key or b"") if security_control & 0x10 else b""
        sealed = aead.encrypt(iv, plaintext, aad)
        body = sealed[:-16] + (sealed[-16:-4] if security_control & 0x10 else b"")
    else:
        # Authentication only: GMAC over SC ‖ AK ‖ plaintext, plaintext sent in clear.
        mac = aead.encrypt(iv, b"", header + (auth_key or b"") + plaintext)
        body = plaintext + mac[:12]
    content = header + invocation_counter.to_bytes(4, "big") + body
    return (
        bytes([tag, len(system_title)])
        + system_title
        + ber_length(len(content), length_form)
        + content
    )


def ber_length(size: int, form: str = "short") -> bytes:
    """A BER length in the form asked for (short, 81, 82 or 84)."""
    if form == "short" and size < 0x80:
        return bytes([size])
    if form == "short":
        form = "82" if size > 0xFF else "81"
    count = {"81": 1, "82": 2, "84": 4}[form]
    return bytes([0x80 | count]) + size.to_bytes(count, "big")


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into pieces of ``sizes`` bytes, the rest in a last piece; no empty ones."""
    parts, pos = [], 0
    for size in sizes:
        parts.append(data[pos : pos + size])
        pos += size
    parts.append(data[pos:])
    return [p for p in parts if p]


def hdlc_segments(
    information: bytes, sizes: list[int], *, shared_flags: bool = False, **frame: object
) -> bytes:
    """``information`` cut into HDLC frames of ``sizes`` bytes (the rest in the last one).

    The segmentation bit is set on all frames but the last. ``shared_flags``
    lets consecutive frames share one 0x7E, as some meters send them.
    """
    parts = split(information, sizes)
    frames = [
        hdlc_frame(part, segmented=i < len(parts) - 1, **frame)  # type: ignore[arg-type]
        for i, part in enumerate(parts)
    ]
    if shared_flags:
        return frames[0] + b"".join(f[1:] for f in frames[1:])
    return b"".join(frames)


def gbt_blocks(
    apdu: bytes, count: int, *, first_number: int = 1, streaming: bool = True, window: int = 0
) -> list[bytes]:
    """``apdu`` cut into ``count`` general-block-transfer APDUs of near-equal size."""
    size = -(-len(apdu) // count)
    chunks = [apdu[i : i + size] for i in range(0, len(apdu), size)]
    blocks = []
    for i, chunk in enumerate(chunks):
        control = (0x80 if i == len(chunks) - 1 else 0) | (0x40 if streaming else 0) | window
        number = (first_number + i).to_bytes(2, "big")
        blocks.append(
            bytes([0xE0, control]) + number + b"\x00\x00" + ber_length(len(chunk)) + chunk
        )
    return blocks


def mbus_frame(
    data: bytes,
    *,
    ci: int = 0x10,
    control: int = 0x53,
    address: int = 0xFF,
) -> bytes:
    """One wired M-Bus long frame. Lengths above 255 get only their low byte in L,
    as Sagemcom T210-D meters send them."""
    body = bytes([control, address, ci]) + data
    length = len(body) & 0xFF
    checksum = sum(body) & 0xFF
    return bytes([0x68, length, length, 0x68]) + body + bytes([checksum, 0x16])


def mbus_short(control: int = 0x40, address: int = 0xFE) -> bytes:
    return bytes([0x10, control, address, (control + address) & 0xFF, 0x16])


def mbus_segments(
    apdu: bytes, sizes: list[int], *, tsap: bytes = b"\x01\x67", **frame: int
) -> list[bytes]:
    """``apdu`` cut into DLMS transport segments of ``sizes`` bytes (the rest last),
    each behind STSAP/DTSAP, CI = sequence number, 0x10 on the last."""
    parts = split(apdu, sizes)
    return [
        mbus_frame(tsap + part, ci=(i & 0x0F) | (0x10 if i == len(parts) - 1 else 0), **frame)
        for i, part in enumerate(parts)
    ]
