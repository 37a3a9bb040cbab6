"""``--mqtt-spool DIR``: the MQTT queue on disk while the broker is away.

One file, ``DIR/mqtt-queue.jsonl``, one batch (a message's publishes) per
line. It is written only while the broker is unreachable (so an SD card is
not worn by a healthy system), deleted once the queue has drained, and read
back at start-up, so a restart of amsread loses nothing. It is bounded: when
it holds more than twice the queue's bound, it is rewritten from the
(bounded) in-memory queue.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from amsread.errors import UsageError

#: One publish: topic, payload, retained.
Publish = tuple[str, str, bool]
#: One message's publishes, with the meter they belong to.
Batch = tuple[str, tuple[Publish, ...]]

SPOOL_NAME = "mqtt-queue.jsonl"


class Spool:
    def __init__(self, directory: str, bound: int) -> None:
        path = Path(directory)
        if not path.is_dir():
            raise UsageError(f"--mqtt-spool {directory} is not a directory: create it first")
        if not os.access(path, os.W_OK):
            raise UsageError(f"--mqtt-spool {directory} is not writable by this user")
        self.path = path / SPOOL_NAME
        self.bound = bound
        self._lines = 0
        self.error: str | None = None

    def load(self) -> list[Batch]:
        """The batches a previous run left, oldest first (a torn last line is skipped)."""
        batches: list[Batch] = []
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return batches
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror}"
            return batches
        for line in text.splitlines():
            with contextlib.suppress(ValueError, TypeError):
                meter, publishes = json.loads(line)
                batches.append(
                    (str(meter), tuple((str(t), str(p), bool(r)) for t, p, r in publishes))
                )
        self._lines = len(batches)
        return batches[-self.bound :]

    def append(self, batch: Batch) -> bool:
        """Add one batch; False when the file should be rewritten (too long)."""
        self._write("a", [batch])
        self._lines += 1
        return self._lines <= 2 * self.bound

    def rewrite(self, batches: Iterable[Batch]) -> None:
        """Replace the file with ``batches`` (via a temporary file: a crash keeps the old)."""
        kept = list(batches)
        if not kept:
            self.clear()
            return
        self._write("w", kept, replace=True)
        self._lines = len(kept)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._lines = 0

    def _write(self, mode: str, batches: list[Batch], *, replace: bool = False) -> None:
        target = self.path.with_suffix(".tmp") if replace else self.path
        text = "".join(
            json.dumps([meter, publishes], ensure_ascii=False, separators=(",", ":")) + "\n"
            for meter, publishes in batches
        )
        try:
            with open(target, mode, encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.replace(target, self.path)
            self.error = None
        except OSError as exc:
            self.error = f"cannot write {target}: {exc.strerror}"
