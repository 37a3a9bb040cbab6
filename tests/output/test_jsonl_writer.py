"""JsonlWriter builds its lines from cached pieces: they must equal json.dumps(message_dict()).

Messages are written from their labels and values without making their
``Reading`` objects; every test here checks that the line is byte for byte
what the plain encoding of the message gives.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import math
from typing import Any

import layouts
import seed_vectors as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms.apdu import parse_data_notification
from amsread.dlms.keys import Keys, parse_key
from amsread.model import Label, ListLayout, Message, Reading, ReadingLabels, Security
from amsread.output.writers import JSONL_HEADS, JSONL_TEMPLATES, JsonlWriter, iso_utc, message_dict
from amsread.pipeline import Pipeline
from amsread.readings.builder import ReadingsBuilder
from tests.probes import made_readings

#: The writer escapes Unicode line separators so every message stays on one line.
LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def reference(message: Message) -> str:
    """The schema encoded the plain way (line separators escaped)."""
    encoded = json.dumps(message_dict(message), ensure_ascii=False, separators=(",", ":"))
    return encoded.translate(LINE_BREAKS) + "\n"


def written(*messages: Message) -> list[str]:
    stream = io.StringIO()
    writer = JsonlWriter(stream)
    for message in messages:
        writer.write(message)
    return [line + "\n" for line in stream.getvalue().split("\n")[:-1]]


def lazy(
    labels: ReadingLabels | list[Label],
    values: list[object],
    list_id: str | None = None,
    profile: str | None = None,
    authenticated: bool | None = None,
    **fields: Any,
) -> Message:
    """A message as the readings plan makes it: a list layout and the values."""
    shared = labels if isinstance(labels, ReadingLabels) else ReadingLabels(labels)
    layout = ListLayout(shared, list_id, profile)
    security = None if authenticated is None else Security(0, authenticated)
    return Message.in_layout(layout, tuple(values), security=security, **fields)


def test_the_radius_frame_is_written_exactly_as_json_dumps_writes_it() -> None:
    keys = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))
    events = Pipeline(keys).feed(sv.RADIUS_FRAME)
    message = next(e for e in events if isinstance(e, Message))
    lines = written(message, message)
    assert not made_readings(message)
    assert lines == [reference(message)] * 2  # reference() makes the readings
    assert json.loads(written(message)[0])["readings"][1]["value"] == 866636


class Level(int):
    """An int subclass (like axdr.Enum): the encoder writes it as a number."""


ODD_VALUES: list[int | float | str | None] = [
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    None,
    Level(3),
    -(2**70),
    1e-7,
    -0.0,
    'quote " backslash \\ newline \n tab \t',
    "Zähler № 5 – 🙂",
    "\x00\x1f\u2028",
]


def test_odd_values_names_and_units_are_escaped_like_json_dumps() -> None:
    readings = [
        Reading(obis=f"1.0.{i}.7.0.255", name='na"me\\', value=value, unit="m³")  # type: ignore[arg-type]
        for i, value in enumerate(ODD_VALUES)
    ]
    readings.append(Reading(obis=None, name=None, value="x", unit=None))
    message = Message(
        readings, meter_time="2020-01-07T14:47:20", system_title="4B414D", received_at=1.5
    )
    assert written(message) == [reference(message)]


def test_a_message_without_readings_is_still_one_valid_line() -> None:
    message = Message([], list_id='a "list"', received_at=0.0)
    assert written(message) == [reference(message)]


def test_a_message_of_over_a_thousand_distinct_readings_is_exact() -> None:
    readings = [Reading(f"1.0.1.8.{i % 256}.{i // 256}", None, i, "Wh") for i in range(1074)]
    message = Message(readings, received_at=2.0)
    assert written(message, message) == [reference(message)] * 2


def test_more_layouts_and_heads_than_the_writer_keeps_stay_exact() -> None:
    messages = [
        lazy([(f"1.0.1.8.{i % 256}.255", f"n{i}", "Wh")], [i], list_id=f"L{i}", received_at=2.0)
        for i in range(JSONL_TEMPLATES + JSONL_HEADS + 10)
    ]
    expected = [reference(m) for m in messages]
    assert written(*messages, *messages) == expected * 2


def test_percent_signs_in_labels_and_head_fields_are_text_not_formats() -> None:
    fields = {"system_title": "%s", "list_id": "100%", "profile": "%r", "meter_time": "%s%%"}
    message = lazy(
        [("%s", "%d%%", "%"), ("1.0.1.7.0.255", "%(x)s", "%%s")],
        ["%s", 5.5],
        list_id="100%",
        profile="%r",
        system_title="%s",
        meter_time="%s%%",
    )
    eager = Message(
        [Reading("%s", "%d%%", "%s", "%"), Reading("1.0.1.7.0.255", "%(x)s", 5.5, "%%s")], **fields
    )
    assert written(message) == [reference(eager)]
    assert message == eager


def test_a_message_with_changed_readings_is_written_as_changed() -> None:
    keys = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))
    message = next(e for e in Pipeline(keys).feed(sv.RADIUS_FRAME) if isinstance(e, Message))
    stream = io.StringIO()
    writer = JsonlWriter(stream)
    writer.write(message)  # from the labels and values: caches the layout
    readings = copy.deepcopy(message.readings)
    readings[1].value = 1.5
    readings[2].name = "renamed"
    del readings[0]
    changed = message.replace(readings=readings)  # a Message is not changed once built
    writer.write(changed)
    writer.write(message)
    lines = stream.getvalue().split("\n")
    assert lines[1] + "\n" == reference(changed)
    assert json.loads(lines[1])["readings"][0]["value"] == 1.5
    assert lines[0] == lines[2]  # the cached layout stays the original's


texts = st.text(max_size=12)
values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
readings_strategy = st.lists(
    st.builds(Reading, st.none() | texts, st.none() | texts, values, st.none() | texts), max_size=8
)


@settings(max_examples=80, deadline=None)
@given(readings_strategy, st.none() | texts, st.none() | st.integers(0, 2**32 - 1))
def test_any_message_is_written_exactly_as_json_dumps_writes_it(
    readings: list[Reading], meter_time: str | None, counter: int | None
) -> None:
    message = Message(readings, meter_time=meter_time, invocation_counter=counter, received_at=3.25)
    # Twice: the second time every reading comes from the template cache.
    assert written(message, message) == [reference(message)] * 2


flagged_readings = st.lists(
    st.builds(
        Reading,
        st.none() | texts,
        st.none() | texts,
        values,
        st.none() | texts,
        st.booleans(),
        st.none() | texts,
    ),
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(flagged_readings, flagged_readings)
def test_raw_flags_and_own_capture_times_are_written_exactly_as_json_dumps_writes_them(
    readings: list[Reading], others: list[Reading]
) -> None:
    # DSMR M-Bus sub-meters' readings carry captured_at: the template has room for it.
    message = Message(readings, received_at=3.25)
    other = Message(others, received_at=7.5)
    expected = [reference(message), reference(other), reference(message)]
    assert written(message, other, message) == expected


labels_strategy = st.tuples(st.none() | texts, st.none() | texts, st.none() | texts)
lazy_values = st.one_of(values, st.builds(Level, st.integers(-5, 5)), st.just(math.nan))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(labels_strategy, lazy_values, lazy_values), max_size=8),
    st.none() | texts,
    st.none() | st.booleans(),
    st.floats(min_value=0, max_value=4e9),
)
def test_a_lazy_message_is_written_exactly_as_json_dumps_writes_the_message_it_stands_for(
    rows: list[tuple[Label, object, object]],
    list_id: str | None,
    authenticated: bool | None,
    received_at: float,
) -> None:
    # Two messages of one layout whose values may differ in type (a float, then None…).
    layout = ReadingLabels([label for label, _, _ in rows])
    fields = {"list_id": list_id, "authenticated": authenticated, "received_at": received_at}
    first = lazy(layout, [value for _, value, _ in rows], **fields)
    second = lazy(layout, [value for _, _, value in rows], **fields)
    lines = written(first, second, first)
    assert not made_readings(first) and not made_readings(second)
    assert lines == [reference(first), reference(second), reference(first)]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(layouts.LAYOUTS),
    st.sampled_from([None, bytes.fromhex(sv.RADIUS_SYSTEM_TITLE), b"KFM\x00\x00\x00\x00\x01"]),
    st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4),
)
def test_messages_of_every_list_shape_with_any_values_are_written_exactly(
    apdu: bytes, system_title: bytes | None, noises: list[bytes]
) -> None:
    builder = ReadingsBuilder()
    messages = []
    for n, noise in enumerate([b"", *noises]):  # the first compiles the plan, the others reuse it
        notification = parse_data_notification(layouts.with_values(apdu, noise), lazy=True)
        message = builder.build(
            notification, system_title, security=Security(n, None), received_at=1.7e9 + n / 3
        )
        messages.append(message)
    lines = written(*messages)
    assert not any(map(made_readings, messages))
    assert lines == [reference(m) for m in messages]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-6e10, max_value=2.5e11, allow_nan=False) | st.integers(0, 2**33))
def test_received_at_is_formatted_as_datetime_formats_it(timestamp: float) -> None:
    expected = dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds")
    assert iso_utc(timestamp) == expected
    assert iso_utc(timestamp) == expected  # again, from the cached second


def test_received_at_rounds_to_the_microsecond_like_datetime_at_second_boundaries() -> None:
    for timestamp in (0.0, -0.0000004, 0.9999995, 1763716487.9999996, -1.5, 1e-7, 59.9995):
        expected = dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds")
        assert iso_utc(timestamp) == expected, timestamp


def test_unicode_line_separators_are_escaped_so_each_message_is_one_line() -> None:
    message = Message([Reading(None, "note", "a\u2028b\x85c\u2029", None)], received_at=0.0)
    stream = io.StringIO()
    JsonlWriter(stream).write(message)
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["readings"][0]["value"] == "a\u2028b\x85c\u2029"
