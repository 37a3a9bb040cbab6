"""``--mqtt`` and its options for ``listen`` and ``replay``: click glue only.

The options travel in the click context (as the output options do in cli.py)
to ``mqtt_writer``, which wraps the command's writer. paho-mqtt and the
publisher are imported only when ``--mqtt`` is given.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

F = TypeVar("F", bound=Callable[..., Any])

_MQTT_META = "amsread.output.mqtt"
_MQTT_OPTIONS = (
    "mqtt",
    "mqtt_password_file",
    "mqtt_ca",
    "mqtt_cert",
    "mqtt_key",
    "mqtt_spool",
    "ha_prefix",
    "ha_discovery",
)


def mqtt_options(func: F) -> F:
    @functools.wraps(func)
    def with_mqtt(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().meta[_MQTT_META] = {
            name: kwargs.pop(name) for name in _MQTT_OPTIONS
        }
        return func(*args, **kwargs)

    wrapped: Any = with_mqtt
    for option in (
        click.option(
            "--ha-discovery/--no-ha-discovery",
            "ha_discovery",
            default=True,
            show_default=True,
            help="With --mqtt: announce the meter to Home Assistant (MQTT discovery).",
        ),
        click.option(
            "--ha-prefix",
            metavar="PREFIX",
            default="homeassistant",
            show_default=True,
            help="Home Assistant's discovery prefix.",
        ),
        click.option(
            "--mqtt-spool",
            metavar="DIR",
            help="Keep the MQTT queue in DIR while the broker is away, across restarts.",
        ),
        click.option("--mqtt-key", metavar="FILE", help="TLS client key (PEM)."),
        click.option("--mqtt-cert", metavar="FILE", help="TLS client certificate (PEM)."),
        click.option("--mqtt-ca", metavar="FILE", help="CA certificate(s) to trust (PEM)."),
        click.option(
            "--mqtt-password-file",
            metavar="FILE",
            help="Broker password on line 1 of FILE. Else AMSREAD_MQTT_PASSWORD, else the"
            " systemd credential amsread-mqtt-password.",
        ),
        click.option(
            "--mqtt",
            "mqtt",
            metavar="URL",
            envvar="AMSREAD_MQTT",
            help="Also publish to an MQTT broker: mqtt://[user@]host[:port][/prefix]"
            " (mqtts:// for TLS). Env: AMSREAD_MQTT.",
        ),
    ):
        wrapped = option(wrapped)
    return cast(F, wrapped)


class _Tee:
    """The command's writer and the MQTT writer side by side."""

    def __init__(self, first: Any, second: Any) -> None:
        self._writers = (first, second)

    def write(self, message: Any) -> None:
        for writer in self._writers:
            writer.write(message)

    def flush(self) -> None:
        for writer in self._writers:
            writer.flush()


def mqtt_writer(writer: Any, log: Any, *, replay: bool = False) -> tuple[Any, Any]:
    """(the writer to run with, the MQTT queue or None) for the --mqtt options given."""
    ctx = click.get_current_context()
    options = ctx.meta.get(_MQTT_META, {})
    if not options.get("mqtt"):
        return writer, None
    from amsread.output.mqtt import MqttOptions, MqttWriter, parse_broker_url, resolve_password

    url = parse_broker_url(options["mqtt"])
    settings = MqttOptions(
        url,
        password=resolve_password(options.get("mqtt_password_file")),
        ca=options.get("mqtt_ca"),
        cert=options.get("mqtt_cert"),
        key=options.get("mqtt_key"),
        spool=options.get("mqtt_spool"),
        ha_discovery=bool(options.get("ha_discovery", True)),
        ha_prefix=options.get("ha_prefix") or "homeassistant",
        wait_when_full=replay,
    )
    publisher = MqttWriter(settings, log)
    ctx.call_on_close(publisher.close)
    return (publisher if writer is None else _Tee(writer, publisher)), publisher.queue
