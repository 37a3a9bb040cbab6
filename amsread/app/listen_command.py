"""``amsread listen``: the daemon's command, its config file and its raw capture."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from amsread.app.mqtt_options import mqtt_options, mqtt_writer
from amsread.app.options import (
    ParityChoice,
    check_serial_port,
    logging_choice,
)
from amsread.app.wiring import (
    _DAEMON_META,
    _FILES_META,
    _framing,
    _framing_option,
    _key_options,
    _output_options,
    _setup,
    _usage_errors,
)
from amsread.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


_CONFIG_META = "amsread.app.config"


def _load_config(ctx: click.Context, _param: click.Parameter, path: str | None) -> str | None:
    """Eager --config callback: file and environment become click's default_map.

    click then takes a flag over an option's own env var over the default_map
    over the built-in default: flags > environment > file > defaults.
    """
    from amsread.app import config

    with _usage_errors():
        settings = config.merged(path)
    ctx.default_map = {**(ctx.default_map or {}), **config.default_map(settings)}
    ctx.meta[_CONFIG_META] = settings
    return path


def _listen_logging(ctx: click.Context, settings: dict[str, Any]) -> None:
    """A daemon logs at info unless told otherwise; -v/-q and --log-format win."""
    from amsread.app.log import LEVEL_NAMES, configure, level_for

    verbosity, fmt = logging_choice(ctx)
    if verbosity is not None:
        level = level_for(verbosity)
    else:
        level = LEVEL_NAMES[settings.get("log_level", "info")]
    configure(level=level, fmt=fmt or settings.get("log_format", "console"))


def _raw_sink(path: str | None, redact: bool) -> Callable[[bytes], None] | None:
    """--save-raw FILE: append every byte read; a failing disk stops only the capture."""
    if not path:
        if redact:
            raise UsageError("--redact applies to --save-raw FILE; give both")
        return None
    from amsread.app.log import get_logger
    from amsread.app.outfile import OutputFile

    try:
        # Kept and retried when the disk is full; reopened on SIGHUP and rotation.
        handle = OutputFile(path, lines=False, keep=True, what="--save-raw", log=get_logger())
    except OSError as exc:
        raise UsageError(f"cannot open --save-raw file {path}: {exc.strerror}") from None
    ctx = click.get_current_context()
    ctx.meta.setdefault(_FILES_META, []).append(handle)
    redactor = None
    if redact:
        from amsread.diagnose.redact import CaptureRedactor

        redactor = CaptureRedactor()

    def save(data: bytes) -> None:
        handle.write_bytes(redactor.feed(data) if redactor else data)
        handle.flush()

    def close() -> None:
        with contextlib.suppress(OSError):
            if redactor is not None:
                handle.write_bytes(redactor.close())
            handle.close()

    ctx.call_on_close(close)
    return save


@click.command()
@click.argument("port", required=False, metavar="[PORT]")
@click.option(
    "--config",
    metavar="FILE",
    envvar="AMSREAD_CONFIG",
    is_eager=True,
    expose_value=False,
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
@_key_options
@_output_options
@_framing_option
@mqtt_options
def listen(
    port: str | None,
    baud: str,
    parity: str,
    save_raw: str | None,
    redact: bool,
    metrics: str | None,
    probe_seconds: float | None,
    retry_first: float | None,
    silence_limit: float,
    key: str | None,
    auth_key: str | None,
    fmt: str,
    profiles: tuple[str, ...],
) -> None:
    """Read a meter's port for ever: PORT is a device or a pyserial URL.

    PORT: /dev/ttyUSB0, /dev/serial/by-id/…, socket://HOST:PORT (ser2net),
    rfc2217://HOST:PORT, … Without --baud/--parity the common settings are
    tried until a frame checks out. A lost port is reopened; SIGUSR1 logs the
    counters; SIGTERM or Ctrl-C stop after the current line.
    """
    from amsread.app.config import READABLE_SECRET
    from amsread.app.listen import PROBE_SECONDS, Backoff, Listener, candidates, parse_baud
    from amsread.app.log import get_logger
    from amsread.app.notify import Notifier
    from amsread.app.runner import run, summarize
    from amsread.diagnose.silence import SilenceWatch

    ctx = click.get_current_context()
    settings = ctx.meta.get(_CONFIG_META, {})
    _listen_logging(ctx, settings)
    log = get_logger()
    with _usage_errors():
        if settings.get(READABLE_SECRET):
            log.warning(
                "the config file holds a key and other users can read it",
                hint="chmod 600 the file, or use key_file or a systemd credential",
            )
        if not port:
            raise UsageError(
                "no port: give one (amsread listen /dev/ttyUSB0), or set port in the config file"
            )
        check_serial_port(port)
        tried = candidates(parse_baud(baud), None if parity.lower() == "auto" else parity.upper())
        ctx.meta[_DAEMON_META] = True
        pipeline, writer, reporter = _setup(key, auth_key, fmt, profiles)
        writer, mqtt_queue = mqtt_writer(writer, log)
        health = None
        if metrics:
            from amsread.app.metrics import start

            writer, health = start(metrics, pipeline.counters, writer)
        reporter.silence = SilenceWatch(_framing())
        listener = Listener(
            port,
            tried,
            pipeline,
            reporter,
            notifier=Notifier(),
            raw_sink=_raw_sink(save_raw, redact),
            probe_seconds=probe_seconds or PROBE_SECONDS,
            backoff=Backoff(first=retry_first) if retry_first else None,
            port_events=health.port_event if health is not None else None,
            silence_limit=silence_limit,
            outputs=ctx.meta.get(_FILES_META, ()),
        )
        if mqtt_queue is not None:
            listener.extra_counters.append(mqtt_queue.report)
        try:
            with listener.signals():
                run(listener.chunks(), pipeline, writer, reporter)
        except BrokenPipeError:
            raise
        except OSError as exc:
            # Not the line (that is retried): the output itself cannot be written.
            log.error(f"cannot write the output: {exc.strerror or exc}", hint="check --output")
            sys.exit(1)
    summarize(pipeline, reporter)
    sys.exit(_unwritten_status(ctx.meta.get(_FILES_META, ()), log))


def _unwritten_status(files: Any, log: Any) -> int:
    """1 (and one line) if readings could not be written by the end, else 0."""
    status = 0
    for output in files:
        output.flush()  # a last try
        if output.lines_unwritten:
            where = output.path or output.what
            log.error(f"{output.lines_unwritten} lines could not be written to {where}")
            status = 1
    return status
