"""The commands' option groups; each hands its command one typed value.

click resolves every value (a flag, else the option's environment variable,
else ``listen``'s config file through click's ``default_map``, else the
built-in default); the decorators here then hand the command one frozen
object per group of options (``amsread.app.settings``) instead of loose
keyword arguments:

* ``SecurityOptions`` (``security_options``): keys, key files, the state
  file and the replay policy;
* ``OutputOptions`` (``output_options``): format, output file, timestamps,
  extra profiles;
* ``LogChoice`` (``logging_choice``): ``-v``, ``-q`` and ``--log-format``,
  the group's options, also accepted after the command (``amsread replay
  x.bin -v``): the counts add up, the last ``--log-format`` wins.

Also here: ``explain`` and ``check-key`` find keys where ``listen`` does (the
flag, ``AMSREAD_KEY``, a key file, the systemd credential), and ``listen``
refuses a capture file for a port, and says so.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from click.core import ParameterSource

from amsread.errors import UsageError

if TYPE_CHECKING:
    from amsread.app.settings import LogChoice

F = TypeVar("F", bound=Callable[..., Any])

#: The --framing choices, as framing.FRAMINGS (tests/app/test_cli.py holds them
#: equal): spelled out so that --help does not import the link layers.
FRAMINGS = ("auto", "hdlc", "mbus", "dsmr", "raw")


def apply_options(func: F, options: tuple[Callable[[F], F], ...]) -> F:
    """``func`` decorated with each of ``options`` in turn (the first ends up innermost)."""
    wrapped = func
    for option in options:
        wrapped = option(wrapped)
    return wrapped


#: security_options' flags, the last listed first in --help. No show_default and
#: no envvar display of values: a key must never appear in --help.
SECURITY_FLAGS = (
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
)


def security_options(func: F) -> F:
    """--key, --auth-key, their files, --state-file, --allow-replay: one ``security``."""

    @functools.wraps(func)
    def with_security(
        *args: Any,
        key: str | None,
        auth_key: str | None,
        key_file: str | None,
        auth_key_file: str | None,
        state_file: str | None,
        allow_replay: bool,
        **kwargs: Any,
    ) -> Any:
        from amsread.app.settings import SecurityOptions

        security = SecurityOptions(
            key, auth_key, key_file, auth_key_file, state_file, bool(allow_replay)
        )
        return func(*args, security=security, **kwargs)

    return apply_options(cast(F, with_security), SECURITY_FLAGS)


#: output_options' flags, the last listed first in --help.
OUTPUT_FLAGS = (
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
)


def output_options(func: F) -> F:
    """--format, --profile, --output, --time: one ``output``."""

    @functools.wraps(func)
    def with_output(
        *args: Any,
        fmt: str,
        profiles: tuple[str, ...],
        output: str | None,
        time_source: str | None,
        **kwargs: Any,
    ) -> Any:
        from amsread.app.settings import OutputOptions

        chosen = OutputOptions(fmt, output, time_source or "meter", tuple(profiles))
        return func(*args, output=chosen, **kwargs)

    return apply_options(cast(F, with_output), OUTPUT_FLAGS)


def framing_option(func: F) -> F:
    """--framing, handed to the command as ``framing``."""
    option = click.option(
        "--framing",
        type=click.Choice(FRAMINGS),
        default="auto",
        show_default=True,
        help="Link layer: hdlc, mbus (wired M-Bus, e.g. Austrian meters), raw (hex text,"
        " one APDU per line, as some gateways send), or auto: HDLC or M-Bus, whichever"
        " gives valid frames first (decode: by the first byte).",
    )
    return option(func)


# -- -v, -q and --log-format after the command ------------------------------------------

GLOBAL_NAMES = ("verbose", "quiet", "log_format")


def _global_params() -> list[click.Parameter]:
    return [
        click.Option(["-v", "--verbose"], count=True, help="More log output (-vv: debug)."),
        click.Option(["-q", "--quiet"], count=True, help="Less log output."),
        click.Option(
            ["--log-format"],
            type=click.Choice(["console", "json"]),
            help="Log format on stderr (console or json).",
        ),
    ]


def add_global_options(command: click.Command) -> None:
    """Let ``command`` take -v, -q and --log-format after its name too."""
    known = {opt for param in command.params for opt in getattr(param, "opts", ())}
    added = [p for p in _global_params() if not known.intersection(p.opts)]
    command.params.extend(added)
    if command.callback is not None:
        names = tuple(p.name for p in added if p.name)
        command.callback = _logging_first(command.callback, names)


def _logging_first(callback: F, names: tuple[str, ...]) -> F:
    """The command without the global options' values; logging set up again if given."""

    @functools.wraps(callback)
    def configured(*args: Any, **kwargs: Any) -> Any:
        for name in names:
            kwargs.pop(name, None)
        ctx = click.get_current_context()
        if any(_given(ctx, name) for name in names):
            from amsread.app.log import configure

            choice = logging_choice(ctx)
            configure(choice.verbosity or 0, choice.fmt or "console")
        return callback(*args, **kwargs)

    return cast(F, configured)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def logging_choice(ctx: click.Context) -> LogChoice:
    """-v/-q and --log-format given before or after the command (``ctx``: the command's)."""
    from amsread.app.settings import LogChoice

    group = ctx.parent
    before = group.params if group is not None else {}
    own = ctx.params
    verbosity = own.get("verbose", 0) + before.get("verbose", 0)
    verbosity -= own.get("quiet", 0) + before.get("quiet", 0)
    counted = _given(ctx, "verbose") or _given(ctx, "quiet")
    if group is not None:
        counted = counted or _given(group, "verbose") or _given(group, "quiet")
    fmt = own.get("log_format") if _given(ctx, "log_format") else None
    if fmt is None and group is not None and _given(group, "log_format"):
        fmt = group.params["log_format"]
    return LogChoice(verbosity if counted else None, fmt)


class ParityChoice(click.Choice):  # type: ignore[type-arg]
    """N, E, O or auto in any case; errors spell the choices as the help does."""

    def __init__(self) -> None:
        super().__init__(["auto", "N", "E", "O"])

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        if text.lower() == "auto":
            return "auto"
        if text.upper() in ("N", "E", "O"):
            return text.upper()
        self.fail(f"{value!r} is not one of N, E, O or auto (none, even, odd)", param, ctx)


# -- keys for explain and check-key -------------------------------------------------


def key_texts(
    given: tuple[str, ...], file: str | None, env_var: str, credential: str, what: str
) -> list[str]:
    """Key candidates as text: the flags, else $env_var, else the file, else the credential."""
    from amsread.dlms.keys import read_key_file, warn_if_readable_by_others

    if given:
        return list(given)
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return [from_env]
    if file:
        warn_if_readable_by_others(file)
        return [read_key_file(file, what)]
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / credential).is_file():
        return [read_key_file(str(Path(credentials) / credential), what)]
    return []


def key_file_options(func: F) -> F:
    """--key-file and --auth-key-file, as listen has them."""
    func = click.option(
        "--auth-key-file",
        metavar="FILE",
        help="Read the authentication key from the first line of FILE.",
    )(func)
    return click.option(
        "--key-file",
        metavar="FILE",
        help="Read the encryption key from the first line of FILE. Without a key or key"
        " file, AMSREAD_KEY and then the systemd credential amsread-key are used.",
    )(func)


# -- listen's port ------------------------------------------------------------------


def check_serial_port(port: str) -> None:
    """A regular file is a capture, not a port: say what to run instead (exit 2)."""
    if "://" in port:
        return
    try:
        mode = os.stat(port).st_mode
    except OSError:
        return  # missing: listen waits for the device and says so
    if stat.S_ISREG(mode):
        raise UsageError(
            f"{port} is a regular file, not a serial device; to decode a capture,"
            f" use: amsread replay {port}"
        )


def resolve_port(port: str, base: str) -> str:
    """A relative device path in a config file is relative to the file, like other paths."""
    if "://" in port or os.path.isabs(port):
        return port
    return os.path.join(base, port)
