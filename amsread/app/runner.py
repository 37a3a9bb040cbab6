"""Drives a pipeline from a byte source to a writer, and reports what happened.

Shared by ``decode``, ``replay`` and ``listen`` so they behave alike: every
event is counted by the pipeline; here the first problem of each kind is
logged loudly with a next step, repeats quietly, and a summary ends the run.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from amsread import reasons
from amsread.diagnose.silence import SilenceWatch
from amsread.model import Event, Failure, Message, Notice, Rejected, Skipped
from amsread.output.writers import Writer
from amsread.pipeline import Pipeline
from amsread.readings.sanity import SanityChecker

#: First-generation threshold of the cyclic garbage collector while decoding
#: (CPython's default: 700). A 64 KiB chunk of a capture yields ~130 messages,
#: thousands of small objects alive until written, so the default ran a
#: collection every few frames and a full one, walking every object of the
#: loaded libraries, every ~1,000 frames: ~8 % of a replay (bench/README.md).
#: They hold no reference cycles and are freed by reference counting, so a
#: higher threshold costs no memory.
GC_THRESHOLD = 10_000


@dataclass
class Reporter:
    """Logs pipeline events at the right level, once loudly per kind."""

    log: Any
    seen: set[str] = field(default_factory=set)
    messages: int = 0
    failures: int = 0
    rejected: int = 0
    #: Called after every decoded message (e.g. to save invocation counters).
    after_message: Callable[[], object] | None = None
    #: Plausibility checks on the readings (implausible voltages, energy going back).
    sanity: SanityChecker = field(default_factory=SanityChecker)
    #: Says once why nothing decodes (replay at the end, listen within a minute).
    silence: SilenceWatch | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            self.messages += 1
            self.log.debug(
                "message decoded",
                system_title=event.system_title,
                invocation_counter=event.invocation_counter,
                readings=event.reading_count,  # makes no Reading objects
                profile=event.profile,
            )
            if event.authenticated is False:
                self._once(
                    "unauthenticated",
                    "the authentication tag was not checked: no authentication key given",
                    hint=reasons.hint("unauthenticated"),
                )
            self._security_notes(event)
            self._reading_notes(event)
            if self.after_message is not None:
                self.after_message()
        elif isinstance(event, Failure):
            self.failures += 1
            self._once(
                event.reason,
                event.detail,
                hint=reasons.hint(event.reason),
                system_title=event.system_title,
                invocation_counter=event.invocation_counter,
            )
        elif isinstance(event, Rejected):
            self.rejected += 1
            level = self.log.debug if event.reason == "garbage" else self.log.info
            level(
                "bytes rejected",
                reason=event.reason,
                bytes=event.size,
                detail=event.detail or reasons.hint(event.reason),
                start=event.data[:16].hex(" "),
            )
        elif isinstance(event, Skipped):
            self.log.debug("frame skipped: not a push message", what=event.what)
        elif isinstance(event, Notice):
            log = {"info": self.log.info, "warning": self.log.warning}.get(event.level)
            (log or self.log.debug)(event.detail, what=event.what)
            if event.what == "tag_unverified":
                # It says why the tag went unchecked; "no authentication key given" would mislead.
                self.seen.add("unauthenticated")

    def _security_notes(self, message: Message) -> None:
        if message.keys_swapped:
            self._once(
                "keys_swapped",
                "the encryption key and the authentication key are swapped: the tag"
                " verified only the other way round, so amsread uses them swapped",
                hint=reasons.hint("keys_swapped"),
            )
        if message.missed_pushes:
            self.log.info(
                "push messages missed: the invocation counter jumped",
                missed=message.missed_pushes,
                system_title=message.system_title,
                invocation_counter=message.invocation_counter,
            )

    def _reading_notes(self, message: Message) -> None:
        hint = message.hint
        if hint:
            # An unknown list of bare values: said once, with the profile it needs.
            self._once(f"layout:{hint}", hint, system_title=message.system_title)
        for note in message.raw_notes:
            # Once per meter and code: the log line says the profile line to add.
            self._once(
                f"raw:{message.system_title}:{note}", note, system_title=message.system_title
            )
        for flag in self.sanity.check(message):
            self._once(
                f"sanity:{flag.kind}:{flag.obis}",
                flag.text,
                hint=flag.hint,
                system_title=message.system_title,
            )

    def _once(self, key: str, text: str, **fields: Any) -> None:
        clean = {k: v for k, v in fields.items() if v is not None}
        if key in self.seen:
            self.log.debug(text, **clean)
        else:
            self.seen.add(key)
            self.log.warning(text, **clean)


def run(chunks: Iterable[bytes], pipeline: Pipeline, writer: Writer, reporter: Reporter) -> None:
    """Feed every chunk through the pipeline; write messages as they complete."""
    relax_gc()
    for chunk in chunks:
        _emit(pipeline.feed(chunk), writer, reporter)
        if reporter.messages == 0 and reporter.silence is not None:
            _watch_silence(chunk, pipeline, reporter)
    _emit(pipeline.close(), writer, reporter)
    if reporter.messages == 0:
        explain_silence(pipeline, reporter)


def _watch_silence(chunk: bytes, pipeline: Pipeline, reporter: Reporter) -> None:
    watch = reporter.silence
    assert watch is not None
    now = time.monotonic()
    watch.feed(chunk, now)
    if watch.due(now):
        explain_silence(pipeline, reporter)


def explain_silence(pipeline: Pipeline, reporter: Reporter) -> None:
    """One warning naming why nothing decoded, once per run."""
    watch = reporter.silence
    if watch is None or watch.said or reporter.messages:
        return
    cause = watch.cause(pipeline.counters.report())
    if cause is not None:
        reporter.log.warning(cause)


def relax_gc() -> None:
    """Collect cyclic garbage less often (see GC_THRESHOLD); never more often."""
    first, *older = gc.get_threshold()
    if 0 < first < GC_THRESHOLD:
        gc.set_threshold(GC_THRESHOLD, *older)


def run_apdus(
    apdus: Iterable[bytes], pipeline: Pipeline, writer: Writer, reporter: Reporter
) -> None:
    """Feed bare APDUs (one message each) through the pipeline."""
    for apdu in apdus:
        _emit(pipeline.feed_apdu(apdu), writer, reporter)
    # A general-block-transfer left unfinished is reported here.
    _emit(pipeline.close(), writer, reporter)


def _emit(events: list[Event], writer: Writer, reporter: Reporter) -> None:
    for event in events:
        if isinstance(event, Message):
            writer.write(event)
        reporter(event)
    if events:
        writer.flush()


def summarize(pipeline: Pipeline, reporter: Reporter) -> None:
    """One line of counters at the end of a run; a warning if anything was lost."""
    counts = pipeline.counters.report()
    lost = sum(counts.get(k, 0) for k in reasons.LOSSES)
    if lost or reporter.failures:
        reporter.log.warning("some data could not be decoded", **counts)
    else:
        reporter.log.info("done", **counts)


def exit_status(reporter: Reporter) -> int:
    """1 when nothing decoded and something failed or was rejected; else 0."""
    return 1 if reporter.messages == 0 and (reporter.failures or reporter.rejected) else 0
