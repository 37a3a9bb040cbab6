"""The one framing auto-detection, sans I/O: which link layer the bytes from the line use.

The HDLC, M-Bus and DSMR framers read the same bytes. A checksum-valid frame
of its kind is evidence of a framing; the framing with the most evidence wins
(HDLC, then M-Bus, then DSMR on a tie). While nothing is evidence, the framing
whose rejections look most like damaged frames of its kind is the likeliest.

One rule for everyone who must choose: the ``auto`` link of the pipeline
(``framing.AutoLink``), explain's analysis of a stream and the capture
redactor. So ``explain`` cannot name another framing than ``listen`` uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from amsread.link.dsmr import DSMR_LINE, DsmrEvent, DsmrFramer, Telegram
from amsread.link.hdlc import HdlcEvent, HdlcFrame, HdlcFramer
from amsread.link.mbus import MbusEvent, MbusFrame, MbusFramer
from amsread.model import Rejected

#: The framings detected, in the order that breaks a tie.
CANDIDATES = ("hdlc", "mbus", "dsmr")

FramerEvent = HdlcEvent | MbusEvent | DsmrEvent
Framer = HdlcFramer | MbusFramer | DsmrFramer


def make_framer(framing: str) -> Framer:
    """A fresh framer for one of ``CANDIDATES``."""
    framers: dict[str, type[Framer]] = {"hdlc": HdlcFramer, "mbus": MbusFramer, "dsmr": DsmrFramer}
    return framers[framing]()


def is_evidence(event: object) -> bool:
    """True for a frame whose checksum tells its framing from noise.

    An M-Bus short frame is no evidence (random noise holds a valid one once
    in 16 MiB), nor is an ACK (one byte). DSMR 2.2/3 telegrams carry no CRC:
    their data lines are the evidence then. A ciphered telegram has no
    checksum on the line (only decryption checks it).
    """
    if isinstance(event, HdlcFrame):
        return True
    if isinstance(event, MbusFrame):
        return event.kind == "long"
    if isinstance(event, Telegram):
        return event.crc is not None or DSMR_LINE.search(event.raw) is not None
    return False


class FramingDetector:
    """Counts each framing's evidence (and damage) in the events its framer gave."""

    def __init__(self) -> None:
        self._evidence = dict.fromkeys(CANDIDATES, 0)
        self._damage = dict.fromkeys(CANDIDATES, 0)

    def observe(self, framing: str, events: Iterable[object]) -> None:
        """Take note of ``events``, which the ``framing``'s framer gave."""
        for event in events:
            if is_evidence(event):
                self._evidence[framing] += 1
            elif isinstance(event, Rejected) and event.reason != "garbage":
                self._damage[framing] += 1

    @property
    def evidence(self) -> dict[str, int]:
        """How many frames so far were evidence of each framing."""
        return dict(self._evidence)

    @property
    def detected(self) -> str | None:
        """The framing with the most evidence; None while no frame is evidence."""
        best = max(CANDIDATES, key=self._evidence.__getitem__)
        return best if self._evidence[best] else None

    def likeliest(self) -> str:
        """The detected framing, or else the one whose rejections look like its damaged frames."""
        return self.detected or max(CANDIDATES, key=self._damage.__getitem__)


@dataclass(frozen=True, slots=True)
class Detection:
    """The likeliest framing of a whole input, and what each candidate framer found in it."""

    framing: str
    hdlc: list[HdlcEvent]
    mbus: list[MbusEvent]
    dsmr: list[DsmrEvent]
    #: Frames that were evidence of each framing (``is_evidence``).
    evidence: dict[str, int] = dataclasses.field(default_factory=dict)


def detect_framing(data: bytes) -> Detection:
    """Run every candidate framer over ``data``: the framing, as the auto link would detect it."""
    hdlc, mbus, dsmr = HdlcFramer(), MbusFramer(), DsmrFramer()
    found = Detection(
        "",
        [*hdlc.feed(data), *hdlc.close()],
        [*mbus.feed(data), *mbus.close()],
        [*dsmr.feed(data), *dsmr.close()],
    )
    detector = FramingDetector()
    for framing in CANDIDATES:
        detector.observe(framing, getattr(found, framing))
    return dataclasses.replace(found, framing=detector.likeliest(), evidence=detector.evidence)
