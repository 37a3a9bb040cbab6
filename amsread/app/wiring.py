"""What the commands share: their option groups and the set-up of pipeline, writer and reporter.

Heavy modules (cryptography, the pipeline) are imported inside the functions
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

from amsread.app.outfile import OutputError
from amsread.errors import UsageError

#: The --framing choices, as framing.FRAMINGS (tests/app/test_cli.py holds them
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
