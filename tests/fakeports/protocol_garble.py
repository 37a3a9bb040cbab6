"""``garble://BAUD/PARITY?interval=S``: a meter readable at one serial setting only.

A pseudo-terminal passes bytes through whatever baud rate and parity the
reader sets, so it cannot test auto-detection. This port sends a real frame
every ``interval`` seconds; the bytes arrive intact only while the port is
set to BAUD and PARITY, and otherwise come out mangled, as a UART at the
wrong setting delivers them (wrong bits, lost characters).
"""

from __future__ import annotations

import time
import urllib.parse

import seed_vectors as sv
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

FRAME = sv.RADIUS_FRAME
#: Wrong settings flip bits…
_GARBLE = bytes((b ^ 0x5A) for b in range(256))


class Serial(SerialBase):
    """The pyserial port class for ``garble://``."""

    def open(self) -> None:
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        parsed = urllib.parse.urlsplit(self._port)
        baud, _, parity = (parsed.netloc + parsed.path).partition("/")
        self.wanted = (int(baud), parity.upper())
        query = urllib.parse.parse_qs(parsed.query)
        self.interval = float(query.get("interval", ["0.1"])[0])
        self._pending = b""
        self._count = 0
        self._next = time.monotonic()
        self.is_open = True
        #: (baudrate, parity) at each read, for tests to inspect.
        self.settings_seen: list[tuple[int, str]] = []

    def close(self) -> None:
        self.is_open = False

    def _reconfigure_port(self, force_update: bool = False) -> None:
        pass  # settings are read at every read()

    @property
    def in_waiting(self) -> int:
        return len(self._pending)

    def reset_input_buffer(self) -> None:
        self._pending = b""

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        deadline = time.monotonic() + (self._timeout or 0)
        while not self._pending:
            now = time.monotonic()
            if now >= self._next:
                self._pending = FRAME
                self._next = now + self.interval
                continue
            wait = min(self._next, deadline) - now
            if wait <= 0:
                return b""
            time.sleep(wait)
        data, self._pending = self._pending[:size], self._pending[size:]
        self.settings_seen.append((self._baudrate, self._parity))
        if (self._baudrate, self._parity) == self.wanted:
            return data
        # …and lose every fifth character.
        start, self._count = self._count, self._count + len(data)
        return bytes(b for i, b in enumerate(data.translate(_GARBLE), start) if i % 5)

    def write(self, data: bytes) -> int:
        return len(data)
