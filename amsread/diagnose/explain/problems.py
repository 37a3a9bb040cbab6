"""Named causes (stable slugs) with what is wrong and the next step, and the verdict."""

from __future__ import annotations

from collections import Counter

from amsread.diagnose.explain.model import (
    Problem,
    Report,
    Section,
    plural,
)
from amsread.dlms.ciphering import Ciphered
from amsread.dlms.keys import Keys
from amsread.model import Rejected
from amsread.readings.shapes import Extracted

REPORT_IT = "please open an issue with this output (use --redact to hide the meter's identity)"


KEYS_SWAPPED = Problem(
    "keys_swapped",
    "the tag verified only with --key and --auth-key exchanged",
    "swap the two keys: --key is the encryption key (GUEK), --auth-key the"
    " authentication key (GAK)",
    "warning",
)


def no_key_problem(c: Ciphered) -> Problem:
    needs = "--key (the encryption key, GUEK)"
    if c.authenticated:
        needs += " and --auth-key (the authentication key, GAK) to verify the tag"
    return Problem(
        "no_key",
        f"the APDU is encrypted (security control 0x{c.security_control:02X}) and no key was given",
        f"pass {needs}: 32 hex digits each, from your grid operator",
    )


def auth_failed_problem(keys: Keys) -> Problem:
    return Problem(
        "auth_failed",
        "the authentication tag does not match: a key is wrong, or the frame was damaged",
        "run 'amsread check-key' with the same frame and keys: it tells which key is wrong"
        + ("" if keys.authentication else " (and pass --auth-key)"),
    )


def decrypt_failed_problem(why: str) -> Problem:
    return Problem(
        "decrypt_failed",
        f"{why}: the encryption key is wrong, or the frame is damaged",
        "check the key with 'amsread check-key'; it must be the encryption key (GUEK)"
        " for exactly this meter",
    )


def joined_note(section: Section, parts: int) -> None:
    if any(p.cause == "bad_apdu" for p in section.problems):
        section.notes.append(
            f"the APDU was joined from {parts} segments: a segment lost on the line (the"
            " link layer cannot always tell) gives exactly this kind of malformed APDU"
        )


def not_a_frame_problem(data: bytes) -> Problem:
    return Problem(
        "not_a_frame",
        f"the hex is no HDLC frame (7E A…), M-Bus frame (68 L L 68) or push APDU (0F, DB,"
        f" DC, E0); it starts with {data[:1].hex().upper() or 'nothing'}",
        "paste the bytes exactly as read from the meter, from the first 7E; bytes that"
        " came out of a decryption tool mean the key was wrong",
    )


def segments_lost_problem(why: str) -> Problem:
    return Problem(
        "segments_lost",
        f"part of a message split over several frames: {why}",
        "a frame in between was lost or damaged on the line; check the connection",
    )


def unknown_layout_problem(extracted: Extracted, hint: str | None) -> Problem:
    return Problem(
        "unknown_layout",
        f"the list has {extracted.count} values but no OBIS codes, and no profile names"
        " them by position",
        hint
        or "write a profile with one [[position]] entry (OBIS code, scaler, unit) per value,"
        " in order, and pass it with --profile"
        " (see amsread/readings/data/profiles/ for the format)",
    )


def damage_problem(event: Rejected, announced: int, between: int, closed: bool) -> Problem:
    missing = announced - between
    lost = "bytes lost on the line; check the IR head's alignment and the baud rate"
    if event.reason == "truncated" and not closed:
        return Problem(
            "truncated",
            f"{plural(missing, 'byte')} missing at the end: the input stops inside the frame"
            f" ({between} of the {announced} bytes its length field announces, no closing flag)",
            "copy the complete frame (a log or capture that stops early cuts the last frame);"
            " if it came from the line, " + lost,
        )
    if missing > 0:
        where = "header checksum mismatch; " if event.reason == "bad_hcs" else ""
        return Problem(
            "truncated",
            f"{where}{plural(missing, 'byte')} missing: the frame has {between} of the {announced}"
            " bytes its length field announces",
            lost,
        )
    if event.reason == "bad_hcs":
        return Problem(
            "bad_hcs",
            "header checksum mismatch: the frame header was damaged on the line",
            "occasional damage is normal; if frequent, check the cable or IR head and that the"
            " port is 8N1 (8E1 for M-Bus)",
        )
    return Problem(
        "bad_fcs",
        f"{event.detail or 'frame checksum mismatch'}: bytes were changed on the line",
        "occasional damage is normal; if frequent, check the cable or IR head and the serial"
        " settings (8N1; 8E1 for M-Bus)",
    )


#: Bytes made of at most two runs of equal bits: what a too-fast port samples.
_RUN_BYTES = frozenset(
    b for b in range(256) if sum(1 for i in range(7) if (b >> i & 1) != (b >> (i + 1) & 1)) <= 1
)


def garbage_meaning(region: bytes) -> str:
    shown = f"first 64 of {len(region)} bytes" if len(region) > 64 else f"{len(region)} bytes"
    return f"{shown}; belong to no valid frame"


def diagnose_garbage(region: bytes, *, at_start: bool, whole: bool) -> Problem | None:
    """Name the likely cause of bytes outside frames; None for a harmless partial frame."""
    settings = "the serial settings (2400 or 9600 baud, 8N1; M-Bus adapters 2400 8E1)"
    text = region.lstrip(b"\r\n")
    printable = sum(0x20 <= b < 0x7F or b in (0x0A, 0x0D) for b in region)
    mostly_text = printable > 0.8 * len(region)
    if mostly_text and (text[:1] == b"/" or b"1-0:" in region):
        return Problem(
            "text_telegram",
            "this is a text telegram (DSMR P1 / IEC 62056-21), not DLMS binary push data",
            "amsread replay and listen read it with --framing dsmr (or auto);"
            " explain annotates a capture of telegrams alone (--capture)",
        )
    if len(region) >= 4 and region[0] == 0x68 and region[3] == 0x68 and region[1] == region[2]:
        return Problem(
            "mbus_frames",
            "the bytes look like M-Bus long frames (68 L L 68), not HDLC",
            "amsread replay and listen read them with --framing mbus (or auto)",
        )
    if len(region) >= 16 and max(region) < 0x80:
        hint = ""
        if b"\x7e\x20" in region or b"\x7e\x28" in region:
            hint = " (7E 20 … where frames start 7E A0 …)"
        return Problem(
            "seven_bits",
            f"every byte has its top bit cleared{hint}: the port reads 7 data bits",
            "set the port to 8 data bits: 8N1 (M-Bus adapters 8E1)",
        )
    if len(region) >= 16 and sum(b in _RUN_BYTES for b in region) > 0.7 * len(region):
        return Problem(
            "baud_rate",
            "the bytes are runs of 0 and 1 bits (00, FF, F0, 80…): the port samples faster"
            " than the meter sends",
            "lower the baud rate (meters push at 2400 or 9600 baud, some at 115200)",
        )
    if whole:
        return Problem(
            "no_frames",
            f"no HDLC frame in {len(region)} bytes: wrong baud rate or parity, an inverted"
            " signal, or not a DLMS/HDLC meter",
            f"check {settings} and the IR head's position",
        )
    if at_start and len(region) <= 2048:
        return None
    return Problem(
        "garbage",
        f"{len(region)} bytes between frames belong to no frame: noise, or a frame damaged"
        " beyond recognition",
        f"occasional noise is normal; if frequent, check the wiring or IR head and {settings}",
    )


def report_problems(report: Report) -> list[Problem]:
    frames = [s for s in report.sections if s.kind in ("frame", "apdu")]
    if frames and all(s.outcome == "skipped" for s in frames):
        kinds = list(dict.fromkeys(_short_kind(s.summary) for s in frames))
        return [
            Problem(
                "not_push",
                f"no push messages: {len(frames)} valid frames of client/server traffic"
                f" ({', '.join(kinds)})",
                "amsread reads the push messages a meter sends by itself; this is a client"
                " talking to the meter. Check that the meter's push interface is enabled"
                " (ask the grid operator) and that you read the right port",
            )
        ]
    return []


def _short_kind(summary: str) -> str:
    parts = [p.strip() for p in summary.split("·")]
    last = parts[-1]
    if last.startswith("HDLC "):
        return last[5:]
    return last.split(" (")[0]


def report_verdict(report: Report) -> tuple[str, bool]:
    units = [s for s in report.sections if s.kind in ("frame", "apdu")]
    damaged = sum(s.kind == "damaged frame" for s in report.sections)
    messages = [s for s in units if s.outcome != "segment"]
    omitted = sum(n for outcome, n in report.omitted.items() if outcome != "segment")
    decoded = sum(s.outcome == "decoded" for s in messages) + report.omitted.get("decoded", 0)
    total = len(messages) + damaged + omitted
    if not total:
        return "nothing to explain: no frame found", False
    errors = [p for s in report.sections for p in s.problems if p.severity == "error"]
    errors += report.problems
    split = len(messages) < len(units)
    what = "APDUs" if units and units[0].kind == "apdu" else "messages" if split else "frames"
    verdict = f"decoded {decoded} of {total} {what}"
    if split:
        verdict += f" ({len(units) + damaged} frames)"
    causes = Counter(p.cause for p in errors)
    causes.update(report.omitted_problems)
    if causes:
        verdict += "; problems: " + ", ".join(f"{n}× {c}" for c, n in causes.most_common())
    return verdict, decoded == total and not causes
