"""The ``amsread`` command line.

Heavy modules (cryptography, the pipeline) are imported inside the commands
so that ``amsread --help`` starts fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from amsread import __version__
from amsread.errors import UsageError

if TYPE_CHECKING:
    from amsread.keys import Keys
    from amsread.pipeline import Pipeline
    from amsread.runner import Reporter

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """Configuration problems: one line on stderr, exit status 2, no traceback."""
    try:
        yield
    except UsageError as exc:
        click.echo(f"amsread: error: {exc}", err=True)
        sys.exit(2)


def _key_options(func: F) -> F:
    # No show_default: a key must never appear in --help.
    func = click.option(
        "--auth-key",
        "auth_key",
        metavar="HEX",
        envvar="AMSREAD_AUTH_KEY",
        help="Authentication key (GAK), 32 hex digits. Env: AMSREAD_AUTH_KEY.",
    )(func)
    func = click.option(
        "--key",
        "key",
        metavar="HEX",
        envvar="AMSREAD_KEY",
        help="Encryption key (GUEK), 32 hex digits. Env: AMSREAD_KEY.",
    )(func)
    return func


def _output_options(func: F) -> F:
    func = click.option(
        "--profile",
        "profiles",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Extra list profile (TOML); may be repeated.",
    )(func)
    func = click.option(
        "--format",
        "fmt",
        type=click.Choice(["jsonl"]),
        default="jsonl",
        show_default=True,
        help="Output format.",
    )(func)
    return func


def _keys(key: str | None, auth_key: str | None) -> Keys:
    from amsread.keys import Keys, parse_key

    return Keys(
        parse_key(key, "encryption key (--key)") if key else None,
        parse_key(auth_key, "authentication key (--auth-key)") if auth_key else None,
    )


def _setup(
    key: str | None, auth_key: str | None, fmt: str, profiles: tuple[str, ...]
) -> tuple[Pipeline, Any, Reporter]:
    from amsread.log import get_logger
    from amsread.output import make_writer
    from amsread.pipeline import Pipeline
    from amsread.profiles import ProfileSet, load_profile
    from amsread.runner import Reporter

    keys = _keys(key, auth_key)
    profile_set = ProfileSet([load_profile(p) for p in profiles])
    pipeline = Pipeline(keys, profiles=profile_set)
    return pipeline, make_writer(fmt, sys.stdout), Reporter(get_logger())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
@click.option("-q", "--quiet", count=True, help="Less log output.")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="Log format on stderr.",
)
@click.version_option(__version__, prog_name="amsread")
def cli(verbose: int, quiet: int, log_format: str) -> None:
    """Read DLMS/COSEM push messages from a smart meter's HAN/P1 port.

    Readings go to stdout (one JSON object per message); logs go to stderr.
    """
    from amsread.log import configure

    configure(verbose - quiet, log_format)


@cli.command()
@click.argument("hex_words", nargs=-1, metavar="HEX…")
@click.option(
    "--file",
    "file",
    type=str,
    metavar="FILE",
    help="Read hex text from FILE ('-' for stdin) instead of arguments.",
)
@_key_options
@_output_options
def decode(
    hex_words: tuple[str, ...],
    file: str | None,
    key: str | None,
    auth_key: str | None,
    fmt: str,
    profiles: tuple[str, ...],
) -> None:
    """Decode frames or APDUs given as hex.

    Accepts HDLC frames (starting 7E), and bare APDUs, with or without the LLC
    header. Spaces, newlines, 0x prefixes, colons and '#' comments are ignored.
    """
    from amsread.runner import exit_status, run, run_apdus
    from amsread.sources import parse_hex, read_text

    with _usage_errors():
        if file is not None and hex_words:
            raise UsageError("give hex either as arguments or with --file, not both")
        if file is None and not hex_words:
            raise UsageError("no hex given: pass it as arguments, or use --file F ('-': stdin)")
        text = read_text(file) if file is not None else " ".join(hex_words)
        lines = [_strip_comment(line) for line in text.splitlines()]
        data = parse_hex("\n".join(lines))
        pipeline, writer, reporter = _setup(key, auth_key, fmt, profiles)
        if data[0] == 0x7E:
            run([data], pipeline, writer, reporter)
        else:
            # One APDU per non-empty line (a file of APDUs), or all of it as one.
            apdus = [parse_hex(line) for line in lines if line.strip()] if file else [data]
            run_apdus(apdus, pipeline, writer, reporter)
    status = exit_status(reporter)
    if status and not reporter.failures:
        click.echo(
            "amsread: error: no valid frame in the input (run with -v for details)", err=True
        )
    sys.exit(status)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0]


@cli.command()
@click.argument("capture", metavar="CAPTURE")
@_key_options
@_output_options
def replay(
    capture: str, key: str | None, auth_key: str | None, fmt: str, profiles: tuple[str, ...]
) -> None:
    """Decode a raw capture (bytes as read from the line; '-' for stdin)."""
    from amsread.runner import exit_status, run, summarize
    from amsread.sources import read_chunks

    with _usage_errors():
        pipeline, writer, reporter = _setup(key, auth_key, fmt, profiles)
        run(read_chunks(capture), pipeline, writer, reporter)
    summarize(pipeline, reporter)
    sys.exit(exit_status(reporter))


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
def demo(fmt: str) -> None:
    """Decode a built-in real capture (Kamstrup Omnipower, Radius) with no meter."""
    import tomllib
    from importlib import resources

    from amsread.runner import run
    from amsread.sources import parse_hex

    example = tomllib.loads(
        resources.files("amsread").joinpath("data/demo.toml").read_text("utf-8")
    )
    click.echo(f"# {example['source']}", err=True)
    with _usage_errors():
        pipeline, writer, reporter = _setup(example["key"], example["auth_key"], fmt, ())
        run([parse_hex(example["frame"])], pipeline, writer, reporter)
    sys.exit(0 if reporter.messages else 1)


def main() -> None:
    """Console-script entry point: a closed stdout ends the program quietly."""
    try:
        cli()
    except BrokenPipeError:
        # The reader went away (``amsread … | head``): exit quietly, like cat.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
