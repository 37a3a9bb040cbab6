"""The MQTT send queue: bounded, in order, QoS 1, kept while the broker is away.

``put()`` never blocks a live reader: a batch (one message's publishes) goes
into a deque; when it is full the oldest batch is dropped and counted
(``mqtt_dropped``). A sender thread publishes batches at QoS 1 while
connected and retires a batch only when the broker acknowledged all of it;
on a lost connection the unacknowledged batches go back to the front of the
queue and are sent again after the reconnect (duplicates are QoS 1's
"at least once", nothing goes missing). A network thread connects, runs
paho's loop and reconnects with backoff, naming the cause of each failure
once in one line.

The connection starts with the first batch, because the last will
(``<prefix>/<meter>/status`` = ``offline``) names the meter.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from amsread.output.homeassistant import Topics
from amsread.output.mqtt import MqttOptions
from amsread.output.spool import Batch, Publish, Spool

#: Batches (messages) kept while the broker is away: two hours of one push a second.
QUEUE_BOUND = 7200
#: Batches published but not yet acknowledged.
WINDOW = 64
KEEPALIVE = 30
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: At exit: how long to wait for the queue to drain while the broker is away.
CLOSE_GRACE = 5.0


class MqttQueue:
    def __init__(
        self,
        options: MqttOptions,
        log: Any,
        *,
        on_connect: Callable[[], list[Publish]] = list,
        bound: int = QUEUE_BOUND,
    ) -> None:
        self.options = options
        self.log = log
        self.bound = bound
        self._announce = on_connect
        self._queue: collections.deque[Batch] = collections.deque()
        self._inflight: collections.deque[_Flight] = collections.deque()
        self._lock = threading.Condition()
        self._connected = False
        self._stopping = False
        self._problem: str | None = None
        self._meters: set[str] = set()
        self.tally = {"mqtt_messages": 0, "mqtt_publishes": 0, "mqtt_dropped": 0}
        self.tally["mqtt_connects"] = 0
        self._client: Any = None
        self._threads: list[threading.Thread] = []
        self._wake = threading.Event()
        #: Set when the connection is gone (or we are closing).
        self._down = threading.Event()
        self._spool = Spool(options.spool, bound) if options.spool else None
        if self._spool is not None:
            left = self._spool.load()
            if left:
                self.log.info("sending MQTT messages spooled by an earlier run", messages=len(left))
                self._queue.extend(left)
                self._start(left[0][0])

    # -- the reader's side ---------------------------------------------------

    def put(self, meter: str, publishes: tuple[Publish, ...]) -> None:
        # Rule: paho is never called while holding self._lock (its callbacks take it).
        batch = (meter, publishes)
        announce = False
        with self._lock:
            if self._client is None:
                self._start(meter)
            if meter not in self._meters:
                self._meters.add(meter)
                announce = self._connected
            if self.options.wait_when_full:
                while len(self._queue) >= self.bound and self._connected and not self._stopping:
                    self._lock.wait(0.5)
            self._queue.append(batch)
            if len(self._queue) > self.bound:
                self._drop_oldest()
            if self._spool is not None and not self._connected:
                if not self._spool.append(batch):
                    self._spool.rewrite(self._pending())
                self._spool_problem()
            self._lock.notify_all()
        if announce:
            self._publish_status(meter, "online")

    def _drop_oldest(self) -> None:
        self._queue.popleft()
        self.tally["mqtt_dropped"] += 1
        dropped = self.tally["mqtt_dropped"]
        if dropped == 1 or dropped % 1000 == 0:
            self.log.warning(
                "MQTT queue full: oldest messages dropped",
                mqtt_dropped=dropped,
                bound=self.bound,
                hint="the broker has been away too long; the readings still go to the output",
            )

    def close(self) -> None:
        """Send what is queued (while the broker is there), say offline, disconnect."""
        deadline = time.monotonic() + CLOSE_GRACE
        with self._lock:
            while self._queue or self._inflight:
                if not self._connected and time.monotonic() > deadline:
                    break
                if self._client is None:
                    break
                self._lock.wait(0.1)
                if self._connected:
                    deadline = time.monotonic() + CLOSE_GRACE
            left = list(self._pending())
            connected = self._connected
            self._stopping = True
            self._lock.notify_all()
        if connected:
            infos = [self._publish_status(meter, "offline") for meter in sorted(self._meters)]
            for info in infos:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(2.0)
        if self._spool is not None:
            self._spool.rewrite(left)
        if left:
            where = f"kept in {self._spool.path}" if self._spool else "lost (use --mqtt-spool)"
            self.log.warning("MQTT messages not delivered at exit", messages=len(left), kept=where)
        self._wake.set()
        if self._client is not None:
            self._client.disconnect()
        self._down.set()
        for thread in self._threads:
            thread.join(5.0)
        self.log.info("mqtt", broker=str(self.options.url), **self.tally)

    def report(self) -> dict[str, int]:
        """The counters, for the SIGUSR1 summary."""
        with self._lock:
            return {**self.tally, "mqtt_queued": len(self._queue) + len(self._inflight)}

    def _pending(self) -> list[Batch]:
        return [flight.batch for flight in self._inflight] + list(self._queue)

    # -- the connection ------------------------------------------------------

    def _start(self, meter: str) -> None:
        self._meters.add(meter)
        self._client = self._make_client(Topics(self.options.url.path, meter).status)
        for target, name in ((self._network, "mqtt-network"), (self._sender, "mqtt-sender")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _make_client(self, will_topic: str) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        url = self.options.url
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"amsread-{will_topic.split('/')[-2]}-{socket.gethostname()}"[:64],
            reconnect_on_failure=False,
        )
        if url.username:
            client.username_pw_set(url.username, self.options.password)
        if url.tls:
            client.tls_set(
                ca_certs=self.options.ca, certfile=self.options.cert, keyfile=self.options.key
            )
        client.will_set(will_topic, "offline", qos=1, retain=True)
        # Unlimited: our WINDOW bounds what is in flight, and paho scans its whole
        # queue on every acknowledgement when it has a limit (quadratic).
        client.max_inflight_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _network(self) -> None:
        url = self.options.url
        delay = BACKOFF_FIRST
        while not self._stopping:
            try:
                self._client.connect(url.host, url.port, KEEPALIVE)
            except Exception as exc:
                self._failed(describe_connect_error(exc, url.host, url.port))
            else:
                # paho's own thread (loop_start) sends faster than publishes written
                # from ours; with reconnect_on_failure off it ends at a disconnect.
                self._down.clear()
                self._client.loop_start()
                self._down.wait()
                self._client.loop_stop()
                if self._problem is None:
                    delay = BACKOFF_FIRST  # it was up: the next try comes soon
            if self._stopping:
                return
            self._wake.wait(delay)
            self._wake.clear()
            delay = min(delay * 2, BACKOFF_MAX)

    def _failed(self, problem: str) -> None:
        if problem != self._problem:
            self.log.error(f"MQTT: {problem}", broker=str(self.options.url), retrying=True)
        self._problem = problem

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._failed(describe_refusal(str(reason)))
            client.disconnect()
            return
        if self._problem is not None or self.tally["mqtt_connects"]:
            self.log.info("MQTT connected again", broker=str(self.options.url))
        else:
            self.log.info("MQTT connected", broker=str(self.options.url))
        self._problem = None
        self.tally["mqtt_connects"] += 1
        if self.options.ha_discovery:
            client.subscribe(f"{self.options.ha_prefix}/status", qos=1)
        with self._lock:
            meters = sorted(self._meters)
        for meter in meters:
            self._publish_status(meter, "online")
        for topic, payload, retain in self._announce():
            client.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            self._connected = True
            self._lock.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
            # Unacknowledged batches go out again, first, after the reconnect.
            self._queue.extendleft(reversed([flight.batch for flight in self._inflight]))
            self._inflight.clear()
            while len(self._queue) > self.bound:
                self._drop_oldest()
            if was and self._spool is not None and not self._stopping:
                self._spool.rewrite(self._queue)
                self._spool_problem()
            self._lock.notify_all()
        self._down.set()
        if was and not self._stopping:
            self._failed(f"connection lost ({reason}); queueing messages until it is back")

    def _on_publish(self, *_args: Any) -> None:
        with self._lock:
            self._lock.notify_all()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        # Home Assistant's birth message: it may have lost the entities; send them again.
        if message.payload == b"online":
            for topic, payload, retain in self._announce():
                self._client.publish(topic, payload, qos=1, retain=retain)

    def _publish_status(self, meter: str, status: str) -> Any:
        topic = Topics(self.options.url.path, meter).status
        return self._client.publish(topic, status, qos=1, retain=True)

    def _spool_problem(self) -> None:
        if self._spool is not None and self._spool.error:
            self.log.warning(self._spool.error, hint="check --mqtt-spool's free space")

    # -- sending -------------------------------------------------------------

    def _sender(self) -> None:
        client = self._client
        while True:
            with self._lock:
                self._retire()
                while not self._connected or not self._queue or len(self._inflight) >= WINDOW:
                    if self._stopping:
                        return
                    self._lock.wait(0.2)
                    self._retire()
                flight = _Flight(self._queue.popleft())
                self._inflight.append(flight)
            flight.infos = [
                client.publish(topic, payload, qos=1, retain=retain)
                for topic, payload, retain in flight.batch[1]
            ]
            with self._lock:
                flight.sent = True
                self.tally["mqtt_publishes"] += len(flight.infos)

    def _retire(self) -> None:
        """Forget the batches the broker has acknowledged, oldest first."""
        inflight = self._inflight
        retired = False
        while inflight and inflight[0].sent and all(i.is_published() for i in inflight[0].infos):
            inflight.popleft()
            self.tally["mqtt_messages"] += 1
            retired = True
        if retired:
            self._lock.notify_all()
            if not inflight and not self._queue and self._spool is not None:
                self._spool.clear()


class _Flight:
    """A batch being published: acknowledged when every publish of it is."""

    __slots__ = ("batch", "infos", "sent")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.infos: list[Any] = []
        self.sent = False


def describe_connect_error(exc: BaseException, host: str, port: int) -> str:
    """One line naming why the broker could not be reached."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host {host}: check the name in --mqtt"
    if isinstance(exc, ssl.SSLCertVerificationError):
        trust = exc.verify_message
        return f"TLS: the broker's certificate is not trusted ({trust}); check --mqtt-ca"
    if isinstance(exc, ssl.SSLError):
        why = exc.reason or exc
        return f"TLS failure: {why}; check mqtts://, the port, --mqtt-ca and --mqtt-cert"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on {host}:{port}: is the broker running?"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer from {host}:{port}: check the address and firewall"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot reach {host}:{port}: {text}"


def describe_refusal(reason: str) -> str:
    lowered = reason.lower()
    if "password" in lowered or "authori" in lowered:
        return (
            f"the broker refused the credentials ({reason}): check the user in --mqtt and"
            " the password (--mqtt-password-file, AMSREAD_MQTT_PASSWORD)"
        )
    return f"the broker refused the connection: {reason}"
