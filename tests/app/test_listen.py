"""``amsread listen`` on pseudo-terminals, TCP sockets and a fake UART.

The daemon runs as a subprocess, as systemd or a shell would run it; the tests
wait on its systemd notifications (READY=1, STATUS=) and its output lines,
always with timeouts, and always kill it at the end.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import seed_vectors as sv
import serial
import structlog
from structlog.testing import capture_logs

from amsread.app.listen import Listener
from amsread.app.log import configure
from amsread.app.ports import (
    AUTO_SETTINGS,
    BACKOFF_MAX,
    Backoff,
    SerialSettings,
    candidates,
    describe_problem,
    parse_baud,
    serial_settings_apply,
)
from amsread.dlms.keys import Keys, parse_key
from amsread.model import Message
from amsread.pipeline import Pipeline

TESTS = Path(__file__).parent.parent
FRAME = sv.RADIUS_FRAME
# The same real frame is sent again and again: accept the repeated invocation counter.
KEYS = ("--key", sv.RADIUS_KEY, "--auth-key", sv.RADIUS_AUTH_KEY, "--allow-replay")
TIMEOUT = 10.0
_names = itertools.count()


def expected_energy(line: dict[str, Any]) -> None:
    readings = {r["obis"]: r["value"] for r in line["readings"]}
    assert readings["1.1.1.8.0.255"] == 866636
    assert readings["1.1.21.8.0.255"] == 288932
    assert line["system_title"] == sv.RADIUS_SYSTEM_TITLE


class Daemon:
    """``amsread listen …`` in a subprocess, with its notifications, stdout and stderr."""

    def __init__(self, *args: str, launcher: tuple[str, ...] = ("-m", "amsread")) -> None:
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"amsread-test-{os.getpid()}-{next(_names)}"
        self.notify.bind("\0" + name)  # abstract namespace: no path length limit
        env = {
            **os.environ,
            "NOTIFY_SOCKET": "@" + name,
            "PYTHONPATH": str(TESTS),
        }
        for var in ("AMSREAD_KEY", "AMSREAD_AUTH_KEY", "AMSREAD_CONFIG"):
            env.pop(var, None)
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, "listen", *args, "--retry-first", "0.05"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._err: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err.append)),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    @staticmethod
    def _pump(stream: Any, sink: Any) -> None:
        for raw in iter(stream.readline, b""):
            sink(raw.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def line(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        try:
            text = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line; stderr:\n{self.stderr}") from None
        parsed: dict[str, Any] = json.loads(text)
        return parsed

    def wait_notify(self, text: str, timeout: float = TIMEOUT) -> str:
        """The next notification containing ``text``; earlier ones are dropped."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.notify.settimeout(left)
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                break
            if text in message:
                return message
        raise AssertionError(f"no notification with {text!r}; stderr:\n{self.stderr}")

    def wait_stderr(self, text: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{text!r} not logged; stderr:\n{self.stderr}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        status = self.proc.wait(timeout=TIMEOUT)
        for thread in self._threads:
            thread.join(timeout=TIMEOUT)
        return status

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self.notify.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Pty:
    """A pseudo-terminal pair: the test writes the master, amsread opens the slave."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing before amsread opens it
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError as exc:
                assert exc.errno == errno.EBADF


def url(server: socket.socket) -> str:
    return f"socket://127.0.0.1:{server.getsockname()[1]}"


# -- pseudo-terminal ------------------------------------------------------


def test_frames_written_byte_by_byte_and_in_bursts_come_out_as_lines(pty: Pty) -> None:
    with Daemon(pty.path, "--baud", "2400", "--parity", "E", *KEYS) as daemon:
        assert "READY=1" in daemon.wait_notify("READY=1")
        for byte in FRAME:
            pty.write(bytes([byte]))
            time.sleep(0.001)  # spread the frame over several reads
        expected_energy(daemon.line())
        pty.write(FRAME * 2)
        expected_energy(daemon.line())
        expected_energy(daemon.line())
        assert daemon.stop() == 0
    assert daemon.lines.empty()
    assert "Traceback" not in daemon.stderr


def test_sigusr1_logs_the_counters_and_the_serial_settings(pty: Pty) -> None:
    with Daemon(pty.path, "--baud", "9600", "--parity", "N", *KEYS) as daemon:
        daemon.wait_notify("READY=1")
        pty.write(FRAME + b"\x00\x01garbage" + FRAME[:-3] + b"\x00\x00\x7e")
        daemon.line()
        daemon.proc.send_signal(signal.SIGUSR1)
        daemon.wait_stderr("counters")
        assert daemon.stop(signal.SIGINT) == 0
    counters = next(line for line in daemon.stderr.splitlines() if "counters" in line)
    assert "frames_ok=1 " in counters
    assert "bad_fcs=1 " in counters
    assert "settings='9600 8N1'" in counters
    assert "messages_out=1 " in counters


def test_port_closed_and_reopened_mid_stream_resumes_with_the_next_frame(
    tmp_path: Path, pty: Pty
) -> None:
    # A udev-style symlink, as /dev/serial/by-id/… is: the device behind it comes and goes.
    link = tmp_path / "ttyMETER"
    link.symlink_to(pty.path)
    with Daemon(str(link), "--baud", "2400", "--parity", "E", *KEYS) as daemon:
        daemon.wait_notify("READY=1")
        pty.write(FRAME)
        expected_energy(daemon.line())
        pty.write(FRAME[:200])  # unplugged in the middle of a frame
        time.sleep(0.1)
        link.unlink()
        pty.close()
        daemon.wait_notify("STATUS=waiting for")
        replugged = Pty()
        try:
            link.symlink_to(replugged.path)
            daemon.wait_notify("STATUS=reading")
            replugged.write(FRAME)
            expected_energy(daemon.line())
            assert daemon.stop() == 0
        finally:
            replugged.close()
    assert f"lost {link}" in daemon.stderr
    assert "device went away" in daemon.stderr


def test_device_missing_at_start_is_waited_for_and_logged_once(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB9"
    with Daemon(str(link), "--baud", "2400", "--parity", "E", *KEYS) as daemon:
        # Ready anyway, so that boot does not wait for an unplugged adapter.
        assert "waiting for" in daemon.wait_notify("READY=1")
        daemon.wait_stderr("plugged in")
        time.sleep(0.5)  # several retries
        pair = Pty()
        try:
            link.symlink_to(pair.path)
            daemon.wait_notify("STATUS=reading")
            pair.write(FRAME)
            expected_energy(daemon.line())
            assert daemon.stop() == 0
        finally:
            pair.close()
    assert daemon.stderr.count("plugged in") == 1
    assert "Traceback" not in daemon.stderr


# -- socket:// ---------------------------------------------------------------


def test_socket_url_reads_frames_and_reconnects_when_the_server_closes(
    tmp_path: Path, server: socket.socket
) -> None:
    raw = tmp_path / "raw.bin"
    with Daemon(url(server), *KEYS, "--save-raw", str(raw)) as daemon:
        first, _ = server.accept()
        with first:
            # pyserial drops what arrives while it opens: send once amsread is ready.
            daemon.wait_notify("READY=1")
            first.sendall(FRAME)
            expected_energy(daemon.line())
        # ser2net restarted: EOF on the socket, then a new connection.
        second, _ = server.accept()
        with second:
            daemon.wait_notify("STATUS=reading")
            second.sendall(FRAME[:100])
            time.sleep(0.05)
            second.sendall(FRAME[100:])
            expected_energy(daemon.line())
            assert daemon.stop() == 0
    assert raw.read_bytes() == FRAME * 2
    assert "server closed the connection" in daemon.stderr


def test_sigterm_while_waiting_to_reconnect_exits_0(server: socket.socket) -> None:
    address = url(server)
    server.close()  # nothing listens: connection refused, retried
    with Daemon(address, *KEYS) as daemon:
        daemon.wait_stderr("nothing listens there")
        assert daemon.stop() == 0


def test_reader_closing_stdout_ends_listen_quietly_with_status_0(server: socket.socket) -> None:
    command = shlex.join([sys.executable, "-m", "amsread", "listen", url(server), *KEYS])
    with subprocess.Popen(
        ["bash", "-c", f"set -o pipefail; {command} | head -1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as shell:
        try:
            conn, _ = server.accept()
            with conn:
                deadline = time.monotonic() + TIMEOUT
                # amsread notices the closed pipe at its next write: keep the meter talking.
                while shell.poll() is None and time.monotonic() < deadline:
                    try:
                        conn.sendall(FRAME)
                    except OSError:
                        break
                    time.sleep(0.1)
            out, err = shell.communicate(timeout=TIMEOUT)
        finally:
            if shell.poll() is None:
                shell.kill()
    assert shell.returncode == 0, err.decode()
    assert len(out.splitlines()) == 1
    assert b"Traceback" not in err
    assert b"BrokenPipe" not in err


# -- auto-detection ----------------------------------------------------------


def test_auto_detection_in_the_daemon_picks_2400_8e1_and_logs_how_to_pin_it() -> None:
    launcher = (
        "-c",
        "import serial, sys; serial.protocol_handler_packages.append('fakeports');"
        " from amsread.app.cli import main; sys.argv[0] = 'amsread'; main()",
    )
    args = ("garble://2400/E?interval=0.1", *KEYS, "--probe-seconds", "0.3")
    with Daemon(*args, launcher=launcher) as daemon:
        expected_energy(daemon.line())
        daemon.wait_stderr("serial settings detected")
        assert daemon.stop() == 0
    assert "--baud 2400 --parity E" in daemon.stderr
    assert "settings='2400 8E1'" in daemon.stderr


@pytest.fixture
def garble_urls() -> Iterator[None]:
    serial.protocol_handler_packages.append("fakeports")
    yield
    serial.protocol_handler_packages.remove("fakeports")


RADIUS_KEYS = Keys(parse_key(sv.RADIUS_KEY), parse_key(sv.RADIUS_AUTH_KEY))


def detect(
    port: str,
    order: tuple[SerialSettings, ...],
    seconds: float,
    probe: float = 0.3,
    keys: Keys = RADIUS_KEYS,
) -> tuple[Listener, list[dict[str, Any]], int]:
    """Run a listener in-process until a message decodes or ``seconds`` pass."""
    pipeline = Pipeline(keys, allow_replay=True)
    log = structlog.get_logger()
    listener = Listener(port, order, pipeline, log, probe_seconds=probe, read_timeout=0.05)
    messages = 0
    timer = threading.Timer(seconds, listener.stop)
    timer.start()
    # Every level: an earlier in-process CLI run (test_corpus) left structlog at warning.
    with contextlib.redirect_stderr(sys.__stderr__):
        configure(2)
    try:
        with capture_logs() as logs:
            for chunk in listener.chunks():
                # As runner.run does for listen: the listener is told what each chunk gave.
                events = pipeline.feed(chunk)
                listener.observe(events)
                messages += sum(isinstance(e, Message) for e in events)
                if messages or not listener.detecting:
                    listener.stop()
    finally:
        timer.cancel()
        with contextlib.redirect_stderr(sys.__stderr__):
            configure()
    return listener, logs, messages


@pytest.mark.usefixtures("garble_urls")
def test_auto_detection_rejects_settings_that_garble_and_picks_2400_8e1() -> None:
    # Start with the five wrong settings: each garbles, 2400 8E1 comes last.
    order = (*AUTO_SETTINGS[1:], AUTO_SETTINGS[0])
    listener, logs, messages = detect("garble://2400/E?interval=0.05", order, TIMEOUT)
    assert messages == 1
    assert listener.messages == 1  # learnt from the events, as the reporter counts them
    assert listener.settings == SerialSettings(2400, "E")
    assert not listener.detecting
    [found] = [e for e in logs if e["event"] == "serial settings detected"]
    assert found["pin"].endswith("--baud 2400 --parity E")
    tried = [e["settings"] for e in logs if e["event"] == "trying serial settings"]
    assert tried == ["9600 8N1", "9600 8E1", "115200 8N1", "9600 7E1", "2400 8E1"]


@pytest.mark.usefixtures("garble_urls")
def test_auto_detection_tries_the_common_settings_in_order_until_one_gives_a_frame() -> None:
    listener, _, messages = detect("garble://115200/N?interval=0.05", AUTO_SETTINGS, TIMEOUT)
    assert messages == 1
    assert listener.settings == SerialSettings(115200, "N")


@pytest.mark.usefixtures("garble_urls")
def test_auto_detection_keeps_the_setting_whose_frames_check_out_even_with_a_wrong_key() -> None:
    # Every frame fails to decrypt, yet its checksums are right: the setting is found.
    wrong = Keys(parse_key("00" * 16), parse_key(sv.RADIUS_AUTH_KEY))
    listener, logs, messages = detect(
        "garble://9600/E?interval=0.05", AUTO_SETTINGS, TIMEOUT, keys=wrong
    )
    assert messages == 0 and listener.messages == 0
    assert listener.settings == SerialSettings(9600, "E")
    assert not listener.detecting
    assert any(e["event"] == "serial settings detected" for e in logs)


@pytest.mark.usefixtures("garble_urls")
def test_auto_detection_never_settles_on_garbage_and_says_so_once() -> None:
    # Two rounds of the six settings.
    listener, logs, messages = detect("garble://300/O?interval=0.02", AUTO_SETTINGS, 1.3, 0.1)
    assert messages == 0
    assert listener.detecting
    assert listener.pipeline.counters["frames_ok"] == 0
    warnings = [e for e in logs if "no common serial setting" in e["event"]]
    assert len(warnings) == 1
    assert "--baud and --parity" in warnings[0]["hint"]


def test_socket_urls_are_not_probed_for_serial_settings() -> None:
    assert not serial_settings_apply("socket://meter:2001")
    assert serial_settings_apply("/dev/ttyUSB0")
    assert serial_settings_apply("rfc2217://meter:2217")


def test_candidates_follow_what_is_pinned() -> None:
    assert candidates(None, None) == AUTO_SETTINGS
    assert candidates(9600, "E") == (SerialSettings(9600, "E"),)
    assert candidates(2400, None) == (SerialSettings(2400, "E"), SerialSettings(2400, "N"))
    assert candidates(None, "E") == (
        SerialSettings(2400, "E"),
        SerialSettings(9600, "E"),
        SerialSettings(9600, "E", 7),
    )
    assert candidates(4800, None) == (SerialSettings(4800, "E"), SerialSettings(4800, "N"))
    assert [s.baudrate for s in candidates(None, "O")] == [2400, 9600, 115200]
    assert str(SerialSettings(2400, "E")) == "2400 8E1"


def test_baud_accepts_numbers_and_auto_only() -> None:
    assert parse_baud("auto") is None
    assert parse_baud("9600") == 9600
    with pytest.raises(Exception, match="--baud"):
        parse_baud("fast")


# -- never die on the line ----------------------------------------------------


def test_backoff_doubles_up_to_30_seconds_and_restarts_after_success() -> None:
    backoff = Backoff()
    delays = [backoff.next() for _ in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert BACKOFF_MAX == 30
    backoff.reset()
    assert backoff.next() == 1


@pytest.mark.parametrize(
    ("exc", "port", "cause", "hint"),
    [
        (
            serial.SerialException(13, "could not open port /dev/ttyUSB0: [Errno 13] denied"),
            "/dev/ttyUSB0",
            "permission",
            "dialout",
        ),
        (
            serial.SerialException(2, "could not open port /dev/ttyUSB0: [Errno 2] No such"),
            "/dev/ttyUSB0",
            "missing",
            "plugged in",
        ),
        (
            serial.SerialException("read failed: [Errno 5] Input/output error"),
            "/dev/ttyUSB0",
            "disconnected",
            "unplugged",
        ),
        (
            serial.SerialException("Could not open port socket://h:1: [Errno 111] refused"),
            "socket://h:1",
            "refused",
            "ser2net",
        ),
        (serial.SerialException("socket disconnected"), "socket://h:1", "disconnected", "server"),
        (
            serial.SerialException(16, "could not open port /dev/ttyAMA0: [Errno 16] busy"),
            "/dev/ttyAMA0",
            "busy",
            "another program",
        ),
    ],
)
def test_line_problems_get_a_cause_and_a_hint(
    exc: OSError, port: str, cause: str, hint: str
) -> None:
    problem = describe_problem(exc, port)
    assert problem.cause == cause
    assert hint in problem.hint


def run_cli(*args: str) -> tuple[int, str]:
    # A subprocess with a timeout: a regression here would otherwise retry for ever.
    done = subprocess.run(
        [sys.executable, "-m", "amsread", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")},
    )
    return done.returncode, done.stderr


def test_an_unknown_url_scheme_is_bad_configuration_exit_2() -> None:
    status, err = run_cli("listen", "nosuch://meter", *KEYS)
    assert status == 2
    assert "nosuch" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("port", ["socket://no-port-given", "rfc2217://h:99999", "socket://:5"])
def test_a_malformed_network_url_is_bad_configuration_exit_2(port: str) -> None:
    status, err = run_cli("listen", port, *KEYS)
    assert status == 2
    assert "HOST:PORT" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_baud_missing_port_and_bad_key_exit_2_with_one_line() -> None:
    status, err = run_cli("listen", "/dev/ttyUSB0", "--baud", "fast")
    assert status == 2 and "--baud" in err
    status, err = run_cli("listen", *KEYS)
    assert status == 2 and "no port" in err
    status, err = run_cli("listen", "/dev/ttyUSB0", "--key", "12" * 15)
    assert status == 2 and "32 hex digits" in err
    assert "12" * 15 not in err
