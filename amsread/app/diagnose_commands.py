"""``amsread explain``, ``amsread check-key`` and ``amsread profile draft``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from amsread.app.options import (
    key_file_options,
    key_texts,
)
from amsread.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


#: Bytes of a capture that explain and check-key read (the start is what matters).
MAX_DIAGNOSTIC_CAPTURE = 16 * 1024 * 1024


def _diagnostic_input(
    hex_words: tuple[str, ...], file: str | None, capture: str | None
) -> tuple[bytes, list[bytes] | None, str]:
    """(bytes from the line, or bare APDUs; a name for the source) from HEX…, --file, --capture."""
    from amsread.app.sources import read_chunks, read_hex_input
    from amsread.diagnose.explain import looks_like_apdu

    given = sum((bool(hex_words), file is not None, capture is not None))
    if given != 1:
        raise UsageError("give exactly one input: hex arguments, --file F or --capture BIN")
    if capture is not None:
        raw = bytearray()
        for chunk in read_chunks(capture):
            raw += chunk[: MAX_DIAGNOSTIC_CAPTURE - len(raw)]
            if len(raw) >= MAX_DIAGNOSTIC_CAPTURE:
                break
        return bytes(raw), None, f"capture {capture}"
    hex_input = read_hex_input(hex_words, file)
    source = f"file {file}" if file is not None else "hex argument"
    if not looks_like_apdu(hex_input.data):
        return hex_input.data, None, source
    return hex_input.data, hex_input.messages(), source


def _diagnostic_inputs(func: F) -> F:
    func = click.option(
        "--capture",
        metavar="BIN",
        help="Read raw bytes as captured from the line (--save-raw; '-' for stdin).",
    )(func)
    func = click.option("--file", metavar="FILE", help="Read hex text from FILE ('-' for stdin).")(
        func
    )
    return click.argument("hex_words", nargs=-1, metavar="[HEX…]")(func)


@click.command()
@_diagnostic_inputs
@click.option(
    "--key",
    metavar="HEX",
    envvar="AMSREAD_KEY",
    help="Encryption key (GUEK), 32 hex digits. Env: AMSREAD_KEY.",
)
@click.option(
    "--auth-key",
    "auth_key",
    metavar="HEX",
    envvar="AMSREAD_AUTH_KEY",
    help="Authentication key (GAK), 32 hex digits. Env: AMSREAD_AUTH_KEY.",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Extra list profile (TOML); may be repeated.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Annotated text, or the same breakdown as JSON.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the text (auto: when stdout is a terminal and NO_COLOR is unset).",
)
@click.option(
    "--redact",
    is_flag=True,
    help="Replace meter serial numbers and ids with placeholders, to post the output publicly.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Frames explained in full (0: all); the rest are only counted.",
)
@key_file_options
def explain(
    hex_words: tuple[str, ...],
    file: str | None,
    capture: str | None,
    key: str | None,
    auth_key: str | None,
    key_file: str | None,
    auth_key_file: str | None,
    profiles: tuple[str, ...],
    fmt: str,
    color: str,
    redact: bool,
    limit: int,
) -> None:
    """Explain frames layer by layer, and why they do not decode.

    Shows every field with its bytes and meaning (HDLC header and checksums,
    system title and maker, security bits, invocation counter, the decrypted
    data as a tree, readings, the profile chosen) and, for each failure, its
    cause and a next step. Exit status 0 when everything decoded, 1 otherwise.
    """
    from amsread.app.wiring import usage_errors
    from amsread.diagnose.explain import explain_apdus, explain_stream, render_json, render_text
    from amsread.dlms.keys import resolve_keys
    from amsread.readings.profiles import ProfileSet, load_profile

    with usage_errors():
        data, apdus, source = _diagnostic_input(hex_words, file, capture)
        # As listen finds them: flag or env, key file, systemd credential.
        keys = resolve_keys(key, auth_key, key_file, auth_key_file)
        profile_set = ProfileSet([load_profile(p) for p in profiles])
        if apdus is not None:
            report = explain_apdus(apdus, keys, profiles=profile_set, source=source, redact=redact)
        else:
            report = explain_stream(
                data,
                keys,
                profiles=profile_set,
                source=source,
                limit=limit,
                redact=redact,
                pasted=capture is None,
            )
        if fmt == "json":
            click.echo(render_json(report), nl=False)
        else:
            use_color = color == "always" or (
                color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
            )
            click.echo(render_text(report, use_color), nl=False, color=use_color)
    sys.exit(0 if report.ok else 1)


@click.command("check-key")
@_diagnostic_inputs
@click.option(
    "--key",
    "keys",
    metavar="HEX",
    multiple=True,
    help="Encryption key (GUEK) to check; repeat to try several candidates. Env: AMSREAD_KEY.",
)
@click.option(
    "--auth-key",
    "auth_keys",
    metavar="HEX",
    multiple=True,
    help="Authentication key (GAK); may be repeated too. Env: AMSREAD_AUTH_KEY.",
)
@key_file_options
def check_key(
    hex_words: tuple[str, ...],
    file: str | None,
    capture: str | None,
    keys: tuple[str, ...],
    auth_keys: tuple[str, ...],
    key_file: str | None,
    auth_key_file: str | None,
) -> None:
    """Check keys against frames: one verdict line, then the details.

    Says whether the keys are right, swapped, or which one is wrong; whether
    the frames need an authentication key at all; and what is wrong with a
    key's format (length, 0x, spaces, ASCII text). Keys are never printed.
    Exit status 0 when the keys work, 1 otherwise.
    """
    from amsread.app.wiring import usage_errors
    from amsread.diagnose.checkkey import check_keys, collect_frames, render_report
    from amsread.dlms.keys import CREDENTIAL_AUTH_KEY, CREDENTIAL_KEY

    with usage_errors():
        # Keys as listen finds them: flags, environment, key files, systemd credentials.
        candidates = key_texts(keys, key_file, "AMSREAD_KEY", CREDENTIAL_KEY, "encryption key")
        if not candidates:
            raise UsageError(
                "no key to check: pass --key HEX (repeatable), --key-file FILE or AMSREAD_KEY"
            )
        auth_candidates = key_texts(
            auth_keys, auth_key_file, "AMSREAD_AUTH_KEY", CREDENTIAL_AUTH_KEY, "authentication key"
        )
        data, apdus, _source = _diagnostic_input(hex_words, file, capture)
        frames = collect_frames(apdus[0] if apdus else data, stream=apdus is None)
        report = check_keys(frames, candidates, auth_candidates)
        click.echo(render_report(report), nl=False)
    sys.exit(0 if report.ok else 1)


@click.group()
def profile() -> None:
    """List profiles: draft one for a meter no profile describes."""


@profile.command("draft")
@_diagnostic_inputs
@click.option("--key", metavar="HEX", envvar="AMSREAD_KEY", help="Encryption key (GUEK).")
@click.option("--auth-key", "auth_key", metavar="HEX", envvar="AMSREAD_AUTH_KEY")
@click.option("--name", default="my-meter", show_default=True, help="The drafted profile's name.")
def profile_draft(
    hex_words: tuple[str, ...],
    file: str | None,
    capture: str | None,
    key: str | None,
    auth_key: str | None,
    name: str,
) -> None:
    """Print a TOML profile drafted from captured messages (edit, then use --profile).

    Takes the input of 'decode'/'explain'; several messages of one list give
    better guesses. Inferred entries are marked; the others say what to check.
    """
    from amsread.app.wiring import usage_errors
    from amsread.diagnose.draft import draft_profile
    from amsread.dlms.keys import Keys, parse_key
    from amsread.link.framing import framing_for_hex
    from amsread.model import Message
    from amsread.pipeline import Pipeline

    with usage_errors():
        data, apdus, _ = _diagnostic_input(hex_words, file, capture)
        keys = Keys(
            parse_key(key, "encryption key (--key)") if key else None,
            parse_key(auth_key, "authentication key (--auth-key)") if auth_key else None,
        )
        framing = "auto" if capture is not None else framing_for_hex(data).replace("raw", "hdlc")
        pipeline = Pipeline(keys, allow_replay=True, framing="hdlc" if apdus else framing)
        events = []
        for apdu in apdus if apdus is not None else ():
            events += pipeline.feed_apdu(apdu)
        if apdus is None:
            events += pipeline.feed(data)
        events += pipeline.close()
        messages = [e for e in events if isinstance(e, Message)]
        if not messages:
            raise UsageError(
                "no message decoded, so there is nothing to draft from;"
                " run 'amsread explain' on the same input to see why"
            )
        click.echo(draft_profile(messages, name), nl=False)
