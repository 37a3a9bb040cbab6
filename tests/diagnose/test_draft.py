"""`amsread profile draft`: from a capture of an unknown list to a profile naming every value."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.cli import cli
from amsread.diagnose.draft import draft_profile
from amsread.model import Message, Reading
from amsread.readings.profiles import parse_profile


def positional_apdu(energy: int, volts: int) -> str:
    """A list of bare values no built-in profile knows (built for the test)."""
    body = (
        "0208"
        "0908"
        + b"12345678".hex()  # leading text: the list id
        + f"12{volts:04x}12{volts + 5:04x}12{volts - 3:04x}"  # three voltages, 0.1 V
        + f"06{energy:08x}"  # a register that grows
        + "121387"  # 4999: 49.99 Hz in 0.01 Hz
        + "1000fa"  # a number nothing explains
        + "090c07ea0c0102173000ff800000"  # a date-time
    )
    return "0f0000000100" + body


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_draft_on_an_unknown_positional_list_then_decode_names_every_value(tmp_path: Path) -> None:
    capture = tmp_path / "unknown.hex"
    capture.write_text(positional_apdu(123456, 2301) + "\n" + positional_apdu(123460, 2310) + "\n")
    status, before, _ = run("decode", "--framing", "raw", "--file", str(capture))
    assert status == 0 and '"name":null' in before  # unnamed without a profile
    status, drafted, _ = run("profile", "draft", "--file", str(capture))
    assert status == 0
    assert "# inferred: about 230 V sent in 0.1 V" in drafted
    assert "check against your meter's display" in drafted
    profile = tmp_path / "drafted.toml"
    profile.write_text(drafted)
    status, out, _ = run(
        "decode", "--framing", "raw", "--file", str(capture), "--profile", str(profile)
    )
    assert status == 0
    import json

    for line in out.splitlines():
        message = json.loads(line)
        assert message["profile"] == "my-meter"
        assert len(message["readings"]) == 8
        assert all(r["name"] for r in message["readings"])
        voltage = next(r for r in message["readings"] if r["name"] == "voltage_l1")
        assert voltage["unit"] == "V" and 229 < voltage["value"] < 232


def test_draft_without_any_decoded_message_says_so_in_one_line() -> None:
    status, out, err = run("profile", "draft", "7e a0 07 00 00 00 7e")
    assert status != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nothing to draft" in err


values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.none(),
    st.booleans(),
    st.sampled_from(["2026-12-01T23:48:00", "12345678901", "Kamstrup_V0001"]),
)
codes = st.one_of(st.none(), st.sampled_from(["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.1.0.0.255"]))


@st.composite
def message_lists(draw: st.DrawFn) -> list[Message]:
    count = draw(st.integers(1, 12))
    labels = [(draw(codes), draw(st.booleans())) for _ in range(count)]
    messages = []
    for _ in range(draw(st.integers(1, 4))):
        readings = [
            Reading(code, None, draw(values), None, raw=raw and code is not None)
            for code, raw in labels
        ]
        title = draw(st.one_of(st.none(), st.sampled_from(["4B414D4501A4DC52", "00112233"])))
        list_id = draw(st.one_of(st.none(), st.text(max_size=12)))
        messages.append(Message(readings, system_title=title, list_id=list_id))
    return messages


@settings(max_examples=150, deadline=None)
@given(message_lists(), st.text(min_size=1, max_size=10))
def test_a_drafted_profile_always_loads(messages: list[Message], name: str) -> None:
    text = draft_profile(messages, name)
    parse_profile(tomllib.loads(text), "drafted")
