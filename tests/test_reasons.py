"""``amsread.reasons``: every slug a module can emit is in the one table, and all readers agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import seed_vectors as sv
from noisy import make_pipeline, noisy_line

from amsread import errors, reasons
from amsread.diagnose.explain import Problem, explain_apdus, explain_stream
from amsread.dlms.keys import Keys, parse_key
from amsread.model import Failure, Rejected
from amsread.pipeline import Pipeline
from amsread.stats import KNOWN, Counters

PACKAGE = Path(reasons.__file__).parent

#: Where a slug is written as a literal: a Rejected event, a framer's rejection, a
#: failed M-Bus frame, an explain Problem, a pipeline counter.
EMITTERS = {
    "Rejected": re.compile(r'Rejected\(\s*"(\w+)"'),
    "_reject": re.compile(r'_reject\(\s*\w+,\s*"(\w+)"'),
    "_Found": re.compile(r'_Found\(\s*_BAD,[^,]+,\s*"(\w+)"'),
    "Problem": re.compile(r'(?<!\w)Problem\(\s*"(\w+)"'),
    "counters": re.compile(r'counters\["(\w+)"\]'),
}


def emitted_literals() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {name: set() for name in EMITTERS}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name, pattern in EMITTERS.items():
            found[name].update(pattern.findall(text))
    return found


def all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *all_subclasses(sub)]
    return out


def test_every_slug_written_in_the_source_is_in_the_table() -> None:
    found = emitted_literals()
    # The patterns really find the emitters (a pattern that matches nothing proves nothing).
    assert {"garbage", "segments_lost", "blocks_lost", "bad_hex"} <= found["Rejected"]
    assert {"bad_hcs", "truncated", "bad_fcs"} <= found["_reject"]
    assert {"bad_checksum", "truncated"} <= found["_Found"]
    assert {"seven_bits", "not_push", "decrypt_failed", "keys_swapped"} <= found["Problem"]
    assert {"frames_ok", "messages", "bytes_read"} <= found["counters"]
    for name in ("Rejected", "_reject", "_Found", "Problem"):
        missing = found[name] - set(reasons.REASONS)
        assert not missing, f"{name}(...) emits slugs missing from amsread/reasons.py: {missing}"
    assert found["counters"] <= set(reasons.COUNTERS)


def test_every_decode_error_reason_is_a_counted_failure() -> None:
    classes = [errors.DecodeError, *all_subclasses(errors.DecodeError)]
    assert len(classes) >= 10
    for cls in classes:
        entry = reasons.reason(cls.reason)
        assert entry.kind == reasons.FAILURE, cls
        assert entry.counter == cls.reason, cls


def test_slugs_are_unique_and_losses_are_counted_rejections() -> None:
    slugs = [r.slug for r in reasons.TABLE]
    assert len(slugs) == len(set(slugs))
    losses = {"bad_hcs", "bad_fcs", "bad_checksum", "bad_crc", "truncated"}
    losses |= {"segments_lost", "blocks_lost"}
    assert set(reasons.LOSSES) == losses
    assert all(reasons.reason(slug).kind == reasons.REJECTED for slug in reasons.LOSSES)
    assert reasons.reason("garbage").loss is False


def test_counters_report_in_table_order() -> None:
    assert KNOWN == reasons.COUNTERS
    counters = Counters(messages=2, bytes_read=10, garbage_bytes=3, zzz_other=1, bad_fcs=1)
    expected = ["bytes_read", "garbage_bytes", "bad_fcs", "messages", "zzz_other"]
    assert list(counters.report()) == expected


def test_hints_are_given_for_every_rejection_and_named_failure() -> None:
    for slug in ("no_key", "auth_failed", "decrypt_failed", "replayed", "bad_apdu", "garbage"):
        assert reasons.hint(slug)
    assert reasons.hint("no_such_slug") is None
    assert "--auth-key" in str(reasons.hint("unauthenticated"))


def test_a_problem_with_an_unregistered_cause_is_refused() -> None:
    with pytest.raises(KeyError):
        Problem("not_in_the_table", "summary", "next step")


@pytest.mark.parametrize("link", ["hdlc", "mbus"])
def test_a_noisy_line_emits_only_table_slugs_counted_under_the_table_counter(link: str) -> None:
    line = noisy_line(600, 7, link=link, damage_rate=0.05)
    pipeline = make_pipeline(link)
    events = [*pipeline.feed(line.data), *pipeline.close()]
    seen = {e.reason for e in events if isinstance(e, Rejected | Failure)}
    assert "garbage" in seen and len(seen) >= 2  # the line really produced rejections
    for slug in seen:
        counter = reasons.reason(slug).counter
        assert counter is not None and pipeline.counters[counter] > 0, slug


def test_explain_and_the_pipeline_name_a_wrong_key_alike() -> None:
    keys = Keys(parse_key(sv.KAIFA_AT_KEY))
    [failure] = Pipeline(keys).feed_apdu(sv.KAIFA_AT_CIPHERED)
    [section] = explain_apdus([sv.KAIFA_AT_CIPHERED], keys).sections
    assert isinstance(failure, Failure)
    assert [p.cause for p in section.problems] == [failure.reason] == ["decrypt_failed"]


def test_explain_causes_on_the_seed_streams_are_table_slugs() -> None:
    causes = set()
    for stream in (sv.AM550_STREAM, sv.GURUX_SESSION, sv.NORWEGIAN_LIST_TRUNCATED_FRAME):
        report = explain_stream(stream, limit=0)
        causes |= {p.cause for s in report.sections for p in s.problems}
        causes |= {p.cause for p in report.problems}
    assert {"not_push", "truncated"} <= causes
    assert causes <= set(reasons.REASONS)
