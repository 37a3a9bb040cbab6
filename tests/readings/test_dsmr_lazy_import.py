"""The DSMR and M-Bus code is loaded only by a pipeline that reads those framings.

``amsread decode`` of one HDLC frame is a start-up: it should not pay for the
DSMR parser, the M-Bus framer or the framing detection.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import seed_vectors as sv

DSMR_AND_MBUS = (
    "amsread.link.dsmr",
    "amsread.link.mbus",
    "amsread.link.detect",
    "amsread.readings.dsmr",
    "amsread.readings.telegrams",
)

SCRIPT = """
import sys
from amsread.dlms.keys import Keys
from amsread.model import Message
from amsread.pipeline import Pipeline
keys = Keys(bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4]))
pipeline = Pipeline(keys, framing=sys.argv[1], clock=lambda: 0.0)
events = pipeline.feed(bytes.fromhex(sys.argv[2])) + pipeline.close()
print(sum(isinstance(event, Message) for event in events))
print(" ".join(sorted(name for name in sys.modules if name in {names!r})))
"""


def loaded_after(framing: str, data: bytes) -> tuple[int, set[str]]:
    """How many messages a fresh interpreter's pipeline gave, and which of the modules it loaded."""
    script = SCRIPT.format(names=set(DSMR_AND_MBUS))
    result = subprocess.run(
        [sys.executable, "-c", script, framing, data.hex(), sv.RADIUS_KEY, sv.RADIUS_AUTH_KEY],
        capture_output=True,
        text=True,
        check=True,
    )
    messages, names = result.stdout.splitlines()
    return int(messages), set(names.split())


def test_an_hdlc_pipeline_loads_no_dsmr_or_mbus_code() -> None:
    messages, loaded = loaded_after("hdlc", sv.RADIUS_FRAME)
    assert messages == 1
    assert loaded == set()


def test_a_dsmr_pipeline_loads_what_it_reads_telegrams_with() -> None:
    telegram = (
        pathlib.Path(__file__).parent.parent / "corpus" / "dsmr" / "v5_iskra.txt"
    ).read_bytes()
    messages, loaded = loaded_after("dsmr", telegram)
    assert messages == 1
    assert {"amsread.link.dsmr", "amsread.readings.dsmr", "amsread.readings.telegrams"} <= loaded
