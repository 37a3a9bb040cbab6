"""Probes for tests: what a piece of code did to a message without being told."""

from __future__ import annotations

from unittest import mock

from amsread.model import Message


def made_readings(message: Message) -> bool:
    """Whether ``message.readings`` was read: the writer and the checks must not need it."""
    if not message.values:
        return False  # no Reading to make
    with mock.patch("amsread.model.Reading", side_effect=AssertionError("made")):
        try:
            message.readings  # noqa: B018 - made now, if not made before
        except AssertionError:
            return False
    return True
