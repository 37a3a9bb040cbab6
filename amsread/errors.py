"""Typed errors.

Two families, as in h11: ``DecodeError`` means the meter (or the line) sent
something we cannot use; ``UsageError`` means we were configured wrongly
(a bad key, a missing file). Messages never contain key material.
"""

from __future__ import annotations


class AmsreadError(Exception):
    """Base class of every error amsread raises on purpose."""


class UsageError(AmsreadError):
    """Bad configuration or arguments: reported once, exit status 2."""


class KeyFormatError(UsageError):
    """A key that is not 16 bytes of hex. The message never echoes the key."""


class DecodeError(AmsreadError):
    """Bytes from the meter that cannot be decoded. ``reason`` is a stable slug."""

    reason = "decode_error"


class FramingError(DecodeError):
    reason = "framing_error"


class ApduError(DecodeError):
    """An APDU that is malformed or not one we understand."""

    reason = "bad_apdu"


class AxdrError(DecodeError):
    """A-XDR data that is truncated or malformed."""

    reason = "bad_axdr"

    def __init__(self, message: str, offset: int | None = None) -> None:
        if offset is not None:
            message = f"{message} (at byte {offset})"
        super().__init__(message)
        self.offset = offset


class SecurityError(DecodeError):
    reason = "security_error"


class NoKeyError(SecurityError):
    reason = "no_key"


class AuthenticationError(SecurityError):
    reason = "auth_failed"


class DecryptionError(SecurityError):
    """Decryption gave bytes that are no valid APDU."""

    reason = "decrypt_failed"


class UnsupportedSecurityError(SecurityError):
    reason = "unsupported_security"


class ReplayError(SecurityError):
    reason = "replayed"
