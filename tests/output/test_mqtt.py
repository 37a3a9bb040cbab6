"""``--mqtt``: URLs, passwords, Home Assistant discovery, and delivery through a real broker.

The broker tests start mosquitto themselves (tests/broker.py); amsread runs as
a subprocess, as a user or systemd runs it. Streams are the benchmark's
Kamstrup pushes (bench/make_streams.py): every push differs, so order is
visible in the payloads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import PASSWORD, USER, Broker, Subscriber
from seed_vectors import RADIUS_AUTH_KEY, RADIUS_KEY

from amsread.errors import UsageError
from amsread.output.homeassistant import ReadingInfo, Topics, discovery_payload
from amsread.output.mqtt import parse_broker_url, resolve_password

ROOT = Path(__file__).resolve().parent.parent.parent
KEYS = ("--key", RADIUS_KEY, "--auth-key", RADIUS_AUTH_KEY)
ENERGY_UNITS = {"Wh", "kWh", "MWh", "GJ", "MJ"}
HA_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _streams() -> object:
    spec = importlib.util.spec_from_file_location("make_streams", ROOT / "bench/make_streams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kamstrup_stream(count: int) -> bytes:
    streams: object = _streams()
    return streams.make_encrypted(streams.make_plaintexts(count))  # type: ignore[attr-defined,no-any-return]


def amsread(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amsread", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# -- URLs and passwords ------------------------------------------------------


def test_url_defaults_and_tls_port() -> None:
    url = parse_broker_url("mqtt://broker.lan")
    assert (url.host, url.port, url.tls, url.username, url.path) == (
        "broker.lan",
        1883,
        False,
        None,
        "amsread",
    )
    url = parse_broker_url("mqtts://ha@10.0.0.2/house/meters/")
    assert (url.host, url.port, url.tls, url.username, url.path) == (
        "10.0.0.2",
        8883,
        True,
        "ha",
        "house/meters",
    )
    assert parse_broker_url("mqtt://h:1884").port == 1884


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h", "not an MQTT URL"),
        ("mqtt://u:pw@h", "do not put the MQTT password in the URL"),
        ("mqtt://:1883", "not a valid MQTT URL"),
        ("mqtt://h:99999", "not a valid MQTT URL"),
    ],
)
def test_bad_urls_are_one_line_errors(url: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as raised:
        parse_broker_url(url)
    assert "\n" not in str(raised.value) and "pw" not in str(raised.value).replace("password", "")


def test_password_sources_in_order(tmp_path: Path) -> None:
    file = tmp_path / "pw"
    file.write_text("from-file\nignored\n")
    file.chmod(0o600)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "amsread-mqtt-password").write_text("from-credential\n")
    env = {"AMSREAD_MQTT_PASSWORD": "from-env", "CREDENTIALS_DIRECTORY": str(creds)}
    assert resolve_password(str(file), env) == "from-file"
    assert resolve_password(None, env) == "from-env"
    assert resolve_password(None, {"CREDENTIALS_DIRECTORY": str(creds)}) == "from-credential"
    assert resolve_password(None, {}) is None


# -- Home Assistant discovery --------------------------------------------------


def _demo_readings() -> list[dict[str, object]]:
    out = amsread("demo")
    assert out.returncode == 0, out.stderr
    readings: list[dict[str, object]] = json.loads(out.stdout)["readings"]
    return readings


def _discovery_of(readings: list[dict[str, object]]) -> dict[str, object]:
    infos = [
        ReadingInfo(
            str(r["name"]),
            r["obis"],  # type: ignore[arg-type]
            r["name"],  # type: ignore[arg-type]
            r["unit"],  # type: ignore[arg-type]
            isinstance(r["value"], int | float),
        )
        for r in readings
    ]
    return discovery_payload(
        Topics("amsread", "27581522"),
        infos,
        system_title="4B414D4501A4DC52",
        meter_id="27581522",
        model="kamstrup-dk",
    )


def check_discovery_schema(payload: dict[str, object]) -> None:
    """Home Assistant's device-based discovery: device ids, origin name, platform, unique_id."""
    device = payload["device"]
    assert isinstance(device, dict) and (device.get("identifiers") or device.get("connections"))
    origin = payload["origin"]
    assert isinstance(origin, dict) and origin["name"] == "amsread"
    components = payload["components"]
    assert isinstance(components, dict) and components
    unique_ids = set()
    for key, component in components.items():
        assert HA_ID.match(key), key
        assert component["platform"] == "sensor"
        assert HA_ID.match(component["unique_id"]), component
        unique_ids.add(component["unique_id"])
        assert component["state_topic"].startswith("amsread/27581522/")
    assert len(unique_ids) == len(components)


def check_energy_dashboard(payload: dict[str, object]) -> None:
    """The Energy dashboard's rules for energy and grid power sensors."""
    components: dict[str, dict[str, str]] = payload["components"]  # type: ignore[assignment]
    for component in components.values():
        if component.get("device_class") == "energy":
            assert component["state_class"] in ("total_increasing", "total"), component
            assert component["unit_of_measurement"] in ENERGY_UNITS, component
        if component.get("device_class") == "power":
            assert component["state_class"] == "measurement", component
            assert component["unit_of_measurement"] in ("W", "kW"), component
        if component.get("device_class") == "gas":
            assert component["state_class"] in ("total_increasing", "total")
            assert component["unit_of_measurement"] == "m³"


def test_discovery_meets_home_assistant_rules() -> None:
    payload = _discovery_of(_demo_readings())
    check_discovery_schema(payload)
    check_energy_dashboard(payload)
    components: dict[str, dict[str, str]] = payload["components"]  # type: ignore[assignment]
    assert payload["device"] == {
        "identifiers": ["amsread_27581522"],
        "name": "Meter 27581522",
        "manufacturer": "Kamstrup",
        "model": "kamstrup-dk",
        "serial_number": "27581522",
    }
    energy = components["active_energy_import"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "Wh",
    )
    assert components["active_power_import"]["device_class"] == "power"
    assert components["voltage_l1"]["device_class"] == "voltage"
    assert components["current_l1"]["device_class"] == "current"
    assert components["reactive_power_import"]["device_class"] == "reactive_power"
    assert components["power_factor"]["device_class"] == "power_factor"
    assert components["meter_number"]["entity_category"] == "diagnostic"
    assert components["list_version"]["entity_category"] == "diagnostic"
    assert payload["availability"] == [{"topic": "amsread/27581522/status"}]


def test_gas_and_net_registers() -> None:
    topics = Topics("p", "m")
    gas = discovery_payload(
        topics,
        [ReadingInfo("gas", None, "gas", "m³", True)],
        system_title=None,
        meter_id=None,
        model=None,
    )
    check_energy_dashboard(gas)
    component = gas["components"]["gas"]  # type: ignore[index]
    assert (component["device_class"], component["state_class"]) == ("gas", "total_increasing")
    net = discovery_payload(
        topics,
        [ReadingInfo("active_energy_net", None, "active_energy_net", "Wh", True)],
        system_title=None,
        meter_id=None,
        model=None,
    )
    assert net["components"]["active_energy_net"]["state_class"] == "total"  # type: ignore[index]


# -- through a real broker -------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path)
    running.start()
    yield running
    running.stop()


def _states(subscriber: Subscriber) -> list[dict[str, object]]:
    return [json.loads(p) for p in subscriber.on("amsread/27581522/state")]


def _first_seen(values: list[int]) -> list[int]:
    """The values in order of first arrival (QoS 1 may deliver some twice)."""
    seen: dict[int, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)


def test_values_on_topics_equal_decode_output(broker: Broker, tmp_path: Path) -> None:
    capture = tmp_path / "k.bin"
    capture.write_bytes(kamstrup_stream(5))
    subscriber = Subscriber(broker.port)
    try:
        run = amsread("replay", str(capture), *KEYS, "--mqtt", f"mqtt://127.0.0.1:{broker.port}")
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert len(lines) == 5
        assert subscriber.wait_for(lambda: len(_states(subscriber)) >= 5)
        # The state topic carries exactly the JSON lines, in order.
        assert _states(subscriber)[:5] == lines
        last = lines[-1]["readings"]
        for reading in last:
            published = subscriber.on(f"amsread/27581522/{reading['name']}")
            value = reading["value"]
            expected = value if isinstance(value, str) else json.dumps(value)
            assert published[-1].decode() == expected, reading
        assert subscriber.wait_for(
            lambda: subscriber.on("amsread/27581522/status")[-1:] == [b"offline"]
        )
        config = subscriber.on("homeassistant/device/amsread_27581522/config")
        assert config, "no discovery message"
        payload = json.loads(config[-1])
        check_discovery_schema(payload)
        check_energy_dashboard(payload)
        retained = [r for t, _p, r in subscriber.messages if t.endswith("active_energy_import")]
        assert retained  # delivered live: retain flag is cleared for live subscribers
    finally:
        subscriber.close()
    # A new subscriber gets the retained values at once.
    late = Subscriber(broker.port, client_id="late")
    try:
        assert late.wait_for(lambda: late.on("amsread/27581522/voltage_l1"))
        assert late.on("amsread/27581522/status") == [b"offline"]
        assert not late.on("amsread/27581522/state")  # state messages are not retained
    finally:
        late.close()


class _FrameServer:
    """A TCP server that sends one frame per interval to amsread's socket:// port."""

    def __init__(self, frames: list[bytes], interval: float) -> None:
        self.frames, self.interval = frames, interval
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn, contextlib.suppress(OSError):  # amsread killed: the test goes on
            for frame in self.frames:
                conn.sendall(frame)
                self.sent += 1
                time.sleep(self.interval)
            self.done.set()
            time.sleep(3600)


def _frames(count: int) -> list[bytes]:
    data = kamstrup_stream(count)
    size = len(data) // count
    return [data[i * size : (i + 1) * size] for i in range(count)]


def _listen(port: int, broker_port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amsread",
            "listen",
            f"socket://127.0.0.1:{port}",
            *KEYS,
            "--mqtt",
            f"mqtt://127.0.0.1:{broker_port}",
            "--format",
            "none",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _counters(states: list[dict[str, object]]) -> list[int]:
    return [int(s["invocation_counter"]) for s in states]  # type: ignore[call-overload]


def test_broker_restart_mid_stream_loses_nothing(broker: Broker) -> None:
    count = 40
    # One frame more: the framer confirms a frame's end by the next one's start.
    server = _FrameServer(_frames(count + 1), 0.1)
    subscriber = Subscriber(broker.port)
    daemon = _listen(server.port, broker.port)
    try:
        assert subscriber.wait_for(lambda: len(_states(subscriber)) >= 5)
        broker.stop()
        time.sleep(1.5)
        broker.start()
        assert server.done.wait(30)
        arrived = subscriber.wait_for(lambda: len(set(_counters(_states(subscriber)))) >= count, 40)
        if not arrived:
            daemon.send_signal(signal.SIGTERM)
            pytest.fail(f"{_counters(_states(subscriber))} {daemon.communicate(timeout=20)[1]}")
        counters = _first_seen(_counters(_states(subscriber)))
        assert counters == sorted(counters)
        assert len(counters) >= count
        assert counters[-1] - counters[0] == len(counters) - 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=20)
        subscriber.close()
    assert "MQTT: connection lost" in err
    assert "MQTT connected again" in err


def test_spool_survives_restart_of_amsread(broker: Broker, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    capture = tmp_path / "k.bin"
    capture.write_bytes(kamstrup_stream(20))
    broker.stop()
    # The broker is away: the messages go to the spool, and amsread exits.
    run = amsread(
        "replay",
        str(capture),
        *KEYS,
        "--format",
        "none",
        "--mqtt",
        f"mqtt://127.0.0.1:{broker.port}",
        "--mqtt-spool",
        str(spool),
    )
    assert run.returncode == 0, run.stderr
    assert "MQTT: nothing listens" in run.stderr
    assert "kept in" in run.stderr
    assert (spool / "mqtt-queue.jsonl").exists()
    broker.start()
    subscriber = Subscriber(broker.port)
    try:
        empty = tmp_path / "empty.bin"
        empty.write_bytes(b"")
        again = amsread(
            "replay",
            str(empty),
            "--format",
            "none",
            "--mqtt",
            f"mqtt://127.0.0.1:{broker.port}",
            "--mqtt-spool",
            str(spool),
        )
        assert again.returncode == 0, again.stderr
        assert subscriber.wait_for(lambda: len(_states(subscriber)) >= 20)
        counters = _first_seen(_counters(_states(subscriber)))
        assert len(counters) == 20 and counters == sorted(counters)
        assert not (spool / "mqtt-queue.jsonl").exists()
    finally:
        subscriber.close()


def test_live_daemon_counters_ha_birth_and_kill_9(broker: Broker) -> None:
    server = _FrameServer(_frames(60), 0.2)
    subscriber = Subscriber(broker.port)
    daemon = _listen(server.port, broker.port)
    status = "amsread/27581522/status"
    config = "homeassistant/device/amsread_27581522/config"
    try:
        assert subscriber.wait_for(lambda: subscriber.on(status)[-1:] == [b"online"])
        assert subscriber.wait_for(lambda: subscriber.on(config))
        # Home Assistant restarted: its birth message brings the discovery again.
        before = len(subscriber.on(config))
        subscriber.client.publish("homeassistant/status", "online", qos=1)
        assert subscriber.wait_for(lambda: len(subscriber.on(config)) > before, 10)
        daemon.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        daemon.kill()
        daemon.wait(10)
        # No clean exit: the broker itself publishes the last will.
        assert subscriber.wait_for(lambda: subscriber.on(status)[-1:] == [b"offline"], 10)
    finally:
        daemon.kill()
        _out, err = daemon.communicate()
        subscriber.close()
    counters = [line for line in err.splitlines() if "counters" in line]
    assert counters and "mqtt_publishes=" in counters[0] and "mqtt_dropped=0" in counters[0], err


def test_password_and_tls_listeners(broker: Broker, tmp_path: Path) -> None:
    capture = tmp_path / "k.bin"
    capture.write_bytes(kamstrup_stream(3))
    password = tmp_path / "pw"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    subscriber = Subscriber(broker.port)
    try:
        plain = amsread(
            "replay",
            str(capture),
            *KEYS,
            "--format",
            "none",
            "--mqtt",
            f"mqtt://{USER}@127.0.0.1:{broker.password_port}/pw",
            "--mqtt-password-file",
            str(password),
        )
        assert plain.returncode == 0, plain.stderr
        tls = amsread(
            "replay",
            str(capture),
            *KEYS,
            "--format",
            "none",
            "--mqtt",
            f"mqtts://{USER}@127.0.0.1:{broker.tls_port}/tls",
            "--mqtt-ca",
            str(broker.ca),
            env={"AMSREAD_MQTT_PASSWORD": PASSWORD},
        )
        assert tls.returncode == 0, tls.stderr
        assert subscriber.wait_for(lambda: len(subscriber.on("pw/27581522/state")) >= 3)
        assert subscriber.wait_for(lambda: len(subscriber.on("tls/27581522/state")) >= 3)
        assert PASSWORD not in plain.stderr + tls.stderr
    finally:
        subscriber.close()


@pytest.mark.parametrize(
    ("url_of", "says"),
    [
        (lambda b: f"mqtt://{USER}@127.0.0.1:{b.password_port}", "refused the credentials"),
        (
            lambda b: f"mqtts://{USER}@127.0.0.1:{b.tls_port}",
            "TLS: the broker's certificate is not trusted",
        ),
        (lambda b: "mqtt://no-such-host.invalid", "unknown host no-such-host.invalid"),
    ],
)
def test_connection_problems_are_named_in_one_line(
    broker: Broker, tmp_path: Path, url_of: object, says: str
) -> None:
    capture = tmp_path / "k.bin"
    capture.write_bytes(kamstrup_stream(1))
    run = amsread(
        "replay",
        str(capture),
        *KEYS,
        "--format",
        "none",
        "--mqtt",
        url_of(broker),  # type: ignore[operator]
        env={"AMSREAD_MQTT_PASSWORD": "wrong"},
    )
    problems = [line for line in run.stderr.splitlines() if "MQTT:" in line]
    assert problems and says in problems[0], run.stderr
    assert "Traceback" not in run.stderr and "wrong" not in run.stderr


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str, **_fields: object) -> None:
        self.warnings.append(text)


def test_raw_readings_are_not_published_and_said_once() -> None:
    from amsread.model import Message, Reading
    from amsread.output.mqtt import MqttOptions, MqttWriter

    log = _Log()
    writer = MqttWriter(MqttOptions(parse_broker_url("mqtt://127.0.0.1:1")), log)
    sent: list[tuple[str, tuple[tuple[str, str, bool], ...]]] = []
    writer.queue.put = lambda meter, publishes: sent.append((meter, publishes))  # type: ignore[method-assign]
    for _ in range(2):
        writer.write(
            Message(
                [
                    Reading("1.0.1.8.0.255", "active_energy_import", 1234, "Wh"),
                    Reading("1.0.99.1.0.255", None, 77, None, raw=True),
                ],
                system_title="4B414D4501A4DC52",
            )
        )
    topics = {topic for _meter, publishes in sent for topic, _p, _r in publishes}
    meter = "4b414d4501a4dc52"
    assert f"amsread/{meter}/active_energy_import" in topics
    assert not any("99_1_0" in topic for topic in topics)
    assert log.warnings == ["readings with an unknown scale are not published to MQTT"]
    discovery = [p for _m, ps in sent for t, p, _r in ps if t.endswith("/config")]
    assert len(discovery) == 1  # sent when a reading first appears, not again
    assert json.loads(discovery[0])["device"]["manufacturer"] == "Kamstrup"


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**70,
        230.1,
        -0.5,
        1e-7,
        1e22,
        0.1 + 0.2,
        float("nan"),
        float("inf"),
        True,
        None,
        [1, "a"],
    ],
)
def test_reading_values_are_written_as_json_dumps_writes_them(value: object) -> None:
    from amsread.output.mqtt import value_text

    assert value_text(value) == json.dumps(value)  # type: ignore[arg-type]


def test_text_values_are_published_bare() -> None:
    from amsread.output.mqtt import value_text

    assert value_text("Kamstrup_V0001") == "Kamstrup_V0001"


def test_a_fast_replay_arrives_whole_and_in_order(broker: Broker, tmp_path: Path) -> None:
    # Far more messages than the window of unacknowledged ones: it fills and drains many times.
    count = 400
    capture = tmp_path / "k.bin"
    capture.write_bytes(kamstrup_stream(count))
    subscriber = Subscriber(broker.port, topic="amsread/27581522/state")
    try:
        url = f"mqtt://127.0.0.1:{broker.port}"
        run = amsread("-v", "replay", str(capture), *KEYS, "--format", "none", "--mqtt", url)
        assert run.returncode == 0, run.stderr
        # Every batch acknowledged: the messages and their discovery message.
        assert f"mqtt_messages={count + 1} " in run.stderr, run.stderr
        assert subscriber.wait_for(lambda: len(_states(subscriber)) >= count)
        counters = _first_seen(_counters(_states(subscriber)))
        assert len(counters) == count
        assert counters == sorted(counters)
    finally:
        subscriber.close()


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str) -> object:
        return lambda text, **fields: self.lines.append(f"{level} {text} {fields}")


def test_a_meter_that_appears_later_is_announced_online_then_offline(broker: Broker) -> None:
    from amsread.output.mqtt import MqttOptions
    from amsread.output.mqtt_queue import MqttQueue

    subscriber = Subscriber(broker.port, topic="q/+/status")
    log = _Lines()
    queue = MqttQueue(MqttOptions(parse_broker_url(f"mqtt://127.0.0.1:{broker.port}/q")), log)
    try:
        queue.put("first", (("q/first/state", "{}", False),))
        assert subscriber.wait_for(lambda: subscriber.on("q/first/status") == [b"online"])
        queue.put("second", (("q/second/state", "{}", False),))
        assert subscriber.wait_for(lambda: subscriber.on("q/second/status") == [b"online"])
        assert queue.report()["mqtt_connects"] == 1
    finally:
        queue.close()
    try:
        for meter in ("first", "second"):
            topic = f"q/{meter}/status"
            assert subscriber.wait_for(lambda t=topic: subscriber.on(t)[-1:] == [b"offline"])
        assert queue.report()["mqtt_messages"] == 2
        assert queue.report()["mqtt_queued"] == 0
        assert not any("warning" in line for line in log.lines), log.lines
    finally:
        subscriber.close()


def test_a_replay_faster_than_the_first_connect_waits_instead_of_dropping(broker: Broker) -> None:
    from amsread.output.mqtt import MqttOptions
    from amsread.output.mqtt_queue import MqttQueue

    subscriber = Subscriber(broker.port, topic="w/m/state")
    url = parse_broker_url(f"mqtt://127.0.0.1:{broker.port}/w")
    queue = MqttQueue(MqttOptions(url, wait_when_full=True), _Lines(), bound=5)
    try:
        # All put before the broker can have answered the first connect.
        for number in range(50):
            queue.put("m", (("w/m/state", str(number), False),))
    finally:
        queue.close()
    try:
        assert queue.report()["mqtt_dropped"] == 0
        expected = [str(n).encode() for n in range(50)]
        assert subscriber.wait_for(lambda: subscriber.on("w/m/state")[-1:] == [b"49"])
        assert list(dict.fromkeys(subscriber.on("w/m/state"))) == expected
    finally:
        subscriber.close()


def test_an_idle_connection_is_kept_alive_by_our_own_loop(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import amsread.output.mqtt_queue as mqtt_queue
    from amsread.output.mqtt import MqttOptions

    # The broker drops a client silent for 1.5 keepalives: the loop must ping.
    monkeypatch.setattr(mqtt_queue, "KEEPALIVE", 2)
    log = _Lines()
    url = parse_broker_url(f"mqtt://127.0.0.1:{broker.port}/idle")
    queue = mqtt_queue.MqttQueue(MqttOptions(url), log)
    try:
        queue.put("m", (("idle/m/state", "1", False),))
        time.sleep(8)
        queue.put("m", (("idle/m/state", "2", False),))
    finally:
        queue.close()
    assert queue.report()["mqtt_connects"] == 1, log.lines
    assert queue.report()["mqtt_messages"] == 2
    assert not any("connection lost" in line for line in log.lines), log.lines
