"""``--state-file``: the replay guard's counters kept across restarts.

The file is JSON (``{"version": 1, "invocation_counters": {title: counter}}``),
written atomically and at most every ``SAVE_INTERVAL`` seconds, so that a
restart does not accept old frames. The guard itself is
``amsread.dlms.replay.InvocationTracker``, in memory and without I/O.

The state file only guards against replayed frames: losing it costs one
restart's worth of protection, while refusing to start costs every reading
until someone deletes it. So a corrupt or empty file is renamed aside (kept
for a look) with a warning, and amsread starts with no remembered counters.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from amsread.dlms.replay import MAX_SYSTEM_TITLES, InvocationTracker
from amsread.errors import UsageError

if TYPE_CHECKING:
    from amsread.app.log import Logger

#: Seconds between state-file writes while running (and once more at exit).
SAVE_INTERVAL = 30.0
STATE_VERSION = 1
SYSTEM_TITLE_SIZE = 8
MAX_COUNTER = 0xFFFFFFFF
#: A state file is a few hundred bytes; refuse to parse anything huge.
MAX_STATE_FILE_SIZE = 1 << 16


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


def aside_name(path: str, now: float | None = None) -> str:
    """Where a bad state file goes: beside it, named with the time it was found."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
    return f"{path}.corrupt-{stamp}"


def load_or_set_aside(path: str, log: Logger) -> InvocationTracker:
    """The tracker from ``path``; a file with no valid state is moved aside first.

    A directory that does not exist or a file that cannot be read are still
    configuration errors (UsageError): moving aside would not help there.
    """
    try:
        return load_state(path)
    except StateFileInvalid as exc:
        what = str(exc).split(";")[0]  # not its "delete it" advice: done here
        aside = aside_name(path)
        try:
            os.replace(path, aside)
        except OSError as move:
            log.warning(
                f"{what}; cannot move it aside: {move.strerror}; starting without it",
                hint="replayed frames are accepted until the next save",
            )
        else:
            log.warning(
                f"{what}; moved it to {aside} and starting afresh",
                hint="replay protection restarts from the next frame; nothing else is lost",
            )
        return InvocationTracker()
