"""Lists whose elements name themselves in bare bytes (Sagemcom XT211): real and example pushes."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.cli import cli
from amsread.dlms import axdr
from amsread.dlms.apdu import parse_data_notification
from amsread.model import Message
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.described import described_tree

CZECH = Path(__file__).parent.parent / "corpus" / "czech"


def xt211_apdu() -> bytes:
    case = tomllib.loads((CZECH / "sagemcom_xt211_cez.toml").read_text("utf-8"))
    return bytes.fromhex("".join(case["hex"].split()))


def build(apdu: bytes) -> Message:
    builder = ReadingsBuilder()
    first = builder.build(parse_data_notification(apdu, lazy=True))
    # The second message goes through the compiled plan: same result.
    again = builder.build(parse_data_notification(apdu, lazy=True))
    assert again.readings == first.readings and again.profile == first.profile
    return first


def values(message: Message) -> dict[str | None, tuple[object, str | None]]:
    return {r.name: (r.value, r.unit) for r in message.readings}


# The XT211 push of ČEZ Distribuce as published (tests/corpus/czech): each
# element is structure(2) {descriptor in 9 bare bytes, tagged value}.
def test_real_xt211_push_reads_as_22_self_naming_elements() -> None:
    apdu = xt211_apdu()
    body = parse_data_notification(apdu, lazy=True).body_bytes
    assert body[6:8] == bytes((axdr.STRUCTURE, 2))  # the count the meter sends
    tree = described_tree(body)
    assert tree is not None and tree.end == len(body)
    kind, array = tree.children
    assert kind.value == 1 and len(array.children) == 22
    first = array.children[0]
    class_id, obis, attribute, value = first.children
    assert (class_id.value, obis.value, attribute.value) == (1, bytes.fromhex("0000600101ff"), 2)
    assert value.value == b"5100005149"


def test_real_xt211_push_gets_watts_and_watt_hours_from_the_czech_profile() -> None:
    message = build(xt211_apdu())
    assert message.profile == "sagemcom-xt211-cz"
    assert message.shape == "class-obis-attribute-value list"
    got = values(message)
    assert got["meter_serial"] == ("5100005149", None)
    assert got["tariff"] == ("T2", None)
    assert got["active_power_import"] == (1956, "W")
    assert got["active_power_import_l2"] == (1703, "W")
    assert got["active_energy_import"] == (4913794, "Wh")
    assert got["active_energy_import_t2"] == (3964860, "Wh")
    assert got["active_energy_export"] == (52, "Wh")
    assert not any(r.raw for r in message.readings)
    # The per-phase powers add up to the total, the tariffs to the total energy.
    phases = sum(got[f"active_power_import_l{n}"][0] for n in (1, 2, 3))  # type: ignore[misc]
    assert abs(phases - 1956) <= 1
    # Relays keep apart (one name per channel); the limiter keeps no unit.
    names = [r.name for r in message.readings]
    assert len(names) == len(set(names))
    assert got["relay_1_attribute_3"] == (1, None)
    assert got["power_limit_attribute_3"] == (0, None)


def test_xt211_push_without_the_czech_limiter_keeps_its_quantities_raw() -> None:
    # Drop the limiter element (class 71): nothing says the push is the
    # Czech configuration, so no scale is assumed.
    apdu = xt211_apdu()
    limiter = bytes.fromhex("020200470000110000ff030600000000")
    assert limiter in apdu
    body = apdu.replace(limiter, b"").replace(bytes((axdr.ARRAY, 22)), bytes((axdr.ARRAY, 21)))
    message = build(body)
    assert message.profile is None
    power = next(r for r in message.readings if r.name == "active_power_import")
    assert (power.value, power.unit, power.raw) == (1956, None, True)


# EG.D's example push as published with esphome-libs/dlms_parser
# (tests/dumps/raw_egd_example.log, Apache-2.0): placeholder identifiers and
# values, 27 elements including the push setup's logical name (class 40,
# attribute 1), six relays and an empty consumer message.
EGD_EXAMPLE = (
    "0f000000010002021601011b"
    "0202000100002a0000ff0209094547443031323334 35"
    "02020028000219 0900ff01090600021909 00ff"
    "020200010000600100ff02090a30313233343536373839"
    "0202004600 0060030aff031601"
    "020200470000110000ff030600000000"
    "02020046000160030aff031601"
    "02020046000260030aff031601"
    "02020046000360030aff031600"
    "02020046000460030aff031600"
    "02020046000560030aff031600"
    "02020046000660030aff031600"
    "0202000100 00600e00ff0209025433"
    "020200030100010700ff020600000003"
    "020200030100150700ff020600000001"
    "020200030100290700ff020600000001"
    "0202000301003d0700ff020600000001"
    "020200030100020700ff020600000003"
    "020200030100160700ff020600000001"
    "0202000301002a0700ff020600000001"
    "0202000301003e0700ff020600000001"
    "020200030100010800ff020600000008"
    "020200030100010801ff020600000000"
    "020200030100010802ff020600000004"
    "020200030100010803ff020600000004"
    "020200030100010804ff020600000000"
    "020200030100020800ff020600000004"
    "020200010000600d00ff020900"
)


def test_egd_example_push_names_all_27_elements() -> None:
    message = build(bytes.fromhex(EGD_EXAMPLE.replace(" ", "")))
    assert message.profile == "sagemcom-xt211-cz"
    assert len(message.readings) == 27
    got = values(message)
    assert got["logical_device_name"] == ("EGD012345", None)
    assert got["push_setup"] == ("0002190900ff", None)  # attribute 1: its logical name
    assert got["relay_6_attribute_3"] == (0, None)
    assert got["active_energy_import_t3"] == (4, "Wh")
    assert got["consumer_message"] == ("", None)


def test_bodies_that_only_resemble_the_layout_are_not_read_as_it() -> None:
    body = parse_data_notification(xt211_apdu(), lazy=True).body_bytes
    assert described_tree(body + b"\x00") is None  # a byte no element accounts for
    assert described_tree(body[:-1]) is None  # the last value cut short
    three = body[:6] + bytes((axdr.STRUCTURE, 3)) + body[8:]
    assert described_tree(three) is None  # neither {descriptor, value} nor four fields
    assert described_tree(bytes.fromhex("0202160101")) is None  # too short to hold one


def test_explain_reads_the_xt211_push_instead_of_calling_it_malformed() -> None:
    result = CliRunner().invoke(cli, ["explain", xt211_apdu().hex()])
    assert result.exit_code == 0, result.output
    assert "decoded 1 of 1 APDUs" in result.output
    assert "→ 22 readings" in result.output
    assert "bad_apdu" not in result.output
    assert "sagemcom-xt211-cz: capture_object 0.0.17.0.0.255 ✓ (chosen)" in result.output


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(min_value=0, max_value=348), st.integers(0, 255))
def test_described_tree_never_raises_on_line_bytes(noise: bytes, at: int, byte: int) -> None:
    # Bytes from the line: random ones, and the real push with one byte changed.
    body = parse_data_notification(xt211_apdu(), lazy=True).body_bytes
    mutated = body[:at] + bytes((byte,)) + body[at + 1 :]
    for data in (noise, b"\x02\x02\x16\x01\x01" + noise, mutated):
        tree = described_tree(data)
        assert tree is None or tree.end == len(data)
