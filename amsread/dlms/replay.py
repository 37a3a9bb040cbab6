"""Invocation-counter tracking per system title: replay and gap detection.

A meter increments its invocation counter for every ciphered push. A frame
whose counter is not above the last one *accepted* from the same system title
is a replay or a duplicate; a jump forward means pushes were missed. Only
frames that decrypted or verified may advance the counter, so a forged or
garbled frame can never lock out the real meter.

``InvocationTracker`` is pure and in memory; ``amsread.app.statefile`` keeps
it in a file across restarts (``--state-file``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

#: A HAN port has one meter; a few more titles cover meter exchanges and test
#: captures. The least recently accepted title is forgotten beyond this.
MAX_SYSTEM_TITLES = 64


class InvocationTracker:
    """The last accepted invocation counter per system title (bounded)."""

    def __init__(
        self,
        last: Mapping[bytes, int] | None = None,
        *,
        max_titles: int = MAX_SYSTEM_TITLES,
    ) -> None:
        if max_titles < 1:
            raise ValueError("max_titles must be at least 1")
        self.max_titles = max_titles
        self._last: OrderedDict[bytes, int] = OrderedDict()
        #: Increases with every change, so a saver knows when to write.
        self.generation = 0
        for title, counter in (last or {}).items():
            self._remember(title, counter)

    def __len__(self) -> int:
        return len(self._last)

    def last(self, system_title: bytes) -> int | None:
        """The last accepted counter for this title, or None if none was."""
        return self._last.get(system_title)

    def is_replay(self, system_title: bytes, counter: int) -> bool:
        """True if ``counter`` is not above the last accepted one for this title."""
        last = self._last.get(system_title)
        return last is not None and counter <= last

    def missed(self, system_title: bytes, counter: int) -> int:
        """The pushes ``accept`` would count as missed before ``counter``; changes nothing."""
        last = self._last.get(system_title)
        return 0 if last is None or counter <= last else counter - last - 1

    def accept(self, system_title: bytes, counter: int) -> int:
        """Record a frame that decrypted or verified; return the pushes missed before it.

        A counter at or below the last one (allowed replays) never moves it back.
        """
        last = self._last.get(system_title)
        if last is not None and counter <= last:
            self._last.move_to_end(system_title)
            return 0
        self._remember(system_title, counter)
        self.generation += 1
        return 0 if last is None else counter - last - 1

    def snapshot(self) -> dict[str, int]:
        """Titles (upper-case hex) to counters, oldest first: the state file's content."""
        return {title.hex().upper(): counter for title, counter in self._last.items()}

    def _remember(self, system_title: bytes, counter: int) -> None:
        self._last[system_title] = counter
        self._last.move_to_end(system_title)
        while len(self._last) > self.max_titles:
            self._last.popitem(last=False)
