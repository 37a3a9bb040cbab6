"""Invocation-counter tracking per system title: replay and gap detection.

A meter increments its invocation counter for every ciphered push. A frame
whose counter is not above the last one *accepted* from the same system title
is a replay or a duplicate; a jump forward means pushes were missed. Only
frames that decrypted or verified may advance the counter, so a forged or
garbled frame can never lock out the real meter.

``InvocationTracker`` is pure and in memory. ``load_state``/``StateFile`` are
the thin I/O around it: an optional JSON file, written atomically and at most
every ``SAVE_INTERVAL`` seconds, so that a restart does not accept old frames.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

from amsread.errors import UsageError

#: A HAN port has one meter; a few more titles cover meter exchanges and test
#: captures. The least recently accepted title is forgotten beyond this.
MAX_SYSTEM_TITLES = 64
#: Seconds between state-file writes while running (and once more at exit).
SAVE_INTERVAL = 30.0
STATE_VERSION = 1
SYSTEM_TITLE_SIZE = 8
MAX_COUNTER = 0xFFFFFFFF
#: A state file is a few hundred bytes; refuse to parse anything huge.
MAX_STATE_FILE_SIZE = 1 << 16


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


# -- persistence (thin I/O) ------------------------------------------------


def load_state(path: str, *, max_titles: int = MAX_SYSTEM_TITLES) -> InvocationTracker:
    """A tracker from the state file at ``path``; empty if the file does not exist yet."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_STATE_FILE_SIZE + 1)
    except FileNotFoundError:
        if not Path(path).parent.is_dir():
            raise UsageError(f"state file directory does not exist: {Path(path).parent}") from None
        return InvocationTracker(max_titles=max_titles)
    except OSError as exc:
        raise UsageError(f"cannot read state file {path}: {exc.strerror}") from None
    return InvocationTracker(_parse_state(raw, path), max_titles=max_titles)


class StateFileInvalid(UsageError):
    """The state file holds no valid state (corrupt, empty, another program's)."""


def _parse_state(raw: bytes, path: str) -> dict[bytes, int]:
    def invalid(why: str) -> UsageError:
        return StateFileInvalid(
            f"state file {path} is not valid amsread state ({why}); delete it to start afresh"
        )

    if len(raw) > MAX_STATE_FILE_SIZE:
        raise invalid("too large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("not JSON") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise invalid(f"version {STATE_VERSION} expected")
    counters = data.get("invocation_counters")
    if not isinstance(counters, dict):
        raise invalid("no invocation_counters")
    out: dict[bytes, int] = {}
    for title, counter in counters.items():
        try:
            key = bytes.fromhex(title)
        except ValueError:
            raise invalid("a system title is not hex") from None
        if len(key) != SYSTEM_TITLE_SIZE:
            raise invalid("a system title is not 8 bytes")
        if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
            raise invalid("a counter is not a 32-bit unsigned integer")
        out[key] = counter
    return out


def save_state(path: str, tracker: InvocationTracker) -> None:
    """Write the tracker atomically: a temporary file in the same directory, then rename."""
    text = json.dumps(
        {"version": STATE_VERSION, "invocation_counters": tracker.snapshot()}, indent=1
    )
    target = Path(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write state file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise UsageError(f"cannot write state file {path}: {exc.strerror}") from None


class StateFile:
    """Saves a tracker to ``path`` when it changed, at most every ``interval`` seconds."""

    def __init__(
        self,
        path: str,
        tracker: InvocationTracker,
        *,
        interval: float = SAVE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.tracker = tracker
        self.interval = interval
        self._clock = clock
        self._saved_generation = tracker.generation
        # The first change is written at once; later ones at most every interval.
        self._saved_at = -math.inf
        #: The last write error, if the last attempt failed.
        self.error: str | None = None

    @property
    def dirty(self) -> bool:
        return self.tracker.generation != self._saved_generation

    def maybe_save(self) -> bool:
        """Save if something changed and the interval has passed; never raises.

        A failed write is kept in ``error`` and retried after the interval: a
        full disk must not stop a meter reader.
        """
        now = self._clock()
        if not self.dirty or now - self._saved_at < self.interval:
            return False
        self._saved_at = now
        try:
            self.save()
        except UsageError as exc:
            self.error = str(exc)
            return False
        return True

    def save(self) -> None:
        """Save now if anything changed (at exit); raises UsageError if it cannot."""
        if not self.dirty:
            return
        generation = self.tracker.generation
        save_state(self.path, self.tracker)
        self._saved_generation = generation
        self.error = None
