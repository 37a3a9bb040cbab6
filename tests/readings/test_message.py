"""One Message: made from a layout's labels and values, or from readings, it says the same.

The readings plan makes messages with ``Message.in_layout`` (the shared list
layout and the values, no ``Reading`` objects); users and tests write
``Message(readings, ...)``. Both are one class: what they say (readings,
meter id, equality, repr, copies) depends only on their content.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.model import (
    Label,
    ListLayout,
    Message,
    Reading,
    ReadingLabels,
    Security,
    shared_labels,
    shared_layout,
)
from amsread.output.writers import message_dict

names = st.sampled_from(
    [None, "meter_id", "meter_number", "meter_serial", "voltage_l1", "active_energy_import"]
)
labels = st.tuples(st.none() | st.text(max_size=8), names, st.none() | st.sampled_from(["W", "V"]))
values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
rows = st.lists(st.tuples(labels, values), max_size=8)
heads = st.fixed_dictionaries(
    {
        "meter_time": st.none() | st.text(max_size=8),
        "system_title": st.none() | st.text(max_size=8),
        "received_at": st.floats(0, 2e9),
        "security": st.none()
        | st.builds(
            Security,
            st.integers(0, 2**32 - 1),
            st.none() | st.booleans(),
            st.booleans(),
            st.integers(0, 9),
        ),
    }
)
facts = st.fixed_dictionaries(
    {
        "list_id": st.none() | st.text(max_size=8),
        "profile": st.none() | st.text(max_size=8),
        "shape": st.none() | st.sampled_from(["positional", "obis-value pairs"]),
        "hint": st.none() | st.text(max_size=8),
        "raw_notes": st.lists(st.text(max_size=8), max_size=2).map(tuple),
    }
)


def pair(
    rows: list[tuple[Label, Any]], head: dict[str, Any], fact: dict[str, Any] | None = None
) -> tuple[Message, Message]:
    """A message of a layout (as the readings plan makes it) and the one made from readings."""
    fact = fact or {}
    layout = ListLayout(ReadingLabels([label for label, _ in rows]), **fact)
    fast = Message.in_layout(layout, tuple(value for _, value in rows), **head)
    readings = [Reading(obis, name, value, unit) for (obis, name, unit), value in rows]
    return fast, Message(readings, **copy.deepcopy(head), **fact)


@settings(max_examples=100, deadline=None)
@given(rows, heads, facts)
def test_a_message_of_a_layout_equals_and_reads_as_the_message_made_from_its_readings(
    rows: list[tuple[Label, Any]], head: dict[str, Any], fact: dict[str, Any]
) -> None:
    fast, plain = pair(rows, head, fact)
    with mock.patch("amsread.model.Reading", side_effect=AssertionError("made")):
        # What the hot path asks for, without making the readings.
        assert fast.meter_id == plain.meter_id
        assert fast.reading_count == plain.reading_count == len(rows)
        assert fast.values == plain.values == tuple(value for _, value in rows)
        assert fast.labels.labels == plain.labels.labels == tuple(label for label, _ in rows)
        assert fast == plain and plain == fast
    assert not fast != plain  # noqa: SIM202 - __ne__ too
    assert repr(fast) == repr(plain)
    assert fast.readings == plain.readings
    assert fast.readings is fast.readings  # made once
    # Made, the readings and the values still say the same.
    assert fast.values == tuple(reading.value for reading in fast.readings)
    assert fast.labels.labels == tuple((r.obis, r.name, r.unit) for r in fast.readings)
    assert (fast.meter_id, fast.reading_count) == (plain.meter_id, plain.reading_count)
    assert fast.security == plain.security == head["security"]
    for name in ("list_id", "profile", "shape", "hint", "raw_notes"):
        assert getattr(fast, name) == getattr(plain, name) == fact[name]


@settings(max_examples=50, deadline=None)
@given(rows, heads)
def test_copies_replacements_and_dicts_of_a_message_of_a_layout_are_those_of_the_message(
    rows: list[tuple[Label, Any]], head: dict[str, Any]
) -> None:
    def fresh() -> Message:
        return pair(rows, head)[0]

    plain = pair(rows, head)[1]
    assert message_dict(fresh()) == message_dict(plain)
    assert fresh().replace(list_id="X") == plain.replace(list_id="X")
    assert fresh().replace(list_id="X").list_id == "X"
    assert copy.copy(fresh()) == plain
    assert copy.deepcopy(fresh()) == plain
    assert pickle.loads(pickle.dumps(fresh())) == plain


def test_a_message_differs_from_a_message_with_other_readings_or_facts() -> None:
    fast, plain = pair([(("1.0.1.8.0.255", "active_energy_import", "Wh"), 5)], {})
    other = plain.replace(readings=[Reading("1.0.1.8.0.255", "active_energy_import", 6, "Wh")])
    assert fast != other and other != fast
    assert fast != "not a message"
    assert fast != plain.replace(hint="a hint") and fast != plain.replace(missed_pushes=1)
    assert fast != Message(plain.readings, security=Security(1, True))


def test_a_replaced_message_takes_its_labels_and_values_from_the_new_readings() -> None:
    fast, _ = pair([(("1.0.1.8.0.255", "active_energy_import", "Wh"), 5)], {})
    replaced = fast.replace(readings=[Reading(None, "meter_id", "123", None)])
    assert replaced.labels.labels == ((None, "meter_id", None),) and replaced.values == ("123",)
    assert replaced.meter_id == "123" and replaced.reading_count == 1
    assert fast.values == (5,)  # the original is unchanged


def test_labels_and_values_of_different_lengths_are_refused() -> None:
    layout = ListLayout(ReadingLabels([(None, None, None)] * 2))
    with pytest.raises(ValueError, match="2 labels for 1 values"):
        Message.in_layout(layout, (1,), None, None)


def test_messages_made_from_readings_share_their_labels_and_layout_per_content() -> None:
    def made(value: int, list_id: str = "L") -> Message:
        return Message([Reading("1.0.1.8.0.255", "e", value, "Wh", raw=True)], list_id=list_id)

    first, second, other = made(1), made(2), made(1, "M")
    assert first.labels is second.labels is other.labels
    assert first.list_layout is second.list_layout is not other.list_layout
    assert first.labels.raw == (True,)
    assert shared_labels([(None, "x", None)]) is shared_labels([(None, "x", None)])
    assert shared_layout(first.labels, "L") is first.list_layout


def test_readings_keep_their_raw_flags_and_capture_times() -> None:
    gas = Reading("0.1.24.2.1.255", "gas", 1.5, "m3", captured_at="2020-01-01T00:00:00+01:00")
    power = Reading("1.0.1.7.0.255", "power", 7, None, raw=True)
    message = Message([gas, power])
    assert message.capture_times == ("2020-01-01T00:00:00+01:00", None)
    layout = message.list_layout
    again = Message.in_layout(layout, message.values, None, None)
    assert again.capture_times == ()  # a layout's messages carry no capture times
    assert again.readings[1].raw is True and again.readings[0].captured_at is None
    assert Message([power]).capture_times == ()


def test_security_fills_the_message_and_a_cleartext_message_has_none() -> None:
    security = Security(41, False, keys_swapped=True, missed_pushes=2)
    message = Message([], security=security)
    assert (message.invocation_counter, message.authenticated) == (41, False)
    assert message.keys_swapped and message.missed_pushes == 2
    assert message.security == security
    assert Message([]).security is None and not Message([]).keys_swapped


def test_a_counter_and_authentication_given_alone_are_the_message_s_security() -> None:
    counted = Message([], invocation_counter=5, authenticated=None)
    assert counted.security == Security(5, None) and counted == Message(
        [], security=counted.security
    )
    uncounted = Message([], authenticated=False)  # no counter: no Security to give
    assert uncounted.authenticated is False and uncounted.security is None


def test_a_layout_message_carries_its_readings_own_capture_times() -> None:
    gas = Reading("0.1.24.2.1.255", "gas", 1.5, "m3", captured_at="2020-01-01T00:00:00+01:00")
    power = Reading("1.0.1.7.0.255", "power", 7, "kW")
    built = Message([power, gas], "2020-01-01T00:05:00+01:00")
    times = (None, "2020-01-01T00:00:00+01:00")
    message = Message.in_layout(
        built.list_layout, built.values, built.meter_time, None, 0.0, None, times
    )
    assert message.capture_times == times
    assert [r.captured_at for r in message.readings] == list(times)
    assert message == built
    assert message_dict(message)["readings"][1]["captured_at"] == times[1]
    # No capture time at all is as none given: equal to the message from readings without one.
    plain = Message.in_layout(built.list_layout, built.values, capture_times=(None, None))
    assert plain.capture_times == () and plain == Message.in_layout(built.list_layout, built.values)
    with pytest.raises(ValueError, match="capture times"):
        Message.in_layout(built.list_layout, built.values, capture_times=(None,))
