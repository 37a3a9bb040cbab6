"""The MQTT send queue: bounded, in order, QoS 1, kept while the broker is away.

``put()`` never blocks a live reader: a batch (one message's publishes) goes
into a deque; when it is full the oldest batch is dropped and counted
(``mqtt_dropped``). One thread, ``mqtt``, connects, reconnects with backoff
(naming the cause of each failure once in one line) and runs paho's loop
itself: it publishes batches at QoS 1 while connected and retires a batch
only when the broker acknowledged all of it; on a lost connection the
unacknowledged batches go back to the front of the queue and are sent again
after the reconnect (duplicates are QoS 1's "at least once", nothing goes
missing).

The connection starts with the first batch, because the last will
(``<prefix>/<meter>/status`` = ``offline``) names the meter.
"""

from __future__ import annotations

import collections
import contextlib
import select
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
#: At exit: how long to wait for the broker to take the ``offline`` status.
GOODBYE_WAIT = 2.0
#: The loop's longest wait with nothing to do (keepalive pings are due far later).
IDLE_TICK = 1.0


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
        #: Meters seen while connected, whose ``online`` status the loop still sends.
        self._new_meters: list[str] = []
        self.tally = {"mqtt_messages": 0, "mqtt_publishes": 0, "mqtt_dropped": 0}
        self.tally["mqtt_connects"] = 0
        self._client: Any = None
        self._thread: threading.Thread | None = None
        # A byte on this socket pair ends the loop's select(); one per wait, not per put.
        self._wake_read: socket.socket | None = None
        self._wake_write: socket.socket | None = None
        self._woken = False
        #: Set at close: ends the wait between two connection attempts.
        self._closing = threading.Event()
        self._spool = Spool(options.spool, bound) if options.spool else None
        if self._spool is not None:
            left = self._spool.load()
            if left:
                self.log.info("sending MQTT messages spooled by an earlier run", messages=len(left))
                self._queue.extend(left)
                self._start(left[0][0])

    # -- the reader's side ---------------------------------------------------

    def put(self, meter: str, publishes: tuple[Publish, ...]) -> None:
        # Rule: paho is called only by the mqtt thread, never holding self._lock.
        batch = (meter, publishes)
        with self._lock:
            if self._client is None:
                self._start(meter)
            if meter not in self._meters:
                self._meters.add(meter)
                if self._connected:
                    self._new_meters.append(meter)
            if self.options.wait_when_full:
                # Also before the first connection is up (no failure named yet):
                # a file read faster than a broker connects loses nothing.
                while (
                    len(self._queue) >= self.bound
                    and (self._connected or self._problem is None)
                    and not self._stopping
                ):
                    self._lock.wait(0.5)
            idle = not self._queue
            self._queue.append(batch)
            if len(self._queue) > self.bound:
                self._drop_oldest()
            if self._spool is not None and not self._connected:
                if not self._spool.append(batch):
                    self._spool.rewrite(self._pending())
                self._spool_problem()
            if idle:  # else the loop takes it with the rest, at the next acknowledgement
                self._wake()

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
                if self._thread is None or not self._thread.is_alive():
                    break
                self._lock.wait(0.1)
                if self._connected:
                    deadline = time.monotonic() + CLOSE_GRACE
            left = list(self._pending())
            self._stopping = True
            self._wake()
            self._lock.notify_all()
        self._closing.set()
        if self._thread is not None:
            self._thread.join(GOODBYE_WAIT + CLOSE_GRACE)
        if self._spool is not None:
            self._spool.rewrite(left)
        if left:
            where = f"kept in {self._spool.path}" if self._spool else "lost (use --mqtt-spool)"
            self.log.warning("MQTT messages not delivered at exit", messages=len(left), kept=where)
        if self._thread is None or not self._thread.is_alive():
            for end in (self._wake_read, self._wake_write):
                if end is not None:
                    end.close()
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
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

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
        # paho's external-loop interface: with a write callback, publish() only queues
        # the packet and our loop writes a whole message's packets in one go; paho's
        # own thread (loop_start) costs a socket-pair wake-up and a lock handover per
        # publish, ~45 us against ~30 us of CPU per acknowledged publish.
        client.on_socket_register_write = _nothing
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _run(self) -> None:
        url = self.options.url
        delay = BACKOFF_FIRST
        while not self._stopping:
            try:
                self._client.connect(url.host, url.port, KEEPALIVE)
            except Exception as exc:
                self._failed(describe_connect_error(exc, url.host, url.port))
            else:
                if self._serve():
                    delay = BACKOFF_FIRST  # it was up: the next try comes soon
            if self._stopping:
                return
            self._closing.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _serve(self) -> bool:
        """Run paho's loop on this connection until it is lost or we close; True if it was up."""
        client = self._client
        sock = client.socket()
        was_up = False
        while client.socket() is sock:
            if self._pump(client):
                self._goodbye(client, sock)
                break
            self._step(client, sock, IDLE_TICK)
            was_up = was_up or self._connected
        return was_up

    def _step(self, client: Any, sock: Any, timeout: float) -> None:
        """Wait for the socket or a wake-up, then let paho read, write and keep alive."""
        pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS's own buffer
        writers = [sock] if client.want_write() else []
        wake = self._wake_read
        readable, writable, _ = select.select(
            [sock, wake], writers, [], 0.0 if pending else timeout
        )
        if wake is not None and wake in readable:
            self._drain_wake(wake)
        if pending or sock in readable:
            client.loop_read()
        if writable and client.socket() is sock:
            client.loop_write()
        if client.socket() is sock:
            client.loop_misc()

    def _goodbye(self, client: Any, sock: Any) -> None:
        """At exit: say offline (and wait a little for it), then disconnect."""
        if self._connected:
            infos = [self._publish_status(meter, "offline") for meter in sorted(self._meters)]
            deadline = time.monotonic() + GOODBYE_WAIT
            while client.socket() is sock and time.monotonic() < deadline:
                with contextlib.suppress(RuntimeError, ValueError):
                    if all(info.is_published() for info in infos):
                        break
                client.loop_write()
                self._step(client, sock, 0.1)
        if client.socket() is sock:
            client.disconnect()
            client.loop_write()

    def _wake(self) -> None:
        """Called holding the lock: end the loop's wait, once until it has woken."""
        if not self._woken and self._wake_write is not None:
            self._woken = True
            with contextlib.suppress(OSError):
                self._wake_write.send(b"\0")

    def _drain_wake(self, wake: socket.socket) -> None:
        with self._lock:
            self._woken = False
            with contextlib.suppress(OSError):
                wake.recv(4096)

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
            self._new_meters.clear()
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
        if was and not self._stopping:
            self._failed(f"connection lost ({reason}); queueing messages until it is back")

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

    def _pump(self, client: Any) -> bool:
        """Publish what the window allows and write it out; True when closing."""
        with self._lock:
            self._retire()
            greet, self._new_meters = self._new_meters, []
            flights: list[_Flight] = []
            if self._connected and not self._stopping:
                room = WINDOW - len(self._inflight)
                while room > 0 and self._queue:
                    flights.append(_Flight(self._queue.popleft()))
                    room -= 1
                self._inflight.extend(flights)
            stopping = self._stopping
        for meter in greet:
            self._publish_status(meter, "online")
        publish = client.publish
        count = 0
        for flight in flights:
            flight.infos = [publish(topic, text, 1, keep) for topic, text, keep in flight.batch[1]]
            count += len(flight.infos)
        if count:
            with self._lock:
                self.tally["mqtt_publishes"] += count
        if client.want_write():
            client.loop_write()
        return stopping

    def _retire(self) -> None:
        """Called holding the lock: forget the batches the broker acknowledged, oldest first."""
        inflight = self._inflight
        retired = 0
        while inflight:
            flight = inflight[0]
            infos = flight.infos
            while flight.acked < len(infos) and infos[flight.acked].is_published():
                flight.acked += 1
            if flight.acked < len(infos):
                break
            inflight.popleft()
            retired += 1
        if retired:
            self.tally["mqtt_messages"] += retired
            self._lock.notify_all()
            if not inflight and not self._queue and self._spool is not None:
                self._spool.clear()


def _nothing(*_args: Any) -> None:
    """paho's write-callback: our own loop asks want_write() instead."""


class _Flight:
    """A batch being published: acknowledged when every publish of it is."""

    __slots__ = ("acked", "batch", "infos")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.infos: list[Any] = []
        #: How many of ``infos``, from the first, the broker has acknowledged.
        self.acked = 0


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
