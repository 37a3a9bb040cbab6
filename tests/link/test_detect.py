"""One framing auto-detection: the auto link, explain and the capture redactor agree."""

from __future__ import annotations

import pathlib

import pytest
import seed_vectors as sv
from builders import LLC, hdlc_frame, mbus_frame, mbus_short
from noisy import noisy_line

from amsread.diagnose.explain import explain_stream
from amsread.diagnose.explain.analyse import Explainer
from amsread.diagnose.redact import CaptureRedactor
from amsread.link.detect import FramingDetector, detect_framing, is_evidence
from amsread.link.framing import AutoLink
from amsread.link.hdlc import HdlcFramer
from amsread.link.mbus import MbusFramer
from amsread.link.spans import find_span
from amsread.model import Notice, Rejected

DSMR_TELEGRAM = (
    pathlib.Path(__file__).parent.parent / "corpus" / "dsmr" / "v4_2_kaifa.txt"
).read_bytes()


def truncated_mbus() -> bytes:
    return sv.KAIFA_NOE_MBUS[:40]


def auto_framing(data: bytes, chunk: int = 0) -> str:
    """The framing the pipeline's auto link settles on, fed ``chunk`` bytes at a time."""
    link = AutoLink()
    step = chunk or len(data)
    for at in range(0, len(data), step):
        link.feed(data[at : at + step])
    link.close()
    return link.name


@pytest.mark.parametrize(
    ("data", "framing"),
    [
        (sv.RADIUS_FRAME, "hdlc"),
        (sv.AM550_STREAM, "hdlc"),
        (sv.KAIFA_NOE_MBUS, "mbus"),
        (sv.SAGEMCOM_T210D_MBUS, "mbus"),
        (DSMR_TELEGRAM, "dsmr"),
    ],
)
def test_the_auto_link_and_the_whole_input_detection_name_the_same_framing(
    data: bytes, framing: str
) -> None:
    assert detect_framing(data).framing == framing
    assert auto_framing(data) == framing
    assert auto_framing(data, chunk=7) == framing


def test_explain_reads_the_framing_the_auto_link_detects() -> None:
    # Only a cut M-Bus frame: no valid frame, the damage says M-Bus to both.
    data = truncated_mbus()
    assert detect_framing(data).framing == "mbus"
    report = explain_stream(data)
    assert [s.summary for s in report.sections] == ["M-Bus frame damaged on the line"]
    link = AutoLink()
    events = link.feed(data) + link.close()
    assert link.name == "auto"  # undecided: no frame was evidence
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert [e.reason for e in rejected] == ["truncated"]
    assert find_span(rejected[0].spans, "second start") is not None  # the M-Bus framer's


def test_with_nothing_seen_hdlc_is_the_likeliest() -> None:
    assert FramingDetector().likeliest() == "hdlc"
    assert detect_framing(b"").framing == "hdlc"


def test_the_capture_redactor_locks_onto_the_detected_framing() -> None:
    redactor = CaptureRedactor()
    out = redactor.feed(sv.KAIFA_NOE_MBUS) + redactor.close()
    assert redactor.framing == "mbus" == detect_framing(sv.KAIFA_NOE_MBUS).framing
    assert len(out) == len(sv.KAIFA_NOE_MBUS) and out != sv.KAIFA_NOE_MBUS


def test_only_checksum_valid_frames_of_their_kind_are_evidence() -> None:
    hdlc = HdlcFramer().feed(hdlc_frame(LLC + b"\x0f"))
    mbus = MbusFramer().feed(mbus_frame(b"\x01\x67\x0f") + mbus_short() + b"\xe5")
    assert [is_evidence(e) for e in hdlc] == [True]
    assert [is_evidence(e) for e in mbus] == [True, False, False]


def test_short_m_bus_frames_alone_do_not_decide() -> None:
    detector = FramingDetector()
    detector.observe("mbus", MbusFramer().feed(mbus_short() * 3))
    assert detector.detected is None


def test_the_framing_with_more_valid_frames_wins_and_hdlc_wins_a_tie() -> None:
    one_each = hdlc_frame(LLC + b"\x0f") + mbus_frame(b"\x01\x67\x0f")
    assert detect_framing(one_each).framing == "hdlc"
    assert detect_framing(one_each).evidence == {"hdlc": 1, "mbus": 1, "dsmr": 0}
    more_mbus = one_each + mbus_frame(b"\x01\x67\x0f")
    assert detect_framing(more_mbus).framing == "mbus"


def test_the_auto_link_says_which_framing_it_detected() -> None:
    link = AutoLink()
    events = link.feed(sv.KAIFA_NOE_MBUS)
    assert isinstance(events[0], Notice) and events[0].what == "framing_detected"
    assert "M-Bus" in events[0].detail


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_noisy_lines_explain_and_the_auto_link_settle_on_the_same_framing(
    link: str, seed: int
) -> None:
    data = noisy_line(30, seed, link=link, damage_rate=0.3).data
    explainer = Explainer()
    explainer.stream(data, "input", 0)
    assert explainer.link == auto_framing(data) == link
