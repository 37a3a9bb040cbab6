"""systemd integration: sd_notify datagrams, the watchdog, and the hardened unit file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import seed_vectors as sv

from amsread.app.notify import Notifier

ROOT = Path(__file__).parent.parent.parent
UNIT = ROOT / "systemd" / "amsread.service"


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "n")
    if len(path) > 100:  # AF_UNIX paths are short; use the abstract namespace then
        path = f"@amsread-systemd-test-{os.getpid()}"
        sock.bind("\0" + path[1:])
    else:
        sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_status_watchdog_and_stopping_are_sent_as_systemd_expects(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    now = [100.0]
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, clock=lambda: now[0])
    assert notifier.enabled and notifier.watchdog_interval == 1.0
    notifier.ready("reading /dev/ttyUSB0\nat 2400 8E1")
    assert received(sock) == "READY=1\nSTATUS=reading /dev/ttyUSB0 at 2400 8E1"
    notifier.ready("again")
    assert received(sock) == "STATUS=again"  # READY=1 only once
    notifier.ping()  # not due yet: nothing sent
    now[0] += 1.0
    notifier.ping()
    assert received(sock) == "WATCHDOG=1"
    notifier.stopping("bye")
    assert received(sock) == "STOPPING=1\nSTATUS=bye"
    notifier.close()


def test_abstract_socket_addresses_work(listener: tuple[socket.socket, str]) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"amsread-abstract-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(5)
    with sock:
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert received(sock) == "STATUS=hello"


def test_without_systemd_notifications_are_a_silent_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    notifier.ready("x")
    notifier.ping()
    assert Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled is False


def test_a_watchdog_meant_for_another_process_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier(env).watchdog_interval is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier(env).watchdog_interval == 0.5


def test_a_vanished_notify_socket_never_stops_the_reader(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.notify("READY=1") is False
    assert notifier.errors == 1


def test_listen_pings_the_watchdog_from_its_read_loop(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    server = socket.create_server(("127.0.0.1", 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMSREAD_")}
    env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
    port = f"socket://127.0.0.1:{server.getsockname()[1]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "amsread", "listen", port, "--key", sv.RADIUS_KEY],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        server.settimeout(10)
        conn, _ = server.accept()
        with conn:
            messages = [received(sock)]
            deadline = time.monotonic() + 10
            while messages.count("WATCHDOG=1") < 3 and time.monotonic() < deadline:
                messages.append(received(sock))
            proc.terminate()
            assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        server.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert messages[0].startswith("READY=1\nSTATUS=reading socket://127.0.0.1:")
    assert messages.count("WATCHDOG=1") >= 3


# -- the unit file ---------------------------------------------------------------------


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_is_a_notify_service_running_listen_with_the_config_file() -> None:
    unit = directives()
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"][0].endswith("amsread listen --config /etc/amsread/config.toml")
    assert unit["Restart"] == ["on-failure"]
    assert unit["WatchdogSec"]
    # Bad configuration exits 2: restarting cannot fix it.
    assert unit["RestartPreventExitStatus"] == ["2"]


def test_the_unit_is_hardened_but_keeps_the_network_for_ser2net() -> None:
    unit = directives()
    assert unit["DynamicUser"] == ["yes"]
    assert unit["SupplementaryGroups"] == ["dialout"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ProtectHome"] == ["yes"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["StateDirectory"] == ["amsread"]
    assert "PrivateNetwork" not in unit
    assert "PrivateDevices" not in unit  # it would hide the serial ports
    allowed = " ".join(unit["DeviceAllow"])
    assert "char-ttyUSB rw" in allowed and "char-ttyAMA rw" in allowed
    assert "AF_INET" in unit["RestrictAddressFamilies"][0]


def test_the_unit_loads_the_keys_as_the_credentials_amsread_looks_for() -> None:
    from amsread.dlms.keys import CREDENTIAL_AUTH_KEY, CREDENTIAL_KEY

    names = {value.split(":", 1)[0] for value in directives()["LoadCredential"]}
    assert names == {CREDENTIAL_KEY, CREDENTIAL_AUTH_KEY}


# -- logs for journald -------------------------------------------------------------------


def test_json_logs_are_one_object_per_line_and_hex_dumps_wait_for_debug_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from amsread.app.log import configure, get_logger

    try:
        configure(1, "json")
        get_logger().info("bytes rejected", reason="bad_fcs", start="7e a1 e9 41", bytes=490)
        line = json.loads(capsys.readouterr().err)
        assert line["event"] == "bytes rejected" and line["bytes"] == 490
        assert line["level"] == "info" and line["timestamp"].endswith("Z")
        assert "start" not in line
        configure(2, "json")
        get_logger().debug("bytes rejected", start="7e a1 e9 41")
        assert json.loads(capsys.readouterr().err)["start"] == "7e a1 e9 41"
    finally:
        # Later tests must not log into this test's captured (closed) stream.
        with contextlib.redirect_stderr(sys.__stderr__):
            configure()


# -- the template unit, one instance per meter -----------------------------------------

TEMPLATE = ROOT / "systemd" / "amsread@.service"


def unit_directives(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_template_reads_the_instance_config_and_keys_and_keeps_them_apart() -> None:
    unit = unit_directives(TEMPLATE)
    assert unit["ExecStart"][0].endswith("amsread listen --config /etc/amsread/%i.toml")
    assert unit["LoadCredential"] == [
        "amsread-key:/etc/amsread/%i.key",
        "amsread-auth-key:/etc/amsread/%i.auth-key",
    ]
    # Two meters must not share a state file (invocation counters) or an output file.
    assert unit["StateDirectory"] == ["amsread/%i"]
    assert unit["LogsDirectory"] == ["amsread/%i"]


def test_the_template_is_hardened_exactly_like_the_single_unit() -> None:
    single, template = unit_directives(UNIT), unit_directives(TEMPLATE)
    per_instance = {"Description", "ExecStart", "LoadCredential", "StateDirectory", "LogsDirectory"}
    assert set(single) == set(template)
    for key in set(single) - per_instance:
        assert template[key] == single[key], key


@pytest.mark.parametrize("unit", ["amsread.service", "amsread@ttyUSB0.service"])
def test_systemd_accepts_both_units(tmp_path: Path, unit: str) -> None:
    if not shutil.which("systemd-analyze"):
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing on CI")
        pytest.skip("systemd-analyze is not installed")
    source = UNIT if "@" not in unit else TEMPLATE
    # verify checks that ExecStart exists: point it at this interpreter's amsread.
    text = source.read_text().replace(
        "/opt/amsread/bin/amsread", str(Path(sys.executable).with_name("amsread"))
    )
    # A bare template is not checked by verify; an instance of it is.
    (tmp_path / unit).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not re.search("unknown|ignoring|invalid|failed", output, re.IGNORECASE), output
