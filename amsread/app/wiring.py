"""What the commands share: the set-up of pipeline, writer and reporter from typed options.

Heavy modules (cryptography, the pipeline) are imported inside the functions
so that ``amsread --help`` starts fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, cast

import click

from amsread.app.options import FRAMINGS
from amsread.app.outfile import OutputError
from amsread.errors import UsageError

if TYPE_CHECKING:
    from amsread.app.outfile import OutputFile
    from amsread.app.runner import Reporter
    from amsread.app.settings import OutputOptions, SecurityOptions
    from amsread.dlms.replay import InvocationTracker
    from amsread.output.writers import Writer
    from amsread.pipeline import Pipeline

__all__ = ["FRAMINGS", "Setup", "set_up", "stdout_gone", "usage_errors"]


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
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
        stdout_gone()
    except OutputError as exc:
        # A full disk or an unwritable stdout: one line, no traceback.
        click.echo(f"amsread: error: {exc}", err=True)
        sys.exit(1)


def stdout_gone() -> None:
    """End quietly (status 0) when the reader of stdout went away."""
    # Later flushes of the dead pipe (at exit) must not print a traceback either.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


@dataclass(frozen=True, slots=True)
class Setup:
    """What a decoding command runs: ``runner.run(chunks, pipeline, writer, reporter)``."""

    pipeline: Pipeline
    writer: Writer
    reporter: Reporter
    #: The files the output goes to (stdout too), for listen to reopen on SIGHUP.
    outputs: tuple[OutputFile, ...]


def set_up(
    security: SecurityOptions,
    output: OutputOptions,
    framing: str,
    *,
    daemon: bool = False,
) -> Setup:
    """Pipeline, writer and reporter for a command; files close when the command ends.

    ``daemon``: outputs keep what they cannot write and retry (listen).
    """
    from amsread.app.log import DEBUG, get_logger
    from amsread.app.log import enabled as log_enabled
    from amsread.app.runner import Reporter
    from amsread.dlms.keys import resolve_keys
    from amsread.pipeline import Pipeline
    from amsread.readings.profiles import ProfileSet, load_profile

    keys = resolve_keys(security.key, security.auth_key, security.key_file, security.auth_key_file)
    profile_set = ProfileSet([load_profile(p) for p in output.profiles])
    tracker, after_message = _invocation_state(security.state_file)
    pipeline = Pipeline(
        keys,
        profiles=profile_set,
        invocations=tracker,
        allow_replay=security.allow_replay,
        framing=framing,
    )
    # amsread.app.log's logger: a line below the level (the per-message debug
    # line) costs one comparison, and structlog is imported only for one above.
    reporter = Reporter(get_logger().bind(), after_message=after_message)
    if log_enabled(DEBUG):
        # -vv: every valid frame's payload as hex, as the README promises.
        def show_frame(payload: bytes) -> None:
            reporter.log.debug("frame", framing=pipeline.framing, frame=payload.hex(" "))

        pipeline.on_frame = show_frame
    writer, outputs = _writer(output, keep=daemon)
    return Setup(pipeline, writer, reporter, outputs)


def _writer(options: OutputOptions, *, keep: bool) -> tuple[Writer, tuple[OutputFile, ...]]:
    """The writer for --format, on stdout or appending to --output FILE, and its file."""
    from amsread.app.log import get_logger
    from amsread.app.outfile import OutputFile
    from amsread.output.writers import make_writer, open_output

    stream: TextIO | OutputFile
    if options.path:
        open_output(options.path).close()  # the clear errors for a bad path
        stream = OutputFile(options.path, keep=keep, log=get_logger())
    elif sys.stdout is None:
        raise UsageError("stdout is closed: nowhere to write the readings; use --output FILE")
    elif (fd := _fileno(sys.stdout)) is not None:
        # Whole lines on stdout too; sys.stdout's own buffer is never used.
        stream = OutputFile(None, fd=fd, keep=keep, what="stdout", log=get_logger())
    else:
        stream = sys.stdout  # a test's buffer
    files: tuple[OutputFile, ...] = ()
    if isinstance(stream, OutputFile):
        files = (stream,)
        click.get_current_context().call_on_close(stream.close)
    writer = make_writer(
        options.fmt,
        # An OutputFile writes text as a stream does: all that writers use of one.
        cast("TextIO", stream),
        time_source=options.time_source,
        on_raw_dropped=_warn,
    )
    return writer, files


def _warn(text: str) -> None:
    from amsread.app.log import get_logger

    get_logger().warning(text)


def _fileno(stream: TextIO) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a test's buffer
        return None
    return fd if isinstance(fd, int) else None


def _invocation_state(
    path: str | None,
) -> tuple[InvocationTracker | None, Callable[[], object] | None]:
    """The tracker from --state-file, a saver to call per message, and a save at exit."""
    if not path:
        return None, None
    from amsread.app.log import get_logger
    from amsread.app.statefile import StateFile, load_or_set_aside

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
