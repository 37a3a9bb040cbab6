"""The ``amsread`` command line: the command group, decode, replay and demo.

The daemon's command is in ``listen_command`` and the diagnostics in
``diagnose_commands``, both imported only when one of their commands runs or
``--help`` lists them; the set-up the commands share is in ``wiring``. Heavy
modules are imported inside the commands so that ``amsread --help`` starts fast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from amsread import __version__
from amsread.app.mqtt_options import mqtt_options
from amsread.app.options import (
    add_global_options,
    framing_option,
    output_options,
    security_options,
)

if TYPE_CHECKING:
    from amsread.app.settings import BrokerOptions, OutputOptions, SecurityOptions

#: Commands kept in their own modules: (module, attribute) by command name.
LAZY_COMMANDS = {
    "listen": ("amsread.app.listen_command", "listen"),
    "explain": ("amsread.app.diagnose_commands", "explain"),
    "check-key": ("amsread.app.diagnose_commands", "check_key"),
    "profile": ("amsread.app.diagnose_commands", "profile"),
}


class CommandGroup(click.Group):
    """A group that imports a command of ``LAZY_COMMANDS`` when it is first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name]
            # __import__, not importlib.import_module: -X importtime sees it (bench/run.py).
            command = getattr(__import__(module, fromlist=[attribute]), attribute)
            add_global_options(command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
@security_options
@output_options
@framing_option
def decode(
    hex_words: tuple[str, ...],
    file: str | None,
    security: SecurityOptions,
    output: OutputOptions,
    framing: str,
) -> None:
    """Decode frames or APDUs given as hex.

    Accepts HDLC frames (starting 7E), M-Bus frames (starting 68), and bare
    APDUs, with or without the LLC header (one per line in a file). Spaces,
    newlines, 0x prefixes, colons and '#' comments are ignored.
    """
    from amsread.app.runner import exit_status, run, run_apdus
    from amsread.app.sources import read_hex_input
    from amsread.app.wiring import set_up, usage_errors
    from amsread.errors import UsageError
    from amsread.link.framing import framing_for_hex

    with usage_errors():
        if file is not None and hex_words:
            raise UsageError("give hex either as arguments or with --file, not both")
        if file is None and not hex_words:
            raise UsageError("no hex given: pass it as arguments, or use --file F ('-': stdin)")
        hex_input = read_hex_input(hex_words, file)
        data = hex_input.data
        if framing == "auto":
            framing = framing_for_hex(data)
        setup = set_up(security, output, "hdlc" if framing == "raw" else framing)
        if framing != "raw":
            run([data], setup.pipeline, setup.writer, setup.reporter)
        else:
            # One APDU per non-empty line (a file of APDUs), or all of it as one.
            run_apdus(hex_input.messages(), setup.pipeline, setup.writer, setup.reporter)
    status = exit_status(setup.reporter)
    if status and not setup.reporter.failures:
        click.echo(
            "amsread: error: no valid frame in the input (run with -v for details)", err=True
        )
    sys.exit(status)


@cli.command()
@click.argument("capture", metavar="CAPTURE")
@security_options
@output_options
@framing_option
@mqtt_options
def replay(
    capture: str,
    security: SecurityOptions,
    output: OutputOptions,
    framing: str,
    broker: BrokerOptions,
) -> None:
    """Decode a raw capture (bytes as read from the line; '-' for stdin)."""
    from amsread.app.mqtt_options import mqtt_writer
    from amsread.app.runner import exit_status, run, summarize
    from amsread.app.sources import read_chunks
    from amsread.app.wiring import set_up, usage_errors
    from amsread.diagnose.silence import SilenceWatch

    with usage_errors():
        setup = set_up(security, output, framing)
        reporter = setup.reporter
        reporter.silence = SilenceWatch(framing)
        writer, _queue = mqtt_writer(broker, setup.writer, reporter.log, replay=True)
        run(read_chunks(capture), setup.pipeline, writer, reporter)
    summarize(setup.pipeline, reporter)
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
    from amsread.app.settings import OutputOptions, SecurityOptions
    from amsread.app.sources import parse_hex
    from amsread.app.wiring import set_up, usage_errors

    example = tomllib.loads(
        resources.files("amsread").joinpath("readings/data/demo.toml").read_text("utf-8")
    )
    click.echo(f"# {example['source']}", err=True)
    with usage_errors():
        security = SecurityOptions(key=example["key"], auth_key=example["auth_key"])
        setup = set_up(security, OutputOptions(fmt), "hdlc")
        run([parse_hex(example["frame"])], setup.pipeline, setup.writer, setup.reporter)
    sys.exit(0 if setup.reporter.messages else 1)


# -v, -q and --log-format after the command too (amsread replay x.bin -v).
for _command in (decode, replay, demo):
    add_global_options(_command)


def main() -> None:
    """Console-script entry point: a closed stdout ends the program quietly."""
    try:
        cli()
    except BrokenPipeError:
        # The reader went away (``amsread … | head``): exit quietly, like cat.
        from amsread.app.wiring import stdout_gone

        stdout_gone()
