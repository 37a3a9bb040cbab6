"""Application PDUs (DLMS/COSEM), sans I/O.

Push meters send a data-notification (0x0F), usually wrapped in
general-glo-ciphering (0xDB) or general-ded-ciphering (0xDC), sometimes cut
into general-block-transfer (0xE0) blocks. Client/server traffic (AARQ, AARE,
GET…) can share the line and is recognised so it can be skipped by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from amsread import axdr
from amsread.errors import ApduError, AxdrError
from amsread.timestamps import cosem_datetime_iso

DATA_NOTIFICATION = 0x0F
GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC
GENERAL_BLOCK_TRANSFER = 0xE0

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


@dataclass(frozen=True, slots=True)
class DataNotification:
    """A decoded push: invoke id, optional meter time, and the body value."""

    invoke_id: int
    meter_time: str | None
    meter_time_raw: bytes | None
    body: object


def parse_data_notification(apdu: bytes) -> DataNotification:
    """Parse a complete data-notification; every byte must be accounted for.

    The date-time comes as ``00`` (absent), ``0C`` + 12 bytes, or, on Kaifa
    and older Kamstrup firmware, as a full octet-string ``09 0C`` + 12 bytes.
    """
    if len(apdu) < 6 or apdu[0] != DATA_NOTIFICATION:
        raise ApduError("not a data-notification")
    invoke_id = int.from_bytes(apdu[1:5], "big")
    pos = 5
    raw_time: bytes | None = None
    if apdu[pos] == 0x00:
        pos += 1
    elif apdu[pos] == 0x0C:
        raw_time, pos = apdu[pos + 1 : pos + 13], pos + 13
    elif apdu[pos] == 0x09 and apdu[pos + 1 : pos + 2] == b"\x0c":
        raw_time, pos = apdu[pos + 2 : pos + 14], pos + 14
    else:
        raise ApduError(f"data-notification date-time has unexpected length 0x{apdu[pos]:02X}")
    if raw_time is not None and len(raw_time) != 12:
        raise ApduError("data-notification ends inside its date-time")
    try:
        body = axdr.decode_all(apdu[pos:])
    except AxdrError as exc:
        raise ApduError(f"notification body: {exc}") from exc
    meter_time = cosem_datetime_iso(raw_time) if raw_time is not None else None
    return DataNotification(invoke_id, meter_time, raw_time, body)
