"""Command-line plumbing shared by the commands, kept out of ``cli``.

* ``-v``, ``-q`` and ``--log-format`` are the group's options, and are also
  accepted after the command (``amsread replay x.bin -v``): the counts add up,
  the last ``--log-format`` wins.
* ``explain`` and ``check-key`` find keys where ``listen`` does: the flag,
  ``AMSREAD_KEY``, a key file, the systemd credential.
* ``listen`` refuses a capture file for a port, and says so.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from amsread.errors import UsageError

#: The sub-command's own -v/-q/--log-format values, in its context's meta.
_GLOBAL_META = "amsread.app.options.global"
GLOBAL_NAMES = ("verbose", "quiet", "log_format")


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Store the value given after the command; logging is set up again with it."""
    given = ctx.get_parameter_source(param.name or "") not in (ParameterSource.DEFAULT, None)
    ctx.meta.setdefault(_GLOBAL_META, {})
    if given:
        ctx.meta[_GLOBAL_META][param.name] = value
        verbosity, fmt = logging_choice(ctx)
        from amsread.app.log import configure

        configure(verbosity or 0, fmt or "console")
    return value


def _global_params() -> list[click.Parameter]:
    common: dict[str, Any] = {"expose_value": False, "callback": _remember}
    return [
        click.Option(
            ["-v", "--verbose"], count=True, help="More log output (-vv: debug).", **common
        ),
        click.Option(["-q", "--quiet"], count=True, help="Less log output.", **common),
        click.Option(
            ["--log-format"],
            type=click.Choice(["console", "json"]),
            help="Log format on stderr (console or json).",
            **common,
        ),
    ]


def add_global_options(group: click.Group) -> None:
    """Let every command of ``group`` take -v, -q and --log-format after its name too."""
    for command in group.commands.values():
        known = {opt for param in command.params for opt in getattr(param, "opts", ())}
        command.params.extend(p for p in _global_params() if not known.intersection(p.opts))


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def logging_choice(ctx: click.Context) -> tuple[int | None, str | None]:
    """(-v minus -q, --log-format) given before or after the command; None if not given."""
    group = ctx.parent
    own = ctx.meta.get(_GLOBAL_META, {})
    before = group.params if group is not None else {}
    verbosity = own.get("verbose", 0) + before.get("verbose", 0)
    verbosity -= own.get("quiet", 0) + before.get("quiet", 0)
    counted = "verbose" in own or "quiet" in own
    if group is not None:
        counted = counted or _given(group, "verbose") or _given(group, "quiet")
    fmt = own.get("log_format")
    if fmt is None and group is not None and _given(group, "log_format"):
        fmt = group.params["log_format"]
    return (verbosity if counted else None), fmt


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


def key_file_options(func: Callable[..., Any]) -> Callable[..., Any]:
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
