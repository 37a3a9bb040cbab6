"""Build valid frames and ciphered APDUs for tests, independently of the decoders.

The encryption side uses ``cryptography``'s AESGCM directly (full 16-byte tag,
truncated to 12) so that tests do not check the decoder against itself.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amsread.crc import crc16_x25

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
