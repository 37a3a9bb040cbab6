"""Parsing keys without ever echoing them.

Users receive keys as ``0x…``, with spaces or colons, in either case, or (by
mistake) as 16 ASCII characters. Error messages describe the key's shape,
never its content.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from amsread.errors import KeyFormatError

KEY_SIZE = 16
_SEPARATORS = str.maketrans("", "", " :-_\t\r\n")
_HEX = frozenset(string.hexdigits)


def parse_key(text: str, what: str = "key") -> bytes:
    """Return the 16 key bytes written in ``text``; raise KeyFormatError if it is none."""
    compact = text.strip().translate(_SEPARATORS)
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if len(text.strip()) == KEY_SIZE and not all(c in _HEX for c in compact):
        raise KeyFormatError(
            f"the {what} is 16 characters but not hex: it looks like ASCII text. "
            "Keys are 32 hex digits; if your utility really gave 16 characters, convert "
            'them with: python3 -c "print(input().encode().hex())"'
        )
    if not compact or not all(c in _HEX for c in compact):
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
            return "None" if key is None else "<16 bytes>"

        return (
            f"Keys(encryption={shown(self.encryption)},"
            f" authentication={shown(self.authentication)})"
        )
