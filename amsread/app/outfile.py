"""Output files that survive rotation, removal and a full disk.

``--output`` and ``--save-raw`` go through :class:`OutputFile`: bytes are
appended with ``os.write`` in whole lines only (a full disk leaves no half
JSON line: a partial write is cut back), kept in memory and retried while
the disk is full, and counted and said when there is no room left even
there. ``reopen()`` (SIGHUP, what logrotate sends) and ``check()`` (called
every second: the path now names another file, or none) make a moved or
deleted file be followed by a new one at the same path, so nothing is
written into a file nobody will read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Any, Protocol

#: Seconds between checks that the output path still names the open file.
OUTPUT_CHECK = 1.0
#: Bytes kept in memory while they cannot be written (a full disk); older
#: lines are dropped (and counted) beyond this.
MAX_PENDING = 4 * 1024 * 1024


class OutputError(Exception):
    """The output cannot be written (a one-shot command stops with one line)."""


class Reopenable(Protocol):
    def reopen(self) -> None: ...

    def check(self) -> None: ...


class OutputFile:
    """An append-only output, by path or by file descriptor (stdout).

    ``keep`` (the daemon): a failed write never raises; the bytes are kept
    and retried. Without it (replay, decode) a failed write raises
    :class:`OutputError` after the file was left at a whole line.
    """

    def __init__(
        self,
        path: str | None,
        *,
        fd: int | None = None,
        lines: bool = True,
        keep: bool = False,
        what: str = "output",
        log: Any = None,
    ) -> None:
        self.path = path
        self.what = what
        self._lines = lines
        self._keep = keep
        self._log = log
        self._pending = bytearray()
        self._failing: str | None = None
        self.lost_lines = 0
        self._lost_said = 0
        self._inode: tuple[int, int] | None = None
        self._fd: int | None = fd
        self._owned = False
        #: Written first into every new file after rotation (a CSV header).
        self._header = b""
        if path is not None:
            self._fd = self._open(path)
        if self._fd is None:
            raise ValueError("OutputFile needs a path or a file descriptor")

    # -- the TextIO subset the writers use ------------------------------------

    def write(self, text: str) -> int:
        self._pending += text.encode("utf-8")
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        self._pending += data

    def remember_header(self, text: str) -> None:
        """A header line the writer wrote once: repeated at the top of each new file."""
        self._header = text.encode("utf-8")

    def fileno(self) -> int:
        if self._fd is None:
            raise OSError(errno.EBADF, "output file not open")
        return self._fd

    def isatty(self) -> bool:
        return self._fd is not None and os.isatty(self._fd)

    def flush(self) -> None:
        """Write every whole line pending; keep (or raise on) what cannot be written."""
        end = self._pending.rfind(b"\n") + 1 if self._lines else len(self._pending)
        if end <= 0:
            return
        if self._fd is None and self.path is not None:
            self._fd = self._try_open(self.path)
        if self._fd is None:
            self._bound_pending()
            return
        try:
            _write_whole(self._fd, bytes(self._pending[:end]))
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._failed(exc)
            return
        del self._pending[:end]
        self._recovered()

    @property
    def lines_unwritten(self) -> int:
        """Lines dropped for want of room, plus whole lines still waiting."""
        return self.lost_lines + (self._pending.count(b"\n") if self._lines else 0)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._owned and self._fd is not None:
                os.close(self._fd)
            self._fd = None

    # -- rotation -----------------------------------------------------------

    def reopen(self) -> None:
        """Flush into the old file, then open the path anew (SIGHUP)."""
        if self.path is None:
            return
        self.flush()
        self._close_fd()
        self._fd = self._try_open(self.path)
        if self._fd is not None:
            self._info(f"{self.what} reopened", path=self.path)

    def check(self) -> None:
        """Reopen when the path no longer names the open file (moved, deleted)."""
        if self.path is None:
            return
        try:
            info = os.stat(self.path)
        except OSError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) == self._inode:
            return
        if self._fd is not None and info is None:
            # Moved away or deleted: lines written into the old file may be read
            # by nobody, so the next ones go to a new file at the path.
            self._info(f"{self.what} file {self.path} was moved or deleted: opening it anew")
            self._close_fd()
        if self._fd is None:
            self._fd = self._try_open(self.path)
            self.flush()
        else:
            self._info(f"{self.what} file {self.path} was replaced: opening it anew")
            self.reopen()

    # -- internals ------------------------------------------------------------

    def _open(self, path: str) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        info = os.fstat(fd)
        self._inode = (info.st_dev, info.st_ino)
        self._owned = True
        if self._header and info.st_size == 0:
            self._pending[:0] = self._header
        return fd

    def _try_open(self, path: str) -> int | None:
        try:
            return self._open(path)
        except OSError as exc:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                text = f"cannot write {self.what} {path}: its directory {directory} vanished"
            else:
                text = f"cannot open {self.what} {path}: {exc.strerror or exc}"
            self._say_failure(text, "lines are kept in memory and written when it can be opened")
            return None

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._owned:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _failed(self, exc: OSError) -> None:
        text = f"cannot write {self.what}" + (f" {self.path}" if self.path else "")
        text += f": {exc.strerror or exc}"
        if not self._keep:
            self._pending.clear()
            raise OutputError(text) from None
        self._say_failure(text, "free disk space; lines are kept in memory and retried")
        self._bound_pending()

    def _say_failure(self, text: str, hint: str) -> None:
        if self._failing != text:
            self._failing = text
            if self._log is not None:
                self._log.error(text, hint=hint)

    def _recovered(self) -> None:
        if self._failing is not None:
            self._failing = None
            self._info(f"writing {self.what} again", lost_lines=self.lost_lines)

    def _bound_pending(self) -> None:
        excess = len(self._pending) - MAX_PENDING
        if excess <= 0:
            return
        cut = self._pending.find(b"\n", excess) + 1 if self._lines else excess
        cut = cut or len(self._pending)
        self.lost_lines += self._pending.count(b"\n", 0, cut) if self._lines else 1
        del self._pending[:cut]
        if self._log is not None and self.lost_lines > self._lost_said:
            self._lost_said = self.lost_lines
            self._log.error(
                f"{self.what}: lines lost, no room to keep them",
                lost_lines=self.lost_lines,
            )

    def _info(self, text: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.info(text, **fields)


def _write_whole(fd: int, data: bytes) -> None:
    """Write all of ``data`` or, in a regular file, none of it."""
    start = _size_if_regular(fd)
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        if start is not None:
            # Cut a partial write back: a half line would corrupt the next one.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
        raise


def _size_if_regular(fd: int) -> int | None:
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
