"""Fixtures of the daemon tests: a pseudo-terminal pair and a loopback TCP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.app.test_listen import TIMEOUT, Pty


@pytest.fixture
def pty() -> Iterator[Pty]:
    pair = Pty()
    yield pair
    pair.close()


@pytest.fixture
def server() -> Iterator[socket.socket]:
    listening = socket.create_server(("127.0.0.1", 0))
    listening.settimeout(TIMEOUT)
    yield listening
    listening.close()
