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
import errno
import os
import re
import select
import signal
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from amsread.app.notify import Notifier
from amsread.app.runner import Reporter
from amsread.errors import UsageError
from amsread.pipeline import Pipeline

#: A blocking read returns at least this often (s), so a stop request takes
#: effect within a second and watchdog pings are never late.
READ_TIMEOUT = 0.5
#: Bytes asked for per read: a few frames; the framer's buffer is bounded anyway.
READ_SIZE = 4096
#: Reconnect delays double from BACKOFF_FIRST up to BACKOFF_MAX seconds.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
#: Seconds to try one serial setting, counted from its first byte: meters
#: push every 1 to 10 s, so this always spans a whole push.
PROBE_SECONDS = 12.0
#: Warn when the line has been silent this long (s); meters push every few seconds.
SILENCE_WARNING = 60.0
#: URL schemes whose bytes do not depend on the serial settings we choose.
NO_SERIAL_SETTINGS = ("socket", "loop", "mqtt", "mqtts")


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Baud rate, parity and data bits (8, or 7 for DSMR 2.2/3 P1 ports); 1 stop bit."""

    baudrate: int
    parity: str
    bytesize: int = 8

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}1"

    @property
    def flags(self) -> str:
        # No flag sets 7 data bits: a pinned 9600 E is 8E1; DSMR 2.2/3 needs the probe.
        return f"--baud {self.baudrate} --parity {self.parity}"


#: Tried in this order by ``--baud auto --parity auto``: the common HAN/P1 settings.
AUTO_SETTINGS = (
    SerialSettings(2400, "E"),
    SerialSettings(2400, "N"),
    SerialSettings(9600, "N"),
    SerialSettings(9600, "E"),
    SerialSettings(115200, "N"),  # also DSMR 4/5, Fluvius, Smarty P1
    SerialSettings(9600, "E", 7),  # DSMR 2.2 and 3 P1 ports
)


def candidates(baud: int | None, parity: str | None) -> tuple[SerialSettings, ...]:
    """Settings to try; ``None`` means auto. One fixed setting when both are given."""
    if baud is not None and parity is not None:
        return (SerialSettings(baud, parity),)
    matching = tuple(
        s
        for s in AUTO_SETTINGS
        if (baud is None or s.baudrate == baud) and (parity is None or s.parity == parity)
    )
    if matching:
        return matching
    if baud is not None:
        return (SerialSettings(baud, "E"), SerialSettings(baud, "N"))
    assert parity is not None
    return tuple(SerialSettings(rate, parity) for rate in (2400, 9600, 115200))


def parse_baud(text: str | int | None) -> int | None:
    """``--baud``: a positive integer, or ``auto`` (None)."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"--baud must be a number such as 2400 or 9600, or auto; got {text!r}")
    return value


#: URL schemes that name a TCP endpoint, ``scheme://host:port``.
NETWORK_SCHEMES = ("socket", "rfc2217")


def check_port(port: str) -> None:
    """Reject a malformed network URL up front (pyserial's own errors are cryptic)."""
    scheme, sep, _ = port.partition("://")
    if not sep or scheme.lower() not in NETWORK_SCHEMES:
        return
    parsed = urllib.parse.urlsplit(port)
    try:
        number = parsed.port
    except ValueError:
        number = None
    if not parsed.hostname or number is None or not 0 < number < 65536:
        raise UsageError(
            f"{port} is not a valid {scheme}:// URL: write {scheme}://HOST:PORT,"
            f" e.g. {scheme}://192.168.1.20:2001"
        )


def serial_settings_apply(port: str) -> bool:
    """False for URLs such as socket:// where the remote end sets the line."""
    scheme, sep, _ = port.partition("://")
    return not sep or scheme.lower() not in NO_SERIAL_SETTINGS


class Port(Protocol):
    """What we use of a pyserial port."""

    baudrate: int
    parity: str
    bytesize: int
    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


Opener = Callable[[str, SerialSettings, float], Port]


def open_port(port: str, settings: SerialSettings, timeout: float) -> Port:
    """Open a device path or pyserial URL, 8 data bits, 1 stop bit; or an MQTT subscription."""
    from amsread.app.mqtt_source import MqttPort, is_mqtt_url

    if is_mqtt_url(port):
        return MqttPort(port, timeout)
    import serial  # only the daemon needs pyserial

    opened: Port = serial.serial_for_url(
        port,
        baudrate=settings.baudrate,
        parity=settings.parity,
        bytesize=serial.SEVENBITS if settings.bytesize == 7 else serial.EIGHTBITS,
        stopbits=serial.STOPBITS_ONE,
        timeout=timeout,
        # A second reader on one port would steal bytes from both.
        exclusive=True,
    )
    return opened


@dataclass
class Backoff:
    """Delays before reconnecting: first, 2×first, 4×first, … capped."""

    first: float = BACKOFF_FIRST
    cap: float = BACKOFF_MAX
    _next: float = 0.0

    def next(self) -> float:
        delay = min(self._next or self.first, self.cap)
        self._next = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = 0.0


@dataclass(frozen=True, slots=True)
class LineProblem:
    """Why the port could not be used, and what the user can do about it."""

    cause: str
    detail: str
    hint: str


_ERRNO = re.compile(r"\[Errno (-?\d+)\]")
#: pyserial reports a malformed URL (a configuration error) with this text.
_BAD_URL = "expected a string in the form"


def _errno_of(exc: BaseException) -> int | None:
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return code
    found = _ERRNO.search(str(exc))
    return int(found.group(1)) if found else None


def describe_problem(exc: BaseException, port: str) -> LineProblem:
    """Classify an error from opening or reading the port into cause and hint."""
    code = _errno_of(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    network = not serial_settings_apply(port) or "://" in port
    if code == errno.ENOTTY or f"({errno.ENOTTY}, " in text:
        # /dev/null, a disk, …: a device, but no serial line (termios refuses it).
        return LineProblem(
            "not_serial",
            f"{port} is not a serial device",
            "use amsread replay FILE for a capture; for a meter, give its serial port",
        )
    if code in (errno.EACCES, errno.EPERM):
        return LineProblem(
            "permission",
            text,
            "add the user to the dialout group (sudo usermod -aG dialout $USER, then log in"
            " again); the systemd unit does this with SupplementaryGroups=dialout",
        )
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) and not network:
        return LineProblem(
            "missing",
            text,
            "is the adapter plugged in? list serial devices with: ls -l /dev/serial/by-id/",
        )
    if code in (errno.EBUSY, errno.EAGAIN):
        return LineProblem(
            "busy",
            text,
            "another program holds the port (a second amsread, ModemManager, a serial"
            " console?); stop it",
        )
    if code == errno.ECONNREFUSED:
        return LineProblem(
            "refused", text, "nothing listens there: is ser2net (or the TCP bridge) running?"
        )
    if code is not None and (code < 0 or code in _UNREACHABLE):
        return LineProblem("unreachable", text, "check the host name, the address and the network")
    if "disconnected" in text or "returned no data" in text or code in _GONE:
        hint = (
            "the server closed the connection (restarted? ser2net serves one client at a time)"
            if network
            else "the device went away (unplugged, or a failing USB cable or hub?)"
        )
        return LineProblem("disconnected", text, hint)
    return LineProblem("error", text, "retrying; if this persists, check the port and cabling")


_GONE = frozenset({errno.EIO, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})
_UNREACHABLE = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EHOSTDOWN, errno.ENETDOWN}
)


class _Interrupted(BaseException):
    """Raised by the signal handler to abandon a slow connect (nothing is being written)."""


class Listener:
    """Reads a port for ever; ``chunks()`` yields what it reads."""

    def __init__(
        self,
        port: str,
        settings: Sequence[SerialSettings],
        pipeline: Pipeline,
        reporter: Reporter,
        *,
        notifier: Notifier | None = None,
        raw_sink: Callable[[bytes], object] | None = None,
        opener: Opener = open_port,
        read_timeout: float = READ_TIMEOUT,
        probe_seconds: float = PROBE_SECONDS,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        port_events: Callable[[str], object] | None = None,
    ) -> None:
        if not settings:
            raise ValueError("no serial settings to try")
        check_port(port)
        self.port_name = port
        self.pipeline = pipeline
        self.reporter = reporter
        self.log = reporter.log
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
        self._port: Port | None = None
        self._stopping = False
        self._counters_due = False
        self._connecting = False
        self._wake_r = self._wake_w = -1
        self._outage: LineProblem | None = None
        self._outage_since = 0.0
        self._reopened = False
        self._last_data = clock()
        self._silence_warned = False
        self._probe_start: float | None = None
        self._probe_frames = 0
        self._probe_saw_bytes = False
        self._cycle_warned = False
        #: More counters for the SIGUSR1 summary (the MQTT queue's).
        self.extra_counters: list[Callable[[], dict[str, int]]] = []
        #: Told "open" when the port opens and a cause when it fails (metrics).
        self._port_events = port_events

    # -- control (safe from signal handlers) --------------------------------

    def stop(self) -> None:
        """Finish the current chunk, then end ``chunks()``."""
        self._stopping = True
        self._wake()

    def request_counters(self) -> None:
        self._counters_due = True

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

        handlers: dict[signal.Signals, Any] = {
            signal.SIGTERM: on_stop,
            signal.SIGINT: on_stop,
            signal.SIGUSR1: on_usr1,
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
                except OSError as exc:  # serial.SerialException is an OSError
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
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1
            self.notifier.stopping(f"stopped; {self.reporter.messages} messages")

    def _read(self, port: Port) -> bytes:
        """What the line has delivered, as soon as it arrives.

        ``read(READ_SIZE)`` alone waits for 4096 bytes or the whole timeout:
        half a second of latency on every push. So block (up to the timeout)
        for one byte, then take whatever else is already waiting.
        """
        first = port.read(1)
        if not first:
            return first
        if self._network:
            # socket://: in_waiting only says "something", so drain without blocking.
            port.timeout = 0
            try:
                return first + port.read(READ_SIZE - 1)
            finally:
                port.timeout = self._read_timeout
        data = bytearray(first)
        while len(data) < READ_SIZE:
            waiting = getattr(port, "in_waiting", 0)
            if not waiting:
                break
            data += port.read(min(waiting, READ_SIZE - len(data)))
        return bytes(data)

    def _connect(self) -> None:
        self._connecting = True
        try:
            port = self._opener(self.port_name, self.settings, self._read_timeout)
        except _Interrupted:
            return
        except ValueError as exc:
            # pyserial: unknown URL scheme, impossible baud rate, … Retrying cannot help.
            raise UsageError(f"cannot use port {self.port_name}: {exc}") from None
        except OSError as exc:
            if _BAD_URL in str(exc):
                raise UsageError(f"cannot use port {self.port_name}: {exc}") from None
            self._connecting = False
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
        if self._outage is None or not self._reopened:
            self.log.info("port open", **fields)
        else:
            self.log.debug("port open", **fields)
        self._reopened = self._outage is not None
        self._last_data = self._clock()
        self._start_probe()
        self.notifier.ready(self._status())
        if self._port_events is not None:
            self._port_events("open")

    def _line_failed(self, exc: OSError, verb: str) -> None:
        self._close_port()
        problem = describe_problem(exc, self.port_name)
        if self._port_events is not None:
            self._port_events(problem.cause)
        delay = self._backoff.next()
        if self._outage is None or self._outage.cause != problem.cause:
            if self._outage is None:
                self._outage_since = self._clock()
                self._reopened = False
            self.log.warning(
                f"{verb} {self.port_name}: {problem.detail}",
                hint=problem.hint,
                retry_in=f"{delay:g} s, backing off up to {self._backoff.cap:g} s",
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
            messages_out=self.reporter.messages,
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
            step = min(left, self.notifier.watchdog_interval or left)
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
        if silent >= SILENCE_WARNING and not self._silence_warned:
            self._silence_warned = True
            self.log.warning(
                f"no bytes from {self.port_name} for {silent:.0f} s",
                hint="check the cable or the IR head's position, and that the meter's"
                " customer port is enabled (some grid operators enable it on request)",
            )

    # -- auto-detection -------------------------------------------------------

    def _start_probe(self) -> None:
        self._probe_start = None
        self._probe_frames = self.pipeline.counters["frames_ok"]

    def _check_probe(self) -> None:
        """After each read: keep a setting that gave a frame, or move on after a while."""
        if not self.detecting or self._port is None:
            return
        if self.pipeline.counters["frames_ok"] > self._probe_frames:
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
        self.log.debug("trying serial settings", settings=str(self.settings))
        try:
            self._port.baudrate = self.settings.baudrate
            self._port.parity = self.settings.parity
            self._port.bytesize = self.settings.bytesize
            # Bytes still buffered were read with the previous setting.
            self._port.reset_input_buffer()
        except (OSError, ValueError) as exc:
            self._line_failed(OSError(str(exc)), "lost")
            return
        self.notifier.status(self._status())
        self._start_probe()

    def _status(self) -> str:
        where = self.port_name
        if self._serial_applies:
            where += f" at {self.settings}"
        if self.detecting:
            return f"detecting serial settings on {where}"
        return f"reading {where}; {self.reporter.messages} messages"
