"""Plausibility flags: implausible voltages and energy registers going backwards are logged."""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

import layouts
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.runner import Reporter
from amsread.dlms.apdu import parse_data_notification
from amsread.model import ListLayout, Message, Reading, ReadingLabels
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.sanity import (
    ENERGY_BACKWARDS,
    MAX_TRACKED,
    VOLTAGE_OUT_OF_RANGE,
    Flag,
    SanityChecker,
)
from tests.probes import made_readings


def sanity_kind(obis: str) -> str | None:
    """What the checker watches, written out: voltages (C = 12/32/52/72, D = 7), energy (D = 8)."""
    a, _, c, d, _, _ = (int(group) for group in obis.split("."))
    if a == 1 and d == 7 and c in (12, 32, 52, 72):
        return "voltage"
    return "energy" if a == 1 and d == 8 else None


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
    hint = "a list of 3 values without OBIS codes matches no profile"
    low = message(("1.0.32.7.0.255", 23.1)).replace(hint=hint)
    for _ in range(3):
        reporter(low)
    warnings = [text for level, text, _ in log.lines if level == "warning"]
    assert len(warnings) == 2
    assert any("23.1 V is outside" in w for w in warnings)
    assert any("matches no profile" in w for w in warnings)


# -- the per-layout fast path checks exactly what the plain loop checks ----------------

VOLTAGE, ENERGY, CURRENT = "1.0.32.7.0.255", "1.0.1.8.0.255", "1.0.31.7.0.255"
layout_codes = st.lists(
    st.sampled_from([VOLTAGE, "1.0.52.7.0.255", ENERGY, "1.0.2.8.0.255", CURRENT, None]),
    min_size=1,
    max_size=6,
)
sane_values = st.one_of(
    st.integers(-5, 400),
    st.floats(-5, 400, allow_nan=False),
    st.booleans(),
    st.none(),
    st.just("230"),
)


def built(message: Message) -> Message:
    """The same message made from readings, leaving ``message`` as it is."""
    readings = [
        Reading(obis, name, value, unit)
        for (obis, name, unit), value in zip(message.labels.labels, message.values, strict=True)
    ]
    return Message(copy.deepcopy(readings), system_title=message.system_title)


def reference_flags(messages: list[Message], max_tracked: int) -> list[list[Flag]]:
    """The checks written plainly, reading by reading, over built readings."""
    last: dict[tuple[str | None, str], float] = {}
    out = []
    for message in map(built, messages):
        flags = []
        meter, meter_known = None, False
        for reading in message.readings:
            kind = sanity_kind(reading.obis) if reading.obis is not None else None
            value = reading.value
            if kind is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if kind == "voltage":
                if value and not 50.0 <= value <= 300.0:
                    flags.append(Flag(VOLTAGE_OUT_OF_RANGE, reading.obis, reading.name, value))
                continue
            if not meter_known:
                meter, meter_known = message.system_title or message.meter_id, True
            key = (meter, reading.obis)
            previous = last.get(key)
            if previous is None and len(last) >= max_tracked:
                del last[next(iter(last))]
            last[key] = value
            if previous is not None and value < previous:
                flags.append(
                    Flag(ENERGY_BACKWARDS, reading.obis, reading.name, value, previous, meter)
                )
        out.append(flags)
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(layout_codes, min_size=1, max_size=3),
    st.data(),
    st.integers(1, 6),
)
def test_messages_of_layouts_are_flagged_as_the_plain_checks_flag_them(
    layouts_codes: list[list[str | None]],
    data: st.DataObject,
    max_tracked: int,
) -> None:
    shared = [ReadingLabels([(c, f"n{i}", None) for i, c in enumerate(cs)]) for cs in layouts_codes]
    messages: list[Message] = []
    for _ in range(data.draw(st.integers(1, 8))):
        layout = data.draw(st.sampled_from(shared))
        values = data.draw(
            st.lists(sane_values, min_size=len(layout.labels), max_size=len(layout.labels))
        )
        title = data.draw(st.sampled_from([None, "KAMTEST1", "OTHERMTR"]))
        message = Message.in_layout(ListLayout(layout), tuple(values), None, title)
        if data.draw(st.booleans()):
            message.readings  # noqa: B018 - made: the checker must say the same
        messages.append(message)
    expected = reference_flags(messages, max_tracked)
    checker = SanityChecker()
    with mock.patch("amsread.readings.sanity.MAX_TRACKED", max_tracked):  # forgetting registers too
        assert [checker.check(m) for m in messages] == expected


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(layouts.LAYOUTS), st.lists(st.binary(min_size=1, max_size=64), max_size=4))
def test_messages_of_every_list_shape_are_checked_without_building_their_readings(
    apdu: bytes, noises: list[bytes]
) -> None:
    builder = ReadingsBuilder()
    messages = [
        builder.build(parse_data_notification(layouts.with_values(apdu, noise), lazy=True))
        for noise in [b"", *noises]
    ]
    expected = reference_flags(messages, MAX_TRACKED)
    checker = SanityChecker()
    assert [checker.check(m) for m in messages] == expected
    assert not any(map(made_readings, messages))
