"""DLMS general block transfer (APDU tag 0xE0), sans I/O.

A meter whose push does not fit one link frame may cut the APDU into blocks,
each sent as its own APDU (Landis+Gyr E450/E570 do, one block per HDLC frame)::

    E0 | block control (1) | block number (2) | acknowledged block (2) | BER length | data

Block control: bit 7 last block, bit 6 streaming, bits 5..0 the window size.
Blocks are numbered from 1 (0 is accepted as a first block too); a push
acknowledges nothing, so the acknowledged number is kept but not used. The
joined data is a complete APDU again, usually a data-notification or a
general-glo-ciphering that wraps one.
"""

from __future__ import annotations

from dataclasses import dataclass

from amsread.dlms.apdu import GENERAL_BLOCK_TRANSFER
from amsread.dlms.axdr import decode_length
from amsread.errors import ApduError, AxdrError
from amsread.model import Rejected, Skipped

LAST_BLOCK = 0x80
STREAMING = 0x40
WINDOW_MASK = 0x3F
#: Block numbers a transfer may start with.
FIRST_NUMBERS = (0, 1)
#: Largest APDU the blocks of one transfer may add up to; longer ones are dropped.
MAX_TRANSFER = 16 * 1024
#: Most blocks one transfer may take: empty blocks must not grow memory either.
MAX_BLOCKS = 1024
#: Kept of a lost transfer's first block, for diagnostics.
MAX_REJECTED_KEEP = 64


@dataclass(frozen=True, slots=True)
class Block:
    """One general-block-transfer APDU."""

    last: bool
    streaming: bool
    window: int
    number: int
    acknowledged: int
    data: bytes


def parse_block(apdu: bytes) -> Block:
    """Split a general-block-transfer APDU into its fields; every byte must be used."""
    if len(apdu) < 7 or apdu[0] != GENERAL_BLOCK_TRANSFER:
        raise ApduError("not a complete general-block-transfer APDU")
    control = apdu[1]
    try:
        length, pos = decode_length(apdu, 6)
    except AxdrError as exc:
        raise ApduError(f"general-block-transfer block length: {exc}") from exc
    data = apdu[pos : pos + length]
    if len(data) != length:
        raise ApduError(
            f"general-block-transfer block announces {length} bytes but {len(data)} follow"
        )
    if pos + length != len(apdu):
        raise ApduError(f"{len(apdu) - pos - length} bytes after the general-block-transfer block")
    return Block(
        last=bool(control & LAST_BLOCK),
        streaming=bool(control & STREAMING),
        window=control & WINDOW_MASK,
        number=int.from_bytes(apdu[2:4], "big"),
        acknowledged=int.from_bytes(apdu[4:6], "big"),
        data=data,
    )


BlockEvent = bytes | Rejected | Skipped


class BlockAssembler:
    """Joins the blocks of one transfer, in order, into the APDU they carry.

    ``push(block)`` returns the completed APDU (as ``bytes``) when the last
    block arrives. A block that is missing, repeated or out of order drops
    the partial transfer as one ``blocks_lost`` rejection; blocks that follow,
    up to the next first block, are ``Skipped`` rather than reported again.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._next = 0
        # After a loss: drop blocks until the next first block.
        self._dropping = False
        #: How many blocks the last joined APDU was made of.
        self.joined_blocks = 0

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def push(self, block: Block) -> list[BlockEvent]:
        out: list[BlockEvent] = []
        if self._parts and block.number != self._next:
            self._lose(out, f"block {block.number} came where block {self._next} was expected")
        if not self._parts and block.number not in FIRST_NUMBERS:
            if self._dropping:
                out.append(
                    Skipped(f"general-block-transfer block {block.number} of a lost transfer")
                )
            else:
                detail = f"block {block.number} arrived without the blocks before it"
                out.append(
                    Rejected("blocks_lost", len(block.data), block.data[:MAX_REJECTED_KEEP], detail)
                )
            # Until the next first block, what comes belongs to this lost transfer.
            self._dropping = True
            return out
        self._dropping = False
        self._parts.append(block.data)
        self._size += len(block.data)
        self._next = (block.number + 1) & 0xFFFF
        if self._size > MAX_TRANSFER or len(self._parts) > MAX_BLOCKS:
            self._lose(out, f"the transfer grew beyond {MAX_TRANSFER} bytes or {MAX_BLOCKS} blocks")
        elif block.last:
            out.append(b"".join(self._parts))
            self.joined_blocks = len(self._parts)
            self._parts, self._size = [], 0
        return out

    def discard(self, why: str) -> list[Rejected]:
        """Give up the partial transfer (the stream ended, a block was malformed)."""
        out: list[Rejected] = []
        if self._parts:
            self._lose(out, why)
        return out

    def _lose(self, out: list[BlockEvent] | list[Rejected], why: str) -> None:
        head = self._parts[0][:MAX_REJECTED_KEEP]
        detail = f"{len(self._parts)} block(s) of a general-block-transfer dropped: {why}"
        out.append(Rejected("blocks_lost", self._size, head, detail))
        self._parts, self._size = [], 0
        self._dropping = True
