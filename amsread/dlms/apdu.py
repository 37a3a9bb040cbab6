"""Application PDUs (DLMS/COSEM), sans I/O.

Push meters send a data-notification (0x0F), usually wrapped in
general-glo-ciphering (0xDB) or general-ded-ciphering (0xDC), sometimes cut
into general-block-transfer (0xE0) blocks. Client/server traffic (AARQ, AARE,
GET…) can share the line and is recognised so it can be skipped by name.
"""

from __future__ import annotations

from amsread.dlms import axdr
from amsread.errors import ApduError, AxdrError
from amsread.readings.timestamps import cosem_datetime_iso

DATA_NOTIFICATION = 0x0F
GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC
GENERAL_BLOCK_TRANSFER = 0xE0
#: The tags of a ciphered APDU, glo (global key) and ded (dedicated key).
CIPHERED_TAGS = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)
NOT_A_NOTIFICATION = "not a data-notification (or too short to hold one)"

APDU_NAMES = {
    0x01: "initiate-request",
    0x08: "initiate-response",
    0x0E: "confirmed-service-error",
    DATA_NOTIFICATION: "data-notification",
    0x60: "AARQ (association request)",
    0x61: "AARE (association response)",
    0x62: "RLRQ (release request)",
    0x63: "RLRE (release response)",
    0xC0: "get-request",
    0xC1: "set-request",
    0xC2: "event-notification-request",
    0xC3: "action-request",
    0xC4: "get-response",
    0xC5: "set-response",
    0xC7: "action-response",
    0xC8: "glo-get-request",
    0xCC: "glo-get-response",
    0xD8: "exception-response",
    GENERAL_GLO_CIPHERING: "general-glo-ciphering",
    GENERAL_DED_CIPHERING: "general-ded-ciphering",
    GENERAL_BLOCK_TRANSFER: "general-block-transfer",
}


def apdu_name(tag: int) -> str:
    return APDU_NAMES.get(tag, f"unknown APDU 0x{tag:02X}")


class DataNotification:
    """A data-notification: invoke id, optional meter time, and the body.

    ``body_bytes`` is the A-XDR body as sent; ``body`` decodes it on first use
    (the readings builder usually never needs the tree: see ``readings``).
    Accessing ``body`` raises ``ApduError`` if the body is malformed.
    """

    __slots__ = ("_body", "body_bytes", "invoke_id", "meter_time", "meter_time_raw")

    def __init__(
        self,
        invoke_id: int,
        meter_time: str | None,
        meter_time_raw: bytes | None,
        body_bytes: bytes,
    ) -> None:
        self.invoke_id = invoke_id
        self.meter_time = meter_time
        self.meter_time_raw = meter_time_raw
        self.body_bytes = body_bytes
        self._body: object = _NOT_DECODED

    @property
    def body(self) -> object:
        if self._body is _NOT_DECODED:
            self._body = decode_body(self.body_bytes)
        return self._body

    def __repr__(self) -> str:
        return (
            f"DataNotification(invoke_id={self.invoke_id}, meter_time={self.meter_time!r},"
            f" body_bytes={len(self.body_bytes)} bytes)"
        )


_NOT_DECODED = object()
#: Bytes a date-time takes in the notification header, after its length byte.
DATE_TIME_SIZE = 12


def decode_body(body: bytes) -> object:
    """Decode a notification body; malformed A-XDR becomes ``ApduError``."""
    try:
        return axdr.decode_all(body)
    except AxdrError as exc:
        raise ApduError(f"notification body: {exc}") from exc


def parse_data_notification(apdu: bytes, *, lazy: bool = False) -> DataNotification:
    """Parse a data-notification; with ``lazy`` the body is decoded on demand.

    The date-time comes as ``00`` (absent), ``0C`` + 12 bytes, or, on Kaifa
    and older Kamstrup firmware, as a full octet-string ``09 0C`` + 12 bytes.
    Every byte must be accounted for: trailing bytes after the body are an
    error (raised here, or on first access to ``body`` when ``lazy``).
    """
    if len(apdu) < 7 or apdu[0] != DATA_NOTIFICATION:
        raise ApduError(NOT_A_NOTIFICATION)
    invoke_id = int.from_bytes(apdu[1:5], "big")
    pos = 5
    raw_time: bytes | None = None
    marker = apdu[pos]
    if marker == 0x00:
        pos += 1
    elif marker == DATE_TIME_SIZE:
        raw_time, pos = apdu[pos + 1 : pos + 13], pos + 13
    elif marker == axdr.OCTET_STRING and apdu[pos + 1] == DATE_TIME_SIZE:
        raw_time, pos = apdu[pos + 2 : pos + 14], pos + 14
    else:
        raise ApduError(
            f"data-notification date-time has unexpected length 0x{marker:02X}"
            " (expected 00, 0C or 09 0C)"
        )
    if raw_time is not None and len(raw_time) != DATE_TIME_SIZE:
        raise ApduError("data-notification ends inside its date-time")
    if pos >= len(apdu):
        raise ApduError("data-notification has no body")
    meter_time = cosem_datetime_iso(raw_time) if raw_time is not None else None
    notification = DataNotification(invoke_id, meter_time, raw_time, apdu[pos:])
    if not lazy:
        notification.body  # noqa: B018 - decode now so errors surface here
    return notification
