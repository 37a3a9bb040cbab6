"""Logging stays cheap until a line passes the level, then goes through structlog as configured."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import seed_vectors as sv
from structlog.testing import capture_logs

from amsread.app.log import configure, get_logger


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, so that nothing is imported yet."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )


def test_help_imports_neither_the_link_layers_nor_structlog() -> None:
    done = run_python(
        "import sys\n"
        "from amsread.app.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "finally:\n"
        "    print(sorted(m for m in sys.modules if m in"
        " ('amsread.link.framing', 'amsread.link.hdlc', 'structlog', 'logging')),"
        " file=sys.stderr)\n"
    )
    assert "Usage:" in done.stdout
    assert done.stderr.strip() == "[]"


def test_a_clean_decode_logs_nothing_and_never_imports_structlog() -> None:
    args = [
        "decode",
        sv.RADIUS_FRAME.hex(),
        "--key",
        sv.RADIUS_KEY,
        "--auth-key",
        sv.RADIUS_AUTH_KEY,
    ]
    done = run_python(
        "import sys\n"
        "from amsread.app.cli import cli\n"
        "try:\n"
        f"    cli.main({args!r})\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('structlog' in sys.modules, 'asyncio' in sys.modules, file=sys.stderr)\n"
    )
    assert json.loads(done.stdout)["invocation_counter"] == sv.RADIUS_INVOCATION_COUNTER
    assert done.stderr == "False False\n"


def test_the_first_line_that_passes_sets_structlog_up_as_configured() -> None:
    done = run_python(
        "import sys\n"
        "from amsread.app.log import configure, get_logger\n"
        "configure(0, 'json')\n"
        "log = get_logger().bind(port='/dev/ttyUSB0')\n"
        "log.info('below the level')\n"
        "log.debug('below the level', start='7e a1')\n"
        "assert 'structlog' not in sys.modules\n"
        "log.warning('port gone', start='7e a1', retry_in=5)\n"
        "get_logger().error('second line')\n"
    )
    first, second = (json.loads(line) for line in done.stderr.splitlines())
    assert first["event"] == "port gone" and first["level"] == "warning"
    assert first["port"] == "/dev/ttyUSB0" and first["retry_in"] == 5
    assert "start" not in first  # hex from the line waits for debug level
    assert first["timestamp"].endswith("Z")
    assert second["event"] == "second line" and "port" not in second


def test_each_level_method_follows_the_level_configured_last() -> None:
    log = get_logger().bind(meter="m1")
    try:
        configure(0)
        with capture_logs() as logs:
            log.debug("d")
            log.info("i")
            log.warning("w")
            log.error("e")
            log.critical("c")
        assert [(e["event"], e["log_level"]) for e in logs] == [
            ("w", "warning"),
            ("e", "error"),
            ("c", "critical"),
        ]
        assert logs[0]["meter"] == "m1"
        configure(2)
        with capture_logs() as logs:
            log.debug("d", start="7e a1")
        assert logs == [{"event": "d", "log_level": "debug", "meter": "m1", "start": "7e a1"}]
        configure(-2)
        with capture_logs() as logs:
            log.error("e")
        assert logs == []
    finally:
        # Later tests must not log into a stream captured here.
        with contextlib.redirect_stderr(sys.__stderr__):
            configure()
