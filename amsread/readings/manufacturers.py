"""What a DLMS system title says about the meter that sent it.

A system title is 8 bytes. Meters on HAN/P1 ports open it with the maker's
three-letter FLAG ID (``KAM``, ``KFM``, ``ISK``…, names in
``data/manufacturers.toml``). The IDIS layout used by most of them then has

* byte 3: a device type byte;
* byte 4, high nibble: the function type, bit flags for the disconnector (1),
  load management (2) and multi-utility (4) extensions;
* byte 4 low nibble and bytes 5-7: the serial number, 28 bits (usually the
  last 8 digits of the serial printed on the meter).

Some makers write five ASCII digits after the FLAG ID instead. Kamstrup's
meter number (1.1.0.0.1.255) equals the IDIS serial.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

SYSTEM_TITLE_SIZE = 8
_FUNCTIONS = ((0x1, "disconnector"), (0x2, "load management"), (0x4, "multi-utility"))


@cache
def flags() -> dict[str, str]:
    """FLAG ID -> maker, from the data file."""
    text = (
        resources.files("amsread.readings").joinpath("data/manufacturers.toml").read_text("utf-8")
    )
    table = tomllib.loads(text)["flags"]
    return {str(k): str(v) for k, v in table.items()}


def manufacturer_name(flag: str | None) -> str | None:
    return flags().get(flag.upper()) if flag else None


@dataclass(frozen=True, slots=True)
class SystemTitle:
    raw: bytes
    #: The three letters, upper case, or None if the title does not start with letters.
    flag: str | None
    maker: str | None
    #: "IDIS", "ASCII" (five digits after the flag) or "unknown".
    layout: str
    device_type: int | None = None
    function_bits: int | None = None
    serial: int | str | None = None

    @property
    def functions(self) -> list[str]:
        bits = self.function_bits or 0
        return [name for bit, name in _FUNCTIONS if bits & bit]

    @property
    def serial_bytes(self) -> bytes:
        """The bytes that identify the individual meter (the part to redact)."""
        if self.layout == "unknown" or len(self.raw) != SYSTEM_TITLE_SIZE:
            return self.raw
        return self.raw[4:] if self.layout == "IDIS" else self.raw[3:]

    def describe(self, serial_text: str | None = None) -> str:
        """One line: maker, function type, serial (``serial_text`` replaces the serial)."""
        serial = serial_text if serial_text is not None else str(self.serial)
        if self.flag is None:
            return "no manufacturer flag (the title does not start with three letters)"
        maker = self.maker or "maker not in amsread's list"
        if self.layout == "ASCII":
            return f"{self.flag} = {maker}; serial {serial} (ASCII digits)"
        if self.layout != "IDIS":
            return f"{self.flag} = {maker}"
        functions = ", ".join(self.functions) or "none"
        return (
            f"{self.flag} = {maker}; device type 0x{self.device_type:02X},"
            f" function type {self.function_bits} ({functions}); serial {serial}"
        )


def _is_letter(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def decode_system_title(raw: bytes) -> SystemTitle:
    """Split a system title into FLAG ID, function type and serial number."""
    if len(raw) != SYSTEM_TITLE_SIZE or not all(_is_letter(b) for b in raw[:3]):
        return SystemTitle(raw, None, None, "unknown")
    flag = raw[:3].decode("ascii").upper()
    maker = manufacturer_name(flag)
    tail = raw[3:]
    if all(0x30 <= b <= 0x39 for b in tail):
        return SystemTitle(raw, flag, maker, "ASCII", serial=tail.decode("ascii"))
    serial = int.from_bytes(raw[4:], "big") & 0x0FFFFFFF
    return SystemTitle(raw, flag, maker, "IDIS", raw[3], raw[4] >> 4, serial)
