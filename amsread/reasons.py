"""Every reason slug amsread reports, once: its counter, whether it is a loss, the user's hint.

A slug names why bytes were rejected (the framers' ``Rejected``), why a
message failed (``DecodeError.reason``), a fact worth counting, or a cause
that ``explain`` diagnoses. The pipeline's counters, the runner's log hints
and explain's problems all read this table, so they cannot disagree; a test
checks that every slug a module can emit is here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Where a slug comes from.
REJECTED = "rejected"  # bytes a framer or reassembler threw away (a ``Rejected`` event)
FAILURE = "failure"  # a message that did not decode (a ``Failure`` event, a ``DecodeError``)
COUNT = "count"  # a fact the pipeline counts (frames, messages, pushes missed)
DIAGNOSIS = "diagnosis"  # a cause only ``explain`` names, or a notice the runner logs once


@dataclass(frozen=True)
class Reason:
    slug: str
    kind: str
    #: The pipeline counter it adds to (None: never counted).
    counter: str | None
    #: True when data was lost (as opposed to noise between frames, or a fact).
    loss: bool = False
    #: What the user can do, logged with the first occurrence (None: nothing to add).
    hint: str | None = None


_LINE_DAMAGE = "bytes were damaged on the line"

#: In the order the counters are reported.
TABLE = (
    Reason("bytes_read", COUNT, "bytes_read"),
    Reason("frames_ok", COUNT, "frames_ok"),
    Reason(
        "garbage",
        REJECTED,
        "garbage_bytes",
        hint="bytes outside any frame; persistent garbage means wrong serial settings",
    ),
    Reason("bad_hcs", REJECTED, "bad_hcs", True, "a frame header was damaged on the line"),
    Reason("bad_fcs", REJECTED, "bad_fcs", True, _LINE_DAMAGE),
    Reason("bad_checksum", REJECTED, "bad_checksum", True, _LINE_DAMAGE),
    Reason("bad_crc", REJECTED, "bad_crc", True, "a DSMR telegram was damaged on the line"),
    Reason(
        "truncated",
        REJECTED,
        "truncated",
        True,
        "bytes were lost on the line; check the IR head's alignment and the baud rate",
    ),
    Reason(
        "segments_lost",
        REJECTED,
        "segments_lost",
        True,
        "a frame of a message sent in several frames was lost or damaged",
    ),
    Reason(
        "blocks_lost",
        REJECTED,
        "blocks_lost",
        True,
        "a block of a general-block-transfer was lost or damaged",
    ),
    Reason(
        "bad_hex",
        REJECTED,
        "bad_hex",
        hint="a line that is no hex message; --framing raw expects one hex APDU per line",
    ),
    Reason("skipped", COUNT, "skipped"),
    Reason(
        "no_key",
        FAILURE,
        "no_key",
        hint="pass the encryption key (GUEK) your grid operator gave you with --key",
    ),
    Reason(
        "auth_failed",
        FAILURE,
        "auth_failed",
        hint="check --key and --auth-key; to test the encryption key alone, run without"
        " --auth-key: if readings then appear, the authentication key is the wrong one",
    ),
    Reason(
        "decrypt_failed",
        FAILURE,
        "decrypt_failed",
        hint="check --key: it must be this meter's encryption key (GUEK), 32 hex digits;"
        " if only some frames fail, they were damaged on the way",
    ),
    Reason(
        "unsupported_security",
        FAILURE,
        "unsupported_security",
        hint="please report this meter with 'amsread explain' output",
    ),
    Reason(
        "replayed",
        FAILURE,
        "replayed",
        hint="an old or repeated frame; if the meter's counter was reset, delete the"
        " --state-file, or pass --allow-replay to accept such frames",
    ),
    Reason("missed_pushes", COUNT, "missed_pushes"),
    Reason(
        "bad_apdu", FAILURE, "bad_apdu", hint="run 'amsread explain' on the frame and report it"
    ),
    Reason(
        "unauthenticated",
        COUNT,
        "unauthenticated",
        hint="to verify it, pass the authentication key (GAK) with --auth-key,"
        " --auth-key-file or AMSREAD_AUTH_KEY",
    ),
    Reason("messages", COUNT, "messages"),
    # Failures of the base classes and of A-XDR: counted, reported after the rest.
    Reason("bad_axdr", FAILURE, "bad_axdr"),
    Reason(
        "bad_telegram",
        FAILURE,
        "bad_telegram",
        hint="a DSMR telegram whose text is no telegram; run 'amsread explain' and report it",
    ),
    Reason("decode_error", FAILURE, "decode_error"),
    Reason("framing_error", FAILURE, "framing_error"),
    Reason("security_error", FAILURE, "security_error"),
    # Causes only explain names (and the runner's one-time notices).
    Reason("keys_swapped", DIAGNOSIS, None, hint="exchange the values of --key and --auth-key"),
    Reason("unknown_layout", DIAGNOSIS, None),
    Reason("not_a_frame", DIAGNOSIS, None),
    Reason("not_push", DIAGNOSIS, None),
    Reason("no_frames", DIAGNOSIS, None),
    Reason("text_telegram", DIAGNOSIS, None),
    Reason("mbus_frames", DIAGNOSIS, None),
    Reason("seven_bits", DIAGNOSIS, None),
    Reason("baud_rate", DIAGNOSIS, None),
    Reason("unknown_line", DIAGNOSIS, None),
)

REASONS = {reason.slug: reason for reason in TABLE}
#: Counter names in report order.
COUNTERS = tuple(dict.fromkeys(r.counter for r in TABLE if r.counter is not None))
#: Counters of rejections that mean data was lost.
LOSSES = tuple(r.counter for r in TABLE if r.loss and r.counter is not None)


def reason(slug: str) -> Reason:
    """The table's entry for ``slug``; KeyError for a slug nobody registered."""
    return REASONS[slug]


def hint(slug: str) -> str | None:
    """What the user can do about ``slug`` (None for an unknown slug or nothing to add)."""
    entry = REASONS.get(slug)
    return entry.hint if entry else None
