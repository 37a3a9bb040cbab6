"""The ``amsread`` command line: the command group, decode, replay and demo.

The daemon's command is in ``listen_command``, the diagnostics in
``diagnose_commands``, what they share in ``wiring``. Heavy modules are
imported inside the commands so that ``amsread --help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from amsread import __version__
from amsread.app.diagnose_commands import check_key, explain, profile
from amsread.app.listen_command import listen
from amsread.app.mqtt_options import mqtt_options, mqtt_writer
from amsread.app.options import (
    add_global_options,
)
from amsread.app.wiring import (
    _framing,
    _framing_option,
    _key_options,
    _output_options,
    _setup,
    _stdout_gone,
    _usage_errors,
)
from amsread.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


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
    from amsread.app.log import configure

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
@_framing_option
def decode(
    hex_words: tuple[str, ...],
    file: str | None,
    key: str | None,
    auth_key: str | None,
    fmt: str,
    profiles: tuple[str, ...],
) -> None:
    """Decode frames or APDUs given as hex.

    Accepts HDLC frames (starting 7E), M-Bus frames (starting 68), and bare
    APDUs, with or without the LLC header (one per line in a file). Spaces,
    newlines, 0x prefixes, colons and '#' comments are ignored.
    """
    from amsread.app.runner import exit_status, run, run_apdus
    from amsread.app.sources import read_hex_input
    from amsread.link.framing import framing_for_hex

    with _usage_errors():
        if file is not None and hex_words:
            raise UsageError("give hex either as arguments or with --file, not both")
        if file is None and not hex_words:
            raise UsageError("no hex given: pass it as arguments, or use --file F ('-': stdin)")
        hex_input = read_hex_input(hex_words, file)
        data = hex_input.data
        framing = _framing()
        if framing == "auto":
            framing = framing_for_hex(data)
        pipeline, writer, reporter = _setup(
            key, auth_key, fmt, profiles, framing="hdlc" if framing == "raw" else framing
        )
        if framing != "raw":
            run([data], pipeline, writer, reporter)
        else:
            # One APDU per non-empty line (a file of APDUs), or all of it as one.
            run_apdus(hex_input.messages(), pipeline, writer, reporter)
    status = exit_status(reporter)
    if status and not reporter.failures:
        click.echo(
            "amsread: error: no valid frame in the input (run with -v for details)", err=True
        )
    sys.exit(status)


@cli.command()
@click.argument("capture", metavar="CAPTURE")
@_key_options
@_output_options
@_framing_option
@mqtt_options
def replay(
    capture: str, key: str | None, auth_key: str | None, fmt: str, profiles: tuple[str, ...]
) -> None:
    """Decode a raw capture (bytes as read from the line; '-' for stdin)."""
    from amsread.app.runner import exit_status, run, summarize
    from amsread.app.sources import read_chunks
    from amsread.diagnose.silence import SilenceWatch

    with _usage_errors():
        pipeline, writer, reporter = _setup(key, auth_key, fmt, profiles)
        reporter.silence = SilenceWatch(_framing())
        writer, _queue = mqtt_writer(writer, reporter.log, replay=True)
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

    from amsread.app.runner import run
    from amsread.app.sources import parse_hex

    example = tomllib.loads(
        resources.files("amsread").joinpath("readings/data/demo.toml").read_text("utf-8")
    )
    click.echo(f"# {example['source']}", err=True)
    with _usage_errors():
        pipeline, writer, reporter = _setup(example["key"], example["auth_key"], fmt, ())
        run([parse_hex(example["frame"])], pipeline, writer, reporter)
    sys.exit(0 if reporter.messages else 1)


#: Settings from --config and AMSREAD_* variables, for what click cannot apply itself.
cli.add_command(listen)
cli.add_command(explain)
cli.add_command(check_key)
cli.add_command(profile)

# -v, -q and --log-format after the command too (amsread replay x.bin -v).
add_global_options(cli)


def main() -> None:
    """Console-script entry point: a closed stdout ends the program quietly."""
    try:
        cli()
    except BrokenPipeError:
        # The reader went away (``amsread … | head``): exit quietly, like cat.
        _stdout_gone()
