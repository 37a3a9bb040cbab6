"""The one path an APDU takes after its link frame, sans I/O.

::

    APDU -> [general-block-transfer: join the blocks]
         -> [general-glo/ded-ciphering: header, replay guard, decrypt]
         -> data-notification | other APDU (skipped) | failure

``Unwrapper.feed(apdu)`` returns the steps one APDU went through, in order.
The pipeline builds a ``Message`` from the last one; ``explain`` annotates
every one; ``check-key`` collects the ciphered headers. Because they all
watch the same steps, a diagnostic cannot disagree with the daemon.

The steps, and when each comes:

* ``BlockReceived``: a block of a transfer was kept; the APDU continues in a
  later block. Nothing follows for this APDU.
* ``BlockLost``: the block assembler dropped blocks; ``event`` is a
  ``blocks_lost`` ``Rejected`` (a loss to count) or a ``Skipped`` block of a
  transfer already lost.
* ``TransferComplete``: the last block arrived; the steps of the joined APDU
  follow.
* ``CipheredHeader``: a ciphered APDU split into its fields. Without a
  decryptor (``check-key``) nothing follows it.
* ``Decrypted``: the plaintext, with whether its tag verified and whether the
  keys had to be swapped.
* ``NotificationReady``: a data-notification to build a ``Message`` from (the
  builder parses it, lazily).
* ``OtherApdu``: anything else (client/server traffic): skipped, by name.
* ``Failed``: why this APDU gives nothing, as a ``DecodeError``.

Steps are read-only by convention: they are not frozen dataclasses because
those cost ~0.3 µs more each, and a push makes up to three on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amsread.dlms.apdu import (
    CIPHERED_TAGS,
    DATA_NOTIFICATION,
    GENERAL_BLOCK_TRANSFER,
    NOT_A_NOTIFICATION,
    apdu_name,
)
from amsread.dlms.blocks import Block, BlockAssembler, parse_block
from amsread.dlms.ciphering import Ciphered, Plaintext, parse_ciphered
from amsread.errors import ApduError, DecodeError, DecryptionError
from amsread.model import Rejected, Skipped

#: Decrypts (and verifies) one ciphered APDU, raising a ``DecodeError`` when it cannot.
Decrypt = Callable[[Ciphered], Plaintext]
#: Raises ``ReplayError`` for a ciphered APDU that must not be accepted again.
ReplayGuard = Callable[[Ciphered], None]

_WRONG_KEY = "decryption gave no valid APDU: wrong encryption key or damaged frame"


@dataclass(slots=True)
class BlockReceived:
    """A general-block-transfer block, kept: the APDU continues in a later block."""

    block: Block


@dataclass(slots=True)
class BlockLost:
    """Blocks dropped: a ``blocks_lost`` rejection, or a skipped block of a lost transfer."""

    event: Rejected | Skipped


@dataclass(slots=True)
class TransferComplete:
    """The joined APDU of a block transfer, made of ``blocks`` blocks; its steps follow."""

    apdu: bytes
    blocks: int


@dataclass(slots=True)
class CipheredHeader:
    """A general-glo/ded-ciphering APDU split into its fields, not yet decrypted."""

    ciphered: Ciphered


@dataclass(slots=True)
class Decrypted:
    """The plaintext of a ciphered APDU.

    ``plain.authenticated``: True the tag verified, False a tag was not
    checked, None there is no tag; ``plain.keys_swapped``: it verified only
    with the two keys exchanged.
    """

    ciphered: Ciphered
    plain: Plaintext


@dataclass(slots=True)
class NotificationReady:
    """A data-notification APDU, in clear or deciphered (then with its ``ciphered``/``plain``)."""

    apdu: bytes
    ciphered: Ciphered | None = None
    plain: Plaintext | None = None

    def parse_failure(self, exc: ApduError) -> DecodeError:
        """What a failure to parse this APDU means.

        Deciphered bytes that nothing authenticates (no verified tag) and that
        do not parse most likely come from a wrong key, not from the meter.
        """
        ciphered, plain = self.ciphered, self.plain
        if ciphered is None or plain is None or not _unproven_ciphertext(ciphered, plain):
            return exc
        error = DecryptionError(_WRONG_KEY)
        error.__cause__ = exc
        return error


@dataclass(slots=True)
class OtherApdu:
    """An APDU that is no push (client/server traffic); deciphered, only if its tag verified."""

    apdu: bytes
    ciphered: Ciphered | None = None
    plain: Plaintext | None = None

    @property
    def what(self) -> str:
        """Its name as skipped: ``get-response``, ``ciphered get-response``."""
        name = apdu_name(self.apdu[0]) if self.apdu else "empty APDU"
        return f"ciphered {name}" if self.ciphered is not None else name


@dataclass(slots=True)
class Failed:
    """``apdu`` gives nothing: ``error`` says why; ``ciphered`` if its header parsed."""

    error: DecodeError
    apdu: bytes
    ciphered: Ciphered | None = None


Step = (
    BlockReceived
    | BlockLost
    | TransferComplete
    | CipheredHeader
    | Decrypted
    | NotificationReady
    | OtherApdu
    | Failed
)

_GBT_TAG = bytes([GENERAL_BLOCK_TRANSFER])
_NOTIFICATION_TAG = bytes([DATA_NOTIFICATION])


class Unwrapper:
    """Block transfer, ciphering and the push test for a stream of APDUs.

    ``decrypt`` opens ciphered APDUs (None: stop at their header);
    ``replay_guard`` is asked before decrypting, and its ``ReplayError`` becomes
    a ``Failed`` step. Keeps the partial block transfer between calls.

    With ``trace`` False only the steps that end an APDU's path or lose data
    are returned (``NotificationReady``, ``OtherApdu``, ``Failed``,
    ``BlockLost``, and ``CipheredHeader`` when there is no decryptor): what the
    pipeline makes events of, two objects a push fewer on its hot path.
    """

    def __init__(
        self,
        decrypt: Decrypt | None = None,
        replay_guard: ReplayGuard | None = None,
        *,
        trace: bool = True,
    ) -> None:
        self.decrypt = decrypt
        self.replay_guard = replay_guard
        self.trace = trace
        self._blocks = BlockAssembler()

    def feed(self, apdu: bytes) -> list[Step]:
        """The steps of one APDU as the link delivered it (after the LLC header)."""
        tag = apdu[0] if apdu else None
        if tag == DATA_NOTIFICATION:
            # The pipeline's hot path: one step, no further call.
            return [NotificationReady(apdu)]
        steps: list[Step] = []
        if tag == GENERAL_BLOCK_TRANSFER:
            self._block(apdu, steps)
        else:
            self._unwrap(apdu, steps)
        return steps

    def close(self, why: str) -> list[Step]:
        """Give up a partial block transfer (the stream ended): its ``BlockLost`` steps."""
        return [BlockLost(event) for event in self._blocks.discard(why)]

    def decipher(self, apdu: bytes, steps: list[Step]) -> Decrypted | None:
        """Header, replay guard and decryption of a ciphered APDU; the plaintext is not judged.

        Appends ``CipheredHeader``, then ``Decrypted`` (also returned) or ``Failed``;
        untraced, only a ``Failed``. Ciphered DSMR telegrams (Smarty) come here
        directly: their plaintext is text, for the telegram reader to judge.
        """
        try:
            ciphered = parse_ciphered(apdu)
        except ApduError as exc:
            steps.append(Failed(exc, apdu))
            return None
        if self.decrypt is None:
            steps.append(CipheredHeader(ciphered))
            return None
        if self.trace:
            steps.append(CipheredHeader(ciphered))
        try:
            if self.replay_guard is not None:
                self.replay_guard(ciphered)
            plain = self.decrypt(ciphered)
        except DecodeError as exc:
            steps.append(Failed(exc, apdu, ciphered))
            return None
        step = Decrypted(ciphered, plain)
        if self.trace:
            steps.append(step)
        return step

    def _unwrap(self, apdu: bytes, steps: list[Step]) -> None:
        """A complete APDU: a push, a ciphered one, or something to skip."""
        if not apdu:
            steps.append(Failed(ApduError("empty APDU"), apdu))
            return
        tag = apdu[0]
        if tag == DATA_NOTIFICATION:
            steps.append(NotificationReady(apdu))
        elif tag in CIPHERED_TAGS:
            step = self.decipher(apdu, steps)
            if step is not None:
                steps.append(_judge_plaintext(step))
        elif tag == GENERAL_BLOCK_TRANSFER:
            # Only a joined transfer gets here: the link's blocks go to _block.
            error = ApduError("a general-block-transfer inside another one")
            steps.append(Failed(error, apdu))
        else:
            steps.append(OtherApdu(apdu))

    def _block(self, apdu: bytes, steps: list[Step]) -> None:
        try:
            block = parse_block(apdu)
        except ApduError as exc:
            for lost in self._blocks.discard("a malformed block came between its blocks"):
                steps.append(BlockLost(lost))
            steps.append(Failed(exc, apdu))
            return
        for event in self._blocks.push(block):
            if isinstance(event, bytes):
                if self.trace:
                    steps.append(TransferComplete(event, self._blocks.joined_blocks))
                self._unwrap(event, steps)
            else:
                steps.append(BlockLost(event))
        if self._blocks.pending and self.trace:
            steps.append(BlockReceived(block))


def _judge_plaintext(step: Decrypted) -> NotificationReady | OtherApdu | Failed:
    """A push, a skippable APDU (only with a verified tag), or a wrong key."""
    ciphered, plain = step.ciphered, step.plain
    inner = plain.apdu
    if inner[:1] == _NOTIFICATION_TAG:
        return NotificationReady(inner, ciphered, plain)
    if plain.authenticated is True:
        return OtherApdu(inner, ciphered, plain)
    error: DecodeError = ApduError(NOT_A_NOTIFICATION)
    if _unproven_ciphertext(ciphered, plain):
        error = DecryptionError(_WRONG_KEY)
    return Failed(error, inner, ciphered)


def _unproven_ciphertext(ciphered: Ciphered, plain: Plaintext) -> bool:
    # Ciphertext no tag verified: only its parsing can tell a right key from a wrong one.
    return plain.authenticated is not True and ciphered.encrypted


__all__ = [
    "BlockLost",
    "BlockReceived",
    "CipheredHeader",
    "Decrypt",
    "Decrypted",
    "Failed",
    "NotificationReady",
    "OtherApdu",
    "ReplayGuard",
    "Step",
    "TransferComplete",
    "Unwrapper",
]
