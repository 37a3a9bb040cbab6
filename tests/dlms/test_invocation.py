"""Invocation counters: replays dropped, gaps counted, state kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import seed_vectors as sv
from builders import cipher_apdu, hdlc_frame
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.app.cli import cli
from amsread.dlms.keys import Keys, parse_key
from amsread.dlms.replay import (
    InvocationTracker,
    StateFile,
    load_state,
    save_state,
)
from amsread.errors import UsageError
from amsread.model import Failure, Message
from amsread.pipeline import Pipeline

EK = parse_key(sv.RADIUS_KEY)
AK = parse_key(sv.RADIUS_AUTH_KEY)
TITLE = bytes.fromhex(sv.RADIUS_SYSTEM_TITLE)
OTHER_TITLE = b"KFM\x00\x00\x00\x00\x01"


def push(counter: int, *, sc: int = 0x30, title: bytes = TITLE, key: bytes = EK) -> bytes:
    return cipher_apdu(
        sv.NORWEGIAN_LIST_PLAINTEXT,
        key=key,
        auth_key=AK,
        system_title=title,
        invocation_counter=counter,
        security_control=sc,
    )


def outcome(pipeline: Pipeline, apdu: bytes) -> str:
    [event] = pipeline.feed_apdu(apdu)
    if isinstance(event, Message):
        return "message"
    assert isinstance(event, Failure)
    return event.reason


# -- the tracker -------------------------------------------------------------------


def test_tracker_accepts_increasing_counters_and_reports_gaps() -> None:
    tracker = InvocationTracker()
    assert tracker.accept(TITLE, 10) == 0  # nothing known before: no gap
    assert tracker.accept(TITLE, 11) == 0
    assert tracker.accept(TITLE, 15) == 3
    assert tracker.last(TITLE) == 15
    assert tracker.is_replay(TITLE, 15) and tracker.is_replay(TITLE, 2)
    assert not tracker.is_replay(TITLE, 16)
    assert not tracker.is_replay(OTHER_TITLE, 1)


def test_tracker_never_moves_back() -> None:
    tracker = InvocationTracker({TITLE: 100})
    assert tracker.accept(TITLE, 50) == 0
    assert tracker.last(TITLE) == 100


def test_tracker_is_bounded_and_forgets_the_least_recently_accepted_title() -> None:
    tracker = InvocationTracker(max_titles=3)
    titles = [bytes([i]) * 8 for i in range(4)]
    for title in titles[:3]:
        tracker.accept(title, 1)
    tracker.accept(titles[0], 2)  # title 0 is fresh again
    tracker.accept(titles[3], 1)
    assert len(tracker) == 3
    assert tracker.last(titles[1]) is None
    assert tracker.last(titles[0]) == 2


@given(st.lists(st.tuples(st.sampled_from([TITLE, OTHER_TITLE]), st.integers(0, 50))))
@settings(max_examples=60, deadline=None)
def test_accepted_counters_strictly_increase_and_gaps_add_up(
    frames: list[tuple[bytes, int]],
) -> None:
    tracker = InvocationTracker()
    accepted: dict[bytes, list[int]] = {}
    missed: dict[bytes, int] = {}
    for title, counter in frames:
        if tracker.is_replay(title, counter):
            continue
        missed[title] = missed.get(title, 0) + tracker.accept(title, counter)
        accepted.setdefault(title, []).append(counter)
    for title, seen in accepted.items():
        assert seen == sorted(set(seen))
        assert missed[title] == seen[-1] - seen[0] - (len(seen) - 1)
        assert tracker.last(title) == seen[-1]


# -- in the pipeline ------------------------------------------------------------------


def test_a_repeated_or_older_frame_is_dropped_and_counted() -> None:
    pipeline = Pipeline(Keys(EK, AK))
    assert outcome(pipeline, push(7)) == "message"
    assert outcome(pipeline, push(7)) == "replayed"
    assert outcome(pipeline, push(3)) == "replayed"
    assert outcome(pipeline, push(8)) == "message"
    assert pipeline.counters["replayed"] == 2
    assert pipeline.counters["messages"] == 2


def test_the_replay_failure_names_both_counters_and_the_meter() -> None:
    pipeline = Pipeline(Keys(EK, AK))
    pipeline.feed(hdlc_frame(b"\xe6\xe7\x00" + push(7)))
    [event] = pipeline.feed(hdlc_frame(b"\xe6\xe7\x00" + push(6)))
    assert isinstance(event, Failure)
    assert "6 is not above 7" in event.detail
    assert (event.system_title, event.invocation_counter) == (sv.RADIUS_SYSTEM_TITLE, 6)


def test_allow_replay_decodes_repeats_but_still_never_moves_the_counter_back() -> None:
    pipeline = Pipeline(Keys(EK, AK), allow_replay=True)
    assert [outcome(pipeline, push(c)) for c in (7, 7, 3)] == ["message"] * 3
    assert pipeline.invocations.last(TITLE) == 7
    assert pipeline.counters["replayed"] == 0


def test_a_jump_forward_counts_missed_pushes_on_the_message() -> None:
    pipeline = Pipeline(Keys(EK, AK))
    [first] = pipeline.feed_apdu(push(100))
    [second] = pipeline.feed_apdu(push(101))
    [third] = pipeline.feed_apdu(push(105))
    assert isinstance(first, Message) and isinstance(third, Message)
    assert isinstance(second, Message)
    assert first.missed_pushes == 0 and second.missed_pushes == 0
    assert third.missed_pushes == 3
    assert pipeline.counters["missed_pushes"] == 3


def test_system_titles_are_tracked_separately() -> None:
    pipeline = Pipeline(Keys(EK, AK))
    assert outcome(pipeline, push(50)) == "message"
    assert outcome(pipeline, push(3, title=OTHER_TITLE)) == "message"
    assert outcome(pipeline, push(4, title=OTHER_TITLE)) == "message"
    assert outcome(pipeline, push(49)) == "replayed"


@pytest.mark.parametrize(
    ("sc", "key", "reason"),
    [
        (0x30, bytes(16), "auth_failed"),  # forged tag
        (0x20, bytes(16), "decrypt_failed"),  # garbage plaintext
    ],
)
def test_a_frame_that_fails_to_verify_never_advances_the_counter(
    sc: int, key: bytes, reason: str
) -> None:
    pipeline = Pipeline(Keys(EK, AK))
    assert outcome(pipeline, push(10, sc=sc)) == "message"
    assert outcome(pipeline, push(1_000_000, sc=sc, key=key)) == reason
    assert outcome(pipeline, push(11, sc=sc)) == "message"
    assert pipeline.invocations.last(TITLE) == 11


def test_cleartext_with_an_unchecked_tag_does_not_advance_the_counter() -> None:
    pipeline = Pipeline(Keys(EK))  # no AK: an authentication-only tag goes unchecked
    assert outcome(pipeline, push(500, sc=0x10)) == "message"
    assert pipeline.invocations.last(TITLE) is None


def test_encryption_only_frames_that_decrypt_advance_the_counter() -> None:
    pipeline = Pipeline(Keys(EK))
    assert outcome(pipeline, push(500, sc=0x20)) == "message"
    assert outcome(pipeline, push(500, sc=0x20)) == "replayed"


# -- persistence -------------------------------------------------------------------------


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    tracker = InvocationTracker()
    tracker.accept(TITLE, 493793)
    tracker.accept(OTHER_TITLE, 5)
    save_state(path, tracker)
    loaded = load_state(path)
    assert loaded.last(TITLE) == 493793 and loaded.last(OTHER_TITLE) == 5
    data = json.loads(Path(path).read_text())
    assert data["invocation_counters"][sv.RADIUS_SYSTEM_TITLE] == 493793
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_a_missing_state_file_starts_empty_but_a_missing_directory_is_an_error(
    tmp_path: Path,
) -> None:
    assert len(load_state(str(tmp_path / "new.json"))) == 0
    with pytest.raises(UsageError, match="directory does not exist"):
        load_state(str(tmp_path / "no" / "state.json"))


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"version": 99, "invocation_counters": {}}',
        '{"version": 1}',
        '{"version": 1, "invocation_counters": {"zz": 1}}',
        '{"version": 1, "invocation_counters": {"4B414D45": 1}}',
        '{"version": 1, "invocation_counters": {"4B414D4501A4DC52": -1}}',
        '{"version": 1, "invocation_counters": {"4B414D4501A4DC52": "7"}}',
    ],
)
def test_a_damaged_state_file_is_one_line_saying_to_delete_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(UsageError, match="delete it to start afresh") as caught:
        load_state(str(path))
    assert "\n" not in str(caught.value)


def test_state_file_saves_at_most_every_interval_and_only_when_changed(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "state.json"
    tracker = InvocationTracker()
    store = StateFile(str(path), tracker, interval=30, clock=lambda: now[0])
    assert store.maybe_save() is False  # nothing changed yet
    tracker.accept(TITLE, 1)
    assert store.maybe_save() is True  # the first change is written at once
    tracker.accept(TITLE, 2)
    now[0] += 10
    assert store.maybe_save() is False
    assert load_state(str(path)).last(TITLE) == 1
    now[0] += 20
    assert store.maybe_save() is True
    assert load_state(str(path)).last(TITLE) == 2
    tracker.accept(TITLE, 3)
    store.save()  # at exit, regardless of the interval
    assert load_state(str(path)).last(TITLE) == 3


def test_a_failing_periodic_save_is_kept_not_raised(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    tracker = InvocationTracker()
    store = StateFile(str(gone / "state.json"), tracker, interval=0)
    gone.rmdir()
    tracker.accept(TITLE, 1)
    assert store.maybe_save() is False
    assert store.error is not None and "cannot write state file" in store.error
    with pytest.raises(UsageError):
        store.save()


# -- the command line --------------------------------------------------------------------


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


KEYS = ("--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY)


def test_replaying_a_capture_twice_drops_the_repeats_once_warned() -> None:
    status, out, err = run("replay", "-", *KEYS, input=sv.RADIUS_FRAME * 3)
    assert status == 0
    assert len(out.splitlines()) == 1
    assert err.count("replayed or repeated frame") == 1
    assert "replayed=2" in err


def test_state_file_makes_a_restart_refuse_the_old_frame(tmp_path: Path) -> None:
    state = str(tmp_path / "amsread.state")
    first = run("replay", "-", *KEYS, "--state-file", state, input=sv.RADIUS_FRAME)
    assert first[0] == 0 and len(first[1].splitlines()) == 1
    saved = json.loads(Path(state).read_text())
    assert saved["invocation_counters"] == {sv.RADIUS_SYSTEM_TITLE: sv.RADIUS_INVOCATION_COUNTER}
    status, out, err = run("replay", "-", *KEYS, "--state-file", state, input=sv.RADIUS_FRAME)
    assert status == 1 and out == ""
    assert "not above" in err and "--state-file" in err
    status, out, _ = run(
        "decode", sv.RADIUS_FRAME.hex(), *KEYS, "--state-file", state, "--allow-replay"
    )
    assert status == 0 and len(out.splitlines()) == 1


@pytest.mark.parametrize("content", ["{", "", '{"version": 99}'])
def test_a_damaged_or_empty_state_file_is_moved_aside_and_decoding_goes_on(
    tmp_path: Path, content: str
) -> None:
    state = tmp_path / "amsread.state"
    state.write_text(content)
    status, out, err = run("decode", sv.RADIUS_FRAME.hex(), *KEYS, "--state-file", str(state))
    assert status == 0, err
    assert len(out.splitlines()) == 1
    aside = list(tmp_path.glob("amsread.state.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content
    assert f"moved it to {aside[0]}" in err and "Traceback" not in err
    # The fresh state file holds the frame's counter again.
    assert load_state(str(state)).last(bytes.fromhex(sv.RADIUS_SYSTEM_TITLE)) is not None


def test_missed_pushes_are_logged_at_info_once_per_gap() -> None:
    frames = b"".join(hdlc_frame(b"\xe6\xe7\x00" + push(c)) for c in (1, 2, 6, 7, 20))
    status, out, err = run("-v", "replay", "-", *KEYS, input=frames)
    assert status == 0 and len(out.splitlines()) == 5
    gaps = [line for line in err.splitlines() if "push messages missed" in line]
    assert len(gaps) == 2
    assert "missed=3" in gaps[0] and "missed=12" in gaps[1]
    assert "missed_pushes=15" in err
