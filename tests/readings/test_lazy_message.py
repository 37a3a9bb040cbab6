"""A LazyMessage is the Message its labels and values describe, in all but type()."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.model import Label, LazyMessage, Message, Reading, ReadingLabels

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
        "invocation_counter": st.none() | st.integers(0, 2**32 - 1),
        "authenticated": st.none() | st.booleans(),
        "received_at": st.floats(0, 2e9),
        "extra": st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    }
)


def pair(rows: list[tuple[Label, Any]], head: dict[str, Any]) -> tuple[LazyMessage, Message]:
    """A LazyMessage and the plain Message it stands for."""
    lazy = LazyMessage([], **head)
    lazy.defer(ReadingLabels([label for label, _ in rows]), tuple(value for _, value in rows))
    readings = [Reading(obis, name, value, unit) for (obis, name, unit), value in rows]
    return lazy, Message(readings, **copy.deepcopy(head))


@settings(max_examples=100, deadline=None)
@given(rows, heads)
def test_a_lazy_message_equals_and_reads_as_the_message_it_stands_for(
    rows: list[tuple[Label, Any]], head: dict[str, Any]
) -> None:
    lazy, plain = pair(rows, head)
    # What the hot path asks for, without building the readings.
    assert lazy.meter_id == plain.meter_id
    assert lazy.reading_count == plain.reading_count == len(rows)
    assert lazy.values is not None
    assert lazy == plain and plain == lazy
    assert not lazy != plain  # noqa: SIM202 - __ne__ too
    assert repr(lazy) == repr(plain)
    assert lazy.readings == plain.readings
    assert lazy.readings is lazy.readings  # built once
    assert lazy.values is None and lazy.labels is None
    assert (lazy.meter_id, lazy.reading_count) == (plain.meter_id, plain.reading_count)


@settings(max_examples=50, deadline=None)
@given(rows, heads)
def test_copies_replacements_and_dicts_of_a_lazy_message_are_those_of_the_message(
    rows: list[tuple[Label, Any]], head: dict[str, Any]
) -> None:
    def fresh() -> LazyMessage:
        return pair(rows, head)[0]

    plain = pair(rows, head)[1]
    assert dataclasses.asdict(fresh()) == dataclasses.asdict(plain)
    assert dataclasses.replace(fresh(), list_id="X") == dataclasses.replace(plain, list_id="X")
    assert copy.copy(fresh()) == plain
    assert copy.deepcopy(fresh()) == plain
    assert pickle.loads(pickle.dumps(fresh())) == plain


def test_a_lazy_message_differs_from_a_message_with_other_readings() -> None:
    lazy, plain = pair([(("1.0.1.8.0.255", "active_energy_import", "Wh"), 5)], {})
    plain.readings[0].value = 6
    assert lazy != plain and plain != lazy
    assert lazy != "not a message"


def test_readings_set_on_a_lazy_message_replace_its_labels_and_values() -> None:
    lazy, _ = pair([(("1.0.1.8.0.255", "active_energy_import", "Wh"), 5)], {})
    lazy.readings = [Reading(None, "meter_id", "123", None)]
    assert lazy.values is None and lazy.labels is None
    assert lazy.meter_id == "123" and lazy.reading_count == 1


def test_labels_and_values_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 labels for 1 values"):
        LazyMessage([]).defer(ReadingLabels([(None, None, None)] * 2), (1,))
