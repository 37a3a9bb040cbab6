"""Serial settings, port opening and the classification of line problems.

Everything ``listen`` knows about the port layer short of the read loop:
which settings to try, how to open a device or URL (network ports with TCP
keepalive and without losing the bytes sent at connect), and what an error
from opening, configuring or reading a port means for the user.
"""

from __future__ import annotations

import errno
import re
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from amsread.errors import UsageError

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
#: A network port silent this long (s) is closed and reconnected (--silence-limit):
#: a peer that lost power sends no FIN, and keepalive alone takes minutes.
SILENCE_LIMIT = 300.0
#: A local device that went away is looked for this often (s), not backed off.
LOCAL_RECHECK = 1.0
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

    if port.lower().startswith("socket://"):
        return open_socket(port, timeout)
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


#: TCP keepalive on network ports: first probe after this many idle seconds,
#: then every KEEPALIVE_INTERVAL, the peer declared dead after KEEPALIVE_COUNT
#: unanswered probes (about 2 minutes for a ser2net box that lost power).
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 6


def enable_keepalive(sock: socket.socket) -> None:
    """Let the kernel find a peer that vanished without a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        option = getattr(socket, name, None)
        if option is not None:  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def open_socket(port: str, timeout: float) -> Port:
    """``socket://HOST:PORT`` with keepalive, keeping the bytes sent right at connect.

    pyserial's socket port empties its input at the end of ``open()``: a meter
    push arriving with the connection would be lost. This subclass skips that.
    """
    from serial.urlhandler.protocol_socket import Serial as SocketSerial

    class KeepingSocket(SocketSerial):  # type: ignore[misc]
        _opening = False

        def open(self) -> None:
            self._opening = True
            try:
                super().open()
            finally:
                self._opening = False
            enable_keepalive(self._socket)

        def reset_input_buffer(self) -> None:
            if not self._opening:
                super().reset_input_buffer()

    opened: Port = KeepingSocket(port, timeout=timeout)
    return opened


def read_available(port: Port, *, network: bool, timeout: float) -> bytes:
    """What the line has delivered, as soon as it arrives.

    ``read(READ_SIZE)`` alone waits for 4096 bytes or the whole timeout:
    half a second of latency on every push. So block (up to the timeout)
    for one byte, then take whatever else is already waiting.
    """
    first = port.read(1)
    if not first:
        return first
    if network:
        # socket://: in_waiting only says "something", so drain without blocking.
        port.timeout = 0
        try:
            return first + port.read(READ_SIZE - 1)
        finally:
            port.timeout = timeout
    data = bytearray(first)
    while len(data) < READ_SIZE:
        waiting = getattr(port, "in_waiting", 0)
        if not waiting:
            break
        data += port.read(min(waiting, READ_SIZE - len(data)))
    return bytes(data)


def is_network(port: str) -> bool:
    """True for URLs that name a TCP endpoint (socket://, rfc2217://)."""
    scheme, sep, _ = port.partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


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
BAD_URL = "expected a string in the form"


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
