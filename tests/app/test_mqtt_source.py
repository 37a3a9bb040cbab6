"""``amsread listen mqtt://…``: frames forwarded by a bridge to a broker decode like a line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker, Subscriber

from amsread.app.mqtt_source import payload_bytes
from tests.output.test_mqtt import KEYS, _frames


def test_payloads_raw_or_hex_text() -> None:
    assert payload_bytes(b"7e a0 1b\n") == b"\x7e\xa0\x1b"
    assert payload_bytes(b"7EA01B") == b"\x7e\xa0\x1b"
    assert payload_bytes(b"\x7e\xa0\x1b") == b"\x7e\xa0\x1b"
    assert payload_bytes(b"7e a") == b"7e a"  # odd digits: not hex, taken as bytes


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path)
    running.start()
    yield running
    running.stop()


def test_listen_to_a_topic_and_republish(broker: Broker) -> None:
    frames = _frames(7)
    subscriber = Subscriber(broker.port)
    source = f"mqtt://127.0.0.1:{broker.port}/han/+/raw"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amsread",
            "listen",
            source,
            *KEYS,
            "--mqtt",
            f"mqtt://127.0.0.1:{broker.port}/out",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        publisher = Subscriber(broker.port, topic="none", client_id="bridge")

        # The subscription of amsread may take a moment: resend until something decodes.

        def decoded() -> bool:
            return len(subscriber.on("out/27581522/state")) >= 1

        for frame in frames[:2]:
            publisher.client.publish("han/bridge1/raw", frame, qos=1).wait_for_publish(5)
        if not subscriber.wait_for(decoded, 10):
            for frame in frames[:2]:
                publisher.client.publish("han/bridge1/raw", frame, qos=1).wait_for_publish(5)
        assert subscriber.wait_for(decoded, 10)
        for frame in frames[2:]:
            publisher.client.publish("han/bridge2/raw", frame.hex(" "), qos=1).wait_for_publish(5)
        assert subscriber.wait_for(lambda: len(subscriber.on("out/27581522/state")) >= 5, 10)
        publisher.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=20)
        subscriber.close()
    lines = [json.loads(line) for line in out.splitlines()]
    counters = [line["invocation_counter"] for line in lines]
    assert counters == sorted(set(counters)) and len(counters) >= 5, err
    states = [json.loads(p) for p in subscriber.on("out/27581522/state")]
    assert [s["invocation_counter"] for s in states][: len(counters)] == counters
