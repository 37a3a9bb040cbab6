"""Never a wrong number with a unit: raw marking of unscaled quantities, Swiss VSE pushes."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from amsread.app.cli import cli
from amsread.app.runner import Reporter
from amsread.dlms.apdu import parse_data_notification
from amsread.model import Message, Reading
from amsread.output.writers import CsvWriter, InfluxWriter, JsonlWriter, message_dict
from amsread.readings.builder import ReadingsBuilder

CORPUS = Path(__file__).parent.parent / "corpus" / "swiss_vse"
E570_KEY = "101112131415161718191A1B1C1D1E1F"


def decode(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(cli, ["decode", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, lines, result.stderr


def by_name(message: dict[str, object]) -> dict[str, tuple[object, object]]:
    readings = message["readings"]
    assert isinstance(readings, list)
    return {r["name"]: (r["value"], r["unit"]) for r in readings}


def test_e360_single_frame_decodes_with_swiss_scales_and_names() -> None:
    status, [message], _ = decode("--file", str(CORPUS / "e360_cfg2026.hex"))
    assert status == 0 and message["profile"] == "swiss-vse-e360"
    values = by_name(message)
    assert values["voltage_l1"] == (235.7, "V")
    assert values["current_l1"] == (0.06, "A")
    assert values["active_energy_import"] == (21956, "Wh")
    assert values["active_power_import"] == (11, "W")
    assert values["reactive_energy_import"] == (27256, "varh")
    assert not any("raw" in r for r in message["readings"])  # type: ignore[union-attr]


def test_e450_block_transfer_decodes_with_swiss_scales_and_names() -> None:
    status, [message], stderr = decode("--file", str(CORPUS / "e450_cfg2026.hex"))
    assert status == 0 and message["profile"] == "swiss-vse"
    values = by_name(message)
    # 236 V, as the capture's own project expects; 0.01 A currents.
    assert values["voltage_l1"] == (236, "V") and values["voltage_l3"] == (0, "V")
    assert values["current_l1"] == (0.09, "A") and values["current_l2"] == (0.08, "A")
    assert values["active_energy_import"] == (482939, "Wh")
    assert values["reactive_energy_export"] == (344697, "varh")
    assert values["meter_serial"] == ("1909113", None)
    assert "outside" not in stderr  # no plausibility warning: the scale is right


def test_e570_encrypted_block_transfer_decodes_with_power_factor_in_thousandths() -> None:
    status, [message], _ = decode("--file", str(CORPUS / "e570_encrypted.hex"), "--key", E570_KEY)
    assert status == 0 and message["profile"] == "swiss-vse"
    values = by_name(message)
    assert values["power_factor"] == (1.0, None)
    assert values["active_energy_import"] == (862055, "Wh")
    assert values["reactive_energy_q1"] == (595211, "varh")
    assert values["current_l1"] == (0.0, "A")


# A capture-object list with no push setup, so no profile matches: a voltage
# register 2357 and a power factor 941 with nothing giving their scale.
UNSCALED_APDU = bytes.fromhex(
    "0f00000001"  # data-notification, invocation id
    "00"  # no date-time
    "0203"  # structure: capture objects, then the two values
    "0102"  # array of 2 capture objects: {class 3, OBIS, attribute 2}
    "020312000309060100200700ff0f02"
    "02031200030906 01000d0700ff0f02".replace(" ", "")
    + "120935"  # voltage L1 register as sent
    "1203ad"  # power factor register as sent
)


def unscaled_message() -> Message:
    return ReadingsBuilder().build(parse_data_notification(UNSCALED_APDU))


def test_a_unit_quantity_without_any_scale_is_output_raw_with_unit_null() -> None:
    message = unscaled_message()
    voltage, power_factor = message.readings
    assert voltage == Reading("1.0.32.7.0.255", "voltage_l1", 2357, None, raw=True)
    assert power_factor == Reading("1.0.13.7.0.255", "power_factor", 941, None, raw=True)
    [note] = message.raw_notes
    assert note.startswith("2 readings are output raw")
    assert 'voltage_l1 (1.0.32.7.0.255): [[implied]] obis = "1.0.32.7.0.255", scaler = N' in note
    assert '[[implied]] obis = "1.0.13.7.0.255", scaler = N' in note


def test_jsonl_carries_raw_true_only_on_raw_readings_and_equals_message_dict() -> None:
    stream = io.StringIO()
    JsonlWriter(stream).write(unscaled_message())
    line = json.loads(stream.getvalue())
    assert [r.get("raw") for r in line["readings"]] == [True, True]
    assert [r["unit"] for r in line["readings"]] == [None, None]
    assert line == json.loads(json.dumps(message_dict(unscaled_message())))
    plain = Message([Reading("1.0.1.8.0.255", "active_energy_import", 5, "Wh")])
    stream = io.StringIO()
    JsonlWriter(stream).write(plain)
    assert '"raw"' not in stream.getvalue()


def test_csv_has_a_raw_column_and_influx_leaves_raw_readings_out_saying_so_once() -> None:
    stream = io.StringIO()
    CsvWriter(stream).write(unscaled_message())
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert [row["raw"] for row in rows] == ["true", "true"]
    said: list[str] = []
    influx = io.StringIO()
    writer = InfluxWriter(influx, "host", said.append)
    for _ in range(3):
        writer.write(unscaled_message())
    assert influx.getvalue() == ""  # every reading raw: no point at all
    assert len(said) == 1 and "left out" in said[0]


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str, **_: object) -> None:
        self.warnings.append(text)

    def debug(self, text: str, **_: object) -> None:
        pass

    info = debug


def test_reporter_logs_each_raw_quantity_once_per_meter() -> None:
    log = _Log()
    reporter = Reporter(log)
    for _ in range(3):
        reporter(unscaled_message())
    raw_lines = [w for w in log.warnings if "output raw" in w]
    assert len(raw_lines) == 1  # one line for the layout, not one per message


SLOVENIA = Path(__file__).parent.parent / "corpus" / "slovenia"


def test_slovenian_list_1_names_all_18_values_with_their_sourced_scales() -> None:
    status, [message], stderr = decode("--file", str(SLOVENIA / "list1_18_values.hex"))
    assert status == 0 and message["profile"] == "iskraemeco-si"
    readings = message["readings"]
    assert isinstance(readings, list) and len(readings) == 18
    assert all(r["name"] for r in readings)
    values = by_name(message)
    assert values["voltage_l3"] == (234.6, "V")
    assert values["meter_serial"] == ("ISK83826316", None)
    current = next(r for r in readings if r["name"] == "current_l1")
    # Currents in 0.01 A (amsreader-firmware, node-dsmr-parser; see the profile).
    assert current == {
        "obis": "1.0.31.7.0.255",
        "name": "current_l1",
        "value": 0.0,
        "unit": "A",
    }
    assert stderr.count("output raw") == 0


def test_slovenian_list_2_names_all_12_values_with_energies_in_wh() -> None:
    status, [message], _ = decode("--file", str(SLOVENIA / "list2_12_values.hex"))
    assert status == 0 and message["profile"] == "iskraemeco-si"
    readings = message["readings"]
    assert isinstance(readings, list) and len(readings) == 12
    assert all(r["name"] for r in readings)
    energy = next(r for r in readings if r["name"] == "active_energy_import")
    assert (energy["value"], energy["unit"], energy.get("raw")) == (3810, "Wh", None)
    assert by_name(message)["tariff"] == ("0002", None)


def test_slovenian_registers_nothing_confirms_stay_raw_and_are_said_once() -> None:
    # The 9-value single-phase list ends with two registers that only one
    # decoder names and every capture sends as 0: named, but output raw.
    case = tomllib.loads((SLOVENIA / "ljubljana_9_values_gh869.toml").read_text("utf-8"))
    status, [message], stderr = decode("".join(case["hex"].split()))
    assert status == 0 and message["profile"] == "iskraemeco-si"
    readings = message["readings"]
    assert isinstance(readings, list)
    raw = [r for r in readings if r.get("raw")]
    assert [r["obis"] for r in raw] == ["1.0.2.8.1.255", "1.0.2.8.2.255"]
    assert all(r["unit"] is None for r in raw)
    assert by_name(message)["voltage_l1"] == (231.3, "V")
    assert stderr.count("output raw") == 1


# The Sagemcom XT211 layout built to its description, with each element's
# structure counting four fields (a real push, counting two, is in
# tests/corpus/czech and tests/readings/test_described.py): a structure
# {enum, array of {class id, OBIS, attribute} in bare bytes, then a tagged
# value}. Without the Czech limiter no profile applies: unscaled values raw.
XT211_BODY = (
    "0202"
    "1601"
    "0103"
    "0204"
    "0003"
    "0100010800ff"
    "02"
    "0600012345"  # +A, double-long-unsigned
    "0204"
    "0003"
    "0100200700ff"
    "02"
    "1208fd"  # voltage L1, long-unsigned
    "0204"
    "0001"
    "0000600101ff"
    "02"
    "090431323334"  # serial, octet-string
)


def test_xt211_bare_described_list_is_named_from_obis_and_unscaled_values_are_raw() -> None:
    apdu = bytes.fromhex("0f0000000100" + XT211_BODY)
    builder = ReadingsBuilder()
    for _ in range(2):  # the second message goes through the compiled plan
        message = builder.build(parse_data_notification(apdu, lazy=True))
        assert message.shape == "class-obis-attribute-value list"
        assert message.readings == [
            Reading("1.0.1.8.0.255", "active_energy_import", 0x12345, None, raw=True),
            Reading("1.0.32.7.0.255", "voltage_l1", 0x08FD, None, raw=True),
            Reading("0.0.96.1.1.255", "meter_serial", "1234", None),
        ]


def test_a_body_that_is_neither_a_xdr_nor_described_is_still_a_bad_apdu() -> None:
    import pytest

    from amsread.errors import ApduError

    broken = bytes.fromhex("0f0000000100" + XT211_BODY[:-4])
    with pytest.raises(ApduError):
        ReadingsBuilder().build(parse_data_notification(broken, lazy=True))
