"""systemd service notifications (``sd_notify``) with the socket module only.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``; ``READY=1`` tells it
the service is up, ``WATCHDOG=1`` (at least every ``$WATCHDOG_USEC / 2``)
that the main loop is still turning, ``STATUS=`` is shown by ``systemctl
status``. Outside systemd every call is a cheap no-op. A notification that
cannot be sent never stops the reader.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

#: Ping the watchdog at this fraction of systemd's timeout (sd_watchdog_enabled(3)).
WATCHDOG_FRACTION = 0.5


class Notifier:
    """Sends state to systemd; does nothing when not started by systemd."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._clock = clock
        self._socket: socket.socket | None = None
        self.watchdog_interval = _watchdog_interval(env)
        self._last_ping = clock()
        self.ready_sent = False
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``VAR=value`` lines in one datagram; True if it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(payload, self._address)
        except OSError:
            # systemd gone or socket not writable: the meter still matters more.
            self.errors += 1
            return False
        return True

    def ready(self, status: str | None = None) -> None:
        """``READY=1`` once; later calls only update the status."""
        lines = [] if self.ready_sent else ["READY=1"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        if lines:
            self.ready_sent = True
            self.notify(*lines)

    def status(self, text: str) -> None:
        self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> None:
        self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog_due(self) -> bool:
        if self.watchdog_interval is None or self._address is None:
            return False
        return self._clock() - self._last_ping >= self.watchdog_interval

    def next_ping_in(self) -> float | None:
        """Seconds until the next ping is due (0 if overdue); None without a watchdog."""
        if self.watchdog_interval is None or self._address is None:
            return None
        return max(0.0, self.watchdog_interval - (self._clock() - self._last_ping))

    def ping(self) -> None:
        """``WATCHDOG=1`` if one is due: call it from every turn of the main loop."""
        if self.watchdog_due():
            self._last_ping = self._clock()
            self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(value: str) -> str | bytes | None:
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        # Linux abstract namespace: a leading NUL instead of '@'.
        return b"\0" + value[1:].encode()
    # Unset, empty, or a transport we do not speak (vsock:): stay silent.
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings, or None if systemd expects none from this process."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 * WATCHDOG_FRACTION if usec > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.split())
