"""``--mqtt`` and its options for ``listen`` and ``replay``: click glue only.

``mqtt_options`` hands the command one ``settings.BrokerOptions`` (as ``broker``);
``mqtt_writer`` wraps the command's writer with a publisher when ``--mqtt``
was given. paho-mqtt and the publisher are imported only then.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from amsread.app.options import apply_options

if TYPE_CHECKING:
    from amsread.app.log import Logger
    from amsread.app.settings import BrokerOptions
    from amsread.model import Message
    from amsread.output.mqtt_queue import MqttQueue
    from amsread.output.writers import Writer

F = TypeVar("F", bound=Callable[..., Any])


#: mqtt_options' flags, the last listed first in --help.
MQTT_FLAGS = (
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
)


def mqtt_options(func: F) -> F:
    """--mqtt and the options that go with it: one ``broker``."""

    @functools.wraps(func)
    def with_mqtt(
        *args: Any,
        mqtt: str | None,
        mqtt_password_file: str | None,
        mqtt_ca: str | None,
        mqtt_cert: str | None,
        mqtt_key: str | None,
        mqtt_spool: str | None,
        ha_prefix: str | None,
        ha_discovery: bool | None,
        **kwargs: Any,
    ) -> Any:
        from amsread.app.settings import BrokerOptions

        broker = BrokerOptions(
            mqtt,
            mqtt_password_file,
            mqtt_ca,
            mqtt_cert,
            mqtt_key,
            mqtt_spool,
            ha_prefix or "homeassistant",
            bool(True if ha_discovery is None else ha_discovery),
        )
        return func(*args, broker=broker, **kwargs)

    return apply_options(cast(F, with_mqtt), MQTT_FLAGS)


class _Tee:
    """The command's writer and the MQTT writer side by side."""

    def __init__(self, first: Writer, second: Writer) -> None:
        self._writers = (first, second)

    def write(self, message: Message) -> None:
        for writer in self._writers:
            writer.write(message)

    def flush(self) -> None:
        for writer in self._writers:
            writer.flush()


def mqtt_writer(
    broker: BrokerOptions, writer: Writer, log: Logger, *, replay: bool = False
) -> tuple[Writer, MqttQueue | None]:
    """(the writer to run with, the MQTT queue or None); the publisher closes with the command."""
    if not broker.url:
        return writer, None
    from amsread.output.mqtt import MqttOptions, MqttWriter, parse_broker_url, resolve_password
    from amsread.output.writers import NullWriter

    settings = MqttOptions(
        parse_broker_url(broker.url),
        password=resolve_password(broker.password_file),
        ca=broker.ca,
        cert=broker.cert,
        key=broker.key,
        spool=broker.spool,
        ha_discovery=broker.ha_discovery,
        ha_prefix=broker.ha_prefix,
        wait_when_full=replay,
    )
    publisher = MqttWriter(settings, log)
    click.get_current_context().call_on_close(publisher.close)
    if isinstance(writer, NullWriter):
        return publisher, publisher.queue  # --format none: nothing to tee
    return _Tee(writer, publisher), publisher.queue
