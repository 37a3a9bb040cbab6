"""Joining the segments of one message, sans I/O: what HDLC and M-Bus share.

A reassembler reads its framer's events and holds the frames of the message
it is joining. A damaged frame between them, or the end of the stream, drops
that partial message; the link's own rules (sequence numbers, addresses, size
limits) drop it too. A lost message is reported once, as one
``segments_lost`` rejection naming how many segments it had; the rest of it,
still to come, is ``Skipped`` (``_dropping``) rather than reported again or
decoded as a message of its own. Which frames end a lost message's rest is,
again, the link's own rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from amsread.link.scanner import MAX_REJECTED_KEEP
from amsread.model import Rejected, Skipped


class Segment(Protocol):
    @property
    def raw(self) -> bytes: ...


F = TypeVar("F", bound=Segment)
#: What a reassembler hands up besides ``Rejected`` and ``Skipped``.
M = TypeVar("M")


class Framer(Protocol[F]):
    @property
    def buffered(self) -> int: ...

    def feed(self, data: bytes | bytearray | memoryview) -> list[F | Rejected]: ...

    def close(self) -> list[F | Rejected]: ...

    def forget_garbage(self) -> None: ...


class Reassembler(ABC, Generic[F, M]):
    """Base of the reassemblers: frames ``F`` in, messages (and frames passed on) ``M`` out.

    A subclass says what to do with each valid frame (``_on_frame``): pass it
    on, ``_hold`` it as a segment, ``_take`` the segments of a message now
    complete, or ``_lose`` them.
    """

    def __init__(self, framer: Framer[F]) -> None:
        self.framer = framer
        self._frames: list[F] = []
        # Bytes the message will have: what counts against the link's size limit.
        self._size = 0
        # Set after a loss or damaged bytes: segments that follow belong to a
        # message that cannot be completed any more.
        self._dropping = False

    @property
    def buffered(self) -> int:
        """Bytes held: the framer's buffer plus the partial message."""
        return self.framer.buffered + self._size

    def feed(self, data: bytes | bytearray | memoryview) -> list[M | Rejected | Skipped]:
        return self.reassemble(self.framer.feed(data))

    def close(self) -> list[M | Rejected | Skipped]:
        return self.finish(self.framer.close())

    def finish(self, events: list[F | Rejected]) -> list[M | Rejected | Skipped]:
        """The framer's last events; then the end of stream: a partial message left is lost."""
        out = self.reassemble(events)
        if self._frames:
            self._lose(out, "the stream ended before its last segment")
        self._dropping = False
        return out

    def reassemble(self, events: list[F | Rejected]) -> list[M | Rejected | Skipped]:
        """Messages from framer events: what ``feed`` does after the framer has run.

        For callers that want the framer's events too (the auto-detection,
        explain): they run the framer and hand its events here.
        """
        out: list[M | Rejected | Skipped] = []
        for event in events:
            if isinstance(event, Rejected):
                out.append(event)
                if self._frames:
                    self._lose(out, f"a damaged frame ({event.reason}) came between its segments")
                # Segments after damaged bytes belong to a message already reported.
                self._dropping = True
            else:
                self._on_frame(event, out)
        return out

    @abstractmethod
    def _on_frame(self, frame: F, out: list[M | Rejected | Skipped]) -> None:
        """The link's own rules for one frame: hold it, pass it up, or lose the message."""

    def _hold(self, frame: F, size: int) -> None:
        """Keep ``frame`` as the next segment; ``size`` bytes of it join the message."""
        self._frames.append(frame)
        self._size += size

    def _take(self) -> list[F]:
        """The segments held, which the caller joins or drops; none are held after."""
        frames = self._frames
        self._frames, self._size = [], 0
        return frames

    def _lose(self, out: list[M | Rejected | Skipped], why: str) -> None:
        frames = self._take()
        size = sum(len(f.raw) for f in frames)
        detail = f"{len(frames)} segment(s) of a message dropped: {why}"
        out.append(Rejected("segments_lost", size, frames[0].raw[:MAX_REJECTED_KEEP], detail))
        self._dropping = True


def segment_lost(frame: Segment, detail: str) -> Rejected:
    """One frame that cannot join any message, as a ``segments_lost`` rejection."""
    return Rejected("segments_lost", len(frame.raw), frame.raw[:MAX_REJECTED_KEEP], detail)
