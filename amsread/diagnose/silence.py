"""Why a run decoded nothing: one line, as ``explain`` would say it. Sans-I/O.

``replay`` and ``listen`` used to end a run of undecodable bytes with a
garbage count only. A ``SilenceWatch`` keeps the first few KiB of what
arrived while nothing has decoded, and names the likely cause from them with
``explain``'s own garbage diagnosis (text telegram, 7 data bits, wrong baud),
plus bare APDUs that need ``--framing raw`` and hex text where raw bytes were
expected. Valid frames that gave nothing (encrypted without a key, a wrong
key) are not its business: the runner names those failures as they happen.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Bytes kept for the diagnosis: enough for several frames at any setting.
SAMPLE_SIZE = 4096
#: Seconds of undecodable bytes after which a live run says why (listen: within
#: its first minute, after its serial-setting search has had a fair try).
PATIENCE = 45.0
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF \t")


class SilenceWatch:
    """Collects the bytes of a run that has decoded nothing yet; says why once."""

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.sample = bytearray()
        self.first_at: float | None = None
        #: True once the cause was said (it is said once per run).
        self.said = False

    def feed(self, chunk: bytes, now: float) -> None:
        if self.first_at is None and chunk:
            self.first_at = now
        room = SAMPLE_SIZE - len(self.sample)
        if room > 0:
            self.sample += chunk[:room]

    def due(self, now: float) -> bool:
        """Whether a live run has seen enough to say why nothing decodes."""
        if self.said or self.first_at is None or len(self.sample) < 16:
            return False
        return now - self.first_at >= PATIENCE

    def cause(self, counters: Mapping[str, int]) -> str | None:
        """One line naming why nothing decoded; None if nothing arrived."""
        if not self.sample:
            return None
        self.said = True
        if counters.get("frames_ok"):
            # Valid frames that gave nothing (no key, a wrong key…): the runner
            # logged each such failure with its cause already.
            return None
        return "nothing decoded: " + _sample_cause(bytes(self.sample), self.framing)


def _sample_cause(sample: bytes, framing: str) -> str:
    # Imported here: explain is large, and a run that decodes never needs it.
    from amsread.diagnose.explain import diagnose_garbage, looks_like_apdu

    if framing != "dsmr":  # a DSMR framing reads text telegrams itself
        problem = diagnose_garbage(sample, at_start=True, whole=True)
        if problem is not None and problem.cause == "text_telegram":
            return f"{problem.summary}; {problem.next_step}"
    hex_bytes = _hex_line(sample)
    if hex_bytes is not None:
        if looks_like_apdu(hex_bytes) and framing != "raw":
            return (
                "the input is hex text of bare APDUs (no HDLC or M-Bus framing);"
                " use --framing raw (one APDU per line)"
            )
        return (
            "the input is hex text, not bytes from the line;"
            " use 'amsread decode --file FILE' for hex"
        )
    if framing != "raw" and looks_like_apdu(sample):
        return (
            "the bytes are a bare APDU without HDLC or M-Bus framing; write it as hex,"
            " one APDU per line, and use --framing raw"
        )
    problem = diagnose_garbage(sample, at_start=True, whole=True)
    assert problem is not None  # whole=True always names a cause
    return f"{problem.summary}; {problem.next_step}"


def _hex_line(sample: bytes) -> bytes | None:
    """The bytes of the first hex line of a text sample, or None if it is not hex text."""
    for line in sample.splitlines():
        text = line.split(b"#", 1)[0].strip()
        if not text:
            continue
        digits = text.replace(b" ", b"").replace(b"\t", b"")
        if len(digits) < 8 or len(digits) % 2 or not set(text) <= _HEX_DIGITS:
            return None
        return bytes.fromhex(digits.decode("ascii"))
    return None
