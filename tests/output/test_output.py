"""Output formats: JSON lines, CSV rows per reading, InfluxDB line protocol; --output FILE."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import seed_vectors as sv
from click.testing import CliRunner

from amsread.app.cli import cli
from amsread.model import Message, Reading
from amsread.output.writers import (
    CSV_COLUMNS,
    CsvWriter,
    InfluxWriter,
    influx_line,
    make_writer,
    trusted_meter_ns,
)

RECEIVED = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z
KEYS = ["--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY]


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "readings": [
            Reading("1.1.0.0.1.255", "meter_id", "27581522", None),
            Reading("1.1.1.8.0.255", "active_energy_import", 866636, "Wh"),
            Reading("1.1.31.7.0.255", "current_l1", 1.25, "A"),
            Reading("1.1.0.2.129.255", "list_version", 'Kamstrup "V0001", rev 2', None),
        ],
        "meter_time": "2020-01-07T14:47:20+01:00",
        "system_title": "4B414D4501A4DC52",
        "received_at": RECEIVED,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- CSV ------------------------------------------------------------------------


def test_csv_has_the_header_once_and_one_row_per_reading() -> None:
    stream = io.StringIO()
    writer = CsvWriter(stream)
    writer.write(message())
    writer.write(message())
    text = stream.getvalue()
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert text.count("received_at") == 1
    parsed = rows(text)
    assert len(parsed) == 8
    energy = parsed[1]
    assert energy == {
        "received_at": "2023-11-14T22:13:20.250+00:00",
        "meter_time": "2020-01-07T14:47:20+01:00",
        "system_title": "4B414D4501A4DC52",
        "meter_id": "27581522",
        "obis": "1.1.1.8.0.255",
        "name": "active_energy_import",
        "value": "866636",
        "unit": "Wh",
        "raw": "",
    }


def test_csv_quotes_commas_and_quotes_and_leaves_missing_values_empty() -> None:
    stream = io.StringIO()
    CsvWriter(stream).write(message(meter_time=None, system_title=None))
    text = stream.getvalue()
    assert '"Kamstrup ""V0001"", rev 2"' in text
    last = rows(text)[-1]
    assert last["value"] == 'Kamstrup "V0001", rev 2'
    assert last["meter_time"] == "" and last["system_title"] == "" and last["unit"] == ""


def test_csv_appended_to_a_file_with_content_gets_no_second_header(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    for _ in range(2):
        with path.open("a", newline="") as stream:
            CsvWriter(stream).write(message())
    text = path.read_text()
    assert text.count("received_at") == 1
    assert len(rows(text)) == 8


# -- InfluxDB line protocol ---------------------------------------------------------


def test_influx_is_one_point_per_message_with_meter_tags_and_float_fields() -> None:
    line = influx_line(message())
    assert line is not None
    measurement_and_tags, rest = line.split(" ", 1)  # the tags have no spaces here
    fields, stamp = rest.rsplit(" ", 1)
    assert measurement_and_tags == "amsread,meter_id=27581522,system_title=4B414D4501A4DC52"
    assert fields == (
        'active_energy_import=866636.0,current_l1=1.25,list_version="Kamstrup \\"V0001\\", rev 2"'
    )
    assert "meter_id=" not in fields  # a tag, not also a field
    # 14:47:20 at UTC+01:00
    assert stamp == "1578404840000000000"


def test_influx_escapes_strings_and_keys() -> None:
    readings = [
        Reading(None, "odd name,with=chars", 'say "hi"\\', None),
        Reading("1.0.99.97.0.255", None, 7, None),
        Reading("1.1.1.7.0.255", "active_power_import", None, "W"),
        Reading("1.1.2.7.0.255", "active_power_export", float("nan"), "W"),
    ]
    line = influx_line(message(readings=readings, system_title="A B"))
    assert line is not None
    assert line.startswith("amsread,system_title=A\\ B ")
    assert 'odd\\ name\\,with\\=chars="say \\"hi\\"\\\\"' in line
    assert "1.0.99.97.0.255=7.0" in line  # no name: the OBIS code names the field
    assert "active_power" not in line  # no value, or not a finite number


def test_influx_skips_a_message_without_any_field() -> None:
    assert influx_line(message(readings=[Reading("1.1.1.7.0.255", "x", None, "W")])) is None
    stream = io.StringIO()
    InfluxWriter(stream).write(message(readings=[]))
    assert stream.getvalue() == ""


def test_influx_uses_receive_time_for_a_meter_time_without_offset_or_when_told() -> None:
    receive_ns = "1700000000250000000"
    local = influx_line(message(meter_time="2020-01-07T14:47:20"))
    assert local is not None and local.endswith(" " + receive_ns)
    host = influx_line(message(), meter_time=False)
    assert host is not None and host.endswith(" " + receive_ns)
    stream = io.StringIO()
    make_writer("influx", stream, time_source="host").write(message())
    assert stream.getvalue().endswith(f" {receive_ns}\n")


def test_meter_time_is_trusted_only_with_a_utc_offset() -> None:
    assert trusted_meter_ns("2016-01-04T23:34:35+01:00") == 1451946875 * 10**9
    assert trusted_meter_ns("2016-01-04T23:34:35.500000+00:00") == 1451950475500000000
    assert trusted_meter_ns("2016-01-04T23:34:35") is None
    assert trusted_meter_ns("not a time") is None
    assert trusted_meter_ns(None) is None


def test_an_unknown_format_or_time_source_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        make_writer("xml", io.StringIO())
    with pytest.raises(ValueError, match="sundial"):
        make_writer("influx", io.StringIO(), time_source="sundial")


# -- the command line ---------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_decode_writes_csv_rows_for_the_radius_frame() -> None:
    status, out, _ = invoke("decode", sv.RADIUS_FRAME.hex(), *KEYS, "--format", "csv")
    assert status == 0
    parsed = rows(out)
    assert len(parsed) == len(sv.RADIUS_READINGS) + 1  # plus the list version
    energy = next(r for r in parsed if r["obis"] == "1.1.1.8.0.255")
    assert (energy["value"], energy["unit"], energy["meter_id"]) == ("866636", "Wh", "27581522")


def test_decode_writes_one_influx_point_stamped_with_receive_time_for_a_local_meter_time() -> None:
    status, out, _ = invoke("decode", sv.RADIUS_FRAME.hex(), *KEYS, "--format", "influx")
    assert status == 0
    [line] = out.splitlines()
    assert line.startswith("amsread,meter_id=27581522,system_title=4B414D4501A4DC52 ")
    assert "active_energy_import=866636.0" in line
    assert "voltage_l1=224.0" in line
    # The Radius frame's clock has no UTC offset: the point carries the receive time.
    assert int(line.rsplit(" ", 1)[1]) > 1_700_000_000 * 10**9


def test_output_file_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"earlier": true}\n')
    for _ in range(2):
        status, out, _ = invoke("decode", sv.RADIUS_FRAME.hex(), *KEYS, "--output", str(path))
        assert status == 0 and out == ""
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2])["invocation_counter"] == sv.RADIUS_INVOCATION_COUNTER


def test_an_output_file_that_cannot_be_opened_is_a_usage_error(tmp_path: Path) -> None:
    target = str(tmp_path / "missing" / "out.csv")
    status, _, err = invoke("decode", sv.RADIUS_FRAME.hex(), *KEYS, "--output", target)
    assert status == 2
    assert "directory does not exist" in err
