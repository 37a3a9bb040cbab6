"""``amsread check-key``: is my key right? One verdict line first, details after.

What it looks at, in order:

* each key as written (``keytext``): length, ``0x`` and separators
  (accepted), 16 ASCII characters (tried as text too), two keys run
  together (both halves tried), the documentation example key;
* the frames: which security they use, and so whether the authentication
  key is needed at all;
* every candidate pair against up to ``MAX_FRAMES`` ciphered APDUs: the tag
  (when there is one and an authentication key), the pair the other way
  round (keys swapped), and, since a tag cannot tell which key is wrong,
  decryption alone: plaintext that parses as a push, or a DSMR telegram
  whose CRC matches (Smarty), proves the encryption key right.

Keys never appear in the output: candidates are named by position
(``--key #2``). All of this is sans I/O; the CLI passes bytes and strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amsread.diagnose.keytext import Candidate, inspect_key
from amsread.dlms.apdu import CIPHERED_TAGS, DATA_NOTIFICATION, parse_data_notification
from amsread.dlms.ciphering import Ciphered, Decryptor
from amsread.dlms.keys import Keys
from amsread.dlms.unwrap import (
    CipheredHeader,
    Failed,
    NotificationReady,
    OtherApdu,
    Step,
    Unwrapper,
)
from amsread.errors import AmsreadError, AuthenticationError
from amsread.link.hdlc import strip_llc
from amsread.model import Rejected
from amsread.readings.manufacturers import decode_system_title
from amsread.readings.telegrams import inner_telegram

#: Ciphered APDUs tried per candidate: enough to tell a damaged frame from a wrong key.
MAX_FRAMES = 8
#: Published in the Smarty P1 specification; every Smarty meter should use it.
SMARTY_AUTH_KEY = "00112233445566778899AABBCCDDEEFF"
_TELEGRAMS_UNVERIFIED = (
    "amsread reads such telegrams all the same, as the published Smarty key fails on some"
    " meters: it decrypts without verifying the tag, the telegram CRC guards the text, and"
    " each message says authenticated: false"
)
_TELEGRAMS_UNCHECKED = (
    "ciphered telegrams carry no checksum outside their ciphertext: when none of several"
    " decrypts to a telegram with a valid CRC, the key is the likely cause"
)


@dataclass
class Frames:
    """The ciphered APDUs found in the input, and what else was there."""

    ciphered: list[Ciphered] = field(default_factory=list)
    plain_pushes: int = 0
    other: int = 0
    damaged: int = 0
    #: True if the APDUs came in checksum-protected frames (so they are intact).
    checked: bool = False
    #: Of the ciphered APDUs, those that came as DSMR telegrams (Smarty, Austrian P1).
    telegrams: int = 0
    #: The framing that found them when the automatic one could not, else None.
    framing: str | None = None


@dataclass
class Result:
    """What one (encryption, authentication) pair does to the frames."""

    ek: Candidate
    ak: Candidate | None
    verified: int = 0
    swapped: int = 0
    decrypts: int = 0
    tag_failed: int = 0
    garbage: int = 0
    sample: Decryption | None = None

    @property
    def score(self) -> tuple[int, int, int]:
        return (self.verified, self.swapped, self.decrypts)


@dataclass
class KeyReport:
    verdict: str
    ok: bool
    details: list[str] = field(default_factory=list)


# -- frames -------------------------------------------------------------------------


def collect_frames(data: bytes, *, stream: bool) -> Frames:
    """Find ciphered APDUs: in a byte stream (HDLC, M-Bus, DSMR), or ``data`` is one APDU.

    The unwrapper, given no decryptor, stops at each ciphered header. Ciphered
    DSMR telegrams (Smarty) carry no checksum outside their ciphertext, so the
    automatic framing cannot lock onto them; when it finds no push at all, the
    DSMR framer looks for them.
    """
    if not stream:
        frames = Frames()
        _add_steps(frames, Unwrapper().feed(strip_llc(data)))
        return frames
    frames = _scan(data, "auto")
    if not frames.ciphered and not frames.plain_pushes:
        telegrams = _scan(data, "dsmr")
        if telegrams.ciphered:
            telegrams.framing = "dsmr"
            return telegrams
    return frames


def _scan(data: bytes, framing: str) -> Frames:
    from amsread.link.framing import LinkMessage, make_link

    frames = Frames(checked=True)
    link = make_link(framing)
    unwrapper = Unwrapper()
    for event in link.feed(data) + link.close():
        if isinstance(event, Rejected):
            frames.damaged += event.reason != "garbage"
        elif not isinstance(event, LinkMessage):
            continue
        elif event.skip is not None:
            frames.other += 1
        elif event.telegram:
            _add_telegram(frames, event.payload, unwrapper)
        else:
            _add_steps(frames, unwrapper.feed(strip_llc(event.payload)))
    return frames


def _add_telegram(frames: Frames, payload: bytes, unwrapper: Unwrapper) -> None:
    if payload[:1] == b"/":
        frames.plain_pushes += 1
        return
    steps: list[Step] = []
    unwrapper.decipher(payload, steps)
    _add_steps(frames, steps)
    frames.telegrams += isinstance(steps[-1], CipheredHeader)
    # Only decryption checks a ciphered telegram: no checksum vouches for it.
    frames.checked = False


def _add_steps(frames: Frames, steps: list[Step]) -> None:
    for step in steps:
        if isinstance(step, CipheredHeader):
            frames.ciphered.append(step.ciphered)
        elif isinstance(step, NotificationReady):
            frames.plain_pushes += 1
        elif isinstance(step, OtherApdu):
            frames.other += 1
        elif isinstance(step, Failed):
            # A ciphered header that does not parse is damage; the rest is no push.
            ciphered = step.apdu[:1] != b"" and step.apdu[0] in CIPHERED_TAGS
            frames.damaged += ciphered
            frames.other += not ciphered


# -- trying keys -----------------------------------------------------------------------


@dataclass(frozen=True)
class Decryption:
    """A decryption that makes sense: a push, or a telegram whose CRC matches."""

    telegram: bool
    description: str


def _plausible(apdu: bytes) -> Decryption | None:
    """What the plaintext is if it is a well-formed push or telegram, else None."""
    if apdu[:1] == b"/":
        return _plausible_telegram(apdu)
    if apdu[:1] != bytes([DATA_NOTIFICATION]):
        return None
    try:
        notification = parse_data_notification(apdu)
        body = notification.body
    except AmsreadError:
        return None
    count = len(body) if isinstance(body, tuple) else 1
    when = f", meter time {notification.meter_time}" if notification.meter_time else ""
    return Decryption(False, f"a data-notification with {count} values{when}")


def _plausible_telegram(text: bytes) -> Decryption | None:
    # A wrong key cannot give a telegram whose CRC matches: that proves the key.
    telegram = inner_telegram(text, need_crc=True)
    if telegram is None:
        return None
    lines = telegram.split(b"\r\n")
    identification = lines[0].decode("ascii", "replace")
    data_lines = sum(1 for line in lines[1:] if line[:1].isdigit())
    return Decryption(
        True, f"a DSMR telegram with a valid CRC, {data_lines} data lines ({identification})"
    )


def _try(ek: Candidate, ak: Candidate | None, frames: list[Ciphered]) -> Result:
    assert ek.key is not None
    result = Result(ek, ak)
    ak_key = ak.key if ak else None
    for c in frames:
        outcome = _open(Keys(ek.key, ak_key), c)
        if outcome == "failed" and ak_key is not None and ak_key != ek.key:
            outcome = "swapped" if _open(Keys(ak_key, ek.key), c) == "verified" else "failed"
        if outcome in ("verified", "swapped"):
            setattr(result, outcome, getattr(result, outcome) + 1)
            real_ek = ak_key if outcome == "swapped" and ak_key is not None else ek.key
            result.sample = result.sample or _decrypt_only(real_ek, c)
            continue
        # No tag, no authentication key, or a failed tag: decryption alone tells
        # whether the encryption key is right (the plaintext parses as a push).
        described = _decrypt_only(ek.key, c) if c.encrypted else None
        if described is not None:
            result.decrypts += 1
            result.sample = result.sample or described
        result.tag_failed += outcome == "failed"
        result.garbage += described is None and outcome != "failed"
    return result


def _open(keys: Keys, c: Ciphered) -> str:
    """verified, swapped (this Decryptor exchanged the keys itself), failed, or open."""
    try:
        plain = Decryptor(keys).decrypt(c)
    except AuthenticationError:
        return "failed"
    except AmsreadError:
        return "error"
    if not plain.authenticated:
        return "open"
    return "swapped" if getattr(plain, "keys_swapped", False) else "verified"


def _decrypt_only(key: bytes, c: Ciphered) -> Decryption | None:
    try:
        plain = Decryptor(Keys(key, None)).decrypt(c)
    except AmsreadError:
        return None
    return _plausible(plain.apdu)


# -- the verdict -----------------------------------------------------------------------


def check_keys(frames: Frames, keys: list[str], auth_keys: list[str]) -> KeyReport:
    """Try every candidate pair on the frames; the verdict names what works."""
    eks = [c for i, text in enumerate(keys, 1) for c in inspect_key(text, _label("--key", i, keys))]
    aks = [
        c
        for i, text in enumerate(auth_keys, 1)
        for c in inspect_key(text, _label("--auth-key", i, auth_keys))
    ]
    details = [
        f"{c.label}: {c.problem or '; '.join(c.notes)}" for c in eks + aks if c.problem or c.notes
    ]
    details += _frame_details(frames, bool(aks))
    usable_eks = [c for c in eks if c.key is not None]
    usable_aks = [c for c in aks if c.key is not None]
    if not usable_aks:
        # Two keys run together: each half may be either key.
        usable_aks = [c for c in usable_eks if c.label.endswith("half")]
    if not frames.ciphered:
        return _no_ciphered(frames, details)
    if not usable_eks:
        return KeyReport("key format wrong: no usable encryption key (--key)", False, details)
    sample = frames.ciphered[:MAX_FRAMES]
    results = [
        _try(ek, ak, sample)
        for ek in usable_eks
        for ak in (usable_aks or [None])  # type: ignore[list-item]
    ]
    best = max(results, key=lambda r: r.score)
    report = _verdict(best, results, frames, len(sample), details)
    problems = [c.problem for c in eks + aks if c.problem]
    if not report.ok and problems and not best.swapped:
        # A key that is not even well-formed explains the failure first.
        report.details.insert(0, f"(with the keys as given: {report.verdict})")
        report.verdict = f"key format wrong: {problems[0]}"
    return report


def _label(option: str, index: int, all_given: list[str]) -> str:
    return f"{option} #{index}" if len(all_given) > 1 else option


def _frame_details(frames: Frames, auth_given: bool) -> list[str]:
    if not frames.ciphered:
        return []
    first = frames.ciphered[0]
    title = decode_system_title(first.system_title)
    maker = f"; maker {title.maker or 'unknown'} ({title.flag})" if title.flag else ""
    control = first.security_control
    kind = "DSMR telegrams (Smarty, Austrian P1)" if frames.telegrams else "APDUs"
    lines = [f"frames: {len(frames.ciphered)} ciphered {kind}{maker}"]
    if frames.framing:
        lines.append(
            "the automatic framing cannot recognise ciphered telegrams (nothing on the line"
            f" checks them): read them with --framing {frames.framing}"
        )
    if frames.damaged:
        lines.append(f"frames: {frames.damaged} damaged frames skipped")
    if first.authenticated and first.encrypted:
        lines.append(
            f"security control 0x{control:02X}: authenticated and encrypted. Decrypting needs"
            " the encryption key (--key); verifying the 12-byte tag also needs the"
            " authentication key (--auth-key)"
        )
    elif first.encrypted:
        lines.append(
            f"security control 0x{control:02X}: encrypted, no authentication tag. Only the"
            " encryption key is needed; a wrong key shows as plaintext that does not parse"
        )
        if auth_given:
            lines.append("--auth-key is not needed for these frames (nothing to verify)")
    elif first.authenticated:
        lines.append(
            f"security control 0x{control:02X}: authenticated only (data in clear); the tag"
            " needs both keys"
        )
    return lines


def _no_ciphered(frames: Frames, details: list[str]) -> KeyReport:
    if frames.plain_pushes:
        verdict = "no key needed: the frames are not encrypted"
        return KeyReport(verdict, True, details)
    found = "damaged frames only" if frames.damaged else "no ciphered push message"
    return KeyReport(
        f"nothing to check: {found} in the input (run 'amsread explain' on it)", False, details
    )


def _verdict(
    best: Result, results: list[Result], frames: Frames, tried: int, details: list[str]
) -> KeyReport:
    which = _which(best, results)
    intact = (
        "the frames passed their checksum, so they arrived intact: the key is the likely cause"
        if frames.checked
        else _TELEGRAMS_UNCHECKED
        if frames.telegrams
        else "a bare APDU has no checksum: check that it was copied completely"
    )
    if best.sample:
        details.append(f"decrypted: {best.sample.description}")
    if best.verified:
        details.append(f"tag verified on {best.verified} of {tried} frames")
        return KeyReport(f"keys OK{which}", True, details + _damaged_note(best, tried))
    if best.swapped:
        details.append(f"the tag verifies on {best.swapped} of {tried} frames only swapped")
        return KeyReport(
            f"keys swapped{which}: --key is the authentication key and --auth-key the"
            " encryption key; exchange them",
            False,
            details,
        )
    if best.decrypts and best.sample is not None and best.sample.telegram:
        return _telegram_verdict(best, frames, which, tried, details)
    if best.decrypts and best.tag_failed:
        return KeyReport(
            f"encryption key OK{which}, authentication key wrong: the data decrypts to a"
            " valid push but the tag does not verify",
            False,
            details,
        )
    if best.decrypts:
        first = frames.ciphered[0]
        verdict = f"key OK{which}: decryption gives a valid push"
        if first.authenticated and best.ak is None:
            verdict = f"encryption key OK{which}; tag not checked: add --auth-key to verify it"
        return KeyReport(verdict, True, details + _damaged_note(best, tried))
    swapped_ek = _auth_key_decrypts(results, frames.ciphered[:MAX_FRAMES])
    if swapped_ek:
        return KeyReport(
            "keys mixed up: the value given as --auth-key is the encryption key; the"
            " value given as --key is not the authentication key",
            False,
            details,
        )
    details.append(intact)
    return KeyReport("encryption key wrong or damaged frame", False, details)


def _telegram_verdict(
    best: Result, frames: Frames, which: str, tried: int, details: list[str]
) -> KeyReport:
    """The key decrypts telegrams (Smarty): their CRC proves it, whatever the tag says."""
    if best.tag_failed:
        verdict = (
            f"encryption key OK{which}: the telegrams decrypt with a valid CRC, but the"
            " authentication tag does not verify with --auth-key"
        )
        return KeyReport(verdict, True, [*details, _TELEGRAMS_UNVERIFIED])
    if frames.ciphered[0].authenticated and best.ak is None:
        verdict = f"encryption key OK{which}; tag not checked: add --auth-key to verify it"
        hint = f"Smarty meters use the published authentication key {SMARTY_AUTH_KEY}"
        return KeyReport(verdict, True, [*details, hint])
    verdict = f"key OK{which}: decryption gives a telegram with a valid CRC"
    return KeyReport(verdict, True, details + _damaged_note(best, tried))


def _which(best: Result, results: list[Result]) -> str:
    alternative = best.ek.alternative or (best.ak is not None and best.ak.alternative)
    if len(results) == 1 and not alternative:
        return ""
    pair = best.ek.label + (f" with {best.ak.label}" if best.ak else "")
    return f" ({pair} works)"


def _damaged_note(best: Result, tried: int) -> list[str]:
    bad = best.tag_failed + best.garbage
    if best.verified and bad:
        return [f"{bad} of {tried} frames did not verify: damaged frames, the key is right"]
    return []


def _auth_key_decrypts(results: list[Result], frames: list[Ciphered]) -> bool:
    """True if some authentication key, used as the encryption key, decrypts the frames."""
    auth_keys = {r.ak.key for r in results if r.ak is not None and r.ak.key is not None}
    return any(_decrypt_only(key, c) for key in auth_keys for c in frames if c.encrypted)


def render_report(report: KeyReport) -> str:
    lines = [report.verdict]
    lines += [f"  {line}" for line in report.details]
    return "\n".join(lines) + "\n"
