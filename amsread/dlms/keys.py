"""Parsing and finding keys without ever echoing them.

Users receive keys as ``0x…``, with spaces or colons, in either case, or (by
mistake) as 16 ASCII characters. Error messages describe the key's shape,
never its content.

Keys come, per key, from the first of: the value itself (``--key``, the
environment or a config file, merged by the caller), a key file (first line),
or a systemd credential (``$CREDENTIALS_DIRECTORY/amsread-key``).
"""

from __future__ import annotations

import os
import re
import stat
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from amsread.app.sources import read_small_file
from amsread.errors import KeyFormatError

KEY_SIZE = 16
#: systemd ``LoadCredential=`` names, looked up in ``$CREDENTIALS_DIRECTORY``.
CREDENTIAL_KEY = "amsread-key"
CREDENTIAL_AUTH_KEY = "amsread-auth-key"
#: A key file holds one line; anything longer is not a key file.
MAX_KEY_FILE_SIZE = 4096

_GROUPS = re.compile(r"[\s:,;_-]+")
_HEX = frozenset(string.hexdigits)


def parse_key(text: str, what: str = "key") -> bytes:
    """Return the 16 key bytes written in ``text``; raise KeyFormatError if it is none."""
    stripped = text.strip()
    # "0x" may lead the whole key or every byte (C arrays: 0x5A, 0xD8, …).
    compact = "".join(
        group[2:] if group[:2] in ("0x", "0X") else group for group in _GROUPS.split(stripped)
    )
    is_hex = bool(compact) and all(c in _HEX for c in compact)
    if len(stripped) == KEY_SIZE and not is_hex:
        raise KeyFormatError(
            f"the {what} is 16 characters but not hex: it looks like ASCII text. "
            "Keys are 32 hex digits; if your grid operator really gave 16 characters, convert "
            'them with: python3 -c "print(input().encode().hex())"'
        )
    if not is_hex:
        raise KeyFormatError(f"the {what} must be 32 hex digits; it contains other characters")
    if len(compact) != 2 * KEY_SIZE:
        raise KeyFormatError(
            f"the {what} must be 32 hex digits (16 bytes); it has {len(compact)} hex digits"
        )
    return bytes.fromhex(compact)


@dataclass(frozen=True, slots=True)
class Keys:
    """The global unicast encryption key (GUEK) and authentication key (GAK)."""

    encryption: bytes | None = None
    authentication: bytes | None = None

    def __repr__(self) -> str:  # keys must never reach logs or tracebacks
        def shown(key: bytes | None) -> str:
            return "None" if key is None else f"<{len(key)} bytes>"

        return (
            f"Keys(encryption={shown(self.encryption)},"
            f" authentication={shown(self.authentication)})"
        )

    def swapped(self) -> Keys | None:
        """The pair the other way round, if that is a different pair."""
        ek, ak = self.encryption, self.authentication
        if ek is None or ak is None or ek == ak:
            return None
        return Keys(ak, ek)


def resolve_keys(
    key: str | None = None,
    auth_key: str | None = None,
    key_file: str | None = None,
    auth_key_file: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Keys:
    """Find both keys: the value given > its key file > its systemd credential.

    ``key``/``auth_key`` are already merged from flags, environment and config
    by the caller; ``environ`` is only read for ``CREDENTIALS_DIRECTORY``.
    Raises KeyFormatError or UsageError with one-line messages that never
    contain key material.
    """
    env = os.environ if environ is None else environ
    credentials = env.get("CREDENTIALS_DIRECTORY") or None
    return Keys(
        _one_key(key, key_file, credentials, CREDENTIAL_KEY, "encryption key (GUEK)"),
        _one_key(
            auth_key, auth_key_file, credentials, CREDENTIAL_AUTH_KEY, "authentication key (GAK)"
        ),
    )


def _one_key(
    value: str | None, file: str | None, credentials: str | None, credential: str, what: str
) -> bytes | None:
    if value:
        return parse_key(value, what)
    if file:
        warn_if_readable_by_others(file)
        return parse_key(read_key_file(file, what), f"{what} in {file}")
    if credentials:
        path = Path(credentials) / credential
        if path.is_file():
            return parse_key(read_key_file(str(path), what), f"{what} in credential {credential}")
    return None


def read_key_file(path: str, what: str = "key") -> str:
    """The first line of a key file (raises UsageError naming the file, not its content)."""
    raw = read_small_file(path, f"{what} file", MAX_KEY_FILE_SIZE)
    if len(raw) > MAX_KEY_FILE_SIZE:
        raise KeyFormatError(f"{what} file {path} is too large: it must hold one line of hex")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError(
            f"{what} file {path} is not text: write the key in it as 32 hex digits"
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise KeyFormatError(f"{what} file {path} is empty: put the key on its first line")
    return lines[0]


def readable_by_others(path: str) -> bool:
    """True if the file's mode lets group or other users read it (POSIX only)."""
    if os.name != "posix":
        return False
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def warn_if_readable_by_others(path: str) -> None:
    if readable_by_others(path):
        from amsread.app.log import get_logger

        get_logger().warning(
            "key file can be read by other users", path=path, hint=f"run: chmod 600 {path}"
        )
