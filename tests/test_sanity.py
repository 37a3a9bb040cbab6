"""Plausibility flags: implausible voltages and energy registers going backwards are logged."""

from __future__ import annotations

from typing import Any

from amsread.events import Message, Reading
from amsread.runner import Reporter
from amsread.sanity import ENERGY_BACKWARDS, VOLTAGE_OUT_OF_RANGE, SanityChecker


def message(*readings: tuple[str, object], title: str | None = "KAMTEST1") -> Message:
    return Message(
        readings=[Reading(obis, None, value, None) for obis, value in readings],  # type: ignore[arg-type]
        system_title=title,
    )


def test_voltage_off_by_a_power_of_ten_is_flagged() -> None:
    checker = SanityChecker()
    flags = checker.check(message(("1.0.32.7.0.255", 23.0), ("1.0.52.7.0.255", 2300)))
    assert [(f.kind, f.obis) for f in flags] == [
        (VOLTAGE_OUT_OF_RANGE, "1.0.32.7.0.255"),
        (VOLTAGE_OUT_OF_RANGE, "1.0.52.7.0.255"),
    ]
    assert "outside 50-300 V" in flags[0].text


def test_plausible_and_absent_voltages_are_not_flagged() -> None:
    checker = SanityChecker()
    readings = [("1.0.32.7.0.255", 229.8), ("1.0.52.7.0.255", 0), ("1.0.72.7.0.255", 120)]
    assert checker.check(message(*readings)) == []
    assert checker.check(message(("1.0.31.7.0.255", 2300.0))) == []  # a current, not a voltage


def test_energy_register_going_backwards_is_flagged_for_the_same_meter_only() -> None:
    checker = SanityChecker()
    assert checker.check(message(("1.0.1.8.0.255", 5_000_000))) == []
    assert checker.check(message(("1.0.1.8.0.255", 5_000_010))) == []
    assert checker.check(message(("1.0.1.8.0.255", 4_000_000), title="OTHERMTR")) == []
    [flag] = checker.check(message(("1.0.1.8.0.255", 500_001)))
    assert flag.kind == ENERGY_BACKWARDS
    assert (flag.previous, flag.value, flag.meter) == (5_000_010, 500_001, "KAMTEST1")
    assert "went backwards from 5000010 to 500001" in flag.text
    # The new value is remembered: the next message compares with it.
    assert checker.check(message(("1.0.1.8.0.255", 500_002))) == []


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _log(self, level: str) -> Any:
        return lambda text, **fields: self.lines.append((level, text, fields))

    def __getattr__(self, level: str) -> Any:
        return self._log(level)


def test_runner_warns_once_per_flag_and_once_per_layout_hint() -> None:
    log = FakeLog()
    reporter = Reporter(log)
    low = message(("1.0.32.7.0.255", 23.1))
    low.extra["hint"] = "a list of 3 values without OBIS codes matches no profile"
    for _ in range(3):
        reporter(low)
    warnings = [text for level, text, _ in log.lines if level == "warning"]
    assert len(warnings) == 2
    assert any("23.1 V is outside" in w for w in warnings)
    assert any("matches no profile" in w for w in warnings)
