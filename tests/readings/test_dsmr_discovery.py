"""Home Assistant discovery of DSMR sub-meters: gas is ``gas``, m³, ``total_increasing``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amsread.model import Message
from amsread.output.homeassistant import (
    ReadingInfo,
    Topics,
    discovery_payload,
    meter_name,
    reading_topic_name,
)
from amsread.pipeline import Pipeline

CORPUS = Path(__file__).parent.parent / "corpus" / "dsmr"


def components(telegram: str) -> dict[str, Any]:
    """The discovery components of a corpus telegram, its readings announced as MQTT does."""
    pipeline = Pipeline(framing="dsmr", clock=lambda: 0.0)
    data = (CORPUS / telegram).read_bytes()
    [message] = [e for e in pipeline.feed(data) + pipeline.close() if isinstance(e, Message)]
    infos = [
        ReadingInfo(
            reading_topic_name(r.name, r.obis),
            r.obis,
            r.name,
            r.unit,
            isinstance(r.value, int | float),
        )
        for r in message.readings
        if r.value is not None
    ]
    topics = Topics("amsread", meter_name(message))
    payload = discovery_payload(
        topics, infos, system_title=None, meter_id=message.meter_id, model=message.list_id
    )
    result: dict[str, Any] = payload["components"]
    return result


def test_dutch_gas_meter_is_gas_in_cubic_metres_and_total_increasing() -> None:
    gas = components("v5_iskra.txt")["gas_delivered"]
    assert gas["device_class"] == "gas"
    assert gas["unit_of_measurement"] == "m³"
    assert gas["state_class"] == "total_increasing"


def test_belgian_gas_and_water_meters_get_their_own_classes() -> None:
    found = components("be_fluvius_v171.txt")
    assert (found["gas_delivered"]["device_class"], found["gas_delivered"]["state_class"]) == (
        "gas",
        "total_increasing",
    )
    water = found["water_delivered"]
    assert water["device_class"] == "water"
    assert water["unit_of_measurement"] == "m³"
    assert water["state_class"] == "total_increasing"


def test_electricity_registers_are_unchanged_energy() -> None:
    energy = components("v5_iskra.txt")["active_energy_import_t1"]
    assert (energy["device_class"], energy["unit_of_measurement"]) == ("energy", "kWh")
