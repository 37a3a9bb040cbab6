"""What the HDLC and M-Bus framers share, sans I/O: the buffer and what is no frame.

A framer appends each feed to its buffer, scans it for frames and drops what it
has decided. Bytes that make no frame are reported, never lost silently: a
damaged frame at once (``Rejected`` with a reason), bytes skipped between
frames as one ``garbage`` event when the run ends, however many feeds it took
(a serial port that delivers noise byte by byte gives one event). Bytes of a
frame already rejected are not reported again as garbage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from amsread.link.spans import Span
from amsread.model import Rejected

#: Kept of a rejected region, for diagnostics; the rest is only counted.
MAX_REJECTED_KEEP = 64

F = TypeVar("F")


class Scanner(Generic[F]):
    """Base of the framers: their buffer, rejections and garbage (``F``: the frame type)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        #: Stream offset of the buffer's first byte (bytes fed and dropped before it).
        self._offset = 0
        # Bytes at the head of the buffer that belong to a frame already rejected.
        self._covered = 0
        self._garbage_size = 0
        self._garbage_head = bytearray()
        self._garbage_at = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _consume(self, size: int) -> None:
        """Drop the first ``size`` bytes of the buffer: they are decided."""
        del self._buf[:size]
        self._offset += size
        self._covered = max(0, self._covered - size)

    def _finish(self, events: list[F | Rejected]) -> None:
        """End of stream, after the last scan: report the garbage, hold nothing."""
        self._flush_garbage(events)
        self._offset += len(self._buf)
        self._buf.clear()
        self._covered = 0

    def _reject(
        self,
        events: list[F | Rejected],
        reason: str,
        start: int,
        end: int,
        detail: str,
        spans: Sequence[Span] = (),
    ) -> None:
        """Report ``buf[start:end]`` as a rejected frame (garbage before it first).

        ``spans``: the fields of the frame's header as the framer read them.
        """
        self._flush_garbage(events)
        data = bytes(self._buf[start : min(end, start + MAX_REJECTED_KEEP)])
        at = self._offset + start
        events.append(Rejected(reason, end - start, data, detail, at, tuple(spans)))
        self._covered = max(self._covered, end)

    def _garbage(self, start: int, end: int) -> None:
        """Note skipped bytes not already part of a rejected frame (reported when the run ends)."""
        start = max(start, self._covered)
        if end <= start:
            return
        if not self._garbage_size:
            self._garbage_at = self._offset + start
        room = MAX_REJECTED_KEEP - len(self._garbage_head)
        if room > 0:
            # Only the garbage itself: bytes after ``end`` may be the next frame.
            self._garbage_head += self._buf[start : min(end, start + room)]
        self._garbage_size += end - start
        self._covered = max(self._covered, end)

    def forget_garbage(self) -> None:
        """Drop the garbage run in progress unreported: another framer reported those bytes."""
        self._garbage_size = 0
        self._garbage_head = bytearray()

    def _flush_garbage(self, events: list[F | Rejected]) -> None:
        if self._garbage_size:
            head = bytes(self._garbage_head[:MAX_REJECTED_KEEP])
            events.append(Rejected("garbage", self._garbage_size, head, "", self._garbage_at))
            self._garbage_size = 0
            self._garbage_head = bytearray()
