"""Per-layer counters, kept in one place so every sink can report them."""

from __future__ import annotations

from collections import Counter

from amsread.reasons import COUNTERS

#: Counter names in report order (from the reasons table); others may appear and follow these.
KNOWN = COUNTERS


class Counters(Counter[str]):
    """A ``collections.Counter`` that reports in a stable order."""

    def report(self) -> dict[str, int]:
        ordered = {name: self[name] for name in KNOWN if self[name]}
        ordered.update({k: v for k, v in sorted(self.items()) if k not in ordered and v})
        return ordered
