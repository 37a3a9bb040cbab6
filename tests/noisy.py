"""A noisy line: valid pushes from several meters, some damaged, and what must come out.

``noisy_line(n, seed, link=...)`` builds the byte stream a reader would see on
a bad HAN/P1 line and records, for every stretch of it, whether it is intact
and which message it must decode to. Used by ``tests/link/test_noisy_stream.py``
(CI, 20,000+ frames) and ``bench/noisy_line.py`` (millions). Frames are built
with ``builders`` and the M-Bus helpers below, independently of the decoders.

An HDLC line interleaves, at push boundaries, four meters:

* ``plain``: an unciphered data-notification (only the HDLC checksums guard it);
* ``kamstrup``: the Radius plaintext, AES-GCM ciphered and authenticated (0x30);
* ``iskra``: a small list ciphered without authentication (0x20);
* ``segmented``: the Radius plaintext (0x30) cut into three HDLC segments.

An M-Bus line (DLMS transport segments in long frames, as Austrian meters
send) carries ``plain`` (one frame), ``kaifa`` (0x20, two frames) and
``sagemcom`` (the Radius plaintext, 0x30, three frames).

Every message carries values unique to its push (a sequence number in the
invoke id, the energy register, the meter time; the invocation counter), so
each message that comes out names the push it came from.

About 1% of the frames are damaged: a flipped bit, truncation, junk inserted,
bytes dropped. Besides: duplicated pushes, bursts of junk between pushes,
link-layer frames without data (also between segments, where they interrupt
nothing), and a stream that starts in the middle of a frame.

What must come out, in order (``NoisyLine.expected``): one message per push
whose frames all arrived intact. A duplicated unciphered push is a second
valid push on the line, indistinguishable from a repeated one, so it comes
out again. A duplicated ciphered push is dropped by the invocation-counter
replay guard: each (system title, invocation counter) comes out once.

Chance (``NoisyLine.chance``): damage can leave bytes that form a valid frame
anyway (a 16-bit CRC, or M-Bus's sum and stop byte, matches 1 in 65,536 random
windows). Independently of the framers, every start byte in a damaged stretch
(and, for HDLC, the flag just before it) is checked for starting a frame with
valid checksums. If that frame's bytes equal the original frame, the damage
did not destroy it (e.g. a dropped opening flag when the previous closing flag
takes its place): it counts as intact and must come out. Otherwise it is a
chance frame: what it decodes to is tolerated (the checksum was the only
guard), and so is the loss of any push whose frames it overlaps or splits.
(A frame truncated by one byte survives if the next frame's first byte
happens to equal the missing one; the next frame then loses that byte and is
treated like one a chance frame overlaps.) An authenticated ciphered chance
frame still fails its GCM tag, so only unauthenticated pushes can yield a
message this way.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import seed_vectors as sv
from builders import LLC, cipher_apdu, hdlc_frame

from amsread.dlms.keys import Keys
from amsread.link.crc import crc16_x25
from amsread.model import Event, Failure, Message, Rejected
from amsread.pipeline import Pipeline

KEY = bytes.fromhex(sv.RADIUS_KEY)
AUTH_KEY = bytes.fromhex(sv.RADIUS_AUTH_KEY)
KAMSTRUP_TITLE = bytes.fromhex(sv.RADIUS_SYSTEM_TITLE)
SEGMENTED_TITLE = b"KAMseg01"
ISKRA_TITLE = b"NOISE\x00\x00\x02"
KAIFA_TITLE = b"NOISE\x00\x00\x03"
SAGEMCOM_TITLE = b"NOISE\x00\x00\x04"

DAMAGE_KINDS = ("bit_flip", "truncated", "junk_inside", "dropped")
LINKS = ("hdlc", "mbus")
FLAG = 0x7E


# -- what a message looks like -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    """The parts of a Message that identify its push and prove its values."""

    system_title: str | None
    invocation_counter: int | None
    meter_time: str | None
    readings: tuple[tuple[str | None, object, str | None], ...]


def fingerprint(message: Message) -> Expected:
    return Expected(
        message.system_title,
        message.invocation_counter,
        message.meter_time,
        tuple((r.obis, r.value, r.unit) for r in message.readings),
    )


RADIUS_EXPECTED_READINGS = (
    ("1.1.0.2.129.255", "Kamstrup_V0001", None),
    *sv.RADIUS_READINGS,
)


# -- building pushes ------------------------------------------------------------

_BASE_TIME = dt.datetime(2024, 3, 1, 0, 0, 0)


def _cosem_datetime(when: dt.datetime) -> bytes:
    # Day of week 0xFF (not specified), hundredths 0xFF, deviation unspecified.
    return (
        when.year.to_bytes(2, "big")
        + bytes([when.month, when.day, 0xFF, when.hour, when.minute, when.second, 0xFF])
        + b"\x80\x00\x00"
    )


def _triplet(obis: bytes, value: bytes, scaler: int, unit: int) -> bytes:
    # OBIS, value, {scaler, unit}: the list carries its own scaling, so no
    # profile (built-in now or added later) can change what it decodes to.
    return (
        b"\x09\x06"
        + obis
        + value
        + b"\x02\x02\x0f"
        + scaler.to_bytes(1, "big", signed=True)
        + b"\x16"
        + bytes([unit])
    )


Readings = tuple[tuple[str | None, object, str | None], ...]


def small_list(seq: int, base_minutes: int) -> tuple[bytes, str, Readings]:
    """A data-notification unique to ``seq``: (APDU, meter time, readings)."""
    when = _BASE_TIME + dt.timedelta(minutes=base_minutes, seconds=10 * seq)
    energy = 1_000_000 + 7 * seq
    power = seq % 9973
    voltage = 2200 + seq % 200
    body = (
        b"\x02\x09"
        + _triplet(bytes([1, 0, 1, 8, 0, 255]), b"\x06" + energy.to_bytes(4, "big"), 0, 30)
        + _triplet(bytes([1, 0, 1, 7, 0, 255]), b"\x06" + power.to_bytes(4, "big"), 0, 27)
        + _triplet(bytes([1, 0, 32, 7, 0, 255]), b"\x12" + voltage.to_bytes(2, "big"), -1, 35)
    )
    apdu = b"\x0f" + seq.to_bytes(4, "big") + b"\x0c" + _cosem_datetime(when) + body
    readings = (
        ("1.0.1.8.0.255", energy, "Wh"),
        ("1.0.1.7.0.255", power, "W"),
        ("1.0.32.7.0.255", voltage / 10, "V"),
    )
    return apdu, when.isoformat(), readings


@dataclass(frozen=True, slots=True)
class Push:
    """One push as the meter sent it: one or more frames, and the message it carries."""

    meter: str
    frames: tuple[bytes, ...]
    expected: Expected | None
    system_title: bytes | None = None
    invocation_counter: int | None = None


def _plain(seq: int) -> tuple[bytes, Expected]:
    apdu, when, readings = small_list(seq, 0)
    return apdu, Expected(None, None, when, readings)


def _small_ciphered(seq: int, title: bytes, base: int) -> tuple[bytes, Expected, int]:
    counter = base + seq
    plain, when, readings = small_list(seq, base)
    apdu = cipher_apdu(
        plain, key=KEY, system_title=title, invocation_counter=counter, security_control=0x20
    )
    return apdu, Expected(title.hex().upper(), counter, when, readings), counter


def _radius(seq: int, title: bytes, base: int) -> tuple[bytes, Expected, int]:
    counter = base + seq
    apdu = cipher_apdu(
        sv.RADIUS_PLAINTEXT,
        key=KEY,
        auth_key=AUTH_KEY,
        system_title=title,
        invocation_counter=counter,
        length_form="82",
    )
    expected = Expected(
        title.hex().upper(), counter, sv.RADIUS_METER_TIME, RADIUS_EXPECTED_READINGS
    )
    return apdu, expected, counter


def plain_push(seq: int) -> Push:
    apdu, expected = _plain(seq)
    return Push("plain", (hdlc_frame(LLC + apdu),), expected)


def kamstrup_push(seq: int) -> Push:
    apdu, expected, counter = _radius(seq, KAMSTRUP_TITLE, 1_000_000)
    return Push("kamstrup", (hdlc_frame(LLC + apdu),), expected, KAMSTRUP_TITLE, counter)


def iskra_push(seq: int) -> Push:
    apdu, expected, counter = _small_ciphered(seq, ISKRA_TITLE, 7_000)
    frame = hdlc_frame(LLC + apdu, destination=b"\xcf", source=b"\x02\x23")
    return Push("iskra", (frame,), expected, ISKRA_TITLE, counter)


def hdlc_segments(info: bytes, size: int, destination: bytes, source: bytes) -> tuple[bytes, ...]:
    """``info`` in UI frames of ``size`` bytes, the segmentation bit on all but the last."""
    pieces = [info[i : i + size] for i in range(0, len(info), size)]
    return tuple(
        hdlc_frame(piece, segmented=i < len(pieces) - 1, destination=destination, source=source)
        for i, piece in enumerate(pieces)
    )


def segmented_push(seq: int) -> Push:
    apdu, expected, counter = _radius(seq, SEGMENTED_TITLE, 50_000)
    frames = hdlc_segments(LLC + apdu, 200, b"\x41", b"\x05")
    return Push("segmented", frames, expected, SEGMENTED_TITLE, counter)


def link_frame() -> bytes:
    """A receive-ready frame without information: valid, but no push."""
    return hdlc_frame(b"", control=0x31)


# -- M-Bus ------------------------------------------------------------------------


def mbus_long_frame(data: bytes, ci: int, *, control: int = 0x53, address: int = 0xFF) -> bytes:
    """One wired M-Bus long frame (EN 13757-2) with a valid checksum."""
    body = bytes([control, address, ci]) + data
    if len(body) > 255:
        raise ValueError("an M-Bus long frame holds at most 252 data bytes")
    length = len(body)
    return bytes([0x68, length, length, 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def mbus_segments(apdu: bytes, *, size: int = 226, address: int = 0xFF) -> list[bytes]:
    """An APDU as DLMS transport segments: CI = sequence number, 0x10 on the last."""
    pieces = [apdu[i : i + size] for i in range(0, len(apdu), size)] or [b""]
    return [
        mbus_long_frame(
            b"\x01\x67" + piece,
            (i & 0x0F) | (0x10 if i == len(pieces) - 1 else 0),
            address=address,
        )
        for i, piece in enumerate(pieces)
    ]


def mbus_short_frame(control: int = 0x40, address: int = 0x01) -> bytes:
    """A short frame (no data): valid, but no push."""
    return bytes([0x10, control, address, (control + address) & 0xFF, 0x16])


def mbus_plain_push(seq: int) -> Push:
    apdu, expected = _plain(seq)
    return Push("plain", tuple(mbus_segments(apdu, address=0x01)), expected)


def kaifa_push(seq: int) -> Push:
    apdu, expected, counter = _small_ciphered(seq, KAIFA_TITLE, 9_000)
    frames = tuple(mbus_segments(apdu, size=60, address=0x02))
    return Push("kaifa", frames, expected, KAIFA_TITLE, counter)


def sagemcom_push(seq: int) -> Push:
    apdu, expected, counter = _radius(seq, SAGEMCOM_TITLE, 3_000)
    frames = tuple(mbus_segments(apdu, size=200, address=0x03))
    return Push("sagemcom", frames, expected, SAGEMCOM_TITLE, counter)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    meters: dict[str, Callable[[int], Push]]
    weights: tuple[float, ...]
    idle: Callable[[], bytes]
    starts: bytes


HDLC = LinkSpec(
    {
        "plain": plain_push,
        "kamstrup": kamstrup_push,
        "iskra": iskra_push,
        "segmented": segmented_push,
    },
    (0.65, 0.08, 0.22, 0.05),
    link_frame,
    b"\x7e",
)
MBUS = LinkSpec(
    {"plain": mbus_plain_push, "kaifa": kaifa_push, "sagemcom": sagemcom_push},
    (0.6, 0.3, 0.1),
    mbus_short_frame,
    b"\x68\x10",
)
SPECS = {"hdlc": HDLC, "mbus": MBUS}


# -- damage -----------------------------------------------------------------------


def damage(raw: bytes, kind: str, rng: random.Random) -> bytes:
    """Damage a frame between its first byte and its checksum (truncation loses the rest).

    An HDLC frame's closing flag, or an M-Bus frame's stop byte, survives
    the other kinds of damage.
    """
    body, tail = raw[:-1], raw[-1:]
    if kind == "bit_flip":
        pos = rng.randrange(len(body))
        flipped = body[:pos] + bytes([body[pos] ^ (1 << rng.randrange(8))]) + body[pos + 1 :]
        return flipped + tail
    if kind == "truncated":
        return body[: rng.randrange(1, len(body))]
    if kind == "junk_inside":
        pos = rng.randrange(1, len(body))
        return body[:pos] + junk(rng, rng.randint(1, 32)) + body[pos:] + tail
    if kind == "dropped":
        count = rng.randint(1, 8)
        pos = rng.randrange(len(body) - count)
        return body[:pos] + body[pos + count :] + tail
    raise ValueError(kind)


def junk(rng: random.Random, size: int) -> bytes:
    """Noise as a wrong baud rate gives it: random, with start bytes of both framings."""
    out = bytearray(rng.randbytes(size))
    for _ in range(size // 16):
        pos = rng.randrange(size)
        marker = rng.choice((b"\x7e\xa0", b"\x68", b"\x10", b"\x16", b"\xe5"))
        out[pos : pos + len(marker)] = marker[: size - pos]
    return bytes(out)


# -- the line -------------------------------------------------------------------


@dataclass(slots=True)
class Piece:
    """One stretch of the line and what it must decode to."""

    kind: str  # intact, link, junk, start_tail, or a DAMAGE_KINDS name
    start: int
    end: int
    push: Push | None = None
    #: Which frame of the push, and which delivery of it (0, or 1 for a duplicate).
    segment: int = 0
    delivery: int = 0
    original: bytes = b""
    #: Set when damage left the original frame's bytes valid after all.
    survived: bool = False
    #: Bytes the damage left before / after a surviving frame (read as garbage).
    stray_before: bool = False
    stray_after: bool = False

    @property
    def valid(self) -> bool:
        return self.kind in ("intact", "link") or self.survived


@dataclass(frozen=True, slots=True)
class ChanceFrame:
    """A checksum-valid frame that damage made out of bytes that were no such frame."""

    start: int
    end: int


@dataclass(slots=True)
class Delivery:
    """One sending of a push: its pieces on the line, in order."""

    push: Push
    pieces: list[int]
    start: int
    end: int
    complete: bool


@dataclass(slots=True)
class NoisyLine:
    link: str
    data: bytes
    pieces: list[Piece]
    chance: list[ChanceFrame] = field(default_factory=list)

    def count(self, *kinds: str) -> int:
        return sum(p.kind in kinds for p in self.pieces)

    @property
    def frames(self) -> int:
        """Push frames put on the line, damaged or not."""
        return sum(p.push is not None for p in self.pieces)

    @property
    def damaged(self) -> int:
        return sum(p.kind in DAMAGE_KINDS and not p.survived for p in self.pieces)

    @property
    def duplicates(self) -> list[Delivery]:
        return [d for d in self.deliveries() if self.pieces[d.pieces[0]].delivery == 1]

    def deliveries(self) -> list[Delivery]:
        """Each sending of a push, in line order (ordered by its last frame)."""
        found: dict[tuple[int, int], Delivery] = {}
        for index, piece in enumerate(self.pieces):
            if piece.push is None:
                continue
            key = (id(piece.push), piece.delivery)
            delivery = found.get(key)
            if delivery is None:
                delivery = found[key] = Delivery(piece.push, [], piece.start, piece.end, True)
            delivery.pieces.append(index)
            delivery.end = piece.end
            # Garbage between segments drops a message (it may be a damaged
            # segment); before the first or after the last it does not matter.
            last = len(piece.push.frames) - 1
            stray = (piece.stray_before and piece.segment > 0) or (
                piece.stray_after and piece.segment < last
            )
            delivery.complete &= piece.valid and not stray
        return sorted(found.values(), key=lambda d: d.pieces[-1])

    def expected(self) -> list[tuple[int, Expected]]:
        """(index of the last piece, message) for each message that must come out, in order."""
        last: dict[bytes, int] = {}
        out = []
        for delivery in self.deliveries():
            push = delivery.push
            if not delivery.complete or push.expected is None:
                continue
            if push.system_title is not None and push.invocation_counter is not None:
                # The replay guard: a counter not above the last accepted one is dropped.
                previous = last.get(push.system_title)
                if previous is not None and push.invocation_counter <= previous:
                    continue
                last[push.system_title] = push.invocation_counter
            out.append((delivery.pieces[-1], push.expected))
        return out

    def lost_to_chance(self) -> set[int]:
        """Last-piece indices of pushes a chance frame overlaps or splits (loss tolerated)."""
        hit = set()
        for chance in self.chance:
            for delivery in self.deliveries():
                if delivery.start < chance.end and chance.start < delivery.end:
                    hit.add(delivery.pieces[-1])
        return hit


class LineBuilder:
    """Puts pieces on a line, recording where each starts and ends."""

    def __init__(self, link: str = "hdlc") -> None:
        self.link = link
        self._parts: list[bytes] = []
        self.pieces: list[Piece] = []
        self._pos = 0

    def put(self, kind: str, data: bytes, push: Push | None = None, **where: int) -> None:
        original = push.frames[where.get("segment", 0)] if push is not None else b""
        self._parts.append(data)
        self.pieces.append(Piece(kind, self._pos, self._pos + len(data), push, **where))
        self.pieces[-1].original = original
        self._pos += len(data)

    def line(self) -> NoisyLine:
        line = NoisyLine(self.link, b"".join(self._parts), self.pieces)
        _find_chance_frames(line)
        return line


def noisy_line(
    n: int,
    seed: int,
    *,
    link: str = "hdlc",
    damage_rate: float = 0.01,
    duplicate_rate: float = 0.002,
    junk_rate: float = 0.003,
    idle_rate: float = 0.01,
) -> NoisyLine:
    """At least ``n`` push frames from interleaved meters, damaged as described above."""
    spec = SPECS[link]
    rng = random.Random(seed)
    seqs = dict.fromkeys(spec.meters, 0)
    names = list(spec.meters)
    out = LineBuilder(link)
    # The reader starts in the middle of a push.
    first = spec.meters[names[0]](1_000_000).frames[0]
    out.put("start_tail", first[rng.randrange(1, len(first) - 1) :])
    frames = 0
    while frames < n:
        name = rng.choices(names, spec.weights)[0]
        seqs[name] += 1
        push = spec.meters[name](seqs[name])
        copies = 2 if rng.random() < duplicate_rate else 1
        for delivery in range(copies):
            for segment, raw in enumerate(push.frames):
                frames += 1
                where = {"segment": segment, "delivery": delivery}
                if rng.random() < damage_rate:
                    kind = rng.choice(DAMAGE_KINDS)
                    out.put(kind, damage(raw, kind, rng), push, **where)
                else:
                    out.put("intact", raw, push, **where)
                if rng.random() < idle_rate:
                    # Link-layer frames interrupt nothing, even between segments.
                    out.put("link", spec.idle())
        if rng.random() < junk_rate:
            out.put("junk", junk(rng, rng.randint(1, 300)))
    return out.line()


# -- an independent check of frame validity (the oracle) ------------------------


def _address_size(data: bytes, pos: int, limit: int) -> int:
    for size in range(1, 5):
        if pos + size > limit:
            return 0
        if data[pos + size - 1] & 1:
            return size if size != 3 else 0
    return 0


def valid_frame_end(data: bytes, start: int) -> int | None:
    """End of the HDLC frame starting at the flag at ``start`` if its checksums hold."""
    if start + 3 > len(data) or data[start] != FLAG or data[start + 1] & 0xF0 != 0xA0:
        return None
    length = ((data[start + 1] & 0x07) << 8) | data[start + 2]
    end = start + 1 + length
    if end > len(data) or length < 7:
        return None
    destination = _address_size(data, start + 3, end)
    source = _address_size(data, start + 3 + destination, end) if destination else 0
    if not source:
        return None
    header_end = start + 3 + destination + source + 1
    if header_end + 2 != end:  # an information field: its own header checksum first
        if header_end + 5 > end:
            return None
        hcs = int.from_bytes(data[header_end : header_end + 2], "little")
        if crc16_x25(data[start + 1 : header_end]) != hcs:
            return None
    fcs = int.from_bytes(data[end - 2 : end], "little")
    return end if crc16_x25(data[start + 1 : end - 2]) == fcs else None


def valid_mbus_end(data: bytes, start: int) -> int | None:
    """End of the M-Bus long or short frame at ``start`` if its checksum and stop byte hold.

    A long frame is also tried at L + 256 (the Sagemcom length quirk).
    """
    first = data[start]
    if first == 0x10:
        short = data[start : start + 5]
        if len(short) == 5 and short[4] == 0x16 and (short[1] + short[2]) & 0xFF == short[3]:
            return start + 5
        return None
    if first != 0x68 or start + 4 > len(data):
        return None
    length = data[start + 1]
    if data[start + 2] != length or data[start + 3] != 0x68:
        return None
    for size in (length, length + 256):
        end = start + 4 + size + 2
        if (
            size >= 3
            and end <= len(data)
            and data[end - 1] == 0x16
            and sum(data[start + 4 : end - 2]) & 0xFF == data[end - 2]
        ):
            return end
    return None


def _starts(data: bytes, start: int, end: int, markers: bytes) -> Iterator[int]:
    for marker in markers:
        at = data.find(marker, start, end)
        while at >= 0:
            yield at
            at = data.find(marker, at + 1, end)


def _find_chance_frames(line: NoisyLine) -> None:
    data = line.data
    spec = SPECS[line.link]
    check = valid_frame_end if line.link == "hdlc" else valid_mbus_end
    # HDLC: the previous piece's closing flag can open a frame here too.
    back = 1 if line.link == "hdlc" else 0
    survivors = set()
    for piece in line.pieces:
        if piece.valid:
            continue
        for start in _starts(data, max(piece.start - back, 0), piece.end, spec.starts):
            end = check(data, start)
            if end is None:
                continue
            if piece.original and data[start:end] == _checked_part(piece.original, line.link):
                survivors.add(ChanceFrame(start, end))
                piece.survived = True
                piece.stray_before = start > piece.start
                piece.stray_after = start + len(piece.original) < piece.end
                if end > piece.end:
                    # Its last bytes were missing and the next frame's supplied
                    # them by chance: that frame is lost, as to a chance frame.
                    line.chance.append(ChanceFrame(piece.end, end))
            else:
                line.chance.append(ChanceFrame(start, end))
    # Seen from the stretch before it, a surviving frame looks like a chance one.
    line.chance = [c for c in line.chance if c not in survivors]


def _checked_part(raw: bytes, link: str) -> bytes:
    # An HDLC frame ends at its FCS (the closing flag is no part of it).
    return raw[:-1] if link == "hdlc" else raw


# -- comparing what came out ------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    expected: int
    recovered: int
    #: Expected messages that did not come out (index of their last piece).
    lost: list[int]
    #: Messages that came out but match no expected one, in order.
    invented: list[Expected]
    #: Damaged stretches followed by no Rejected/Failure event before the next message.
    silent: int


def compare(line: NoisyLine, events: Sequence[Event]) -> Outcome:
    """Line up the messages that came out with those expected, in order."""
    expected = line.expected()
    lost: list[int] = []
    invented: list[Expected] = []
    j = 0
    problems = 0
    silent = 0
    recovered = 0
    for event in events:
        if not isinstance(event, Message):
            problems += isinstance(event, Rejected | Failure)
            continue
        got = fingerprint(event)
        # Skip forward over expected messages that were lost, if this one is later.
        k = j
        while k < len(expected) and expected[k][1] != got:
            k += 1
        if k == len(expected):
            invented.append(got)
            continue
        lost += [index for index, _ in expected[j:k]]
        gap_start = expected[j - 1][0] if j else -1
        if problems == 0 and _problem_between(line, gap_start, expected[k][0]):
            silent += 1
        problems = 0
        recovered += 1
        j = k + 1
    lost += [index for index, _ in expected[j:]]
    return Outcome(len(expected), recovered, lost, invented, silent)


def _problem_between(line: NoisyLine, after: int, before: int) -> bool:
    """True if a stretch that must be reported lies between two pieces.

    HDLC flags alone are idle fill, not a problem (a frame truncated to its
    opening flag leaves nothing else).
    """
    data = line.data
    return any(
        not piece.valid and data[piece.start : piece.end].strip(b"\x7e")
        for piece in line.pieces[after + 1 : before]
    )


# -- feeding ----------------------------------------------------------------------


def feed_in_chunks(
    pipeline: Pipeline, data: bytes, rng: random.Random, largest: int
) -> list[Event]:
    """Feed ``data`` as a serial port would: chunks of 1 to ``largest`` bytes."""
    events: list[Event] = []
    pos = 0
    while pos < len(data):
        size = rng.randint(1, largest)
        events += pipeline.feed(data[pos : pos + size])
        pos += size
    return events + pipeline.close()


def make_pipeline(framing: str = "hdlc", clock: Callable[[], float] = lambda: 0.0) -> Pipeline:
    """A pipeline holding the keys of the ciphered meters."""
    return Pipeline(Keys(KEY, AUTH_KEY), clock=clock, framing=framing)
