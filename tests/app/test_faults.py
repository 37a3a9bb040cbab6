"""Fault tests for a daemon left running for years (issue 14).

Real pseudo-terminals, a TCP server on the loopback and real signals; the
daemon runs as a subprocess (``Daemon`` from test_listen), as systemd runs it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from amsread.app.ports import open_socket
from tests.app.test_listen import FRAME, KEYS, TIMEOUT, Daemon, Pty, expected_energy, url


def wait_for(check: object, what: str, daemon: Daemon, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline or daemon.proc.poll() is not None:
            raise AssertionError(f"{what}; stderr:\n{daemon.stderr}")
        time.sleep(0.02)


def lines_in(*paths: Path) -> list[dict[str, object]]:
    found = []
    for path in paths:
        if path.exists():
            found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


# -- 1. the serial probe on a noisy line -----------------------------------------


def test_probe_on_a_noisy_pty_outlives_a_full_cycle_of_settings_then_decodes(pty: Pty) -> None:
    # A pty refuses some setting switches with termios.error (22): that crashed the probe.
    with Daemon(pty.path, *KEYS, "--probe-seconds", "0.1") as daemon:
        daemon.wait_notify("READY=1")
        noise = bytes(range(0x20, 0x80)) * 4  # 7-bit bytes: no frame in them
        deadline = time.monotonic() + 3.0  # 5 settings x 0.1 s, many times over
        while time.monotonic() < deadline:
            pty.write(noise)
            time.sleep(0.02)
            assert daemon.proc.poll() is None, daemon.stderr
        daemon.wait_stderr("no common serial setting gives a valid frame")
        # Still reading: a frame now is found at whatever setting the probe is on.
        for _ in range(50):
            pty.write(FRAME)
            time.sleep(0.05)
            if not daemon.lines.empty():
                break
        expected_energy(daemon.line())
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.stderr
    assert "termios" not in daemon.stderr.lower() or "cannot switch" in daemon.stderr


# -- 2. network ports ---------------------------------------------------------------


def test_a_silent_socket_peer_is_left_and_the_next_connection_decodes(
    server: socket.socket,
) -> None:
    with Daemon(url(server), *KEYS, "--silence-limit", "0.5") as daemon:
        silent, _ = server.accept()  # a ser2net box that lost power: no FIN, no bytes
        with silent:
            second, _ = server.accept()
            with second:
                # Sent right at connect, before amsread could read: must not be lost.
                second.sendall(FRAME)
                expected_energy(daemon.line())
                assert daemon.stop() == 0
    assert "for 0 s: reconnecting" in daemon.stderr or ": reconnecting" in daemon.stderr
    assert "Traceback" not in daemon.stderr


def test_socket_port_has_tcp_keepalive_and_keeps_bytes_sent_at_connect(
    server: socket.socket,
) -> None:
    accepted: list[socket.socket] = []

    def accept_and_send() -> None:
        conn, _ = server.accept()
        conn.sendall(FRAME)
        accepted.append(conn)

    sender = threading.Thread(target=accept_and_send)
    sender.start()
    port = open_socket(url(server), 1.0)
    try:
        sender.join(TIMEOUT)
        time.sleep(0.1)
        sock = port._socket  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        data = b""
        while len(data) < len(FRAME):
            chunk = port.read(len(FRAME))
            assert chunk, "bytes sent at connect were dropped"
            data += chunk
        assert data == FRAME
    finally:
        port.close()
        for conn in accepted:
            conn.close()


# -- 3. output rotation ---------------------------------------------------------------


class Meter:
    """A socket:// meter sending FRAME on demand (one message per frame)."""

    def __init__(self, server: socket.socket) -> None:
        self.conn, _ = server.accept()
        self.sent = 0

    def push(self, count: int = 1, pause: float = 0.05) -> None:
        for _ in range(count):
            self.conn.sendall(FRAME)
            self.sent += 1
            time.sleep(pause)


def test_output_moved_then_sighup_loses_nothing_and_the_daemon_goes_on(
    tmp_path: Path, server: socket.socket
) -> None:
    out, raw = tmp_path / "readings.jsonl", tmp_path / "raw.bin"
    args = (*KEYS, "--output", str(out), "--save-raw", str(raw))
    with Daemon(url(server), *args) as daemon:
        meter = Meter(server)
        with meter.conn:
            meter.push(3)
            wait_for(lambda: len(lines_in(out)) == 3, "3 lines", daemon)
            out.rename(tmp_path / "readings.jsonl.1")
            raw.rename(tmp_path / "raw.bin.1")
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_stderr("reopening the output files")
            meter.push(3)
            wait_for(lambda: len(lines_in(out)) == 3, "3 lines in the new file", daemon)
            assert daemon.proc.poll() is None
            assert daemon.stop() == 0
    assert len(lines_in(tmp_path / "readings.jsonl.1", out)) == meter.sent == 6
    assert (tmp_path / "raw.bin.1").read_bytes() + raw.read_bytes() == FRAME * 6
    assert "done" in daemon.stderr  # the closing summary
    assert "Traceback" not in daemon.stderr


def test_output_moved_without_a_signal_is_noticed_and_nothing_is_lost(
    tmp_path: Path, server: socket.socket
) -> None:
    out = tmp_path / "readings.jsonl"
    with Daemon(url(server), *KEYS, "--output", str(out)) as daemon:
        meter = Meter(server)
        with meter.conn:
            meter.push(2)
            wait_for(lambda: len(lines_in(out)) == 2, "2 lines", daemon)
            out.rename(tmp_path / "readings.jsonl.1")
            # Pushes keep arriving while amsread has not noticed yet (checks every second).
            meter.push(30, pause=0.1)
            wait_for(lambda: out.exists(), "a new output file", daemon)
            daemon.wait_stderr("was moved or deleted")
            assert daemon.stop() == 0
    every = lines_in(tmp_path / "readings.jsonl.1", out)
    assert len(every) == meter.sent == 32
    assert len(lines_in(out)) > 0


def test_output_directory_removed_is_an_error_and_lines_are_kept_until_it_returns(
    tmp_path: Path, server: socket.socket
) -> None:
    folder = tmp_path / "log"
    folder.mkdir()
    out = folder / "readings.jsonl"
    with Daemon(url(server), *KEYS, "--output", str(out)) as daemon:
        meter = Meter(server)
        with meter.conn:
            meter.push(1)
            wait_for(lambda: len(lines_in(out)) == 1, "1 line", daemon)
            shutil.rmtree(folder)
            meter.push(2, pause=0.6)
            daemon.wait_stderr("vanished")
            meter.push(2)
            folder.mkdir()
            meter.push(1)
            wait_for(lambda: len(lines_in(out)) >= 3, "the kept lines written", daemon)
            assert daemon.stop() == 0
    assert "error" in daemon.stderr
    assert "Traceback" not in daemon.stderr


# -- 7. a full disk, a closed stdout ------------------------------------------------


def amsread(*args: str, shell_suffix: str = "") -> subprocess.CompletedProcess[str]:
    command = " ".join([sys.executable, "-m", "amsread", *args])
    return subprocess.run(
        ["bash", "-c", command + shell_suffix],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        env={**os.environ, "AMSREAD_CONFIG": ""},
    )


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "capture.bin"
    path.write_bytes(FRAME * 3)
    return path


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_replay_to_a_full_disk_says_one_line_with_no_traceback(capture: Path) -> None:
    done = amsread("replay", str(capture), *KEYS, shell_suffix=" > /dev/full")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("amsread: error: cannot write")
    assert "No space left" in done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_replay_with_output_on_a_full_disk_says_one_line(capture: Path) -> None:
    done = amsread("replay", str(capture), *KEYS, "--output", "/dev/full")
    assert done.returncode == 1
    assert "No space left" in done.stderr and "Traceback" not in done.stderr


def test_replay_with_stdout_closed_says_one_line(capture: Path) -> None:
    done = amsread("replay", str(capture), *KEYS, shell_suffix=" >&-")
    assert done.returncode == 2
    assert "stdout is closed" in done.stderr
    assert "Traceback" not in done.stderr and "AttributeError" not in done.stderr


def test_a_failed_write_leaves_whole_lines_only(tmp_path: Path) -> None:
    from amsread.app.outfile import OutputError, OutputFile

    target = tmp_path / "out.jsonl"
    output = OutputFile(str(target))
    output.write('{"a": 1}\n{"b": ')
    output.flush()
    assert target.read_text() == '{"a": 1}\n'  # the half line waits for its end
    output.write("2}\n")
    output.flush()
    assert target.read_text() == '{"a": 1}\n{"b": 2}\n'
    full = OutputFile(None, fd=os.open("/dev/full", os.O_WRONLY), what="stdout")
    full.write("x\n")
    with pytest.raises(OutputError, match="No space left"):
        full.flush()


# -- 6. signals and the watchdog --------------------------------------------------


def test_sigusr1_is_answered_within_a_second_while_waiting_to_reconnect(
    server: socket.socket,
) -> None:
    address = url(server)
    server.close()  # connection refused: retried, backing off to many seconds
    with Daemon(address, *KEYS) as daemon:
        daemon.wait_stderr("nothing listens there")
        time.sleep(3.0)  # the backoff has grown past a second
        daemon.proc.send_signal(signal.SIGUSR1)
        daemon.wait_stderr("counters", timeout=1.0)
        assert daemon.stop() == 0


def test_sigusr1_just_before_sigterm_is_still_answered(server: socket.socket) -> None:
    with Daemon(url(server), *KEYS) as daemon:
        conn, _ = server.accept()
        with conn:
            daemon.wait_notify("READY=1")
            daemon.proc.send_signal(signal.SIGUSR1)
            assert daemon.stop() == 0
    assert "counters" in daemon.stderr
    assert "done" in daemon.stderr  # the closing summary


def test_watchdog_is_pinged_every_half_interval_during_an_outage(
    server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = url(server)
    server.close()
    monkeypatch.setenv("WATCHDOG_USEC", "600000")  # pings due every 0.3 s
    with Daemon(address, *KEYS) as daemon:
        daemon.wait_notify("READY=1")
        pings: list[float] = []
        deadline = time.monotonic() + 4.0  # through several retries of the backoff
        while time.monotonic() < deadline:
            daemon.notify.settimeout(deadline - time.monotonic())
            try:
                message = daemon.notify.recv(4096).decode()
            except TimeoutError:
                break
            if "WATCHDOG=1" in message:
                pings.append(time.monotonic())
        assert daemon.stop() == 0
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert len(pings) >= 8, pings
    assert max(gaps) < 0.3 + 0.15, gaps


def test_a_local_device_that_returns_is_reopened_within_seconds(tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB7"
    with Daemon(str(link), "--baud", "2400", "--parity", "E", *KEYS) as daemon:
        daemon.wait_stderr("plugged in")
        time.sleep(6.0)  # a backoff would now wait 6 s or more
        pair = Pty()
        try:
            link.symlink_to(pair.path)
            start = time.monotonic()
            daemon.wait_notify("STATUS=reading", timeout=5.0)
            assert time.monotonic() - start < 2.5
            pair.write(FRAME)
            expected_energy(daemon.line())
            assert daemon.stop() == 0
        finally:
            pair.close()
    assert "checking every" in daemon.stderr


def test_losing_stderr_never_stops_the_readings(server: socket.socket) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")}
    command = [sys.executable, "-m", "amsread", "-vv", "listen", url(server), *KEYS]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        try:
            assert proc.stderr is not None and proc.stdout is not None
            proc.stderr.close()  # journald went away: every log line now fails
            conn, _ = server.accept()
            with conn:
                for _ in range(3):
                    conn.sendall(FRAME)
                    line = proc.stdout.readline()
                    expected_energy(json.loads(line))
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


# -- 5. --save-raw --redact of an unencrypted meter ----------------------------------

METER_ID = b"5706567286399553"  # the Norwegian list's meter id (1.1.0.0.5.255)


def plaintext_captures() -> dict[str, bytes]:
    from builders import hdlc_frame, hdlc_segments, mbus_segments
    from seed_vectors import NORWEGIAN_LIST_PLAINTEXT as PUSH

    return {
        "hdlc": hdlc_frame(b"\xe6\xe7\x00" + PUSH),
        # The id lands in the first frame of a push sent in several: no whole APDU there.
        "hdlc-segmented": hdlc_segments(b"\xe6\xe7\x00" + PUSH, [100]),
        "mbus-segmented": b"".join(mbus_segments(PUSH, [100])),
    }


@pytest.mark.parametrize("kind", ["hdlc", "hdlc-segmented", "mbus-segmented"])
def test_save_raw_redact_of_an_unencrypted_meter_holds_no_id_and_replays(
    tmp_path: Path, server: socket.socket, kind: str
) -> None:
    push = plaintext_captures()[kind]
    assert METER_ID in push
    raw = tmp_path / "capture.bin"
    with Daemon(url(server), "--save-raw", str(raw), "--redact") as daemon:
        conn, _ = server.accept()
        with conn:
            for _ in range(3):
                conn.sendall(push)
                assert daemon.line()["readings"][1]["value"] == METER_ID.decode()
            assert daemon.stop() == 0
    capture = raw.read_bytes()
    assert len(capture) == 3 * len(push)
    assert METER_ID not in capture
    done = amsread("replay", str(raw))
    assert done.returncode == 0, done.stderr
    replayed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(replayed) == 3
    for message in replayed:
        readings = {r["obis"]: r["value"] for r in message["readings"]}
        assert readings["1.1.0.0.5.255"] == "0000000000000001"  # the placeholder
        assert readings["1.1.1.7.0.255"] == 169  # the power, as the meter sent it


# -- the logrotate example --------------------------------------------------------------

LOGROTATE_EXAMPLE = Path(__file__).parent.parent.parent / "systemd" / "amsread.logrotate"


def test_logrotate_example_renames_and_signals_instead_of_copytruncate() -> None:
    text = LOGROTATE_EXAMPLE.read_text()
    rules = [line.split("#")[0].strip() for line in text.splitlines()]
    assert "copytruncate" not in rules
    assert "nocreate" in rules
    assert any("--signal=HUP" in rule for rule in rules)


def test_logrotate_run_on_the_example_loses_no_reading(
    tmp_path: Path, server: socket.socket
) -> None:
    logrotate = shutil.which("logrotate") or (
        "/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None
    )
    if logrotate is None:
        assert os.environ.get("CI") != "true", "CI must install logrotate"
        pytest.skip("logrotate is not installed")
    out = tmp_path / "readings.jsonl"
    with Daemon(url(server), *KEYS, "--output", str(out)) as daemon:
        # The example, pointed at this test's file and this daemon's pid.
        config = tmp_path / "amsread.logrotate"
        text = LOGROTATE_EXAMPLE.read_text().replace("/var/log/amsread/*.jsonl", str(out))
        text = text.replace(
            "systemctl kill --signal=HUP --kill-whom=main amsread.service",
            f"kill -HUP {daemon.proc.pid}",
        )
        config.write_text(text)
        config.chmod(0o644)
        meter = Meter(server)
        with meter.conn:
            meter.push(3)
            wait_for(lambda: len(lines_in(out)) == 3, "3 lines", daemon)
            state = tmp_path / "logrotate.state"
            done = subprocess.run(
                [logrotate, "-f", "-s", str(state), str(config)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            assert done.returncode == 0, done.stderr
            daemon.wait_stderr("reopening the output files")
            meter.push(2)
            wait_for(lambda: len(lines_in(out)) == 2, "2 lines in the new file", daemon)
            assert daemon.stop() == 0
    rotated = tmp_path / "readings.jsonl.1"
    assert len(lines_in(rotated, out)) == meter.sent == 5


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_listen_with_stdout_on_a_full_disk_logs_one_line_and_exits_1(
    server: socket.socket,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")}
    with (
        open("/dev/full", "wb") as full,
        subprocess.Popen(
            [sys.executable, "-m", "amsread", "listen", url(server), *KEYS],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
        ) as proc,
    ):
        try:
            conn, _ = server.accept()
            with conn:
                for _ in range(3):
                    conn.sendall(FRAME)
                    time.sleep(0.2)
                assert proc.poll() is None  # still reading
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=TIMEOUT) == 1
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
    assert err.count("cannot write stdout: No space left on device") == 1, err
    assert "3 lines could not be written to stdout" in err
    assert "Traceback" not in err


def test_a_rotated_csv_output_starts_with_its_header_again(
    tmp_path: Path, server: socket.socket
) -> None:
    out = tmp_path / "readings.csv"
    with Daemon(url(server), *KEYS, "--format", "csv", "--output", str(out)) as daemon:
        meter = Meter(server)
        with meter.conn:
            meter.push(1)
            wait_for(lambda: out.exists() and out.stat().st_size > 0, "a csv file", daemon)
            out.rename(tmp_path / "readings.csv.1")
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_stderr("reopening the output files")
            meter.push(1)
            wait_for(lambda: out.exists() and out.stat().st_size > 0, "a new csv file", daemon)
            assert daemon.stop() == 0
    old, new = (tmp_path / "readings.csv.1").read_text(), out.read_text()
    assert old.splitlines()[0].startswith("received_at,")
    assert new.splitlines()[0] == old.splitlines()[0]
    assert new.count("received_at,") == 1 and len(new.splitlines()) == len(old.splitlines())
