"""The package root is the public API: the pipeline, its events and the errors."""

import subprocess
import sys

import pytest
from seed_vectors import RADIUS_AUTH_KEY, RADIUS_FRAME, RADIUS_KEY, RADIUS_READINGS

import amsread


def test_the_documented_use_decodes_a_real_frame() -> None:
    keys = amsread.Keys(bytes.fromhex(RADIUS_KEY), bytes.fromhex(RADIUS_AUTH_KEY))
    events = amsread.Pipeline(keys).feed(RADIUS_FRAME)
    messages = [e for e in events if isinstance(e, amsread.Message)]
    assert len(messages) == 1
    readings = messages[0].readings
    assert all(isinstance(reading, amsread.Reading) for reading in readings)
    decoded = {reading.obis: (reading.obis, reading.value, reading.unit) for reading in readings}
    assert [decoded[obis] for obis, _, _ in RADIUS_READINGS] == RADIUS_READINGS


def test_every_name_in_all_resolves() -> None:
    for name in amsread.__all__:
        assert getattr(amsread, name) is not None
    assert issubclass(amsread.DecodeError, amsread.AmsreadError)
    assert issubclass(amsread.UsageError, amsread.AmsreadError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = amsread.nothing  # type: ignore[attr-defined]


def test_importing_the_package_loads_no_decoder() -> None:
    code = "import sys, amsread; print(sorted(m for m in sys.modules if m.startswith('amsread')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['amsread']"
