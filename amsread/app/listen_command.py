"""``amsread listen``: the daemon's command line and its config file.

What the command sets up (port, listener, MQTT, metrics, raw capture) is in
``daemon``, imported only when it runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from amsread.app.mqtt_options import mqtt_options
from amsread.app.options import (
    ParityChoice,
    framing_option,
    logging_choice,
    output_options,
    security_options,
)

if TYPE_CHECKING:
    from amsread.app.config import DaemonSettings
    from amsread.app.settings import BrokerOptions, OutputOptions, SecurityOptions


def _load_config(ctx: click.Context, _param: click.Parameter, path: str | None) -> DaemonSettings:
    """Eager --config callback: file and environment become click's default_map.

    click then takes a flag over an option's own env var over the default_map
    over the built-in default: flags > environment > file > defaults. What is
    not a command parameter (log level and format) comes back to the command.
    """
    from amsread.app import config
    from amsread.app.wiring import usage_errors

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
    from amsread.app.daemon import start_daemon, unwritten_status
    from amsread.app.log import get_logger
    from amsread.app.runner import summarize
    from amsread.app.settings import ListenOptions
    from amsread.app.wiring import usage_errors

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
        daemon = start_daemon(options, security, output, framing, broker, log)
        try:
            with daemon.listener.signals():
                daemon.run()
        except BrokenPipeError:
            raise
        except OSError as exc:
            # Not the line (that is retried): the output itself cannot be written.
            log.error(f"cannot write the output: {exc.strerror or exc}", hint="check --output")
            sys.exit(1)
    summarize(daemon.setup.pipeline, daemon.setup.reporter)
    sys.exit(unwritten_status(daemon.outputs, log))
