"""``--mqtt URL``: publish every message to an MQTT broker, with Home Assistant discovery.

The writer side (``MqttWriter``) turns a message into its publishes (the
state JSON, one retained topic per reading, discovery when a reading appears)
and hands them to an ``MqttQueue`` (``mqtt_queue.py``), which sends them from
its own threads: reading the meter never waits for the broker.

paho-mqtt is imported only here, and this module only when ``--mqtt`` is used.
"""

from __future__ import annotations

import io
import json
import math
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amsread.errors import UsageError
from amsread.model import Message
from amsread.output.homeassistant import (
    ReadingInfo,
    Topics,
    discovery_payload,
    discovery_topic,
    meter_name,
    reading_topic_name,
    topic_id,
)
from amsread.output.spool import Publish
from amsread.output.writers import JsonlWriter

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_PREFIX = "amsread"
DEFAULT_HA_PREFIX = "homeassistant"
#: systemd ``LoadCredential=`` name of the broker password.
CREDENTIAL_PASSWORD = "amsread-mqtt-password"
ENV_PASSWORD = "AMSREAD_MQTT_PASSWORD"
MAX_PASSWORD_FILE = 4096


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """``mqtt://[user@]host[:port][/prefix]``; ``mqtts://`` for TLS."""

    host: str
    port: int
    tls: bool
    username: str | None
    #: The topic prefix (publishing) or the topic filter (``listen mqtt://…``).
    path: str

    def __str__(self) -> str:  # no password: it never is in the URL
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.path}"


def parse_broker_url(url: str, default_path: str = DEFAULT_PREFIX) -> BrokerUrl:
    """Parse and check a broker URL; a bad one is a one-line UsageError."""
    example = "mqtt://[user@]HOST[:PORT][/PREFIX], e.g. mqtt://homeassistant.local/amsread"
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UsageError(f"{url!r} is not an MQTT URL: write {example}")
    if parts.password is not None:
        raise UsageError(
            "do not put the MQTT password in the URL (other users see it in the process"
            " list): use --mqtt-password-file, AMSREAD_MQTT_PASSWORD or the systemd"
            f" credential {CREDENTIAL_PASSWORD}"
        )
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        port = 0
    if not parts.hostname or not 0 < port < 65536:
        raise UsageError(f"{url!r} is not a valid MQTT URL: write {example}")
    path = urllib.parse.unquote(parts.path).strip("/") or default_path
    return BrokerUrl(
        parts.hostname,
        port,
        scheme == "mqtts",
        urllib.parse.unquote(parts.username) if parts.username else None,
        path,
    )


def resolve_password(
    password_file: str | None, environ: dict[str, str] | None = None
) -> str | None:
    """--mqtt-password-file > AMSREAD_MQTT_PASSWORD > the systemd credential; never logged."""
    from amsread.dlms.keys import warn_if_readable_by_others

    env = dict(os.environ) if environ is None else environ
    if password_file:
        warn_if_readable_by_others(password_file)
        return _first_line(password_file, "--mqtt-password-file")
    if env.get(ENV_PASSWORD):
        return env[ENV_PASSWORD]
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_PASSWORD).is_file():
        return _first_line(str(Path(credentials) / CREDENTIAL_PASSWORD), "credential")
    return None


def _first_line(path: str, what: str) -> str:
    from amsread.app.sources import read_small_file

    raw = read_small_file(path, f"MQTT password {what}", MAX_PASSWORD_FILE)
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"MQTT password file {path} is not UTF-8 text") from None
    if not lines or not lines[0]:
        raise UsageError(f"MQTT password file {path} is empty: write the password on line 1")
    return lines[0]


@dataclass(frozen=True, slots=True)
class MqttOptions:
    url: BrokerUrl
    password: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    spool: str | None = None
    ha_discovery: bool = True
    ha_prefix: str = DEFAULT_HA_PREFIX
    #: True for replay: a file may wait for a connected broker instead of dropping.
    wait_when_full: bool = False


class _StateText:
    """The JSON-lines text of one message, from the JSON-lines writer itself."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = JsonlWriter(self._buffer)

    def __call__(self, message: Message) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.write(message)
        return self._buffer.getvalue().rstrip("\n")


class _Meter:
    """One meter: its readings announced so far and its topics, each worked out once."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.readings: dict[str, ReadingInfo] = {}
        self.discovery: str | None = None
        self._names: dict[tuple[str | None, str | None], str] = {}
        self._topics: dict[str, str] = {}

    def topic_name(self, name: str | None, obis: str | None) -> str:
        key = (name, obis)
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = reading_topic_name(name, obis)
        return found

    def topic(self, topic_name: str) -> str:
        found = self._topics.get(topic_name)
        if found is None:
            found = self._topics[topic_name] = self.topics.reading(topic_name)
        return found


def value_text(value: int | float | str) -> str:
    """A reading's bare value as JSON text (strings bare): ``json.dumps``, without its cost."""
    if type(value) is str:
        return value
    # json.dumps writes exact ints and finite floats with their own repr; the rest
    # (bools, NaN, subclasses) goes through json itself.
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)
    return json.dumps(value)


class MqttWriter:
    """A ``Writer`` that publishes messages through an ``MqttQueue``."""

    def __init__(self, options: MqttOptions, log: Any) -> None:
        from amsread.output.mqtt_queue import MqttQueue

        self.options = options
        self.log = log
        self._state = _StateText()
        self._meters: dict[str, _Meter] = {}
        #: The same meters by the id or system title they send, before topic_id().
        self._by_sent_id: dict[str | None, _Meter] = {}
        self._raw_warned = False
        self.queue = MqttQueue(options, log, on_connect=self._announce_all)

    def write(self, message: Message) -> None:
        meter = self._meter(message)
        publishes: list[Publish] = [(meter.topics.state, self._state(message), False)]
        new = False
        used: set[str] = set()
        for reading in message.readings:
            value = reading.value
            if reading.raw:
                self._say_raw(reading.obis)
                continue
            if value is None:
                continue
            name = meter.topic_name(reading.name, reading.obis)
            if name in used:  # a repeated name keeps its OBIS code
                name = meter.topic_name(None, reading.obis)
            used.add(name)
            publishes.append((meter.topic(name), value_text(value), True))
            if name not in meter.readings:
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                meter.readings[name] = ReadingInfo(
                    name, reading.obis, reading.name, reading.unit, numeric
                )
                new = True
        if new and self.options.ha_discovery:
            meter.discovery = json.dumps(self._discovery(meter, message), ensure_ascii=False)
            self.queue.put(meter.topics.meter, (self._discovery_publish(meter),))
        self.queue.put(meter.topics.meter, tuple(publishes))

    def flush(self) -> None:
        """Nothing to do: the queue's thread sends as soon as it can."""

    def close(self) -> None:
        self.queue.close()

    def _meter(self, message: Message) -> _Meter:
        sent_id = message.meter_id or message.system_title
        meter = self._by_sent_id.get(sent_id)
        if meter is None:
            name = meter_name(message)
            meter = self._meters.get(name)
            if meter is None:
                meter = self._meters[name] = _Meter(Topics(self.options.url.path, name))
            self._by_sent_id[sent_id] = meter
        return meter

    def _discovery(self, meter: _Meter, message: Message) -> dict[str, Any]:
        return discovery_payload(
            meter.topics,
            list(meter.readings.values()),
            system_title=message.system_title,
            meter_id=message.meter_id,
            model=message.profile or message.list_id,
        )

    def _discovery_publish(self, meter: _Meter) -> Publish:
        assert meter.discovery is not None
        return (discovery_topic(self.options.ha_prefix, meter.topics.meter), meter.discovery, True)

    def _announce_all(self) -> list[Publish]:
        """Sent first at every connect and when Home Assistant comes online."""
        return [self._discovery_publish(m) for m in self._meters.values() if m.discovery]

    def _say_raw(self, obis: str | None) -> None:
        if not self._raw_warned:
            self._raw_warned = True
            self.log.warning(
                "readings with an unknown scale are not published to MQTT",
                obis=obis,
                hint="give the list a profile (--profile) that names the scalers",
            )


__all__ = ["MqttOptions", "MqttWriter", "parse_broker_url", "resolve_password", "topic_id"]
