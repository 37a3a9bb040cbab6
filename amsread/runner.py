"""Drives a pipeline from a byte source to a writer, and reports what happened.

Shared by ``decode``, ``replay`` and ``listen`` so they behave alike: every
event is counted by the pipeline; here the first problem of each kind is
logged loudly with a next step, repeats quietly, and a summary ends the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from amsread.events import Event, Failure, Message, Rejected, Skipped
from amsread.output import Writer
from amsread.pipeline import Pipeline

HINTS = {
    "no_key": "pass the encryption key (GUEK) your grid operator gave you with --key",
    "auth_failed": "check --key and --auth-key; 'amsread check-key' tells which is wrong",
    "decrypt_failed": "check --key; 'amsread check-key' tests a key against a frame",
    "unsupported_security": "please report this meter with 'amsread explain' output",
    "bad_apdu": "run 'amsread explain' on the frame and report it",
    "replayed": "an old or repeated frame: use --allow-replay if this is expected",
}
REJECT_HINTS = {
    "bad_fcs": "bytes were damaged on the line",
    "bad_hcs": "a frame header was damaged on the line",
    "truncated": "bytes were lost on the line; check the IR head's alignment and the baud rate",
    "garbage": "bytes outside any frame; persistent garbage means wrong serial settings",
}


@dataclass
class Reporter:
    """Logs pipeline events at the right level, once loudly per kind."""

    log: Any
    seen: set[str] = field(default_factory=set)
    messages: int = 0
    failures: int = 0
    rejected: int = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            self.messages += 1
            self.log.debug(
                "message decoded",
                system_title=event.system_title,
                invocation_counter=event.invocation_counter,
                readings=len(event.readings),
                profile=event.profile,
            )
            if event.authenticated is False:
                self._once(
                    "unauthenticated",
                    "the authentication tag was not checked: no authentication key given",
                    hint="pass the authentication key (GAK) with --auth-key to verify it",
                )
        elif isinstance(event, Failure):
            self.failures += 1
            self._once(
                event.reason,
                event.detail,
                hint=HINTS.get(event.reason),
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
                detail=event.detail or REJECT_HINTS.get(event.reason),
                start=event.data[:16].hex(" "),
            )
        elif isinstance(event, Skipped):
            self.log.debug("frame skipped: not a push message", what=event.what)

    def _once(self, key: str, text: str, **fields: Any) -> None:
        clean = {k: v for k, v in fields.items() if v is not None}
        if key in self.seen:
            self.log.debug(text, **clean)
        else:
            self.seen.add(key)
            self.log.warning(text, **clean)


def run(chunks: Iterable[bytes], pipeline: Pipeline, writer: Writer, reporter: Reporter) -> None:
    """Feed every chunk through the pipeline; write messages as they complete."""
    for chunk in chunks:
        _emit(pipeline.feed(chunk), writer, reporter)
    _emit(pipeline.close(), writer, reporter)


def run_apdus(
    apdus: Iterable[bytes], pipeline: Pipeline, writer: Writer, reporter: Reporter
) -> None:
    """Feed bare APDUs (one message each) through the pipeline."""
    for apdu in apdus:
        _emit(pipeline.feed_apdu(apdu), writer, reporter)


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
    lost = sum(counts.get(k, 0) for k in ("bad_hcs", "bad_fcs", "truncated"))
    if lost or reporter.failures:
        reporter.log.warning("some data could not be decoded", **counts)
    else:
        reporter.log.info("done", **counts)


def exit_status(reporter: Reporter) -> int:
    """1 when nothing decoded and something failed or was rejected; else 0."""
    return 1 if reporter.messages == 0 and (reporter.failures or reporter.rejected) else 0
