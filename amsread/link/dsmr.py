"""DSMR P1 telegram framing, sans I/O.

A text telegram (DSMR 5.0.2 P1 companion standard, section 6.2)::

    /AAAZ identification CR LF CR LF  data lines …  ! CRC CR LF

starts at ``/`` followed by the three-letter manufacturer flag, ends at ``!``
and four hex digits of CRC-16/ARC computed over ``/`` … ``!``, then CR LF.
DSMR 2.2 and 3 send no CRC (``!`` CR LF). The encrypted P1 ports (Luxembourg
Smarty, Austrian P1) send the telegram inside a DLMS general-glo-ciphering
APDU instead: ``DB 08 <system title> <BER length> <security header> …``.

``DsmrFramer.feed(bytes)`` returns ``Telegram``, ``CipheredTelegram`` and
``Rejected`` events. A ``/`` before the ``!`` of the telegram in progress
means bytes were lost: that telegram is rejected as ``truncated`` and
scanning resumes at the new ``/``. A CRC that does not match is ``bad_crc``.
The buffer never holds more than one telegram of ``MAX_TELEGRAM`` bytes.
"""

from __future__ import annotations

import re
import sys
from array import array
from dataclasses import dataclass, field
from functools import cache

from amsread.link.scanner import Scanner
from amsread.model import Rejected

START = b"/"
END = b"!"
#: The general-glo-ciphering tag and the system title length of an encrypted telegram.
CIPHERED_START = b"\xdb\x08"
#: Longest telegram accepted from ``/`` to its CRC; real ones are 1-3 KiB.
MAX_TELEGRAM = 16 * 1024
#: ``!`` + four hex digits + CR LF, with room for a stray byte.
MAX_TAIL = 8
#: A data line ``A-B:C.D.E(``: what marks a CRC-less telegram as one.
DSMR_LINE = re.compile(rb"\n\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}\(")
#: System title tag and length, 8 bytes of title, length byte.
_CIPHERED_HEADER = 11


@dataclass(frozen=True, slots=True)
class Telegram:
    """One text telegram, ``/`` to the final LF; ``crc`` None when it sends none (DSMR 2.2/3)."""

    raw: bytes
    crc: int | None
    #: Where the ``/`` is in the stream fed to the framer.
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class CipheredTelegram:
    """One general-glo-ciphering APDU that carries a telegram (Smarty, Austrian P1)."""

    raw: bytes
    #: Where its first byte (DB) is in the stream fed to the framer.
    offset: int = field(default=-1, compare=False)


DsmrEvent = Telegram | CipheredTelegram | Rejected


@cache
def _crc_tables() -> tuple[list[int], list[int]]:
    """CRC-16/ARC (poly 0x8005 reflected, init 0) by byte and by 16-bit word."""
    by_byte = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        by_byte.append(crc)
    # Two bytes b0 b1 at once: the state XOR (b0 | b1 << 8) picks the entry,
    # so one lookup per word halves the Python loop (about 20 µs a telegram).
    by_word = [
        (by_byte[x & 0xFF] >> 8) ^ by_byte[((x >> 8) ^ by_byte[x & 0xFF]) & 0xFF]
        for x in range(0x10000)
    ]
    return by_byte, by_word


def crc16_arc(data: bytes | bytearray | memoryview) -> int:
    """The CRC-16/ARC of ``data`` (the DSMR telegram CRC)."""
    by_byte, by_word = _crc_tables()
    raw = bytes(data)
    even = len(raw) & ~1
    words = array("H", raw[:even])
    if sys.byteorder == "big":
        words.byteswap()
    crc = 0
    for word in words:
        crc = by_word[crc ^ word]
    if even != len(raw):
        crc = (crc >> 8) ^ by_byte[(crc ^ raw[-1]) & 0xFF]
    return crc


#: Gap lengths whose zero-advance tables ``TelegramCrc`` keeps (a meter's layout has a few dozen).
MAX_GAP_TABLES = 512
#: More runs of changed bytes than this and the CRC is computed in full.
MAX_CHANGED_RUNS = 64
#: Zero-advance tables one telegram may add; other new gaps are composed (~5 lookups).
MAX_NEW_TABLES = 4
_NONZERO_RUN = re.compile(rb"[^\x00]+")
#: A state moved over n zero bytes: the image of its low byte XOR that of its high byte.
_GapTables = tuple[list[int], list[int]]


class TelegramCrc:
    """CRC-16/ARC of telegram after telegram, from what changed since the one before.

    CRC-16/ARC starts at 0 and adds no final XOR, so it is linear:
    crc(a XOR b) = crc(a) XOR crc(b) for inputs of one length. A meter's
    telegrams keep their length and layout and only some digits change, so
    the XOR of two in a row is mostly zero bytes. Zero bytes leave a zero
    state zero, and move any other state by a linear map (two 256-entry
    tables per run length, kept): the CRC costs the changed bytes, not the
    whole telegram. Anything else is computed in full.
    """

    def __init__(self) -> None:
        self._last = b""
        self._last_crc = 0
        self._gaps: dict[int, _GapTables] = {}
        self._new_tables = 0

    def __call__(self, data: bytes) -> int:
        last = self._last
        crc = None
        if len(data) == len(last):
            diff = (int.from_bytes(data) ^ int.from_bytes(last)).to_bytes(len(data))
            changed = self._sparse(diff)
            if changed is not None:
                crc = self._last_crc ^ changed
        if crc is None:
            crc = crc16_arc(data)
        self._last, self._last_crc = data, crc
        return crc

    def _sparse(self, diff: bytes) -> int | None:
        """The CRC of bytes that are mostly zero, run of changes by run; None if not sparse."""
        spans = [run.span() for run in _NONZERO_RUN.finditer(diff)]
        if len(spans) > MAX_CHANGED_RUNS:
            return None
        by_byte = _crc_tables()[0]
        self._new_tables = 0
        crc = 0
        pos = 0
        for start, end in spans:
            if crc and start > pos:
                crc = self._advance(crc, start - pos)
            for byte in diff[start:end]:
                crc = (crc >> 8) ^ by_byte[(crc ^ byte) & 0xFF]
            pos = end
        if crc and pos < len(diff):
            crc = self._advance(crc, len(diff) - pos)
        return crc

    def _advance(self, crc: int, zeros: int) -> int:
        """The state after ``zeros`` zero bytes."""
        tables = self._gaps.get(zeros)
        if tables is None:
            # A table costs ~0.5 ms: a few per telegram while a meter's layout
            # is learnt, the rest composed from the tables of powers of two.
            if self._new_tables >= MAX_NEW_TABLES:
                return _compose(crc, zeros)
            self._new_tables += 1
            if len(self._gaps) >= MAX_GAP_TABLES:
                self._gaps.clear()
            tables = self._gaps[zeros] = _gap_tables(zeros)
        low, high = tables
        return low[crc & 0xFF] ^ high[crc >> 8]


def _compose(crc: int, zeros: int) -> int:
    """The state after ``zeros`` zero bytes, a table per set bit of ``zeros``."""
    level = 0
    while zeros:
        if zeros & 1:
            low, high = _power_tables(level)
            crc = low[crc & 0xFF] ^ high[crc >> 8]
        zeros >>= 1
        level += 1
    return crc


@cache
def _power_tables(level: int) -> _GapTables:
    return _gap_tables(1 << level)


def _gap_tables(zeros: int) -> _GapTables:
    """The state after ``zeros`` zero bytes, by the state's low and high byte."""
    # The images of the 16 state bits, moved by squaring: log2(zeros) compositions.
    images = [1 << i for i in range(16)]
    step = _one_zero_images()
    while zeros:
        if zeros & 1:
            images = [_apply(step, image) for image in images]
        step = [_apply(step, image) for image in step]
        zeros >>= 1
    low, high = [0] * 256, [0] * 256
    for value in range(1, 256):
        lowest = (value & -value).bit_length() - 1
        rest = value & (value - 1)
        low[value] = low[rest] ^ images[lowest]
        high[value] = high[rest] ^ images[lowest + 8]
    return low, high


@cache
def _one_zero_images() -> list[int]:
    by_byte = _crc_tables()[0]
    return [(bit >> 8) ^ by_byte[bit & 0xFF] for bit in (1 << i for i in range(16))]


def _apply(images: list[int], state: int) -> int:
    """The linear map given by the images of the 16 bits, applied to ``state``."""
    out = 0
    for bit in range(16):
        if state >> bit & 1:
            out ^= images[bit]
    return out


def _is_crc(tail: bytes | bytearray) -> bool:
    # Four hex digits; some meters (NWA Warmtelink) drop leading zeros.
    return 1 <= len(tail) <= 4 and all(c in b"0123456789ABCDEFabcdef" for c in tail)


class DsmrFramer(Scanner[Telegram | CipheredTelegram]):
    """Finds telegrams in a byte stream. Feed it bytes, get events back."""

    def __init__(self) -> None:
        super().__init__()
        #: A telegram with a CRC came: from now on one without is damaged.
        self._crc_seen = False
        self._crc = TelegramCrc()

    def feed(self, data: bytes | bytearray | memoryview) -> list[DsmrEvent]:
        buf = self._buf
        buf += data
        events: list[DsmrEvent] = []
        pos = 0
        while True:
            start = self._next_start(pos)
            if start < 0:
                # A lone DB at the very end may be the start of DB 08.
                keep = 1 if buf[-1:] == CIPHERED_START[:1] else 0
                self._garbage(pos, len(buf) - keep)
                pos = max(pos, len(buf) - keep)
                break
            self._garbage(pos, start)
            pos = start
            step = (
                self._text(events, start)
                if buf[start : start + 1] == START
                else self._ciphered(events, start)
            )
            if step < 0:
                break  # waiting for more bytes
            pos = step
        self._consume(pos)
        return events

    def close(self) -> list[DsmrEvent]:
        """End of stream: a telegram still waiting for its end is truncated."""
        events = self.feed(b"")
        if self._buf:
            detail = "the stream ended before the end of this telegram"
            self._reject(events, "truncated", 0, len(self._buf), detail)
        self._finish(events)
        return events

    def _next_start(self, pos: int) -> int:
        buf = self._buf
        text = buf.find(START, pos)
        ciphered = buf.find(CIPHERED_START, pos, text if text >= 0 else len(buf))
        return ciphered if ciphered >= 0 else text

    def _text(self, events: list[DsmrEvent], start: int) -> int:
        """Handle the telegram at ``start``; the index to go on from, or -1 to wait."""
        buf = self._buf
        flag = buf[start + 1 : start + 4]
        if len(flag) < 3:
            return -1
        if not flag.isalpha():
            return start + 1  # a '/' that starts no identification line
        end = buf.find(END, start + 1, start + MAX_TELEGRAM)
        restart = buf.find(START, start + 1, end if end >= 0 else start + MAX_TELEGRAM)
        if restart >= 0:
            detail = "a new telegram began before this one ended: bytes were lost"
            self._reject(events, "truncated", start, restart, detail)
            return restart
        if end < 0:
            if len(buf) - start < MAX_TELEGRAM:
                return -1
            detail = f"no end ('!') within {MAX_TELEGRAM} bytes"
            self._reject(events, "truncated", start, start + MAX_TELEGRAM, detail)
            return start + MAX_TELEGRAM
        newline = buf.find(b"\n", end + 1, end + 1 + MAX_TAIL)
        if newline < 0:
            if len(buf) - end <= MAX_TAIL:
                return -1
            detail = "the end ('!') is not followed by a CRC and CR LF"
            self._reject(events, "bad_crc", start, end + 1, detail)
            return end + 1
        tail = buf[end + 1 : newline].rstrip(b"\r")
        if not tail:
            why = self._crc_needed(start, end)
            if why:
                self._reject(events, "bad_crc", start, newline + 1, why)
            else:
                self._telegram(events, start, newline, None)
            return newline + 1
        if not _is_crc(tail):
            detail = f"the end ('!') is followed by {bytes(tail)!r}, not a CRC of hex digits"
            self._reject(events, "bad_crc", start, newline + 1, detail)
            return newline + 1
        received = int(tail, 16)
        computed = self._crc(bytes(buf[start : end + 1]))
        if computed != received:
            detail = f"telegram CRC mismatch: computed {computed:04X}, received {received:04X}"
            self._reject(events, "bad_crc", start, newline + 1, detail)
            return newline + 1
        self._crc_seen = True
        self._telegram(events, start, newline, received)
        return newline + 1

    def _crc_needed(self, start: int, end: int) -> str:
        """Why a telegram that ends without a CRC cannot be a DSMR 2.2/3 one ("" if it can).

        A bit flipped into ``!`` ends a DSMR 4/5 telegram early, CRC-less; such
        a piece is told from a real DSMR 2.2/3 telegram: those never carry the
        version line 1-3:0.2.8, and a meter that sent a CRC always does.
        """
        body = self._buf[start:end]
        if self._crc_seen:
            return "a telegram without CRC from a meter that sends one: damaged or cut"
        if DSMR_LINE.search(body) is None:
            return "a telegram without CRC or data lines: damaged or cut"
        if b"\n1-3:0.2.8(" in body:
            return "a DSMR 4/5 telegram (version line 1-3:0.2.8) without its CRC: damaged"
        return ""

    def _telegram(self, events: list[DsmrEvent], start: int, newline: int, crc: int | None) -> None:
        self._flush_garbage(events)  # garbage before a telegram is reported ahead of it
        events.append(Telegram(bytes(self._buf[start : newline + 1]), crc, self._offset + start))

    def _ciphered(self, events: list[DsmrEvent], start: int) -> int:
        """Handle the ciphered APDU at ``start``; the index to go on from, or -1 to wait."""
        buf = self._buf
        header_end = start + _CIPHERED_HEADER
        if len(buf) < header_end + 2:
            return -1
        first = buf[header_end - 1]
        if first < 0x80:
            length, body = first, header_end
        elif first in (0x81, 0x82):
            size = first - 0x80
            length, body = (
                int.from_bytes(buf[header_end : header_end + size], "big"),
                (header_end + size),
            )
        else:
            return start + 1  # no BER length: not a ciphered telegram
        if not 17 <= length <= MAX_TELEGRAM:
            return start + 1
        end = body + length
        if len(buf) < end:
            return -1
        self._flush_garbage(events)
        events.append(CipheredTelegram(bytes(buf[start:end]), self._offset + start))
        return end
