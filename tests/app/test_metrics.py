"""``listen --metrics``: /metrics during a real listen, and Prometheus' naming rules.

The end-to-end test runs ``amsread listen`` on a pseudo-terminal, pushes the
real Radius capture (Kamstrup Omnipower, tests/seed_vectors.py) into it and
fetches http://127.0.0.1:PORT/metrics with urllib, as Prometheus would.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.request

import pytest
import seed_vectors as sv
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from amsread.app import metrics
from amsread.app.metrics import (
    UNITS,
    Collector,
    Health,
    LatestReadings,
    parse_address,
    reading_metric,
)
from amsread.errors import UsageError
from amsread.model import Message, Reading
from amsread.readings.obis import _table
from amsread.stats import Counters
from tests.app.test_listen import FRAME, Daemon, Pty

#: Prometheus' naming rules (https://prometheus.io/docs/practices/naming/), as checked here:
#: snake_case with the amsread_ prefix; base units in plural; no scaled or
#: non-base units; counters end in _total and nothing else does.
NAME = re.compile(r"amsread_[a-z][a-z0-9]*(_[a-z0-9]+)*")
BASE_UNITS = {
    "seconds",
    "bytes",
    "joules",
    "volts",
    "amperes",
    "watts",
    "hertz",
    "celsius",
    "ratio",
    "cubic_meters",
    "volt_amperes",
    "volt_amperes_reactive",
    "volt_ampere_seconds",
    "volt_ampere_reactive_seconds",
}
NOT_BASE = re.compile(
    r"(^|_)(kilo|mega|milli|micro|k?wh|kw|kva|kvar|varh|vah|percent|minutes|hours|ms)(_|$)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> dict[str, list[Sample]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    families = {}
    for family in text_string_to_metric_families(text):
        check_family(family.name, family.type, [s.name for s in family.samples])
        families[family.name] = family.samples
    return families


def check_family(name: str, kind: str, samples: list[str]) -> None:
    """A metric family as the naming rules want it (raises AssertionError)."""
    # The parser strips _total from counters and _info from infos: add them back.
    full = {"counter": name + "_total", "info": name + "_info"}.get(kind, name)
    assert NAME.fullmatch(full), full
    assert not NOT_BASE.search(full.removeprefix("amsread_")), full
    if kind == "counter":
        assert all(s == full for s in samples), (full, samples)
    else:
        assert not full.endswith("_total"), full
        assert all(not s.endswith("_total") for s in samples), samples


def wait_for(port: int, condition: str, timeout: float = 10.0) -> dict[str, list[Sample]]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            families = scrape(port)
        except OSError:
            families = {}
        if condition in families or time.monotonic() > deadline:
            return families
        time.sleep(0.05)


def value(samples: list[Sample], **labels: str) -> float:
    [found] = [s.value for s in samples if labels.items() <= s.labels.items()]
    return found


def test_metrics_during_listen_show_the_counters_and_the_latest_readings() -> None:
    pty, port = Pty(), free_port()
    args = ("--baud", "2400", "--parity", "E", "--metrics", str(port))
    keys = ("--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY)
    try:
        with Daemon(pty.path, *args, *keys) as daemon:
            daemon.wait_notify("READY=1")
            before = wait_for(port, "amsread_frames")
            assert value(before["amsread_messages"]) == 0
            assert "amsread_voltage_l1_volts" not in before
            # The real frame, damaged copy, junk, the frame again (a replay).
            damaged = FRAME[:100] + bytes([FRAME[100] ^ 1]) + FRAME[101:]
            pty.write(FRAME + damaged + b"\x00junk" + FRAME)
            daemon.line()
            daemon.wait_stderr("not above")  # the replayed copy was handled
            families = wait_for(port, "amsread_voltage_l1_volts")
            assert daemon.stop() == 0
    finally:
        pty.close()
    frames = families["amsread_frames"]
    assert value(frames, result="ok") == 2
    assert value(frames, result="rejected", reason="bad_fcs") == 1
    assert value(frames, result="failed", reason="replayed") == 1
    assert value(families["amsread_replays"]) == 1
    assert value(families["amsread_messages"]) == 1
    assert value(families["amsread_decryption_failures"]) == 0
    assert value(families["amsread_reconnects"]) == 0
    assert value(families["amsread_port_up"]) == 1
    assert value(families["amsread_output_errors"]) == 0
    assert 0 <= value(families["amsread_last_message_age_seconds"]) < 10
    meter = {"meter_id": "27581522", "system_title": sv.RADIUS_SYSTEM_TITLE}
    assert value(families["amsread_voltage_l1_volts"], **meter) == 224
    # 866,636 Wh, in joules, a counter (an energy register only grows).
    energy = families["amsread_active_energy_import_joules"]
    assert value(energy, **meter, obis="1.1.1.8.0.255") == 866636 * 3600
    assert "amsread_meter_number" not in families  # an identifier, already a label
    info = families["amsread_meter_info"]
    assert value(info, profile="kamstrup-dk", list_id="Kamstrup_V0001") == 1


def test_every_named_obis_reading_gets_a_name_by_the_rules() -> None:
    exported = 0
    for name, unit in _table().values():
        rule = reading_metric(name, unit)
        if rule is None:
            continue
        exported += 1
        check_family(
            rule.name.removesuffix("_total"),
            "counter" if rule.counter else "gauge",
            [rule.name + "_total" if rule.counter else rule.name],
        )
        suffix = UNITS[unit].suffix if unit else None
        assert suffix is None or rule.name.endswith("_" + suffix)
        # Only registers that accumulate are counters; power, voltage, net energy are not.
        assert rule.counter == (unit in ("Wh", "varh", "VAh") and "_net" not in name), name
    assert exported > 150


def test_the_unit_table_names_base_units_only() -> None:
    for unit, rule in UNITS.items():
        assert rule.suffix in BASE_UNITS, unit
        assert rule.factor > 0
    assert UNITS["Wh"].factor == 3600 and UNITS["%"].factor == 0.01


def message(readings: list[Reading], title: str = "4B414D4501A4DC52") -> Message:
    return Message(readings, system_title=title, received_at=1000.0)


def collect(collector: Collector) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {}
    for family in collector.collect():
        check_family(family.name, family.type, [s.name for s in family.samples])
        found[family.name] = family.samples
    return found


def test_raw_text_and_unknown_unit_readings_are_left_out_and_meters_are_kept_apart() -> None:
    latest = LatestReadings(clock=lambda: 1000.0)
    raw = Reading(None, None, 17, None)  # a value nothing names: output raw
    latest.record(
        message(
            [
                Reading("1.0.32.7.0.255", "voltage_l1", 230.1, "V"),
                Reading("1.0.16.8.0.255", "active_energy_net", -5, "Wh"),
                Reading("1.0.0.2.0.255", "firmware_version", "1.2", None),
                Reading("0.0.96.9.0.255", "temperature", 20, "K"),
                raw,
            ]
        )
    )
    latest.record(message([Reading("1.0.32.7.0.255", "voltage_l1", 229.0, "V")], "AA"))
    collector = Collector(Counters(), Health(), latest, clock=lambda: 1012.5)
    families = collect(collector)
    voltages = families["amsread_voltage_l1_volts"]
    assert sorted(s.value for s in voltages) == [229.0, 230.1]
    assert families["amsread_active_energy_net_joules"][0].value == -5 * 3600  # a gauge
    assert not any("firmware" in n or "temperature" in n for n in families)
    assert len([n for n in families if n.startswith("amsread_") and "None" in n]) == 0
    assert families["amsread_last_message_age_seconds"][0].value == 12.5


def test_readings_of_unknown_scale_are_left_out_of_every_message() -> None:
    # A raw voltage is the register as sent (2357 for 235.7 V): no gauge may call it volts.
    raw_voltage = Reading("1.0.32.7.0.255", "voltage_l1", 2357, None, raw=True)
    plain = message([raw_voltage, Reading("1.0.52.7.0.255", "voltage_l2", 230.0, "V")])
    decoded = Message.in_layout(plain.list_layout, plain.values, None, "AA", received_at=1000.0)
    for each in (plain, decoded):
        latest = LatestReadings(clock=lambda: 1000.0)
        latest.record(each)
        families = collect(Collector(Counters(), Health(), latest, clock=lambda: 1000.0))
        assert "amsread_voltage_l1_volts" not in families
        assert [s.value for s in families["amsread_voltage_l2_volts"]] == [230.0]


def test_port_events_count_reconnects_and_causes() -> None:
    health = Health()
    for event in ("missing", "open", "disconnected", "open", "disconnected"):
        health.port_event(event)
    families = collect(Collector(Counters(), health, LatestReadings()))
    assert value(families["amsread_reconnects"]) == 1
    assert value(families["amsread_port_errors"], cause="disconnected") == 2
    assert value(families["amsread_port_up"]) == 0


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("9101", ("127.0.0.1", 9101)),
        (":9101", ("127.0.0.1", 9101)),
        ("0.0.0.0:9101", ("0.0.0.0", 9101)),
        ("[::1]:9101", ("::1", 9101)),
    ],
)
def test_metrics_address_defaults_to_localhost(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "host", "host:0", "host:70000", "9101x"])
def test_a_bad_metrics_address_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--metrics must be PORT or HOST:PORT"):
        parse_address(text)


def test_a_port_in_use_is_one_line_not_a_traceback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot serve --metrics on 127.0.0.1:{port}"):
            metrics.serve(("127.0.0.1", port), Collector(Counters(), Health(), LatestReadings()))


class BrokenWriter:
    def write(self, message: Message) -> None:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


def test_output_errors_are_counted_and_still_raised() -> None:
    health, latest = Health(), LatestReadings()
    writer = metrics.ObservedWriter(BrokenWriter(), latest, health)
    with pytest.raises(OSError):
        writer.write(message([Reading("1.0.32.7.0.255", "voltage_l1", 230.0, "V")]))
    with pytest.raises(OSError):
        writer.flush()
    families = collect(Collector(Counters(), health, latest))
    assert value(families["amsread_output_errors"]) == 2


def test_a_decoded_message_is_recorded_without_building_its_readings() -> None:
    from amsread.dlms.keys import Keys, parse_key
    from amsread.pipeline import Pipeline

    keys = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))
    [decoded] = [e for e in Pipeline(keys).feed(FRAME) if isinstance(e, Message)]
    latest = LatestReadings()
    latest.record(decoded)
    assert getattr(decoded, "values", None) is not None  # still lazy: the writer's fast path
    [meter] = latest.snapshots()
    assert ("1.1.32.7.0.255", "voltage_l1", "V", 224.0) in meter.readings
