"""Topic names and Home Assistant MQTT discovery payloads. No I/O.

Device-based discovery (one retained message per meter at
``<ha-prefix>/device/amsread_<meter>/config``), as Home Assistant documents
it: a ``device`` block, an ``origin`` block and one ``sensor`` component per
reading, each with a stable ``unique_id``. Classes and units follow Home
Assistant's sensor rules, so that energy registers are accepted by the Energy
dashboard (``energy`` / ``total_increasing`` / Wh or kWh) and powers are
``power`` / ``measurement`` / W.

A component's config is derived only from the reading's name, OBIS code and
unit, never from its value: the same reading always gets the same config, so
re-sending discovery never changes an entity under its ``unique_id``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from amsread import __version__
from amsread.model import METER_ID_NAMES, Message

#: Characters Home Assistant allows in discovery ids; topics use the same set.
_NOT_ID = re.compile(r"[^a-z0-9_-]+")

#: unit -> (device_class, state_class). Units as amsread writes them (DLMS symbols).
_BY_UNIT: dict[str, tuple[str | None, str]] = {
    "Wh": ("energy", "total_increasing"),
    "kWh": ("energy", "total_increasing"),
    "MWh": ("energy", "total_increasing"),
    "W": ("power", "measurement"),
    "kW": ("power", "measurement"),
    "var": ("reactive_power", "measurement"),
    "VA": ("apparent_power", "measurement"),
    "V": ("voltage", "measurement"),
    "A": ("current", "measurement"),
    "Hz": ("frequency", "measurement"),
    "m³": ("gas", "total_increasing"),
    "°C": ("temperature", "measurement"),
    # Reactive and apparent energy: no device class Home Assistant versions agree
    # on, but a growing register all the same (statistics work without one).
    "varh": (None, "total_increasing"),
    "VAh": (None, "total_increasing"),
}
#: Units as DSMR telegrams write them -> as Home Assistant's gas and water classes want them.
_HA_UNITS = {"m3": "m³"}


def topic_id(text: str) -> str:
    """``text`` lower case with every run of other characters than ``[a-z0-9_-]`` as ``_``."""
    return _NOT_ID.sub("_", text.lower()).strip("_") or "unknown"


def meter_name(message: Message) -> str:
    """The meter's topic segment: its id/serial reading, else its system title."""
    return topic_id(message.meter_id or message.system_title or "unknown")


def reading_topic_name(name: str | None, obis: str | None) -> str:
    """A reading's topic segment: its name, else its OBIS code with dots as ``_``."""
    if name:
        return topic_id(name)
    return (obis or "unknown").replace(".", "_").replace("/", "_").replace("+", "_")


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one meter below ``prefix``."""

    prefix: str
    meter: str

    @property
    def state(self) -> str:
        return f"{self.prefix}/{self.meter}/state"

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.meter}/status"

    def reading(self, name: str) -> str:
        return f"{self.prefix}/{self.meter}/{name}"


def discovery_topic(ha_prefix: str, meter: str) -> str:
    return f"{ha_prefix}/device/amsread_{meter}/config"


@dataclass(frozen=True, slots=True)
class ReadingInfo:
    """What discovery needs of one reading: its topic name, label and whether it is a number."""

    topic_name: str
    obis: str | None
    name: str | None
    unit: str | None
    numeric: bool


def component(topics: Topics, info: ReadingInfo) -> dict[str, Any]:
    """One sensor component: Home Assistant's classes and unit for the reading."""
    unique = f"amsread_{topics.meter}_{topic_id(info.topic_name)}"
    config: dict[str, Any] = {
        "platform": "sensor",
        "unique_id": unique,
        "name": (info.name or info.obis or info.topic_name).replace("_", " ").capitalize(),
        "state_topic": topics.reading(info.topic_name),
    }
    classes = _classes(info)
    if classes is None:
        config["entity_category"] = "diagnostic"
        return config
    device_class, state_class = classes
    if device_class is not None:
        config["device_class"] = device_class
    config["state_class"] = state_class
    if info.unit:
        config["unit_of_measurement"] = _HA_UNITS.get(info.unit, info.unit)
    return config


def _classes(info: ReadingInfo) -> tuple[str | None, str] | None:
    """(device_class, state_class) of a numeric reading; None for ids and texts."""
    name = info.name or ""
    if not info.numeric or name in METER_ID_NAMES or name.endswith("_version"):
        return None
    if name.startswith("power_factor"):
        return ("power_factor", "measurement")
    found = _BY_UNIT.get(_HA_UNITS.get(info.unit or "", info.unit or ""))
    if found is not None and found[0] == "gas" and name.startswith("water"):
        found = ("water", "total_increasing")  # DSMR water meters count m3 too
    if found is None:
        # A number without a known unit (counters such as power_failures).
        return (None, "measurement")
    device_class, state_class = found
    if state_class == "total_increasing" and "net" in name.split("_"):
        state_class = "total"  # import minus export goes down too
    return (device_class, state_class)


def discovery_payload(
    topics: Topics,
    readings: list[ReadingInfo],
    *,
    system_title: str | None,
    meter_id: str | None,
    model: str | None,
) -> dict[str, Any]:
    """The device-based discovery message of one meter."""
    from amsread.readings.manufacturers import decode_system_title

    maker = None
    if system_title:
        try:
            maker = decode_system_title(bytes.fromhex(system_title)).maker
        except ValueError:
            maker = None
    device: dict[str, Any] = {
        "identifiers": [f"amsread_{topics.meter}"],
        "name": f"Meter {meter_id or topics.meter}",
    }
    if maker:
        device["manufacturer"] = maker
    if model:
        device["model"] = model
    if meter_id:
        device["serial_number"] = meter_id
    return {
        "device": device,
        "origin": {"name": "amsread", "sw_version": __version__},
        "availability": [{"topic": topics.status}],
        "qos": 1,
        "components": {topic_id(info.topic_name): component(topics, info) for info in readings},
    }
