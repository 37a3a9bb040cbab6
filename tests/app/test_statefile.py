"""``--state-file``: the replay guard's counters kept in a file across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import seed_vectors as sv

from amsread.app.statefile import StateFile, load_state, save_state
from amsread.dlms.replay import InvocationTracker
from amsread.errors import UsageError

TITLE = bytes.fromhex(sv.RADIUS_SYSTEM_TITLE)
OTHER_TITLE = b"KFM\x00\x00\x00\x00\x01"


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
