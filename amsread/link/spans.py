"""Where each field of a frame sits, as the framer found it, sans I/O.

A ``Span`` names one field and its bytes ``[start, end)``, counted from the
frame's first byte (its opening flag or start byte): the frame's ``offset``
plus a span's start is where the field sits in the stream. Frames compute
their spans on request from what the framer already cut out, so a frame that
nobody explains costs nothing more; a rejection gets the spans of the header
the framer read before it gave up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# HDLC, in frame order.
FLAG = "flag"
FORMAT = "format"
DESTINATION = "destination"
SOURCE = "source"
CONTROL = "control"
HCS = "hcs"
LLC = "llc"
#: HDLC: the information field after the LLC header; M-Bus: what follows CI
#: (and the transport header of a DLMS segment).
INFORMATION = "information"
FCS = "fcs"

# M-Bus, in frame order (``ack`` is the single-character frame).
START = "start"
LENGTH = "length"
SECOND_START = "second start"
ADDRESS = "address"
CI = "ci"
TRANSPORT = "transport header"
CHECKSUM = "checksum"
STOP = "stop"
ACK = "ack"


class Span(NamedTuple):
    """One field of a frame: ``name`` and its bytes, from the frame's first byte."""

    name: str
    start: int
    end: int

    def of(self, raw: bytes) -> bytes:
        """The field's bytes in ``raw`` (the frame from its first byte)."""
        return raw[self.start : self.end]


def find_span(spans: Sequence[Span], name: str) -> Span | None:
    """The first span called ``name``; None if the frame has no such field."""
    for span in spans:
        if span.name == name:
            return span
    return None
