"""``amsread listen``: read a serial port (or any pyserial URL) for ever.

Thin I/O around the pipeline. ``Listener.chunks()`` yields the bytes read
from the port and is consumed by ``runner.run`` exactly like a capture file,
so ``listen`` and ``replay`` decode and write alike. Everything that can go
wrong on the line (no device yet, unplugged, permission denied, read errors,
a server closing the connection) is logged once with a hint and retried with
exponential backoff; only bad configuration stops it.

Reads block with a timeout (no busy loop): each turn of the loop handles
signals, SIGUSR1 counter requests and systemd watchdog pings.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import termios
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from amsread.app.log import Logger
from amsread.app.notify import Notifier
from amsread.app.outfile import OUTPUT_CHECK, Reopenable
from amsread.app.ports import (
    BAD_URL,
    LOCAL_RECHECK,
    PROBE_SECONDS,
    READ_TIMEOUT,
    SILENCE_LIMIT,
    SILENCE_WARNING,
    Backoff,
    LineProblem,
    Opener,
    Port,
    SerialSettings,
    check_port,
    describe_problem,
    is_network,
    open_port,
    read_available,
    serial_settings_apply,
)
from amsread.errors import UsageError
from amsread.model import Event, Failure, Message, Skipped
from amsread.pipeline import Pipeline

#: Errors the port layer raises besides OSError (serial.SerialException is one):
#: termios.error when a tty refuses a setting. None of them may end the daemon.
PORT_ERRORS = (OSError, termios.error)


class _Interrupted(BaseException):
    """Raised by the signal handler to abandon a slow connect (nothing is being written)."""


#: Events that only a checksum-valid frame gives: its payload reached the APDU
#: layer, so the serial setting reads the meter (wrong keys or not).
_FROM_VALID_FRAMES = (Message, Skipped, Failure)


class Listener:
    """Reads a port for ever; ``chunks()`` yields what it reads.

    Whoever decodes the chunks tells it what came of each (``observe``): a
    decoded frame ends the serial-setting detection, messages are counted.
    """

    def __init__(
        self,
        port: str,
        settings: Sequence[SerialSettings],
        pipeline: Pipeline,
        log: Logger,
        *,
        notifier: Notifier | None = None,
        raw_sink: Callable[[bytes], object] | None = None,
        opener: Opener = open_port,
        read_timeout: float = READ_TIMEOUT,
        probe_seconds: float = PROBE_SECONDS,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        silence_limit: float = SILENCE_LIMIT,
        outputs: Sequence[Reopenable] = (),
        port_events: Callable[[str], object] | None = None,
    ) -> None:
        if not settings:
            raise ValueError("no serial settings to try")
        check_port(port)
        self.port_name = port
        #: Its counters are what SIGUSR1 logs.
        self.pipeline = pipeline
        self.log = log
        #: Messages decoded from what this listener read (``observe``).
        self.messages = 0
        self.notifier = notifier if notifier is not None else Notifier({})
        self._raw_sink = raw_sink
        self._opener = opener
        # A read must return in time for the next watchdog ping.
        self._read_timeout = min(read_timeout, self.notifier.watchdog_interval or read_timeout)
        self._probe_seconds = probe_seconds
        self._backoff = backoff if backoff is not None else Backoff()
        self._clock = clock
        self._candidates = tuple(settings)
        self._index = 0
        self.settings = self._candidates[0]
        #: True until a setting gave a checksum-valid frame (auto-detection).
        self.detecting = len(self._candidates) > 1 and serial_settings_apply(port)
        self._serial_applies = serial_settings_apply(port)
        self._network = port.lower().startswith("socket://")
        self._silence_limit = silence_limit
        self._outputs = tuple(outputs)
        self._start_state(clock())
        #: More counters for the SIGUSR1 summary (the MQTT queue's).
        self.extra_counters: list[Callable[[], dict[str, int]]] = []
        #: Settings this tty refused (said once each, then at debug level).
        self._refused: set[SerialSettings] = set()
        #: Told "open" when the port opens and a cause when it fails (metrics).
        self._port_events = port_events

    def _start_state(self, now: float) -> None:
        """The line's state before the first open: no port, no outage, no probe."""
        self._hangup_due = False
        self._next_check = now
        self._port: Port | None = None
        self._stopping = False
        self._counters_due = False
        self._connecting = False
        self._wake_r = self._wake_w = -1
        self._outage: LineProblem | None = None
        self._outage_since = 0.0
        self._reopened = False
        self._last_data = now
        self._silence_warned = False
        self._probe_start: float | None = None
        #: A checksum-valid frame was decoded since the setting under test was set.
        self._probe_decoded = False
        self._probe_saw_bytes = False
        self._cycle_warned = False
        self._quiet_open = False

    # -- control (safe from signal handlers) --------------------------------

    def stop(self) -> None:
        """Finish the current chunk, then end ``chunks()``."""
        self._stopping = True
        self._wake()

    def request_counters(self) -> None:
        self._counters_due = True
        self._wake()

    def request_reopen(self) -> None:
        """SIGHUP (logrotate): reopen the output files at the next turn."""
        self._hangup_due = True
        self._wake()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop cleanly, SIGUSR1 logs the counters."""

        def on_stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop()
            if self._connecting:
                raise _Interrupted

        def on_usr1(_signum: int, _frame: FrameType | None) -> None:
            self.request_counters()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.request_reopen()

        handlers: dict[signal.Signals, Any] = {
            signal.SIGTERM: on_stop,
            signal.SIGINT: on_stop,
            signal.SIGUSR1: on_usr1,
            signal.SIGHUP: on_hup,
        }
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                # None: a handler not set from Python; the default is the best guess.
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")
        cancel = getattr(self._port, "cancel_read", None)
        if cancel is not None:
            # pyserial's posix port: makes a blocking read return at once.
            with contextlib.suppress(Exception):
                cancel()

    # -- the loop -----------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        """Bytes read from the port until ``stop()``; reconnects as needed."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        try:
            while not self._stopping:
                if self._port is None:
                    self._connect()
                    continue
                try:
                    data = self._read(self._port)
                except PORT_ERRORS as exc:  # serial.SerialException is an OSError
                    self._line_failed(exc, "lost")
                    continue
                self._tick()
                if data:
                    self._received(data)
                    yield data
                else:
                    self._check_silence()
                self._check_probe()
        finally:
            self._close_port()
            if self._counters_due:
                # Asked for just before the stop: still answered.
                self._counters_due = False
                self.log_counters()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1
            self.notifier.stopping(f"stopped; {self.messages} messages")

    def _read(self, port: Port) -> bytes:
        return read_available(port, network=self._network, timeout=self._read_timeout)

    def _connect(self) -> None:
        self._tick()  # a TCP connect may block for seconds: ping first
        self._connecting = True
        try:
            port = self._opener(self.port_name, self.settings, self._read_timeout)
        except _Interrupted:
            return
        except ValueError as exc:
            # pyserial: unknown URL scheme, impossible baud rate, … Retrying cannot help.
            raise UsageError(f"cannot use port {self.port_name}: {exc}") from None
        except PORT_ERRORS as exc:
            if BAD_URL in str(exc):
                raise UsageError(f"cannot use port {self.port_name}: {exc}") from None
            self._connecting = False
            if self.detecting and isinstance(exc, termios.error):
                # This tty refuses the setting itself: try the next one.
                self._skip_setting(exc)
                return
            self._line_failed(exc, "cannot open")
            return
        finally:
            self._connecting = False
        self._port = port
        self._opened()

    def _opened(self) -> None:
        fields: dict[str, object] = {"port": self.port_name}
        if self._serial_applies:
            fields["settings"] = str(self.settings)
        if self.detecting:
            fields["detecting"] = "trying the common settings until a frame checks out"
        if (self._outage is None or not self._reopened) and not self._quiet_open:
            self.log.info("port open", **fields)
        else:
            self.log.debug("port open", **fields)
        self._reopened = self._outage is not None
        self._quiet_open = False
        self._last_data = self._clock()
        self._start_probe()
        self.notifier.ready(self._status())
        if self._port_events is not None:
            self._port_events("open")

    def _line_failed(self, exc: BaseException, verb: str) -> None:
        self._close_port()
        problem = describe_problem(exc, self.port_name)
        if self._port_events is not None:
            self._port_events(problem.cause)
        delay = self._backoff.next()
        retry = f"{delay:g} s, backing off up to {self._backoff.cap:g} s"
        if not is_network(self.port_name) and "://" not in self.port_name:
            # A local device that comes back is reopened within seconds.
            delay = min(delay, LOCAL_RECHECK)
            retry = f"checking every {delay:g} s"
        if self._outage is None or self._outage.cause != problem.cause:
            if self._outage is None:
                self._outage_since = self._clock()
                self._reopened = False
            self.log.warning(
                f"{verb} {self.port_name}: {problem.detail}",
                hint=problem.hint,
                retry_in=retry,
            )
        else:
            self.log.debug(f"{verb} {self.port_name}: {problem.detail}", retry_in=delay)
        self._outage = problem
        # Ready even without the port: systemd must not hold boot for an unplugged adapter.
        self.notifier.ready(f"waiting for {self.port_name}: {problem.detail}")
        self._wait(delay)

    def _received(self, data: bytes) -> None:
        now = self._clock()
        self._last_data = now
        if self._outage is not None:
            self.log.info(
                f"reading {self.port_name} again",
                after=f"{now - self._outage_since:.0f} s",
            )
            self._outage = None
            self.notifier.status(self._status())
        self._backoff.reset()
        if self._silence_warned:
            self._silence_warned = False
            self.log.info(f"bytes arriving again on {self.port_name}")
        if self._probe_start is None:
            self._probe_start = now
        self._probe_saw_bytes = True
        if self._raw_sink is not None:
            self._raw_sink(data)

    def _tick(self) -> None:
        self.notifier.ping()
        if self._counters_due:
            self._counters_due = False
            self.log_counters()
        if self._hangup_due:
            self._hangup_due = False
            self.log.info("SIGHUP: reopening the output files")
            for output in self._outputs:
                output.reopen()
        now = self._clock()
        if now >= self._next_check:
            # Moved or deleted output files (rotation without a signal).
            self._next_check = now + OUTPUT_CHECK
            for output in self._outputs:
                output.check()

    def log_counters(self) -> None:
        counts = self.pipeline.counters
        shown = {
            name: counts[name]
            for name in (
                "frames_ok",
                "bad_fcs",
                "bad_hcs",
                "truncated",
                "auth_failed",
                "replayed",
                "messages",
                "bytes_read",
            )
        }
        shown.update({k: v for k, v in counts.report().items() if k not in shown})
        for extra in self.extra_counters:
            shown.update(extra())
        self.log.info(
            "counters",
            port=self.port_name,
            settings=str(self.settings) if self._serial_applies else "set by the remote end",
            connected=self._port is not None,
            messages_out=self.messages,
            **shown,
        )

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake for a stop request and keep the watchdog fed."""
        deadline = self._clock() + seconds
        while not self._stopping:
            self._tick()
            left = deadline - self._clock()
            if left <= 0:
                return
            due = self.notifier.next_ping_in()
            step = min(left, OUTPUT_CHECK, left if due is None else max(due, 0.01))
            ready, _, _ = select.select([self._wake_r], [], [], step)
            if ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()

    def _check_silence(self) -> None:
        silent = self._clock() - self._last_data
        if is_network(self.port_name) and silent >= self._silence_limit:
            # A peer that lost power sends no FIN: leave it, connect again.
            self.log.warning(
                f"no bytes from {self.port_name} for {silent:.0f} s: reconnecting",
                hint="the server or the meter behind it went silent; see --silence-limit",
            )
            self._close_port()
            self._last_data = self._clock()
            return
        if silent >= SILENCE_WARNING and not self._silence_warned:
            self._silence_warned = True
            self.log.warning(
                f"no bytes from {self.port_name} for {silent:.0f} s",
                hint="check the cable or the IR head's position, and that the meter's"
                " customer port is enabled (some grid operators enable it on request)",
            )

    # -- auto-detection -------------------------------------------------------

    def observe(self, events: Sequence[Event]) -> None:
        """What the pipeline made of the chunk just yielded (before the next is read)."""
        for event in events:
            if isinstance(event, _FROM_VALID_FRAMES):
                self._probe_decoded = True
                if isinstance(event, Message):
                    self.messages += 1

    def _start_probe(self) -> None:
        self._probe_start = None
        self._probe_decoded = False

    def _check_probe(self) -> None:
        """After each read: keep a setting that gave a frame, or move on after a while."""
        if not self.detecting or self._port is None:
            return
        if self._probe_decoded:
            self.detecting = False
            self.log.info(
                "serial settings detected",
                settings=str(self.settings),
                pin=f"amsread listen {self.port_name} {self.settings.flags}",
                config=f'baud = {self.settings.baudrate} and parity = "{self.settings.parity}"',
            )
            self.notifier.status(self._status())
            return
        if self._probe_start is None or self._clock() - self._probe_start < self._probe_seconds:
            return
        self._next_setting()
        self.log.debug("trying serial settings", settings=str(self.settings))
        try:
            self._port.baudrate = self.settings.baudrate
            self._port.parity = self.settings.parity
            self._port.bytesize = self.settings.bytesize
            # Bytes still buffered were read with the previous setting.
            self._port.reset_input_buffer()
        except (*PORT_ERRORS, ValueError) as exc:
            # Reopened at the next turn, with this setting (or the next).
            self._refused_once(f"cannot switch {self.port_name} to", exc, "reopening the port")
            self._close_port()
            self._quiet_open = True
            return
        self.notifier.status(self._status())
        self._start_probe()

    def _skip_setting(self, exc: BaseException) -> None:
        """Opening at the setting under test failed: log it, go on to the next."""
        self._refused_once(f"cannot open {self.port_name} at", exc, "trying the next setting")
        self._quiet_open = True
        self._next_setting()
        self._wait(self._read_timeout)

    def _next_setting(self) -> None:
        """Go on to the next candidate; after a whole cycle of garbage, say so once."""
        self._index = (self._index + 1) % len(self._candidates)
        if self._index == 0 and self._probe_saw_bytes and not self._cycle_warned:
            self._cycle_warned = True
            self.log.warning(
                "bytes arrive but no common serial setting gives a valid frame yet",
                tried=", ".join(str(s) for s in self._candidates),
                hint="check the wiring (an inverted signal gives garbage), or pin the"
                " meter's documented setting with --baud and --parity",
            )
        self.settings = self._candidates[self._index]

    def _refused_once(self, text: str, exc: BaseException, hint: str) -> None:
        said = self.log.debug if self.settings in self._refused else self.log.warning
        self._refused.add(self.settings)
        said(f"{text} {self.settings}: {_one_line(exc)}", hint=hint)

    def _status(self) -> str:
        where = self.port_name
        if self._serial_applies:
            where += f" at {self.settings}"
        if self.detecting:
            return f"detecting serial settings on {where}"
        return f"reading {where}; {self.messages} messages"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
