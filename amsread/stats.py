"""Per-layer counters, kept in one place so every sink can report them."""

from __future__ import annotations

from collections import Counter

#: Counter names in report order; others may appear and follow these.
KNOWN = (
    "bytes_read",
    "frames_ok",
    "garbage_bytes",
    "bad_hcs",
    "bad_fcs",
    "bad_checksum",
    "truncated",
    "segments_lost",
    "blocks_lost",
    "bad_hex",
    "skipped",
    "no_key",
    "auth_failed",
    "decrypt_failed",
    "unsupported_security",
    "replayed",
    "missed_pushes",
    "bad_apdu",
    "unauthenticated",
    "messages",
)


class Counters(Counter[str]):
    """A ``collections.Counter`` that reports in a stable order."""

    def report(self) -> dict[str, int]:
        ordered = {name: self[name] for name in KNOWN if self[name]}
        ordered.update({k: v for k, v in sorted(self.items()) if k not in ordered and v})
        return ordered
