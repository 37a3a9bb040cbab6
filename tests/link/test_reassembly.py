"""What the HDLC and M-Bus reassemblers share (amsread/reassembly.py): held bytes, loss reports."""

from __future__ import annotations

import pytest
from builders import LLC, hdlc_frame, mbus_segments

from amsread.link import hdlc, mbus
from amsread.link import scanner as scanning
from amsread.link import segments as reassembly
from amsread.link.hdlc import HdlcFrame, HdlcReassembler
from amsread.link.mbus import MbusMessage, MbusReassembler
from amsread.model import Rejected, Skipped

APDU = bytes(range(256)) * 2
LINKS = ["hdlc", "mbus"]


def segmented(link: str) -> tuple[HdlcReassembler | MbusReassembler, list[bytes], int]:
    """A fresh reassembler, one message in three segments of 200, 200 and 115 message
    bytes, and how many bytes of each frame its ``raw`` leaves out."""
    if link == "hdlc":
        information = LLC + APDU
        cuts = [information[:200], information[200:400], information[400:]]
        frames = [hdlc_frame(part, segmented=i < 2) for i, part in enumerate(cuts)]
        return HdlcReassembler(), frames, 1  # raw stops before the closing flag
    return MbusReassembler(), mbus_segments(APDU, [200, 200]), 0


def test_both_links_keep_the_same_limit_on_rejected_bytes() -> None:
    assert hdlc.MAX_REJECTED_KEEP == mbus.MAX_REJECTED_KEEP == scanning.MAX_REJECTED_KEEP


@pytest.mark.parametrize("link", LINKS)
def test_buffered_counts_the_partial_message_and_nothing_once_it_is_out(link: str) -> None:
    reassembler, frames, _ = segmented(link)
    assert reassembler.feed(frames[0]) == []
    assert reassembler.buffered == reassembler.framer.buffered + 200
    out = reassembler.feed(b"".join(frames[1:])) + reassembler.close()
    assert [type(e) for e in out] == [HdlcFrame if link == "hdlc" else MbusMessage]
    assert reassembler.buffered == 0


@pytest.mark.parametrize("link", LINKS)
def test_a_damaged_frame_between_segments_drops_the_message_with_all_its_bytes_counted(
    link: str,
) -> None:
    reassembler, (first, second, last), left_out = segmented(link)
    damaged = bytearray(last)
    damaged[len(damaged) // 2] ^= 0x40
    events = reassembler.feed(first + second + bytes(damaged) + last) + reassembler.close()
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert [e.reason for e in rejected][1:] == ["segments_lost"]
    lost = rejected[1]
    assert lost.size == len(first) + len(second) - 2 * left_out
    assert lost.data == first[: reassembly.MAX_REJECTED_KEEP]
    assert lost.detail.startswith("2 segment(s) of a message dropped: a damaged frame (")
    # The intact copy of the last segment is the rest of the lost message, not a message.
    assert [type(e) for e in events if not isinstance(e, Rejected)] == [Skipped]
    assert reassembler.buffered == 0


@pytest.mark.parametrize("link", LINKS)
def test_a_segment_without_those_before_it_is_one_loss_of_its_own_bytes(link: str) -> None:
    reassembler, (_first, second, last), left_out = segmented(link)
    events = reassembler.feed(second + last) + reassembler.close()
    assert isinstance(events[0], Rejected)
    assert events[0].reason == "segments_lost"
    assert events[0].size == len(second) - left_out
    assert "without the segments before it" in events[0].detail
    assert [type(e) for e in events[1:]] == [Skipped]


@pytest.mark.parametrize("link", LINKS)
def test_after_a_repeated_segment_the_rest_of_the_message_is_skipped_not_reported_again(
    link: str,
) -> None:
    reassembler, (first, second, last), _ = segmented(link)
    events = reassembler.feed(first + second + second + last) + reassembler.close()
    # The repeated segment and the last one: both the rest of the lost message.
    assert [type(e) for e in events] == [Rejected, Skipped, Skipped]
    assert isinstance(events[0], Rejected)
    assert events[0].detail.startswith("2 segment(s) of a message dropped: ")
    assert reassembler.buffered == 0
