"""Which link layer turns the bytes from the line into messages, sans I/O.

* ``hdlc``: HDLC frames (IEC 62056-46), segmented frames joined;
* ``mbus``: wired M-Bus long frames carrying DLMS transport segments;
* ``dsmr``: DSMR P1 text telegrams (``/`` … ``!CRC``), plain or inside a
  general-glo-ciphering APDU (Luxembourg Smarty, Austrian P1);
* ``raw``: hex text, one message per line (an APDU, optionally after the LLC
  header), as some gateways deliver it;
* ``auto``: feeds the same bytes to the HDLC, M-Bus and DSMR links and locks
  onto the framing that ``detect.FramingDetector`` names from their framers'
  first checksum-valid frames, saying which with an info-level ``Notice``.

Every link hands up ``LinkMessage`` (one whole message, or a valid frame with
nothing to decode, named in ``skip``), ``Rejected`` and ``Notice`` events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol

from amsread.errors import UsageError
from amsread.link.hdlc import HdlcFrame, HdlcMessageEvent, HdlcReassembler
from amsread.link.segments import M, Reassembler
from amsread.model import Notice, Rejected, Skipped

# The M-Bus and DSMR framers and the detection (which loads every framer) are
# imported by the links that use them: `amsread decode` of one HDLC frame is
# a start-up, and it need not load the framings it does not read.
if TYPE_CHECKING:
    from amsread.link.detect import FramerEvent
    from amsread.link.dsmr import DsmrEvent
    from amsread.link.mbus import MbusFrame, MbusMessage, MbusMessageEvent

    #: What the M-Bus reassembler hands the link.
    MbusJoined = MbusMessage | MbusFrame | Notice

FRAMINGS = ("auto", "hdlc", "mbus", "dsmr", "raw")
LABELS = {"hdlc": "HDLC", "mbus": "M-Bus", "dsmr": "DSMR P1 telegram", "raw": "hex lines"}
#: Events each candidate may hold while auto-detection is undecided.
MAX_HELD = 64
#: Longest line the raw link accepts (hex digits and separators).
MAX_LINE = 64 * 1024
#: Kept of rejected bytes, for diagnostics.
MAX_REJECTED_KEEP = 64


@dataclass(frozen=True, slots=True)
class LinkMessage:
    """One message from the link layer.

    ``payload`` is the APDU, maybe after an LLC header. ``skip`` is set instead
    for valid frames that carry nothing to decode, and names them. ``frames``
    counts the frames it took; ``checked`` is False for frames no checksum
    protects (an M-Bus ``E5``) or protects too weakly to tell the framing from
    noise (an M-Bus short frame): ``detect.is_evidence`` on the frame, the rule
    by which the auto-detection (which counts the framer's frames) decides.
    """

    payload: bytes
    frames: int = 1
    skip: str | None = None
    checked: bool = True
    #: The payload is a DSMR telegram (text, or the ciphered APDU that carries one).
    telegram: bool = False


LinkEvent = LinkMessage | Rejected | Notice
#: A link's events with the framer's events they came from.
Framed = tuple[list["FramerEvent"], list[LinkEvent]]


class Link(Protocol):
    @property
    def name(self) -> str: ...

    def feed(self, data: bytes | bytearray | memoryview) -> list[LinkEvent]: ...

    def close(self) -> list[LinkEvent]: ...


class _JoinedLink(Generic[M]):
    """A reassembler's events (``M``: its messages), each turned into a link event."""

    name: str

    def __init__(
        self,
        reassembler: Reassembler[Any, M],
        link_event: Callable[[M | Rejected | Skipped], LinkEvent],
    ) -> None:
        self.reassembler = reassembler
        self._link_event = link_event

    def feed(self, data: bytes | bytearray | memoryview) -> list[LinkEvent]:
        return [self._link_event(e) for e in self.reassembler.feed(data)]

    def close(self) -> list[LinkEvent]:
        return [self._link_event(e) for e in self.reassembler.close()]

    def feed_framed(self, data: bytes | bytearray | memoryview) -> Framed:
        """As ``feed``, handing back the framer's events too: evidence for the detection."""
        frames = self.reassembler.framer.feed(data)
        return frames, [self._link_event(e) for e in self.reassembler.reassemble(frames)]

    def close_framed(self) -> Framed:
        frames = self.reassembler.framer.close()
        return frames, [self._link_event(e) for e in self.reassembler.finish(frames)]

    def forget_garbage(self) -> None:
        self.reassembler.framer.forget_garbage()


class HdlcLink(_JoinedLink[HdlcFrame]):
    """HDLC frames, segmented ones joined."""

    name = "hdlc"

    def __init__(self) -> None:
        super().__init__(HdlcReassembler(), _from_hdlc)


def _from_hdlc(event: HdlcMessageEvent) -> LinkEvent:
    if isinstance(event, HdlcFrame):
        if event.information:
            return LinkMessage(event.information, event.segments)
        return LinkMessage(b"", skip=f"{event.control_name} frame without information field")
    if isinstance(event, Skipped):
        return LinkMessage(b"", skip=event.what)
    return event


class MbusLink(_JoinedLink["MbusJoined"]):
    """Wired M-Bus long frames, DLMS transport segments joined."""

    name = "mbus"

    def __init__(self) -> None:
        from amsread.link.mbus import MbusReassembler

        super().__init__(MbusReassembler(), _mbus_link_event())


def _mbus_link_event() -> Callable[[MbusMessageEvent], LinkEvent]:
    """The M-Bus reassembler's event to a link event (made when a link needs it: lazy imports)."""
    from amsread.link.detect import is_evidence
    from amsread.link.mbus import MbusFrame, MbusMessage

    def link_event(event: MbusMessageEvent) -> LinkEvent:
        if isinstance(event, Rejected | Notice):
            return event
        if isinstance(event, Skipped):
            return LinkMessage(b"", skip=event.what)
        if isinstance(event, MbusFrame):
            return LinkMessage(b"", skip=event.describe(), checked=is_evidence(event))
        assert isinstance(event, MbusMessage)
        return LinkMessage(event.apdu, event.frames)

    return link_event


class DsmrLink:
    """DSMR P1 telegrams: text, or ciphered (Smarty); the CRC checked here."""

    name = "dsmr"

    def __init__(self) -> None:
        from amsread.link.dsmr import DsmrFramer

        self.framer = DsmrFramer()
        self._link_event = _dsmr_link_event()

    def feed(self, data: bytes | bytearray | memoryview) -> list[LinkEvent]:
        link_event = self._link_event
        return [link_event(e) for e in self.framer.feed(data)]

    def close(self) -> list[LinkEvent]:
        link_event = self._link_event
        return [link_event(e) for e in self.framer.close()]

    def feed_framed(self, data: bytes | bytearray | memoryview) -> Framed:
        events = self.framer.feed(data)
        return list(events), [self._link_event(e) for e in events]

    def close_framed(self) -> Framed:
        events = self.framer.close()
        return list(events), [self._link_event(e) for e in events]

    def forget_garbage(self) -> None:
        self.framer.forget_garbage()


def _dsmr_link_event() -> Callable[[DsmrEvent], LinkEvent]:
    """The DSMR framer's event to a link event (made when a link needs it: lazy imports)."""
    from amsread.link.detect import is_evidence
    from amsread.link.dsmr import CipheredTelegram, Telegram

    def link_event(event: DsmrEvent) -> LinkEvent:
        if isinstance(event, Rejected):
            return event
        if isinstance(event, Telegram):
            return LinkMessage(event.raw, checked=is_evidence(event), telegram=True)
        assert isinstance(event, CipheredTelegram)
        # No checksum on the line: decryption is the only check, so no evidence for auto.
        return LinkMessage(event.raw, checked=False, telegram=True)

    return link_event


_HEX_NOISE = re.compile(rb"0[xX]|[\s:,;\-_]|\\x")
_NOT_HEX = re.compile(rb"[^0-9a-fA-F]")


class RawLink:
    """Hex text, one message per line; ``#`` starts a comment."""

    name = "raw"

    def __init__(self) -> None:
        self._buf = bytearray()
        # Bytes of an overlong line still to be dropped, up to its newline.
        self._skipping = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[LinkEvent]:
        buf = self._buf
        buf += data
        out: list[LinkEvent] = []
        start = 0
        while (newline := buf.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
                out.append(_overlong(newline - start, bytes(buf[start : start + 16])))
            else:
                self._line(bytes(buf[start:newline]), out)
            start = newline + 1
        del buf[:start]
        if len(buf) > MAX_LINE:
            if not self._skipping:
                out.append(_overlong(len(buf), bytes(buf[:MAX_REJECTED_KEEP])))
            self._skipping = True
            buf.clear()
        return out

    def close(self) -> list[LinkEvent]:
        out: list[LinkEvent] = []
        if self._buf and not self._skipping:
            self._line(bytes(self._buf), out)
        self._buf.clear()
        self._skipping = False
        return out

    @staticmethod
    def _line(line: bytes, out: list[LinkEvent]) -> None:
        compact = _HEX_NOISE.sub(b"", line.split(b"#", 1)[0])
        if not compact:
            return
        bad = _NOT_HEX.search(compact)
        if bad or len(compact) % 2:
            why = (
                f"unexpected character {bad.group().decode('latin-1')!r}"
                if bad
                else f"odd number of hex digits ({len(compact)})"
            )
            detail = f"not a line of hex: {why}"
            out.append(Rejected("bad_hex", len(line), line[:MAX_REJECTED_KEEP], detail))
            return
        out.append(LinkMessage(bytes.fromhex(compact.decode("ascii"))))


def _overlong(size: int, head: bytes) -> Rejected:
    detail = f"a line longer than {MAX_LINE} characters is no single message"
    return Rejected("bad_hex", size, head, detail)


class AutoLink:
    """Tries HDLC, M-Bus and DSMR on the same bytes; locks onto the one detected.

    Until ``FramingDetector`` names a framing from its framer's checksum-valid
    frames, each candidate's events are held. On lock the winner's held
    events (garbage before the first frame included) are handed up after a
    ``framing_detected`` notice, and the other candidates are dropped.
    Undecided at the end of the stream, or with too many events held, the
    likeliest candidate (the detector's choice by damaged frames) reports them.
    """

    def __init__(self) -> None:
        from amsread.link.detect import FramingDetector

        self._candidates: dict[str, HdlcLink | MbusLink | DsmrLink] = {
            "hdlc": HdlcLink(),
            "mbus": MbusLink(),
            "dsmr": DsmrLink(),
        }
        self._held: dict[str, list[LinkEvent]] = {name: [] for name in self._candidates}
        self._detector = FramingDetector()
        self._locked: Link | None = None
        self._head = bytearray()
        self._hinted = False

    @property
    def name(self) -> str:
        return self._locked.name if self._locked is not None else "auto"

    def feed(self, data: bytes | bytearray | memoryview) -> list[LinkEvent]:
        if self._locked is not None:
            return self._locked.feed(data)
        if len(self._head) < MAX_REJECTED_KEEP:
            self._head += bytes(data[: MAX_REJECTED_KEEP - len(self._head)])
        for name, link in self._candidates.items():
            frames, events = link.feed_framed(data)
            self._detector.observe(name, frames)
            self._held[name] += events
        return self._decide(final=False)

    def close(self) -> list[LinkEvent]:
        if self._locked is not None:
            return self._locked.close()
        for name, link in self._candidates.items():
            frames, events = link.close_framed()
            self._detector.observe(name, frames)
            self._held[name] += events
        return self._decide(final=True)

    def _decide(self, *, final: bool) -> list[LinkEvent]:
        best = self._detector.detected
        if best is not None:
            self._locked = self._candidates[best]
            notice = Notice(
                "framing_detected",
                f"{LABELS[best]} framing detected from the first checksum-valid frames",
                "info",
            )
            return [notice, *self._release(best)]
        if final or any(len(held) > MAX_HELD for held in self._held.values()):
            chosen = self._detector.likeliest()
            # The bytes just reported are garbage in progress for the other
            # candidates too: count them once, not again when a candidate locks.
            for name, link in self._candidates.items():
                if name != chosen:
                    link.forget_garbage()
            return self._hint() + self._release(chosen)
        return []

    def _release(self, name: str) -> list[LinkEvent]:
        out = self._held[name]
        self._held = {key: [] for key in self._candidates}
        return out

    def _hint(self) -> list[LinkEvent]:
        compact = _HEX_NOISE.sub(b"", bytes(self._head))
        if self._hinted or len(compact) < 8 or _NOT_HEX.search(compact):
            return []
        self._hinted = True
        return [
            Notice(
                "hex_text",
                "the input looks like hex text, not bytes from the line: use --framing raw"
                " (one message per line) or 'amsread decode --file'",
                "warning",
            )
        ]


def make_link(framing: str) -> Link:
    """The link layer for a ``--framing`` choice."""
    links: dict[str, type[HdlcLink | MbusLink | DsmrLink | RawLink | AutoLink]] = {
        "auto": AutoLink,
        "hdlc": HdlcLink,
        "mbus": MbusLink,
        "dsmr": DsmrLink,
        "raw": RawLink,
    }
    if framing not in links:
        raise UsageError(f"unknown framing {framing!r}: choose one of {', '.join(FRAMINGS)}")
    return links[framing]()


def framing_for_hex(data: bytes) -> str:
    """Pick the framing of one hex input by its first byte: 7E HDLC, 68 M-Bus, / DSMR, else raw."""
    if data[:1] == b"\x7e":
        return "hdlc"
    if data[:1] == b"\x68":
        return "mbus"
    if data[:1] == b"/":
        return "dsmr"
    return "raw"
