"""How a key is written: the candidate(s) it stands for and notes on its format (check-key).

Keys never appear in these notes: candidates are named by their option
(``--key #2``). Sans I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from amsread.dlms.keys import KEY_SIZE, parse_key
from amsread.errors import KeyFormatError

_EXAMPLE_KEY = bytes(range(16))
_SEPARATED = re.compile(r"[\s:,;_-]")


@dataclass
class Candidate:
    """One key to try, named for the output (never the key itself)."""

    label: str
    key: bytes | None
    notes: list[str] = field(default_factory=list)
    problem: str | None = None
    #: A reading of the key other than as written (as text, a half, O read as 0).
    alternative: bool = False


def inspect_key(text: str, label: str) -> list[Candidate]:
    """The candidate(s) a key as written stands for, with notes on its format.

    Usually one. A key that only works read differently adds candidates: 16
    ASCII characters taken as text, 64 hex digits split in two halves.
    """
    stripped = text.strip()
    notes = _format_notes(stripped)
    try:
        key = parse_key(stripped, label)
    except KeyFormatError as exc:
        return _alternatives(stripped, label, str(exc))
    if key == _EXAMPLE_KEY:
        notes.append("this is the example key 00 01 02 … 0F from documentation, not a real key")
    elif len(set(key)) == 1:
        notes.append(f"every byte is {key[0]:02X}: a placeholder, not a real key")
    return [Candidate(label, key, ["accepted" + (f" ({', '.join(notes)})" if notes else "")])]


def _format_notes(text: str) -> list[str]:
    notes = []
    if text[:2].lower() == "0x":
        notes.append("the 0x prefix is fine")
    if _SEPARATED.search(text):
        notes.append("spaces and separators are fine")
    return notes


def _alternatives(text: str, label: str, problem: str) -> list[Candidate]:
    out = [Candidate(label, None, [], problem)]
    if len(text) == KEY_SIZE:
        out.append(
            Candidate(
                f"{label} read as ASCII text",
                text.encode("latin-1", "replace")[:KEY_SIZE],
                alternative=True,
            )
        )
        return out
    compact = _SEPARATED.sub("", text)
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if len(compact) == 4 * KEY_SIZE and all(c in "0123456789abcdefABCDEF" for c in compact):
        out[
            0
        ].problem = (
            f"{problem}: 64 hex digits look like two keys run together; both halves are tried"
        )
        out.append(Candidate(f"{label} first half", bytes.fromhex(compact[:32]), alternative=True))
        out.append(Candidate(f"{label} second half", bytes.fromhex(compact[32:]), alternative=True))
        return out
    fixed = compact.translate(str.maketrans("oOlI", "0011"))
    if fixed != compact and len(fixed) == 2 * KEY_SIZE:
        try:
            key = bytes.fromhex(fixed)
        except ValueError:
            return out
        out[0].problem = f"{problem} (the letters O or l where 0 or 1 belong?)"
        out.append(Candidate(f"{label} with O→0, l→1", key, alternative=True))
    return out
