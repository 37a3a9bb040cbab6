"""What ``amsread listen`` runs: the set-up, the listener on the port, MQTT, metrics, --save-raw."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from amsread.app.listen import Listener
from amsread.app.mqtt_options import mqtt_writer
from amsread.app.options import check_serial_port
from amsread.app.ports import PROBE_SECONDS, Backoff, candidates, parse_baud
from amsread.app.wiring import Setup, set_up
from amsread.errors import UsageError

if TYPE_CHECKING:
    from amsread.app.log import Logger
    from amsread.app.outfile import OutputFile
    from amsread.app.settings import BrokerOptions, ListenOptions, OutputOptions, SecurityOptions
    from amsread.output.writers import Writer


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


def start_daemon(
    options: ListenOptions,
    security: SecurityOptions,
    output: OutputOptions,
    framing: str,
    broker: BrokerOptions,
    log: Logger,
) -> Daemon:
    """The set-up, the listener on the port, and the writer with MQTT and metrics."""
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


def unwritten_status(files: Sequence[OutputFile], log: Logger) -> int:
    """1 (and one line) if readings could not be written by the end, else 0."""
    status = 0
    for output in files:
        output.flush()  # a last try
        if output.lines_unwritten:
            where = output.path or output.what
            log.error(f"{output.lines_unwritten} lines could not be written to {where}")
            status = 1
    return status
