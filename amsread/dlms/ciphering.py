"""DLMS push ciphering (general-glo/ded-ciphering with AES-GCM-128), sans I/O.

A ciphered APDU::

    DB|DC, len(system title)=08, system title (8), BER length,
    security control (1), invocation counter (4), ciphertext, [tag (12)]

IV = system title ‖ invocation counter. Security control: bit 4 (0x10)
authentication, bit 5 (0x20) encryption, low nibble the security suite.

* 0x3x: AES-GCM, AAD = security control ‖ authentication key, 12-byte tag;
  without the authentication key the APDU is still recovered (AES-CTR from
  J0 + 1) and marked unauthenticated.
* 0x2x: AES-GCM without tag; nothing proves the key right, so the caller must
  check that the plaintext is a complete APDU.
* 0x1x: the APDU in clear, GMAC tag over security control ‖ AK ‖ APDU.

AES itself is ``cryptography``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from amsread.dlms.apdu import GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING
from amsread.dlms.axdr import decode_length
from amsread.dlms.keys import Keys
from amsread.errors import (
    ApduError,
    AuthenticationError,
    AxdrError,
    NoKeyError,
    UnsupportedSecurityError,
)

TAG_SIZE = 12
SYSTEM_TITLE_SIZE = 8
AUTHENTICATED = 0x10
ENCRYPTED = 0x20
#: Bit 7: the APDU was compressed before ciphering (not used by push meters).
COMPRESSED = 0x80
#: Suites 0 and 1 both use AES-GCM-128 for push data in the field.
SUPPORTED_SUITES = (0, 1)


# Ciphered and Plaintext are read-only by convention, not frozen: a push makes one
# of each, and frozen dataclasses cost ~0.1 µs a field more to build.
@dataclass(slots=True)
class Ciphered:
    tag: int
    system_title: bytes
    security_control: int
    invocation_counter: int
    #: The ciphertext (or, authentication-only, the plain APDU) without the tag.
    payload: bytes
    auth_tag: bytes | None

    @property
    def authenticated(self) -> bool:
        return bool(self.security_control & AUTHENTICATED)

    @property
    def encrypted(self) -> bool:
        return bool(self.security_control & ENCRYPTED)

    @property
    def suite(self) -> int:
        return self.security_control & 0x0F

    @property
    def iv(self) -> bytes:
        return self.system_title + self.invocation_counter.to_bytes(4, "big")


def parse_ciphered(apdu: bytes) -> Ciphered:
    """Split a general-glo/ded-ciphering APDU into its fields."""
    if len(apdu) < 2 or apdu[0] not in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        raise ApduError("not a general-glo/ded-ciphering APDU")
    size = apdu[1]
    if size != SYSTEM_TITLE_SIZE:
        raise ApduError(f"system title of {size} bytes; 8 expected")
    title_end = 2 + SYSTEM_TITLE_SIZE
    if len(apdu) < title_end + 1:
        raise ApduError("ciphered APDU ends inside its system title")
    try:
        length, pos = decode_length(apdu, title_end)
    except AxdrError as exc:
        raise ApduError(f"ciphered APDU length: {exc}") from exc
    content = apdu[pos : pos + length]
    if len(content) != length:
        raise ApduError(f"ciphered APDU announces {length} bytes but {len(content)} follow")
    if pos + length != len(apdu):
        raise ApduError(f"{len(apdu) - pos - length} bytes after the ciphered APDU")
    if length < 5:
        raise ApduError("ciphered APDU too short for its security header")
    control = content[0]
    counter = int.from_bytes(content[1:5], "big")
    body = content[5:]
    auth_tag = None
    if control & AUTHENTICATED:
        if len(body) < TAG_SIZE:
            raise ApduError("ciphered APDU too short for its authentication tag")
        body, auth_tag = body[:-TAG_SIZE], body[-TAG_SIZE:]
    return Ciphered(apdu[0], apdu[2:title_end], control, counter, body, auth_tag)


@dataclass(slots=True)
class Plaintext:
    apdu: bytes
    #: True if the tag was verified, False if present but unchecked, None if absent.
    authenticated: bool | None
    #: True if the tag verified only with the encryption and authentication keys
    #: exchanged; the decryptor keeps the exchanged pair from then on.
    keys_swapped: bool = False


def proves_key(c: Ciphered, plain: Plaintext) -> bool:
    """Whether a push accepted with this plaintext proves the key right.

    A tag that verified does; so does ciphertext once its plaintext parsed
    (a wrong key gives bytes that do not). Cleartext with an unchecked tag
    proves nothing, so it must not move the replay guard's counter.
    """
    return plain.authenticated is True or c.encrypted


def _ctr_initial(iv: bytes) -> bytes:
    # GCM encrypts with AES-CTR starting at J0 + 1, J0 = IV ‖ 00000001.
    return iv + b"\x00\x00\x00\x02"


def check_suite(c: Ciphered) -> None:
    """Raise UnsupportedSecurityError, naming the byte, for anything but AES-GCM-128."""
    if c.security_control & COMPRESSED:
        raise UnsupportedSecurityError(
            f"security control byte 0x{c.security_control:02X} asks for compression,"
            " which is not supported"
        )
    if c.suite not in SUPPORTED_SUITES:
        raise UnsupportedSecurityError(
            f"security suite {c.suite} (security control byte 0x{c.security_control:02X})"
            " is not supported: only AES-GCM-128 suites 0 and 1 are"
        )


class Decryptor:
    """Decrypts and verifies ciphered push APDUs with one pair of keys.

    When a tag fails, the pair is tried the other way round once; if that
    verifies, the keys were given swapped, and the swapped pair is kept.
    """

    def __init__(self, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()

    def decrypt(self, c: Ciphered) -> Plaintext:
        check_suite(c)
        try:
            return open_ciphered(self.keys, c)
        except AuthenticationError as failure:
            swapped = self.keys.swapped()
            if swapped is None:
                raise
            try:
                plain = open_ciphered(swapped, c)
            except AuthenticationError:
                raise failure from None
            self.keys = swapped
            return replace(plain, keys_swapped=True)


def open_ciphered(keys: Keys, c: Ciphered) -> Plaintext:
    """Decrypt and/or verify ``c`` with ``keys``; the suite must be checked already."""
    if not c.encrypted and not c.authenticated:
        return Plaintext(c.payload, None)
    ek, ak = keys.encryption, keys.authentication
    if not c.encrypted:
        # Authentication only: the APDU travels in clear; the GMAC needs both keys.
        if ek is None or ak is None or c.auth_tag is None:
            return Plaintext(c.payload, False)
        _gcm_decrypt(ek, c, bytes([c.security_control]) + ak + c.payload, b"")
        return Plaintext(c.payload, True)
    if ek is None:
        raise NoKeyError(
            "the frames are encrypted but no encryption key was given"
            " (--key, --key-file or AMSREAD_KEY)"
        )
    if c.auth_tag is not None and ak is not None:
        return Plaintext(_gcm_decrypt(ek, c, bytes([c.security_control]) + ak, c.payload), True)
    return Plaintext(_ctr_decrypt(ek, c), False if c.auth_tag is not None else None)


_TAG_FAILED = (
    "authentication failed: the tag does not match: the encryption key or the"
    " authentication key is wrong (a tag cannot tell which), or the frame was damaged"
)


def _gcm_decrypt(key: bytes, c: Ciphered, aad: bytes, payload: bytes) -> bytes:
    """AES-GCM with the 12-byte tag; GMAC (authentication only) is an empty payload."""
    assert c.auth_tag is not None
    decryptor = Cipher(
        algorithms.AES(key), modes.GCM(c.iv, c.auth_tag, min_tag_length=TAG_SIZE)
    ).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(payload) + decryptor.finalize()
    except InvalidTag:
        raise AuthenticationError(_TAG_FAILED) from None


def _ctr_decrypt(key: bytes, c: Ciphered) -> bytes:
    # Without the authentication key the tag cannot be checked, but GCM's
    # ciphertext is plain AES-CTR, so the APDU can still be recovered.
    decryptor = Cipher(algorithms.AES(key), modes.CTR(_ctr_initial(c.iv))).decryptor()
    return decryptor.update(c.payload) + decryptor.finalize()
