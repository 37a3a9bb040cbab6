"""DSMR telegrams as messages of a shared layout: the same readings as line by line, no sharing of
what a consumer may change, and bounded caches that still give the right readings."""

from __future__ import annotations

import copy
import pathlib

import pytest

from amsread.model import Message
from amsread.readings.dsmr import MAX_LABELS, MAX_LAYOUTS, TelegramParser, joined_lines

CORPUS = pathlib.Path(__file__).parent.parent / "corpus" / "dsmr"
TELEGRAMS = sorted(CORPUS.glob("*.txt"))
V5 = (CORPUS / "v5_iskra.txt").read_bytes()


def line_by_line(raw: bytes) -> Message:
    """The message a telegram stands for, made from its readings one line at a time."""
    parser = TelegramParser()  # its own: nothing learnt from the parser under test
    lines = raw.decode("ascii").replace("\r\n", "\n").split("\n")
    media: dict[int, str] = {}
    readings = [
        reading
        for line in joined_lines(lines[1:])
        if (reading := parser.line_reading(line, media)) is not None
    ]
    clocks = [r.value for r in readings if r.obis == "0.0.1.0.0.255" and isinstance(r.value, str)]
    meter_time = clocks[-1] if clocks else None
    return Message(readings, meter_time, list_id=lines[0].strip()[1:] or None)


@pytest.mark.parametrize("path", TELEGRAMS, ids=lambda path: path.stem)
def test_a_telegram_says_what_its_lines_say_one_by_one(path: pathlib.Path) -> None:
    raw = path.read_bytes()
    parser = TelegramParser()
    first, again = parser.parse(raw), parser.parse(raw)  # the second from what the first kept
    expected = line_by_line(raw)
    assert first == expected and again == expected
    assert [r.captured_at for r in again.readings] == [r.captured_at for r in expected.readings]
    assert again.list_layout is first.list_layout


def test_telegrams_of_one_layout_share_it_and_carry_their_own_values() -> None:
    parser = TelegramParser()
    first = parser.parse(V5)
    second = parser.parse(
        V5.replace(b"170102192002W", b"170102192012W").replace(b"4.426", b"5.426")
    )
    assert second.list_layout is first.list_layout
    assert first.meter_time == "2017-01-02T19:20:02+01:00"
    assert second.meter_time == "2017-01-02T19:20:12+01:00"
    pairs = enumerate(zip(first.values, second.values, strict=True))
    changed = [i for i, (a, b) in pairs if a != b]
    assert [(first.values[i], second.values[i]) for i in changed[1:]] == [(4.426, 5.426)]
    assert first.readings[changed[0]].obis == "0.0.1.0.0.255"


def test_gas_capture_time_stays_with_its_reading_in_every_telegram() -> None:
    parser = TelegramParser()
    for stamp in (b"170102161005W", b"170102171005W"):
        message = parser.parse(V5.replace(b"170102161005W", stamp))
        gas = [r for r in message.readings if r.captured_at is not None]
        assert [(r.name, r.value, r.unit) for r in gas] == [("gas_delivered", 0.107, "m3")]
        hour = stamp[6:8].decode()
        assert gas[0].captured_at == f"2017-01-02T{hour}:10:05+01:00"
        assert len(message.capture_times) == message.reading_count


def test_a_sub_meter_is_named_by_its_device_type_in_each_telegram() -> None:
    parser = TelegramParser()
    gas = parser.parse(V5)
    water = parser.parse(V5.replace(b"0-1:24.1.0(003)", b"0-1:24.1.0(007)"))
    again = parser.parse(V5)
    names = [
        {r.name for r in m.readings if r.obis == "0.1.24.2.1.255"} for m in (gas, water, again)
    ]
    assert names == [{"gas_delivered"}, {"water_delivered"}, {"gas_delivered"}]
    assert water.list_layout is not gas.list_layout and again.list_layout is gas.list_layout


def test_the_failure_log_of_one_telegram_is_not_shared_with_the_next() -> None:
    raw = (CORPUS / "v4_2_kaifa.txt").read_bytes()
    parser = TelegramParser()
    first = parser.parse(raw)
    log = next(r.value for r in first.readings if isinstance(r.value, list))
    original = copy.deepcopy(log)
    log.clear()  # a consumer's change
    second = parser.parse(raw)
    assert next(r.value for r in second.readings if isinstance(r.value, list)) == original


def test_more_labels_and_layouts_than_kept_still_give_the_right_readings() -> None:
    parser = TelegramParser()
    body = V5[: V5.index(b"!")]
    # Each telegram brings codes no other has: the caches fill and start afresh.
    for n in range(max(MAX_LABELS // 200, MAX_LAYOUTS) + 20):
        extra = b"".join(
            b"1-0:%d.%d.%d(%d*kWh)\r\n" % (n % 250, k, n // 250, k) for k in range(200)
        )
        raw = body + extra + b"!\r\n"
        message = parser.parse(raw)
        assert message == line_by_line(raw)
        last = message.readings[-1]
        assert (last.obis, last.value, last.unit) == (
            f"1.0.{n % 250}.199.{n // 250}.255",
            199,
            "kWh",
        )
