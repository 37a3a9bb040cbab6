"""``amsread listen``: the daemon's command, its config file and its raw capture."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from amsread.app.mqtt_options import BrokerOptions, mqtt_options, mqtt_writer
from amsread.app.options import (
    OutputOptions,
    ParityChoice,
    SecurityOptions,
    check_serial_port,
    framing_option,
    logging_choice,
    output_options,
    security_options,
)
from amsread.app.wiring import Setup, set_up, usage_errors
from amsread.errors import UsageError

if TYPE_CHECKING:
    from amsread.app.config import DaemonSettings
    from amsread.app.listen import Listener
    from amsread.app.log import Logger
    from amsread.app.outfile import OutputFile
    from amsread.output.writers import Writer


@dataclass(frozen=True, slots=True)
class ListenOptions:
    """listen's own options: the port, how to read it, what to keep of it."""

    port: str | None
    baud: str = "auto"
    parity: str = "auto"
    save_raw: str | None = None
    redact: bool = False
    metrics: str | None = None
    #: Seconds per auto-detected setting (tests); None: the built-in value.
    probe_seconds: float | None = None
    #: The first retry delay (tests); None: the built-in value.
    retry_first: float | None = None
    silence_limit: float = 300.0


def _load_config(ctx: click.Context, _param: click.Parameter, path: str | None) -> DaemonSettings:
    """Eager --config callback: file and environment become click's default_map.

    click then takes a flag over an option's own env var over the default_map
    over the built-in default: flags > environment > file > defaults. What is
    not a command parameter (log level and format) comes back to the command.
    """
    from amsread.app import config

    with usage_errors():
        settings = config.merged(path)
    ctx.default_map = {**(ctx.default_map or {}), **config.default_map(settings)}
    return config.daemon_settings(settings)


def _listen_logging(ctx: click.Context, settings: DaemonSettings) -> None:
    """A daemon logs at info unless told otherwise; -v/-q and --log-format win."""
    from amsread.app.log import LEVEL_NAMES, configure, level_for

    choice = logging_choice(ctx)
    if choice.verbosity is not None:
        level = level_for(choice.verbosity)
    else:
        level = LEVEL_NAMES[settings.log_level]
    configure(level=level, fmt=choice.fmt or settings.log_format)


class RawSink:
    """--save-raw FILE: every byte read appended; a failing disk stops only the capture."""

    def __init__(self, path: str, redact: bool) -> None:
        from amsread.app.log import get_logger
        from amsread.app.outfile import OutputFile

        try:
            # Kept and retried when the disk is full; reopened on SIGHUP and rotation.
            self.file = OutputFile(
                path, lines=False, keep=True, what="--save-raw", log=get_logger()
            )
        except OSError as exc:
            raise UsageError(f"cannot open --save-raw file {path}: {exc.strerror}") from None
        self._redactor = None
        if redact:
            from amsread.diagnose.redact import CaptureRedactor

            self._redactor = CaptureRedactor()

    def save(self, data: bytes) -> None:
        self.file.write_bytes(self._redactor.feed(data) if self._redactor else data)
        self.file.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._redactor is not None:
                self.file.write_bytes(self._redactor.close())
            self.file.close()


def _raw_sink(options: ListenOptions) -> RawSink | None:
    """The --save-raw capture, closed when the command ends; None without --save-raw."""
    if not options.save_raw:
        if options.redact:
            raise UsageError("--redact applies to --save-raw FILE; give both")
        return None
    sink = RawSink(options.save_raw, options.redact)
    click.get_current_context().call_on_close(sink.close)
    return sink


@click.command()
@click.argument("port", required=False, metavar="[PORT]")
@click.option(
    "--config",
    metavar="FILE",
    envvar="AMSREAD_CONFIG",
    is_eager=True,
    callback=_load_config,
    help="Settings file (TOML, see config.example.toml). Flags override it, AMSREAD_*"
    " environment variables come in between. Env: AMSREAD_CONFIG.",
)
@click.option(
    "--baud",
    default="auto",
    show_default=True,
    metavar="RATE",
    help="Baud rate (2400, 9600, 115200, …) or auto.",
)
@click.option(
    "--parity",
    type=ParityChoice(),
    metavar="N|E|O|auto",
    default="auto",
    show_default=True,
    help="Parity: N(one), E(ven), O(dd) or auto. Always 8 data bits, 1 stop bit.",
)
@click.option(
    "--save-raw",
    metavar="FILE",
    help="Append every byte read to FILE, for 'amsread replay' and bug reports.",
)
@click.option(
    "--redact",
    is_flag=True,
    help="With --save-raw: replace meter serial numbers in the saved bytes.",
)
@click.option(
    "--metrics",
    metavar="[HOST:]PORT",
    help="Serve Prometheus metrics on http://HOST:PORT/metrics (HOST: 127.0.0.1 if"
    " only a port is given).",
)
# For tests and impatient people: seconds per auto-detected setting, first retry delay.
@click.option("--probe-seconds", type=click.FloatRange(min=0.01), hidden=True)
@click.option("--retry-first", type=click.FloatRange(min=0.01), hidden=True)
@click.option(
    "--silence-limit",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Reconnect a network port (socket://) that sent nothing for this long.",
)
@security_options
@output_options
@framing_option
@mqtt_options
def listen(
    port: str | None,
    config: DaemonSettings,
    baud: str,
    parity: str,
    save_raw: str | None,
    redact: bool,
    metrics: str | None,
    probe_seconds: float | None,
    retry_first: float | None,
    silence_limit: float,
    security: SecurityOptions,
    output: OutputOptions,
    framing: str,
    broker: BrokerOptions,
) -> None:
    """Read a meter's port for ever: PORT is a device or a pyserial URL.

    PORT: /dev/ttyUSB0, /dev/serial/by-id/…, socket://HOST:PORT (ser2net),
    rfc2217://HOST:PORT, … Without --baud/--parity the common settings are
    tried until a frame checks out. A lost port is reopened; SIGUSR1 logs the
    counters; SIGTERM or Ctrl-C stop after the current line.
    """
    from amsread.app.log import get_logger

    options = ListenOptions(
        port, baud, parity, save_raw, redact, metrics, probe_seconds, retry_first, silence_limit
    )
    _listen_logging(click.get_current_context(), config)
    log = get_logger()
    with usage_errors():
        if config.key_readable_by_others:
            log.warning(
                "the config file holds a key and other users can read it",
                hint="chmod 600 the file, or use key_file or a systemd credential",
            )
        daemon = _start(options, security, output, framing, broker, log)
        try:
            with daemon.listener.signals():
                daemon.run()
        except BrokenPipeError:
            raise
        except OSError as exc:
            # Not the line (that is retried): the output itself cannot be written.
            log.error(f"cannot write the output: {exc.strerror or exc}", hint="check --output")
            sys.exit(1)
    from amsread.app.runner import summarize

    summarize(daemon.setup.pipeline, daemon.setup.reporter)
    sys.exit(_unwritten_status(daemon.outputs, log))


@dataclass(frozen=True, slots=True)
class Daemon:
    """What listen runs: the set-up, the listener on the port, the writer, the files."""

    setup: Setup
    listener: Listener
    #: The set-up's writer, with MQTT and metrics around it as asked.
    writer: Writer
    #: The output files and the --save-raw capture: reopened on SIGHUP, checked at exit.
    outputs: tuple[OutputFile, ...]

    def run(self) -> None:
        """The pipeline fed what the port gives; the listener told what came of it."""
        from amsread.app.runner import run

        setup = self.setup
        run(
            self.listener.chunks(),
            setup.pipeline,
            self.writer,
            setup.reporter,
            observer=self.listener.observe,
        )


def _start(
    options: ListenOptions,
    security: SecurityOptions,
    output: OutputOptions,
    framing: str,
    broker: BrokerOptions,
    log: Logger,
) -> Daemon:
    """The set-up, the listener on the port, and the writer with MQTT and metrics."""
    from amsread.app.listen import PROBE_SECONDS, Backoff, Listener, candidates, parse_baud
    from amsread.app.notify import Notifier
    from amsread.diagnose.silence import SilenceWatch

    if not options.port:
        raise UsageError(
            "no port: give one (amsread listen /dev/ttyUSB0), or set port in the config file"
        )
    check_serial_port(options.port)
    parity = None if options.parity.lower() == "auto" else options.parity.upper()
    tried = candidates(parse_baud(options.baud), parity)
    setup = set_up(security, output, framing, daemon=True)
    writer, mqtt_queue = mqtt_writer(broker, setup.writer, log)
    health = None
    if options.metrics:
        from amsread.app.metrics import start

        writer, health = start(options.metrics, setup.pipeline.counters, writer)
    setup.reporter.silence = SilenceWatch(framing)
    raw = _raw_sink(options)
    outputs = (*setup.outputs, *((raw.file,) if raw is not None else ()))
    listener = Listener(
        options.port,
        tried,
        setup.pipeline,
        setup.reporter.log,
        notifier=Notifier(),
        raw_sink=raw.save if raw is not None else None,
        probe_seconds=options.probe_seconds or PROBE_SECONDS,
        backoff=Backoff(first=options.retry_first) if options.retry_first else None,
        port_events=health.port_event if health is not None else None,
        silence_limit=options.silence_limit,
        outputs=outputs,
    )
    if mqtt_queue is not None:
        listener.extra_counters.append(mqtt_queue.report)
    return Daemon(setup, listener, writer, outputs)


def _unwritten_status(files: Sequence[OutputFile], log: Logger) -> int:
    """1 (and one line) if readings could not be written by the end, else 0."""
    status = 0
    for output in files:
        output.flush()  # a last try
        if output.lines_unwritten:
            where = output.path or output.what
            log.error(f"{output.lines_unwritten} lines could not be written to {where}")
            status = 1
    return status
