"""JsonlWriter builds its lines from cached pieces: they must equal json.dumps(message_dict())."""

from __future__ import annotations

import io
import json
import math

import seed_vectors as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.events import Message, Reading
from amsread.keys import Keys, parse_key
from amsread.output import JSONL_TEMPLATES, JsonlWriter, message_dict
from amsread.pipeline import Pipeline


def reference(message: Message) -> str:
    """The schema encoded the plain way."""
    encoded = json.dumps(message_dict(message), ensure_ascii=False, separators=(",", ":"))
    return encoded + "\n"


def written(*messages: Message) -> list[str]:
    stream = io.StringIO()
    writer = JsonlWriter(stream)
    for message in messages:
        writer.write(message)
    # Split on "\n" only: str.splitlines would also split at U+2028, which
    # JSON (ensure_ascii=False) leaves unescaped inside strings.
    return [line + "\n" for line in stream.getvalue().split("\n")[:-1]]


def test_the_radius_frame_is_written_exactly_as_json_dumps_writes_it() -> None:
    keys = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))
    events = Pipeline(keys).feed(sv.RADIUS_FRAME)
    message = next(e for e in events if isinstance(e, Message))
    assert written(message, message) == [reference(message)] * 2
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


def test_more_distinct_readings_than_the_template_cache_holds_stay_exact() -> None:
    readings = [
        Reading(f"1.0.1.8.{i % 256}.{i // 256}", None, i, "Wh") for i in range(JSONL_TEMPLATES + 50)
    ]
    message = Message(readings, received_at=2.0)
    assert written(message, message) == [reference(message)] * 2


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
