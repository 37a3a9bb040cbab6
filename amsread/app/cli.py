"""The ``amsread`` command line.

Heavy modules (cryptography, the pipeline) are imported inside the commands
so that ``amsread --help`` starts fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from amsread import __version__
from amsread.app.mqtt_options import mqtt_options, mqtt_writer
from amsread.app.options import (
    ParityChoice,
    add_global_options,
    check_serial_port,
    key_file_options,
    key_texts,
    logging_choice,
)
from amsread.app.outfile import OutputError
from amsread.errors import UsageError

#: The --framing choices, as framing.FRAMINGS (tests/test_cli.py holds them
#: equal): spelled out so that --help does not import the link layers.
FRAMINGS = ("auto", "hdlc", "mbus", "dsmr", "raw")

if TYPE_CHECKING:
    from amsread.app.runner import Reporter
    from amsread.dlms.replay import InvocationTracker
    from amsread.pipeline import Pipeline

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """Configuration problems: one line on stderr, exit status 2, no traceback.

    Also: stdout closed by the reader (``amsread … | head -3``) ends the
    command quietly with status 0, like cat (click itself would exit 1).
    """
    try:
        yield
    except UsageError as exc:
        click.echo(f"amsread: error: {exc}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        _stdout_gone()
    except OutputError as exc:
        # A full disk or an unwritable stdout: one line, no traceback.
        click.echo(f"amsread: error: {exc}", err=True)
        sys.exit(1)


def _stdout_gone() -> None:
    # Later flushes of the dead pipe (at exit) must not print a traceback either.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


#: Key files, state file and replay policy travel from _key_options to _setup
#: in the click context, so every command taking keys gets them unchanged.
_SECURITY_META = "amsread.dlms.ciphering"
_SECURITY_OPTIONS = ("key_file", "auth_key_file", "state_file", "allow_replay")


def _key_options(func: F) -> F:
    @functools.wraps(func)
    def with_security(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().meta[_SECURITY_META] = {
            name: kwargs.pop(name) for name in _SECURITY_OPTIONS
        }
        return func(*args, **kwargs)

    wrapped: Any = with_security
    # No show_default and no envvar display of values: a key must never appear in --help.
    for option in (
        click.option(
            "--allow-replay",
            is_flag=True,
            help="Accept frames whose invocation counter does not increase (replays,"
            " duplicates); by default they are dropped.",
        ),
        click.option(
            "--state-file",
            metavar="FILE",
            help="Keep the last invocation counter per meter in FILE (JSON), so that a"
            " restart does not accept old frames.",
        ),
        click.option(
            "--auth-key-file",
            metavar="FILE",
            help="Read the authentication key from the first line of FILE (chmod 600).",
        ),
        click.option(
            "--key-file",
            metavar="FILE",
            help="Read the encryption key from the first line of FILE (chmod 600).",
        ),
        click.option(
            "--auth-key",
            "auth_key",
            metavar="HEX",
            envvar="AMSREAD_AUTH_KEY",
            help="Authentication key (GAK), 32 hex digits. Env: AMSREAD_AUTH_KEY.",
        ),
        click.option(
            "--key",
            "key",
            metavar="HEX",
            envvar="AMSREAD_KEY",
            help="Encryption key (GUEK), 32 hex digits. Env: AMSREAD_KEY. Without a key"
            " or key file, the systemd credential amsread-key is used if present.",
        ),
    ):
        wrapped = option(wrapped)
    return cast(F, wrapped)


#: --output and --time travel from _output_options to _setup in the click context.
_OUTPUT_META = "amsread.output.writers"
_OUTPUT_OPTIONS = ("output", "time_source")


def _output_options(func: F) -> F:
    @functools.wraps(func)
    def with_output(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().meta[_OUTPUT_META] = {
            name: kwargs.pop(name) for name in _OUTPUT_OPTIONS
        }
        return func(*args, **kwargs)

    wrapped: Any = with_output
    for option in (
        click.option(
            "--time",
            "time_source",
            type=click.Choice(["meter", "host"]),
            default="meter",
            show_default=True,
            help="Influx timestamps: the meter's clock when it sends a UTC offset,"
            " else the receive time (meter); or always the receive time (host).",
        ),
        click.option(
            "--output",
            "output",
            metavar="FILE",
            help="Append the output to FILE instead of writing it to stdout.",
        ),
        click.option(
            "--profile",
            "profiles",
            multiple=True,
            type=click.Path(dir_okay=False),
            help="Extra list profile (TOML); may be repeated.",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["jsonl", "csv", "influx", "none"]),
            default="jsonl",
            show_default=True,
            help="Output: JSON lines, CSV (one row per reading), InfluxDB line protocol,"
            " or none (with --mqtt).",
        ),
    ):
        wrapped = option(wrapped)
    return cast(F, wrapped)


#: --framing travels from _framing_option to _setup in the click context.
_FRAMING_META = "amsread.link.framing"


def _framing_option(func: F) -> F:
    @functools.wraps(func)
    def with_framing(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().meta[_FRAMING_META] = kwargs.pop("framing")
        return func(*args, **kwargs)

    option = click.option(
        "--framing",
        type=click.Choice(FRAMINGS),
        default="auto",
        show_default=True,
        help="Link layer: hdlc, mbus (wired M-Bus, e.g. Austrian meters), raw (hex text,"
        " one APDU per line, as some gateways send), or auto: HDLC or M-Bus, whichever"
        " gives valid frames first (decode: by the first byte).",
    )
    return cast(F, option(with_framing))


def _framing() -> str:
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get(_FRAMING_META, "hdlc")) if ctx is not None else "hdlc"


#: Set by listen: outputs keep what they cannot write and retry (OutputFile keep).
_DAEMON_META = "amsread.app.listen"
#: The OutputFiles opened for a command, for listen to reopen on SIGHUP.
_FILES_META = "amsread.app.outfile"


def _writer(fmt: str) -> Any:
    """The writer for --format, on stdout or appending to --output FILE."""
    from amsread.app.log import get_logger
    from amsread.app.outfile import OutputFile
    from amsread.output.writers import make_writer, open_output

    ctx = click.get_current_context(silent=True)
    options = ctx.meta.get(_OUTPUT_META, {}) if ctx is not None else {}
    keep = bool(ctx is not None and ctx.meta.get(_DAEMON_META))
    stream: Any = sys.stdout
    if options.get("output") and ctx is not None:
        open_output(options["output"]).close()  # the clear errors for a bad path
        stream = OutputFile(options["output"], keep=keep, log=get_logger())
        ctx.meta.setdefault(_FILES_META, []).append(stream)
        ctx.call_on_close(stream.close)
    elif stream is None:
        raise UsageError("stdout is closed: nowhere to write the readings; use --output FILE")
    elif (fd := _fileno(stream)) is not None:
        # Whole lines on stdout too; sys.stdout's own buffer is never used.
        stream = OutputFile(None, fd=fd, keep=keep, what="stdout", log=get_logger())
        if ctx is not None:
            ctx.meta.setdefault(_FILES_META, []).append(stream)
            ctx.call_on_close(stream.close)
    return make_writer(
        fmt,
        stream,
        time_source=options.get("time_source") or "meter",
        on_raw_dropped=_warn,
    )


def _warn(text: str) -> None:
    from amsread.app.log import get_logger

    get_logger().warning(text)


def _fileno(stream: Any) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a test's buffer
        return None
    return fd if isinstance(fd, int) else None


def _security_options() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(_SECURITY_META, {})) if ctx is not None else {}


def _setup(
    key: str | None,
    auth_key: str | None,
    fmt: str,
    profiles: tuple[str, ...],
    *,
    security: dict[str, Any] | None = None,
    framing: str | None = None,
) -> tuple[Pipeline, Any, Reporter]:
    """Pipeline, writer and reporter for a command.

    ``security`` (key_file, auth_key_file, state_file, allow_replay) defaults to
    what _key_options put in the click context; pass it to use merged config values.
    ``framing`` defaults to --framing (_framing_option), else hdlc.
    """
    from amsread.app.log import DEBUG, get_logger
    from amsread.app.log import enabled as log_enabled
    from amsread.app.runner import Reporter
    from amsread.dlms.keys import resolve_keys
    from amsread.pipeline import Pipeline
    from amsread.readings.profiles import ProfileSet, load_profile

    if security is None:
        security = _security_options()
    keys = resolve_keys(key, auth_key, security.get("key_file"), security.get("auth_key_file"))
    profile_set = ProfileSet([load_profile(p) for p in profiles])
    tracker, after_message = _invocation_state(security.get("state_file"))
    pipeline = Pipeline(
        keys,
        profiles=profile_set,
        invocations=tracker,
        allow_replay=bool(security.get("allow_replay")),
        framing=framing or _framing(),
    )
    # amsread.app.log's logger: a line below the level (the per-message debug
    # line) costs one comparison, and structlog is imported only for one above.
    reporter = Reporter(get_logger().bind(), after_message=after_message)
    if log_enabled(DEBUG):
        # -vv: every valid frame's payload as hex, as the README promises.
        def show_frame(payload: bytes) -> None:
            reporter.log.debug("frame", framing=pipeline.framing, frame=payload.hex(" "))

        pipeline.on_frame = show_frame
    return pipeline, _writer(fmt), reporter


def _invocation_state(
    path: str | None,
) -> tuple[InvocationTracker | None, Callable[[], object] | None]:
    """The tracker from --state-file, a saver to call per message, and a save at exit."""
    if not path:
        return None, None
    from amsread.app.log import get_logger
    from amsread.app.statefile import load_or_set_aside
    from amsread.dlms.replay import StateFile

    store = StateFile(path, load_or_set_aside(path, get_logger()))
    warned: list[str] = []

    def save_now_and_then() -> None:
        # A full disk must not stop the reader: warn once, keep retrying.
        if not store.maybe_save() and store.error and not warned:
            warned.append(store.error)
            get_logger().warning(store.error, hint="check the --state-file path and free space")

    def save_at_exit() -> None:
        try:
            store.save()
        except UsageError as exc:
            click.echo(f"amsread: error: {exc}", err=True)

    click.get_current_context().call_on_close(save_at_exit)
    return store.tracker, save_now_and_then


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


@cli.command()
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


# -- diagnostics: explain, check-key -------------------------------------------

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


@cli.command()
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
    from amsread.diagnose.explain import explain_apdus, explain_stream, render_json, render_text
    from amsread.dlms.keys import resolve_keys
    from amsread.readings.profiles import ProfileSet, load_profile

    with _usage_errors():
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


@cli.command("check-key")
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
    from amsread.diagnose.checkkey import check_keys, collect_frames, render_report
    from amsread.dlms.keys import CREDENTIAL_AUTH_KEY, CREDENTIAL_KEY

    with _usage_errors():
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


# -v, -q and --log-format after the command too (amsread replay x.bin -v).
add_global_options(cli)


def main() -> None:
    """Console-script entry point: a closed stdout ends the program quietly."""
    try:
        cli()
    except BrokenPipeError:
        # The reader went away (``amsread … | head``): exit quietly, like cat.
        _stdout_gone()


@cli.group()
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
    from amsread.diagnose.draft import draft_profile
    from amsread.dlms.keys import Keys, parse_key
    from amsread.link.framing import framing_for_hex
    from amsread.model import Message
    from amsread.pipeline import Pipeline

    with _usage_errors():
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
