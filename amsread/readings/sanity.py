"""Plausibility checks on decoded readings: flags, never silent fixes.

A scaler off by a power of ten (a missing or wrong profile) shows up as a
voltage of 23 V or 2300 V; a register read with the wrong resolution, or a
meter swapped behind the same reader, shows up as an energy register going
backwards. ``SanityChecker.check`` returns what it noticed; the caller (the
runner) logs it. Values are never changed here. Sans I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from amsread.model import Message, ReadingLabels

#: Plausible RMS voltages of a low-voltage supply (120 V, 230 V, 400 V systems).
VOLTAGE_RANGE = (50.0, 300.0)
#: Energy registers remembered per meter (oldest forgotten first).
MAX_TRACKED = 4096
#: Reading layouts whose voltages and energy registers are remembered.
MAX_LAYOUTS = 256
#: OBIS group C of voltages: any phase, L1, L2, L3.
_VOLTAGE_C = frozenset({12, 32, 52, 72})
_INSTANT = 7  # OBIS group D: instantaneous value
_CUMULATIVE = 8  # OBIS group D: time integral (a register that only grows)

VOLTAGE_OUT_OF_RANGE = "voltage_out_of_range"
ENERGY_BACKWARDS = "energy_backwards"


@dataclass(frozen=True, slots=True)
class Flag:
    """One implausible reading."""

    kind: str
    obis: str
    name: str | None
    value: float
    previous: float | None = None
    meter: str | None = None

    @property
    def text(self) -> str:
        label = self.name or self.obis
        if self.kind == VOLTAGE_OUT_OF_RANGE:
            low, high = VOLTAGE_RANGE
            return (
                f"{label} = {self.value} V is outside {low:g}-{high:g} V: probably a scaler"
                " off by a power of ten; check the list profile"
            )
        return (
            f"{label} went backwards from {self.previous} to {self.value}: a wrong scaler,"
            " a register reset or a different meter"
        )

    @property
    def hint(self) -> str:
        if self.kind == VOLTAGE_OUT_OF_RANGE:
            return "add or fix the profile's scaler for this code (see README, profiles)"
        return "if the meter was replaced or reset, ignore this; otherwise check the profile"


def _kind(obis: str) -> str | None:
    groups = obis.split(".")
    if len(groups) != 6 or groups[0] != "1":
        return None
    c, d = int(groups[2]), int(groups[3])
    if d == _INSTANT and c in _VOLTAGE_C:
        return "voltage"
    if d == _CUMULATIVE:
        return "energy"
    return None


#: A reading worth checking: (its index in the message, kind, obis, name).
Watched = tuple[int, str, str, str | None]


class SanityChecker:
    """Remembers energy registers per meter between messages."""

    def __init__(self) -> None:
        self._kinds: dict[str, str | None] = {}
        self._layouts: dict[ReadingLabels, list[Watched]] = {}
        self._last: dict[tuple[str | None, str], float] = {}

    def check(self, message: Message) -> list[Flag]:
        # The layout says which values to look at: no Reading objects needed.
        return self._flags(message, self._layout(message.list_layout.labels), message.values)

    def _kind(self, obis: str | None) -> str | None:
        """The kind of reading a code is ("voltage", "energy" or None), remembered."""
        if obis is None:
            return None
        kind = self._kinds.get(obis, "")
        if kind == "":
            kind = self._kinds[obis] = _kind(obis)
        return kind

    def _layout(self, labels: ReadingLabels) -> list[Watched]:
        """The voltages and energy registers among a layout's readings, in order."""
        found = self._layouts.get(labels)
        if found is None:
            if len(self._layouts) >= MAX_LAYOUTS:
                self._layouts.clear()
            # A raw voltage claims no volts, so no range applies; an energy
            # register going back is wrong at any scale.
            raw = labels.raw or (False,) * len(labels.labels)
            found = self._layouts[labels] = [
                (index, kind, obis, name)
                for index, (obis, name, _) in enumerate(labels.labels)
                if obis is not None
                and (kind := self._kind(obis)) is not None
                and not (raw[index] and kind == "voltage")
            ]
        return found

    def _flags(self, message: Message, watched: list[Watched], values: Sequence[Any]) -> list[Flag]:
        flags: list[Flag] = []
        meter: str | None = None
        meter_known = False
        low, high = VOLTAGE_RANGE
        last = self._last
        for index, kind, obis, name in watched:
            value = values[index]
            if (
                type(value) is not int  # exact types first: the common case, and cheap
                and type(value) is not float
                and (isinstance(value, bool) or not isinstance(value, int | float))
            ):
                continue
            if kind == "voltage":
                # 0 V is an absent phase (or L2 on an IT-grid meter), not a scaler error.
                if value and not low <= value <= high:
                    flags.append(Flag(VOLTAGE_OUT_OF_RANGE, obis, name, value))
                continue
            if not meter_known:
                meter, meter_known = message.system_title or message.meter_id, True
            key = (meter, obis)
            previous = last.get(key)
            if previous is None and len(last) >= MAX_TRACKED:
                del last[next(iter(last))]
            last[key] = value
            if previous is not None and value < previous:
                flags.append(Flag(ENERGY_BACKWARDS, obis, name, value, previous, meter))
        return flags
