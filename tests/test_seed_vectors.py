"""End to end on the real frames in seed_vectors: bytes in, readings out."""

from __future__ import annotations

import seed_vectors as sv

from amsread.dlms.keys import Keys, parse_key
from amsread.model import Failure, Message, Rejected, Skipped
from amsread.pipeline import Pipeline


def triples(message: Message) -> list[tuple[object, object, object]]:
    return [(r.obis, r.value, r.unit) for r in message.readings]


def radius_keys() -> Keys:
    return Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))


def test_radius_frame_decodes_to_the_documented_register_values() -> None:
    [message] = Pipeline(radius_keys()).feed(sv.RADIUS_FRAME)
    assert isinstance(message, Message)
    # The list version string comes first, named by the Kamstrup list definition.
    assert triples(message)[0] == ("1.1.0.2.129.255", "Kamstrup_V0001", None)
    assert triples(message)[1:] == sv.RADIUS_READINGS
    assert message.meter_time == sv.RADIUS_METER_TIME
    assert message.system_title == sv.RADIUS_SYSTEM_TITLE
    assert message.invocation_counter == sv.RADIUS_INVOCATION_COUNTER
    assert message.list_id == "Kamstrup_V0001"
    assert message.authenticated is True
    assert message.profile == "kamstrup-dk"


def test_radius_readings_have_stable_names() -> None:
    [message] = Pipeline(radius_keys()).feed(sv.RADIUS_FRAME)
    names = {r.obis: r.name for r in message.readings}
    assert names["1.1.1.8.0.255"] == "active_energy_import"
    assert names["1.1.32.7.0.255"] == "voltage_l1"
    assert names["1.1.31.7.0.255"] == "current_l1"
    assert names["1.1.13.7.0.255"] == "power_factor"
    assert names["0.1.1.0.0.255"] == "clock"


def test_radius_with_wrong_auth_key_gives_authentication_failure_and_no_readings() -> None:
    wrong = Keys(parse_key(sv.RADIUS_KEY), bytes(16))
    pipeline = Pipeline(wrong)
    [event] = pipeline.feed(sv.RADIUS_FRAME)
    assert isinstance(event, Failure)
    assert event.reason == "auth_failed"
    assert "authentication failed" in event.detail
    assert pipeline.counters["auth_failed"] == 1


def test_norwegian_list_plaintext_decodes_with_current_scaler() -> None:
    [message] = Pipeline().feed_apdu(sv.NORWEGIAN_LIST_PLAINTEXT)
    assert isinstance(message, Message)
    assert triples(message) == sv.NORWEGIAN_LIST_READINGS
    assert message.meter_time == sv.NORWEGIAN_LIST_METER_TIME


def test_norwegian_list_truncated_frame_is_rejected_without_output() -> None:
    pipeline = Pipeline()
    events = pipeline.feed(sv.NORWEGIAN_LIST_TRUNCATED_FRAME) + pipeline.close()
    assert [type(e) for e in events] == [Rejected]
    assert events[0].reason == "truncated"  # type: ignore[union-attr]
    assert pipeline.counters["messages"] == 0


def test_kaifa_austria_triplets_apply_the_sent_scalers_and_offset() -> None:
    [message] = Pipeline().feed_apdu(sv.KAIFA_AT_PLAINTEXT)
    assert isinstance(message, Message)
    assert triples(message) == sv.KAIFA_AT_READINGS
    assert message.meter_time == sv.KAIFA_AT_METER_TIME


def test_kaifa_austria_example_with_the_given_key_is_reported_as_wrong_key() -> None:
    pipeline = Pipeline(Keys(parse_key(sv.KAIFA_AT_KEY)))
    [event] = pipeline.feed_apdu(sv.KAIFA_AT_CIPHERED)
    assert isinstance(event, Failure)
    assert event.reason == "decrypt_failed"
    assert "wrong encryption key or damaged frame" in event.detail


def test_am550_stream_frames_every_intact_frame_and_rejects_the_damaged_two() -> None:
    pipeline = Pipeline()
    events = pipeline.feed(sv.AM550_STREAM) + pipeline.close()
    failures = [e for e in events if isinstance(e, Failure)]
    rejected = [e for e in events if isinstance(e, Rejected) and e.reason != "garbage"]
    intact = [f for f in sv.AM550_FRAMES if f[1]]
    assert [(f.system_title, f.invocation_counter) for f in failures] == [
        (title, counter) for _, _, title, counter in intact
    ]
    assert all(f.reason == "no_key" for f in failures)
    assert sorted(r.reason for r in rejected) == ["bad_hcs", "truncated"]
    assert pipeline.counters["frames_ok"] == 12


def test_am550_stream_fed_byte_by_byte_gives_the_same_events() -> None:
    whole = Pipeline()
    expected = whole.feed(sv.AM550_STREAM) + whole.close()
    trickle = Pipeline()
    got = []
    for i in range(len(sv.AM550_STREAM)):
        got += trickle.feed(sv.AM550_STREAM[i : i + 1])
    got += trickle.close()
    assert [type(e) for e in got] == [type(e) for e in expected]
    assert [e for e in got if not isinstance(e, Rejected)] == [
        e for e in expected if not isinstance(e, Rejected)
    ]


def test_gurux_session_gives_no_readings_and_names_each_frame() -> None:
    pipeline = Pipeline()
    events = pipeline.feed(sv.GURUX_SESSION) + pipeline.close()
    assert all(isinstance(e, Skipped) for e in events)
    whats = [e.what for e in events]  # type: ignore[union-attr]
    assert whats[:4] == [
        "SNRM frame without information field",
        "UA frame without information field",
        "AARQ (association request)",
        "AARE (association response)",
    ]
    assert len(events) == len(sv.GURUX_SESSION_KINDS)
