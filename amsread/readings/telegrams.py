"""DSMR P1 telegrams in the pipeline: text telegrams, and ciphered ones (Smarty, Austria).

Luxembourg's Smarty and the Austrian P1 ports send the telegram inside a DLMS
general-glo-ciphering APDU (AES-128-GCM). It goes through the same replay
guard and decryptor as a DLMS push. The published Smarty authentication key
does not verify on every meter: when the tag fails, the text is decrypted
without verification (GCM's ciphertext is AES-CTR) and accepted only if the
telegram's own CRC matches; that is said once, and the message is marked
``authenticated: false``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amsread.dlms.ciphering import Ciphered, Plaintext, open_ciphered, proves_key
from amsread.dlms.keys import Keys
from amsread.dlms.unwrap import Failed, Step
from amsread.errors import AuthenticationError, DecodeError, DecryptionError
from amsread.link.dsmr import DsmrFramer, Telegram
from amsread.model import Event, Message, Notice, Security
from amsread.readings.dsmr import TelegramParser

if TYPE_CHECKING:
    from amsread.pipeline import Pipeline

_UNVERIFIED = (
    "the telegrams' authentication tag does not verify with the authentication key"
    " (the published Smarty key fails on some meters): decrypted without verifying it;"
    " the telegram CRC still guards the text"
)


class TelegramReader:
    """Telegram payloads from the DSMR link to Messages, counted in the pipeline's counters."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.parser = TelegramParser()
        self._said_unverified = False

    def read(self, payload: bytes, out: list[Event]) -> None:
        if payload[:1] == b"/":
            out.append(self._message(payload))
        else:
            self._ciphered(payload, out)

    def _message(
        self, text: bytes, system_title: bytes | None = None, security: Security | None = None
    ) -> Event:
        pipeline = self._pipeline
        try:
            message = self.parser.parse(
                text, system_title, security=security, received_at=pipeline._clock()
            )
        except DecodeError as exc:
            return pipeline._fail(exc)
        pipeline.counters["messages"] += 1
        return message

    def _ciphered(self, raw: bytes, out: list[Event]) -> None:
        pipeline = self._pipeline
        steps: list[Step] = []
        decrypted = pipeline.unwrapper.decipher(raw, steps)
        try:
            if decrypted is None:
                ciphered, plain, telegram = self._unverified(steps[-1], out)
            else:
                ciphered, plain = decrypted.ciphered, decrypted.plain
                telegram = _telegram_or_wrong_key(plain)
        except DecodeError as exc:
            failed = steps[-1]
            out.append(pipeline._fail(exc, failed.ciphered if isinstance(failed, Failed) else None))
            return
        proven = proves_key(ciphered, plain)
        security = pipeline._security(ciphered, plain, proven)
        event = self._message(telegram, ciphered.system_title, security)
        if isinstance(event, Message):
            if plain.authenticated is False:
                pipeline.counters["unauthenticated"] += 1
            pipeline._accept(ciphered, proven)
        out.append(event)

    def _unverified(self, failed: Step, out: list[Event]) -> tuple[Ciphered, Plaintext, bytes]:
        """A tag that fails: decrypt without it and trust the telegram's CRC alone."""
        assert isinstance(failed, Failed)  # decipher ends with Failed when it gives no plaintext
        key = self._pipeline.decryptor.keys.encryption
        ciphered = failed.ciphered
        if ciphered is None or key is None or not isinstance(failed.error, AuthenticationError):
            raise failed.error
        plain = open_ciphered(Keys(key), ciphered)
        telegram = inner_telegram(plain.apdu, need_crc=True)
        if telegram is None:
            raise failed.error
        if not self._said_unverified:
            self._said_unverified = True
            out.append(Notice("tag_unverified", _UNVERIFIED, "warning"))
        return ciphered, plain, telegram


def _telegram_or_wrong_key(plain: Plaintext) -> bytes:
    telegram = inner_telegram(plain.apdu, need_crc=False)
    if telegram is None:
        raise DecryptionError(
            "decryption gave no telegram with a valid CRC: wrong encryption key or damaged frame"
        )
    return telegram


def inner_telegram(plaintext: bytes, *, need_crc: bool) -> bytes | None:
    """The one whole telegram a decrypted APDU must be, or None."""
    framer = DsmrFramer()
    events = framer.feed(plaintext) + framer.close()
    if len(events) != 1 or not isinstance(events[0], Telegram):
        return None
    if need_crc and events[0].crc is None:
        return None
    return events[0].raw
