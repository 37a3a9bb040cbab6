"""``amsread listen mqtt://host[:port]/topic``: a broker's messages as the line's bytes.

Bridges that forward a HAN port's bytes publish them to MQTT, as raw bytes
or as hex text. ``MqttPort`` subscribes to the topic (wildcards allowed) and
offers the payloads through the small part of pyserial's port interface that
``Listener`` uses, so they go through the same framing and decoding as a
serial line. A lost or refused connection is an ``OSError``: the listener
logs it and reconnects with its usual backoff.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from amsread.app.sources import parse_hex
from amsread.errors import UsageError

SCHEMES = ("mqtt://", "mqtts://")
#: Bytes buffered from the broker before the oldest are dropped (a stalled reader).
MAX_BUFFER = 1024 * 1024
_HEX_TEXT = re.compile(rb"^[0-9a-fA-F\s:]+$")


def is_mqtt_url(port: str) -> bool:
    return port.lower().startswith(SCHEMES)


def payload_bytes(payload: bytes) -> bytes:
    """The line's bytes in a payload: hex text is decoded, anything else taken as is."""
    if len(payload) >= 2 and _HEX_TEXT.match(payload):
        try:
            return parse_hex(payload.decode("ascii"))
        except (UsageError, ValueError):
            return payload  # not hex after all (odd digits): the bytes as they came
    return payload


class MqttPort:
    """A subscription that reads like a serial port (``read``, ``in_waiting``, ``close``)."""

    baudrate = 0
    parity = "N"
    bytesize = 8

    def __init__(self, url: str, timeout: float) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from amsread.output.mqtt import parse_broker_url, resolve_password

        self.url = parse_broker_url(url, default_path="#")
        self.timeout: float | None = timeout
        self._buffer = bytearray()
        self._ready = threading.Condition()
        self._problem: str | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"amsread-listen-{os.getpid()}",
            reconnect_on_failure=False,
        )
        if self.url.username:
            client.username_pw_set(self.url.username, resolve_password(None))
        if self.url.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.connect(self.url.host, self.url.port, 30)  # OSError: the listener retries
        client.loop_start()
        self._client = client

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._lost(f"the broker refused the connection: {reason}")
            return
        client.subscribe(self.url.path, qos=1)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        data = payload_bytes(bytes(message.payload))
        with self._ready:
            self._buffer += data
            if len(self._buffer) > MAX_BUFFER:
                del self._buffer[: len(self._buffer) - MAX_BUFFER]
            self._ready.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._lost(f"the broker closed the connection ({reason}); disconnected")

    def _lost(self, problem: str) -> None:
        with self._ready:
            self._problem = problem
            self._ready.notify_all()

    @property
    def in_waiting(self) -> int:
        return len(self._buffer)

    def read(self, size: int = 1) -> bytes:
        with self._ready:
            if not self._buffer and self._problem is None:
                self._ready.wait(self.timeout)
            if not self._buffer and self._problem is not None:
                raise OSError(self._problem)
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data

    def reset_input_buffer(self) -> None:
        with self._ready:
            self._buffer.clear()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
