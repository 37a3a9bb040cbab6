"""Thin byte sources: hex text, capture files, stdin. No protocol knowledge."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from amsread.errors import UsageError

CHUNK = 64 * 1024
_NOISE = re.compile(r"0[xX]|[\s:,;\-_]|\\x")
_BAD = re.compile(r"[^0-9a-fA-F]")


def parse_hex(text: str) -> bytes:
    """Hex as users paste it: spaces, newlines, ``0x``, colons, any case."""
    compact = _NOISE.sub("", text)
    bad = _BAD.search(compact)
    if bad:
        raise UsageError(f"not valid hex: unexpected character {bad.group()!r}")
    if not compact:
        raise UsageError("no hex bytes given")
    if len(compact) % 2:
        raise UsageError(f"not valid hex: odd number of hex digits ({len(compact)})")
    return bytes.fromhex(compact)


@dataclass(frozen=True)
class HexInput:
    """Hex text from arguments or a file, '#' comments removed."""

    data: bytes
    lines: list[str]
    from_file: bool

    def messages(self) -> list[bytes]:
        """One message per non-empty line of a file; arguments are one message."""
        if not self.from_file:
            return [self.data]
        return [parse_hex(line) for line in self.lines if line.strip()]


def read_hex_input(words: tuple[str, ...], file: str | None) -> HexInput:
    """Hex given as arguments, or in ``file`` ('-' for stdin)."""
    text = read_text(file) if file is not None else " ".join(words)
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return HexInput(parse_hex("\n".join(lines)), lines, file is not None)


def read_small_file(path: str, what: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a small file; one-line errors naming ``what``.

    Reading one byte past the limit lets the caller tell "too large" apart.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} is a directory: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_text(path: str) -> str:
    """A text file, or stdin for ``-``."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        raise UsageError(f"file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def read_chunks(path: str, size: int = CHUNK) -> Iterator[bytes]:
    """A binary capture in chunks, or stdin for ``-``."""
    if path == "-":
        stream = sys.stdin.buffer
        while chunk := stream.read1(size) if hasattr(stream, "read1") else stream.read(size):
            yield chunk
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, generator lifetime
    except FileNotFoundError:
        raise UsageError(f"capture file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror}") from None
    with handle:
        while chunk := handle.read(size):
            yield chunk
