"""Prometheus metrics for ``amsread listen --metrics HOST:PORT``.

A custom collector: nothing is counted twice. At each scrape it reads the
pipeline's counters (frames by result and reason, messages, replays, …), what
the listener reported about its port (``Health``) and the latest readings of
each meter (``LatestReadings``, fed by ``ObservedWriter`` as messages are
written). Names follow Prometheus' naming rules: an ``amsread_`` prefix, base
units (``amsread/readings/data/prometheus_units.toml`` says which), ``_total``
on counters and on registers that only grow. Readings without a name (raw,
unidentified values), text values and units without a base unit are left out.

prometheus_client is imported only here, and this module only with --metrics.
"""

from __future__ import annotations

import math
import re
import threading
import time
import tomllib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from amsread import __version__
from amsread.errors import UsageError
from amsread.model import Message
from amsread.output.writers import Writer

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "amsread_"
#: Prometheus' metric name syntax (data model: ``[a-zA-Z_:][a-zA-Z0-9_:]*``).
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
#: Meters whose latest readings are kept; the oldest-updated is dropped beyond this.
MAX_METERS = 64
#: Bind address when --metrics gives only a port: not reachable from the network.
DEFAULT_HOST = "127.0.0.1"

#: Pipeline counters that count rejected stretches of the line, by reason.
REJECTED = ("bad_hcs", "bad_fcs", "bad_checksum", "truncated", "segments_lost", "blocks_lost")
#: Failures of intact frames (DecodeError reasons): always exported, zero or not.
FAILED = (
    "no_key",
    "auth_failed",
    "decrypt_failed",
    "unsupported_security",
    "replayed",
    "bad_apdu",
    "bad_axdr",
)
#: Key problems among FAILED: amsread_decryption_failures_total.
DECRYPTION = ("no_key", "auth_failed", "decrypt_failed", "unsupported_security")
#: Counters exported under names of their own, not as a frame result.
OWN_NAMES = {
    "bytes_read": ("read_bytes", "Bytes read from the line."),
    "garbage_bytes": ("garbage_bytes", "Bytes outside any valid frame."),
    "messages": ("messages", "Push messages decoded."),
    "missed_pushes": ("missed_pushes", "Pushes missed: jumps of the invocation counter."),
    "unauthenticated": ("unauthenticated_messages", "Messages whose tag was not checked."),
    "replayed": ("replays", "Frames dropped because their invocation counter did not increase."),
}
#: A name part saying a register is a net value (import minus export): it can go down.
NET_MARKERS = ("_net",)
#: Readings that identify rather than measure (numbers, but no quantity to graph);
#: the meter id is a label already.
IDENTIFIERS = (
    "meter_id",
    "meter_number",
    "meter_serial",
    "meter_type",
    "device_id",
    "firmware",
    "list_version",
    "logical_device",
    "consumer_message",
)


@dataclass(frozen=True, slots=True)
class UnitRule:
    suffix: str
    factor: float
    grows: bool = False


def load_units() -> dict[str, UnitRule]:
    text = resources.files("amsread.readings").joinpath("data/prometheus_units.toml").read_text()
    return {
        unit: UnitRule(str(rule["suffix"]), float(rule["factor"]), bool(rule.get("grows", False)))
        for unit, rule in tomllib.loads(text)["units"].items()
    }


UNITS = load_units()


@dataclass(frozen=True, slots=True)
class ReadingMetric:
    """How one reading is exported: its metric name, scale and type."""

    name: str
    factor: float
    counter: bool


def reading_metric(name: str | None, unit: str | None) -> ReadingMetric | None:
    """``amsread_<reading name>_<base unit>``; None for readings left out."""
    if not name or not METRIC_NAME.fullmatch(name) or name.startswith(IDENTIFIERS):
        return None
    if unit is None:
        return ReadingMetric(PREFIX + name, 1.0, False)
    rule = UNITS.get(unit)
    if rule is None:
        return None
    counter = rule.grows and not any(marker in name for marker in NET_MARKERS)
    return ReadingMetric(f"{PREFIX}{name}_{rule.suffix}", rule.factor, counter)


def parse_address(text: str) -> tuple[str, int]:
    """``--metrics``: ``PORT``, ``:PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise UsageError(
            f"--metrics must be PORT or HOST:PORT, e.g. 9101 or 0.0.0.0:9101; got {text!r}"
        )
    return host, number


class Health:
    """What the daemon reports besides the pipeline: port opens, errors, output errors."""

    def __init__(self) -> None:
        self.port_opens = 0
        self.port_errors: Counter[str] = Counter()
        self.output_errors = 0
        self.connected = False

    def port_event(self, event: str) -> None:
        """The listener's hook: ``open``, or the cause of a port problem."""
        if event == "open":
            self.port_opens += 1
            self.connected = True
        else:
            self.port_errors[event] += 1
            self.connected = False

    def output_error(self) -> None:
        self.output_errors += 1


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """One meter's latest message: its labels, when it came, its numeric readings."""

    meter_id: str
    system_title: str
    list_id: str
    profile: str
    received_at: float
    #: (obis, reading name, unit, value) of every reading with a numeric value.
    readings: tuple[tuple[str, str | None, str | None, float], ...]


class LatestReadings:
    """The latest message of each meter (at most MAX_METERS), for the collector."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._meters: OrderedDict[tuple[str, str], MeterSnapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock
        self.last_message_at: float | None = None

    def record(self, message: Message) -> None:
        readings = tuple(
            (obis or "", name, unit, float(value))
            for obis, name, unit, value in _labelled_values(message)
            if isinstance(value, int | float) and not isinstance(value, bool)
        )
        snapshot = MeterSnapshot(
            message.meter_id or "",
            message.system_title or "",
            message.list_id or "",
            message.profile or "",
            message.received_at or self._clock(),
            readings,
        )
        key = (snapshot.meter_id, snapshot.system_title)
        with self._lock:
            self._meters[key] = snapshot
            self._meters.move_to_end(key)
            while len(self._meters) > MAX_METERS:
                self._meters.popitem(last=False)
            self.last_message_at = snapshot.received_at

    def snapshots(self) -> list[MeterSnapshot]:
        with self._lock:
            return list(self._meters.values())


def _labelled_values(message: Message) -> Iterator[tuple[str | None, str | None, str | None, Any]]:
    """(obis, name, unit, value) of each reading; raw readings left out.

    The message's labels and values are read as they are: making its
    Reading objects would take the JSON writer off its fast path.
    """
    labels = message.list_layout.labels
    raw = labels.raw or (False,) * len(labels.labels)
    for (obis, name, unit), is_raw, value in zip(labels.labels, raw, message.values, strict=True):
        if not is_raw:
            yield obis, name, unit, value


class ObservedWriter:
    """A writer that shows every message to LatestReadings and counts output errors."""

    def __init__(self, writer: Writer, latest: LatestReadings, health: Health) -> None:
        self._writer = writer
        self._latest = latest
        self._health = health

    def write(self, message: Message) -> None:
        try:
            self._writer.write(message)
        except OSError:
            self._health.output_error()
            raise
        self._latest.record(message)

    def flush(self) -> None:
        try:
            self._writer.flush()
        except OSError:
            self._health.output_error()
            raise


def _snapshot(counters: Mapping[str, int]) -> dict[str, int]:
    """A copy of counters the main thread keeps changing (the copy is one C call)."""
    for _ in range(10):
        try:
            return dict(counters)
        except RuntimeError:  # changed size during the copy: try again
            continue
    return {}


class Collector:
    """prometheus_client collector: amsread's health and each meter's latest readings."""

    def __init__(
        self,
        counters: Mapping[str, int],
        health: Health,
        latest: LatestReadings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counters = counters
        self._health = health
        self._latest = latest
        self._clock = clock
        self._started = clock()

    def collect(self) -> Iterator[Metric]:
        yield from self._health_metrics(_snapshot(self._counters))
        yield from self._reading_metrics(self._latest.snapshots())

    def _health_metrics(self, counts: dict[str, int]) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, InfoMetricFamily

        yield InfoMetricFamily(
            PREFIX + "build", "amsread's version.", value={"version": __version__}
        )
        frames = CounterMetricFamily(
            PREFIX + "frames",
            "Frames (failed: messages) by result (ok, rejected, skipped, failed) and reason.",
            labels=("result", "reason"),
        )
        frames.add_metric(("ok", "valid"), counts.get("frames_ok", 0))
        frames.add_metric(("skipped", "not_push"), counts.get("skipped", 0))
        for reason in REJECTED:
            frames.add_metric(("rejected", reason), counts.get(reason, 0))
        known = {"frames_ok", "skipped", *REJECTED, *OWN_NAMES}
        failed = dict.fromkeys(FAILED, 0)
        failed.update({k: v for k, v in counts.items() if k not in known or k == "replayed"})
        for reason, count in failed.items():
            frames.add_metric(("failed", reason), count)
        yield frames
        for key, (name, text) in OWN_NAMES.items():
            yield CounterMetricFamily(PREFIX + name, text, value=counts.get(key, 0))
        yield CounterMetricFamily(
            PREFIX + "decryption_failures",
            "Ciphered messages not decrypted: no key, wrong key, failed tag, unknown security.",
            value=sum(counts.get(reason, 0) for reason in DECRYPTION),
        )
        yield from self._port_metrics()

    def _port_metrics(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        health = self._health
        yield CounterMetricFamily(
            PREFIX + "reconnects",
            "Times the port was opened again after it was lost.",
            value=max(health.port_opens - 1, 0),
        )
        errors = CounterMetricFamily(
            PREFIX + "port_errors", "Port problems by cause.", labels=("cause",)
        )
        for cause, count in sorted(health.port_errors.items()):
            errors.add_metric((cause,), count)
        yield errors
        yield GaugeMetricFamily(
            PREFIX + "port_up", "1 while the port is open, else 0.", value=int(health.connected)
        )
        yield CounterMetricFamily(
            PREFIX + "output_errors", "Failed writes of the output.", value=health.output_errors
        )
        last = self._latest.last_message_at
        # Before the first message: the time since start, so that an alert on
        # a large age fires for a reader that never decodes anything.
        age = self._clock() - (self._started if last is None else last)
        yield GaugeMetricFamily(
            PREFIX + "last_message_age_seconds",
            "Seconds since the last decoded message (since start if none yet).",
            value=max(age, 0.0),
        )
        if last is not None:
            yield GaugeMetricFamily(
                PREFIX + "last_message_timestamp_seconds",
                "Unix time of the last decoded message.",
                value=last,
            )

    def _reading_metrics(self, meters: list[MeterSnapshot]) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        labels = ("meter_id", "system_title")
        info = InfoMetricFamily(PREFIX + "meter", "Each meter's list and profile.", labels=labels)
        families: dict[str, Any] = {}
        for meter in meters:
            ids = (meter.meter_id, meter.system_title)
            info.add_metric(ids, {"list_id": meter.list_id, "profile": meter.profile})
            for obis, name, unit, value in meter.readings:
                rule = reading_metric(name, unit)
                if rule is None or not math.isfinite(value):
                    continue
                family = families.get(rule.name)
                if family is None:
                    kind = CounterMetricFamily if rule.counter else GaugeMetricFamily
                    text = f"The meter's {name} reading" + (f", from {unit}." if unit else ".")
                    family = families[rule.name] = kind(rule.name, text, labels=(*labels, "obis"))
                family.add_metric((*ids, obis), value * rule.factor, timestamp=None)
        if meters:
            yield info
        yield from families.values()


def serve(address: tuple[str, int], collector: Collector) -> None:
    """Serve /metrics from a daemon thread; a port in use is bad configuration."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    host, port = address
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UsageError(
            f"cannot serve --metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None


def start(address: str, counters: Mapping[str, int], writer: Writer) -> tuple[Writer, Health]:
    """``--metrics ADDRESS``: serve, and return the writer to use and the port hook's owner."""
    health, latest = Health(), LatestReadings()
    serve(parse_address(address), Collector(counters, health, latest))
    return ObservedWriter(writer, latest, health), health
