"""The layers above the link on one APDU: block transfer, ciphering, data-notification.

The builder makes the readings exactly as the pipeline does; the A-XDR tree,
decoded from the same bytes, is only for annotating them.
"""

from __future__ import annotations

from dataclasses import dataclass

from amsread.diagnose.explain.fields import (
    block_fields,
    ciphered_header,
    llc_field,
    notification_header,
    tag_field,
)
from amsread.diagnose.explain.model import (
    Block,
    Field,
    Problem,
    ProfileInfo,
    ReadingLine,
    Section,
    upper_hex,
)
from amsread.diagnose.explain.problems import (
    KEYS_SWAPPED,
    REPORT_IT,
    auth_failed_problem,
    decrypt_failed_problem,
    no_key_problem,
    unknown_layout_problem,
)
from amsread.diagnose.explain.tree import annotate, check_profile, tree_lines
from amsread.diagnose.redact import Redactor, is_identifying
from amsread.dlms import axdr
from amsread.dlms.apdu import (
    APDU_NAMES,
    CIPHERED_TAGS,
    DATA_NOTIFICATION,
    GENERAL_BLOCK_TRANSFER,
    apdu_name,
    parse_data_notification,
)
from amsread.dlms.ciphering import Decryptor
from amsread.dlms.keys import Keys
from amsread.dlms.unwrap import (
    BlockLost,
    Decrypted,
    Failed,
    NotificationReady,
    OtherApdu,
    Step,
    TransferComplete,
    Unwrapper,
)
from amsread.errors import (
    ApduError,
    AuthenticationError,
    AxdrError,
    NoKeyError,
    UnsupportedSecurityError,
)
from amsread.link.hdlc import LLC_HEADERS
from amsread.model import Message, Rejected, Skipped
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.manufacturers import decode_system_title
from amsread.readings.profiles import Profile, ProfileSet
from amsread.readings.shapes import Extracted, extract

#: The ciphered APDU tags under the name analyse.py imports them by.
CIPHERED = CIPHERED_TAGS
_GBT_TAG = bytes([GENERAL_BLOCK_TRANSFER])


@dataclass
class _Place:
    """Where the APDU the next step is about sits, and what is known of it."""

    apdu: bytes
    base: int
    block: Block
    #: The system title of the ciphered APDU it came in, for the profile match.
    title: bytes | None = None
    #: None in clear; deciphered: whether a verified tag vouches for it.
    trusted: bool | None = None
    deciphered: bool = False


def node_content(node: axdr.Node) -> bytes | None:
    """The raw content of a string or number node (what to mask in hex dumps)."""
    value = node.value
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1", "replace")
    if type(value) is int:
        size = node.end - node.content
        return value.to_bytes(size, "big", signed=value < 0) if size else None
    return None


class ApduExplainer:
    """Runs the layers above the link on one APDU and records what each one saw."""

    def __init__(self, keys: Keys | None = None, profiles: ProfileSet | None = None) -> None:
        self.keys = keys or Keys()
        self.profiles = profiles or ProfileSet()
        self.builder = ReadingsBuilder(self.profiles)
        #: Identifying values seen so far (used only with --redact).
        self.secrets = Redactor()
        #: Each frame is decrypted afresh: explain shows a swapped pair on every frame.
        self.unwrapper = Unwrapper(lambda ciphered: Decryptor(self.keys).decrypt(ciphered))

    def bare_apdu(self, data: bytes, index: int) -> Section:
        section = Section(index, "apdu", None, len(data), summary="APDU without link framing")
        block = Block("APDU (offsets from its first byte)")
        section.blocks.append(block)
        base = 0
        if data[:3] in LLC_HEADERS:
            base = llc_field(data, 0, block)
        self.explain(section, data[base:], base, block)
        return section

    def explain(self, section: Section, apdu: bytes, base: int, block: Block) -> None:
        """One APDU, step by step as the unwrapper takes it: each step annotated."""
        place = _Place(apdu, base, block)
        self._open(section, place)
        steps = self.unwrapper.feed(apdu)
        for step in steps:
            place = self._annotate(section, step, place)
        joined = any(isinstance(step, TransferComplete) for step in steps)
        if apdu[:1] == _GBT_TAG and not section.problems and not joined:
            section.outcome = "segment"
            number = int.from_bytes(apdu[2:4], "big")
            section.notes.append(f"block {number}: the APDU continues in the next block")

    def _open(self, section: Section, place: _Place) -> None:
        """The fields of an APDU read from its tag, before the unwrapper judges it."""
        apdu, base, block = place.apdu, place.base, place.block
        tag = apdu[0] if apdu else None
        if tag in CIPHERED_TAGS:
            section.summary += f" · {apdu_name(apdu[0])}"
            place.title = ciphered_header(apdu, base, block, self.secrets)
        elif tag == GENERAL_BLOCK_TRANSFER:
            section.summary += " · general-block-transfer"
            block_fields(apdu, base, block)
        elif tag == DATA_NOTIFICATION:
            section.summary += " · data-notification"

    def _annotate(self, section: Section, step: Step, place: _Place) -> _Place:
        """Annotate one step; returns where the next step's APDU sits."""
        if isinstance(step, NotificationReady):
            self.notification(
                section, step.apdu, place.base, place.block, place.title, place.trusted
            )
        elif isinstance(step, OtherApdu):
            self._other(section, step, place)
        elif isinstance(step, Failed):
            self._failed(section, step, place)
        elif isinstance(step, Decrypted):
            return self._decrypted(section, step, place)
        elif isinstance(step, TransferComplete):
            joined = Block(f"APDU joined from {step.blocks} blocks (offsets in the APDU)")
            section.blocks.append(joined)
            place = _Place(step.apdu, 0, joined)
            if step.apdu[:1] != _GBT_TAG:
                self._open(section, place)
        elif isinstance(step, BlockLost):
            self._lost(section, step.event)
        return place

    def _lost(self, section: Section, event: Rejected | Skipped) -> None:
        if isinstance(event, Skipped):
            section.notes.append(event.what)
            return
        section.problems.append(
            Problem(
                "blocks_lost",
                event.detail,
                "a block was lost on the line or the meter restarted the transfer",
            )
        )

    def _other(self, section: Section, step: OtherApdu, place: _Place) -> None:
        apdu = step.apdu
        if step.ciphered is None or (apdu and apdu[0] in APDU_NAMES):
            self._not_push(section, apdu, place.base, place.block, apdu[0])
        else:
            self._not_an_apdu(section, apdu, place.block)

    def _failed(self, section: Section, step: Failed, place: _Place) -> None:
        error, ciphered = step.error, step.ciphered
        if place.deciphered:
            self._not_an_apdu(section, step.apdu, place.block)
        elif ciphered is not None and isinstance(error, NoKeyError):
            tag_field(ciphered, place.apdu, place.base, place.block, "not checked")
            section.problems.append(no_key_problem(ciphered))
        elif ciphered is not None and isinstance(error, AuthenticationError):
            tag_field(ciphered, place.apdu, place.base, place.block, "MISMATCH", "bad")
            section.problems.append(auth_failed_problem(self.keys))
        elif isinstance(error, UnsupportedSecurityError):
            section.problems.append(Problem("unsupported_security", str(error), REPORT_IT))
        elif not step.apdu:
            section.problems.append(
                Problem("bad_apdu", "the information field is empty", "report this frame")
            )
        elif step.apdu[0] in CIPHERED_TAGS:
            section.problems.append(
                Problem("bad_apdu", f"the ciphered APDU is malformed: {error}", REPORT_IT)
            )
        else:
            section.problems.append(Problem("bad_apdu", str(error), REPORT_IT))

    def _not_push(self, section: Section, apdu: bytes, base: int, block: Block, tag: int) -> None:
        name = apdu_name(tag)
        block.fields.append(Field(base, f"{tag:02X}", "APDU tag", name))
        if len(apdu) > 1:
            block.fields.append(
                Field(
                    base + 1, upper_hex(apdu[1:]), "content", f"{len(apdu) - 1} bytes (not decoded)"
                )
            )
        section.summary += f" · {name}"
        section.outcome = "skipped"
        section.notes.append(
            f"{name}: client/server traffic, not a push message (amsread reads pushes only)"
        )

    def _decrypted(self, section: Section, step: Decrypted, place: _Place) -> _Place:
        plain = step.plain
        verdict = {True: "verified", False: "not checked (no --auth-key)", None: ""}
        tag_field(
            step.ciphered, place.apdu, place.base, place.block, verdict[plain.authenticated], "ok"
        )
        if plain.keys_swapped:
            section.problems.append(KEYS_SWAPPED)
        if plain.authenticated is False:
            section.notes.append(
                "the authentication tag was not checked: pass --auth-key to verify it"
            )
        inner = Block(f"Decrypted APDU ({len(plain.apdu)} bytes, offsets from its first byte)")
        section.blocks.append(inner)
        trusted = plain.authenticated is True
        return _Place(plain.apdu, 0, inner, place.title, trusted, deciphered=True)

    def _not_an_apdu(self, section: Section, apdu: bytes, block: Block) -> None:
        """Deciphered bytes that are no APDU: the key is the likely cause."""
        first = f"0x{apdu[0]:02X}" if apdu else "nothing"
        block.fields.append(
            Field(
                0, upper_hex(apdu), "plaintext", f"{len(apdu)} bytes, starting with {first}", "bad"
            )
        )
        section.problems.append(
            decrypt_failed_problem(f"decryption gave bytes that are no APDU ({first})")
        )

    def notification(
        self,
        section: Section,
        apdu: bytes,
        base: int,
        block: Block,
        title: bytes | None,
        trusted: bool | None,
    ) -> None:
        """``trusted``: None for plaintext on the line, True/False for a decrypted APDU."""
        body_at = notification_header(apdu, base, block)
        try:
            notification = parse_data_notification(apdu)
            root = axdr.decode_node(apdu, body_at - base)
        except (ApduError, AxdrError) as exc:
            if trusted is False:
                section.problems.append(
                    decrypt_failed_problem(
                        f"the decrypted bytes start like a push but do not parse ({exc})"
                    )
                )
            else:
                section.problems.append(
                    Problem("bad_apdu", f"the data-notification does not parse: {exc}", REPORT_IT)
                )
            return
        # The builder makes the readings exactly as the pipeline does; the tree,
        # decoded from the same bytes, is only for annotating them.
        try:
            message = self.builder.build(notification, title)
        except ApduError as exc:
            section.problems.append(Problem("bad_apdu", str(exc), REPORT_IT))
            return
        extracted = extract(root.value)
        profile = self._profile(message)
        notes, value_nodes = annotate(root, extracted, message, profile)
        section.tree = tree_lines(apdu, root, notes, base)
        section.readings = [ReadingLine(r.obis, r.name, r.value, r.unit) for r in message.readings]
        section.profile = self._profile_info(extracted, title, profile)
        section.outcome = "decoded"
        section.summary += f" → {len(message.readings)} readings"
        self._collect_secrets(message, value_nodes)
        hint = message.extra.get("hint")
        positional = getattr(extracted, "positional", extracted.shape == "positional")
        if hint or (positional and profile is None):
            section.outcome = "failed"
            section.problems.append(unknown_layout_problem(extracted, str(hint) if hint else None))
        elif any(r.obis is None for r in message.readings):
            section.notes.append(
                "some values have no OBIS code and no profile names them; they keep"
                " 'obis: null' (a profile could name them by position)"
            )

    def _profile(self, message: Message) -> Profile | None:
        return next((p for p in self.profiles.profiles if p.name == message.profile), None)

    def _profile_info(
        self, extracted: Extracted, title: bytes | None, chosen: Profile | None
    ) -> ProfileInfo:
        flag = decode_system_title(title).flag if title else None
        positional = bool(getattr(extracted, "positional", extracted.shape == "positional"))
        candidates = [
            check_profile(p, extracted, flag, p is chosen, positional)
            for p in self.profiles.profiles
            if bool(getattr(p, "positional", False)) == positional
        ]
        if chosen is None:
            kind = "positional " if positional else ""
            reason = (
                f"no {kind}profile matches: names come from the OBIS codes in the data and"
                " amsread's OBIS table; scalers only as the meter sent them"
            )
            return ProfileInfo(None, "", reason, candidates)
        matching = sum(c.score >= 0 for c in candidates)
        mine = next((c for c in candidates if c.chosen), None)
        met = "; ".join(c for c in mine.checks if c.endswith("✓")) if mine else ""
        score = mine.score if mine else 0
        reason = f"{met or 'it matches'}: {score} {'criterion' if score == 1 else 'criteria'} met"
        if matching > 1:
            reason += f", the most specific of {matching} matching profiles"
        return ProfileInfo(chosen.name, chosen.title, reason, candidates)

    def _collect_secrets(self, message: Message, value_nodes: list[axdr.Node]) -> None:
        for reading, node in zip(message.readings, value_nodes, strict=False):
            if is_identifying(reading.name, reading.obis, reading.value):
                self.secrets.add("meter-id", str(reading.value), node_content(node))
