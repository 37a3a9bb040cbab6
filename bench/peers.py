"""Run one peer library over a stream and print JSON: throughput and first-frame values.

Runs in the peers' virtualenv (``bench/.venv-peers``, see bench/README.md),
never in the project's. Each peer is used through its public API the way its
documentation or examples show:

* dlms-cosem: ``UnnumberedInformationFrame.from_bytes`` per HDLC frame (it has
  no push-stream framer: its ``HdlcConnection`` is a client state machine, so
  frames are cut here by the length field), ``GeneralGlobalCipher.from_bytes``,
  ``security.decrypt``, ``DataNotification.from_bytes``, ``utils.parse_as_dlms_data``.
* gurux-dlms: ``GXDLMSSecureClient.getData(reply, data, notify)`` over the
  whole byte stream, as in Gurux's push listener example.
* amshan: ``HdlcFrameReader.read`` and the Kamstrup module's parser
  (``kamstrup.LlcPdu``). amshan does not decrypt, so on an encrypted stream
  it only frames; its ``AutoDecoder`` rejects the Danish Kamstrup list
  (an unknown OBIS group), which the first-frame check reports.
* minimal: ``bench/minimal.py``, the issue's hand-written yardstick.

Usage: python bench/peers.py PEER STREAM [--key HEX --auth-key HEX] [--frames N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHUNK = 64 * 1024
#: Set by --framing mbus: the stream is wired M-Bus (only gurux-dlms reads it).
MBUS = False

Values = dict[str, object]


def _obis(code: Any) -> str:
    return ".".join(str(b) for b in bytes(code))


def _pairs(items: list[Any]) -> Values:
    """OBIS octet-string followed by its value, as flat Kamstrup lists send them."""
    out: Values = {}
    for i, item in enumerate(items[:-1]):
        if isinstance(item, bytes | bytearray) and len(item) == 6:
            value = items[i + 1]
            out[_obis(item)] = int(value) if isinstance(value, int) else str(value)
    return out


def split_hdlc(stream: bytes) -> Iterator[bytes]:
    """Cut a clean HDLC stream into frames by the length field (for dlms-cosem)."""
    pos, n = 0, len(stream)
    while pos < n:
        start = stream.find(b"\x7e", pos)
        if start < 0 or start + 3 > n:
            break
        length = ((stream[start + 1] & 0x07) << 8) | stream[start + 2]
        if stream[start + 1] & 0xF0 != 0xA0:
            pos = start + 1
            continue
        yield stream[start : start + length + 2]
        pos = start + length + 2


def chunks(stream: bytes) -> Iterator[bytes]:
    """The stream as a reader gets it from a file: 64 KiB at a time, like amsread."""
    for pos in range(0, len(stream), CHUNK):
        yield stream[pos : pos + CHUNK]


# Each peer returns (pushes decoded, values of the first push); it keeps no
# more than one push's results, like a reader that writes them out.
Result = tuple[int, Values | None]


def run_dlms_cosem(stream: bytes, key: bytes | None, auth_key: bytes | None) -> Result:
    from dlms_cosem import security, utils
    from dlms_cosem.hdlc import frames
    from dlms_cosem.protocol import xdlms

    count, first = 0, None
    for raw in split_hdlc(stream):
        frame = frames.UnnumberedInformationFrame.from_bytes(raw)
        apdu = bytes(frame.payload[3:])  # after the LLC header
        if apdu[0] == xdlms.GeneralGlobalCipher.TAG:
            ciphered = xdlms.GeneralGlobalCipher.from_bytes(apdu)
            apdu = security.decrypt(
                ciphered.security_control,
                bytes(ciphered.system_title),
                ciphered.invocation_counter,
                key,
                ciphered.ciphered_text,
                auth_key,
            )
        notification = xdlms.DataNotification.from_bytes(apdu)
        body = utils.parse_as_dlms_data(notification.body)
        if first is None:
            first = _pairs([v.value if hasattr(v, "value") else v for v in body])
        count += 1
    return count, first


def run_gurux(stream: bytes, key: bytes | None, auth_key: bytes | None) -> Result:
    from gurux_dlms import GXByteBuffer, GXReplyData
    from gurux_dlms.enums import InterfaceType, Security
    from gurux_dlms.secure import GXDLMSSecureClient

    client = GXDLMSSecureClient(True)
    client.interfaceType = InterfaceType.WIRED_MBUS if MBUS else InterfaceType.HDLC
    if key is not None:
        client.ciphering.security = (
            Security.AUTHENTICATION_ENCRYPTION if auth_key else Security.ENCRYPTION
        )
        client.ciphering.blockCipherKey = bytearray(key)
        if auth_key:
            client.ciphering.authenticationKey = bytearray(auth_key)
    reply = GXByteBuffer()
    reply.set(stream)
    notify = GXReplyData()
    count, first = 0, None
    # Gurux prints "Encryption is applied." for every frame; keep the table clean.
    with contextlib.redirect_stdout(io.StringIO()) as sink:
        while reply.position < reply.size:
            before = reply.position
            client.getData(reply, GXReplyData(), notify)
            if notify.complete and not notify.isMoreData():
                if first is None:
                    first = _pairs(list(notify.value))
                count += 1
                notify.clear()
            elif reply.position == before:
                if not count:
                    raise RuntimeError(f"getData made no progress at byte {before}")
                break
            sink.seek(0)
            sink.truncate()
    return count, first


def run_amshan(stream: bytes, key: bytes | None, auth_key: bytes | None) -> Result:
    from han import kamstrup
    from han.autodecoder import AutoDecoder
    from han.hdlc import HdlcFrameReader

    reader = HdlcFrameReader()
    count, first = 0, None
    for chunk in chunks(stream):
        for frame in reader.read(chunk):
            if not frame.is_valid:
                continue
            count += 1
            if frame.payload[3] != 0x0F:
                # Encrypted: amshan has no decryption; framing is all it can do.
                first = first or {"framing only": "no decryption"}
                continue
            parsed = kamstrup.LlcPdu.parse(frame.payload)
            if first is None:
                first = _amshan_values(parsed, frame.payload, AutoDecoder())
    return count, first


def _amshan_values(parsed: Any, payload: bytes, auto: Any) -> Values:
    try:
        auto.decode_message_payload(payload)
        note = "ok"
    except Exception as exc:
        note = f"AutoDecoder: {type(exc).__name__} {exc}"
    values: Values = {"note": note}
    for item in parsed.information.notification_body.list_items:
        if item.obis:
            value = item.value
            values[item.obis] = int(value) if isinstance(value, int) else str(value)
    return values


def run_minimal(stream: bytes, key: bytes | None, auth_key: bytes | None) -> Result:
    sys.path.insert(0, str(HERE))
    from minimal import Minimal

    count, first = 0, None
    for readings in Minimal(key, auth_key).frames(stream):
        if first is None:
            first = {obis: int(v) if isinstance(v, int) else str(v) for obis, v in readings}
        count += 1
    return count, first


PEERS: dict[str, Callable[[bytes, bytes | None, bytes | None], Result]] = {
    "dlms-cosem": run_dlms_cosem,
    "gurux-dlms": run_gurux,
    "amshan": run_amshan,
    "minimal": run_minimal,
}


def _prefix(stream: bytes, frames: int) -> bytes:
    return b"".join(itertools.islice(split_hdlc(stream), frames))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("stream", type=Path)
    parser.add_argument("--key")
    parser.add_argument("--auth-key")
    parser.add_argument("--frames", type=int, default=0, help="only the first N frames")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--framing", choices=["hdlc", "mbus"], default="hdlc")
    args = parser.parse_args()
    global MBUS
    MBUS = args.framing == "mbus"
    stream = args.stream.read_bytes()
    if args.frames and not MBUS:
        stream = _prefix(stream, args.frames)
    key = bytes.fromhex(args.key) if args.key else None
    auth_key = bytes.fromhex(args.auth_key) if args.auth_key else None
    best = float("inf")
    count, first = 0, None
    error = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        try:
            count, first = PEERS[args.peer](stream, key, auth_key)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        best = min(best, time.perf_counter() - start)
    json.dump(
        {
            "peer": args.peer,
            "frames": count,
            "bytes": len(stream),
            "seconds": best if count else None,
            "first": first,
            "error": error,
            "maxrss_kb": _maxrss(),
        },
        sys.stdout,
    )
    print()
    return 0


def _maxrss() -> int:
    """Peak RSS of this process image in kB (VmHWM: ru_maxrss would include the
    memory of the parent that forked it, which Linux carries across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
