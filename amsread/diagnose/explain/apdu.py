"""The layers above the link on one APDU: block transfer, ciphering, data-notification.

The builder makes the readings exactly as the pipeline does; the A-XDR tree,
decoded from the same bytes, is only for annotating them.
"""

from __future__ import annotations

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
    DATA_NOTIFICATION,
    GENERAL_BLOCK_TRANSFER,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    DataNotification,
    apdu_name,
    parse_data_notification,
)
from amsread.dlms.blocks import BlockAssembler, parse_block
from amsread.dlms.ciphering import Decryptor, parse_ciphered
from amsread.dlms.keys import Keys
from amsread.errors import (
    ApduError,
    AuthenticationError,
    AxdrError,
    NoKeyError,
    UnsupportedSecurityError,
)
from amsread.link.hdlc import LLC_HEADERS
from amsread.model import Message, Rejected
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.described import described_tree
from amsread.readings.manufacturers import decode_system_title
from amsread.readings.profiles import Profile, ProfileSet
from amsread.readings.shapes import Extracted, extract

CIPHERED = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)


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
        self._blocks = BlockAssembler()
        self._block_count = 0

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
        """One APDU, by its tag: ciphered, a block of a transfer, a push, or no push."""
        if not apdu:
            section.problems.append(
                Problem("bad_apdu", "the information field is empty", "report this frame")
            )
            return
        tag = apdu[0]
        if tag in CIPHERED:
            self.ciphered(section, apdu, base, block)
        elif tag == GENERAL_BLOCK_TRANSFER:
            self.block_transfer(section, apdu, base, block)
        elif tag == DATA_NOTIFICATION:
            section.summary += " · data-notification"
            self.notification(section, apdu, base, block, None, None)
        else:
            self._not_push(section, apdu, base, block, tag)

    def block_transfer(self, section: Section, apdu: bytes, base: int, block: Block) -> None:
        """One block of a general-block-transfer; the last explains the joined APDU."""
        section.summary += " · general-block-transfer"
        block_fields(apdu, base, block)
        try:
            parsed = parse_block(apdu)
        except ApduError as exc:
            section.problems.append(Problem("bad_apdu", str(exc), REPORT_IT))
            return
        self._block_count += 1
        joined: bytes | None = None
        for event in self._blocks.push(parsed):
            if isinstance(event, bytes):
                joined = event
            elif isinstance(event, Rejected):
                section.problems.append(
                    Problem(
                        "blocks_lost",
                        event.detail,
                        "a block was lost on the line or the meter restarted the transfer",
                    )
                )
                self._block_count = 1
            else:
                section.notes.append(event.what)
        if joined is None:
            if not section.problems:
                section.outcome = "segment"
                section.notes.append(f"block {parsed.number}: the APDU continues in the next block")
            return
        count, self._block_count = self._block_count, 0
        message = Block(f"APDU joined from {count} blocks (offsets in the APDU)")
        section.blocks.append(message)
        if joined[:1] == bytes([GENERAL_BLOCK_TRANSFER]):
            section.problems.append(
                Problem("bad_apdu", "a general-block-transfer inside another one", REPORT_IT)
            )
            return
        self.explain(section, joined, 0, message)

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

    def ciphered(self, section: Section, apdu: bytes, base: int, block: Block) -> None:
        section.summary += f" · {apdu_name(apdu[0])}"
        title = ciphered_header(apdu, base, block, self.secrets)
        try:
            ciphered = parse_ciphered(apdu)
        except ApduError as exc:
            section.problems.append(
                Problem("bad_apdu", f"the ciphered APDU is malformed: {exc}", REPORT_IT)
            )
            return
        try:
            plain = Decryptor(self.keys).decrypt(ciphered)
        except NoKeyError:
            tag_field(ciphered, apdu, base, block, "not checked")
            section.problems.append(no_key_problem(ciphered))
            return
        except AuthenticationError:
            tag_field(ciphered, apdu, base, block, "MISMATCH", "bad")
            section.problems.append(auth_failed_problem(self.keys))
            return
        except UnsupportedSecurityError as exc:
            section.problems.append(Problem("unsupported_security", str(exc), REPORT_IT))
            return
        verdict = {True: "verified", False: "not checked (no --auth-key)", None: ""}
        tag_field(ciphered, apdu, base, block, verdict[plain.authenticated], "ok")
        if getattr(plain, "keys_swapped", False):
            section.problems.append(KEYS_SWAPPED)
        if plain.authenticated is False:
            section.notes.append(
                "the authentication tag was not checked: pass --auth-key to verify it"
            )
        inner = Block(f"Decrypted APDU ({len(plain.apdu)} bytes, offsets from its first byte)")
        section.blocks.append(inner)
        self.decrypted(section, plain.apdu, inner, title, plain.authenticated is True)

    def decrypted(
        self, section: Section, apdu: bytes, block: Block, title: bytes, trusted: bool
    ) -> None:
        if apdu[:1] == bytes([DATA_NOTIFICATION]):
            self.notification(section, apdu, 0, block, title, trusted)
            return
        first = f"0x{apdu[0]:02X}" if apdu else "nothing"
        if trusted and apdu and apdu[0] in APDU_NAMES:
            self._not_push(section, apdu, 0, block, apdu[0])
            return
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
            notification, root = _notification_tree(apdu, body_at - base)
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
        hint = message.hint
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


def _notification_tree(apdu: bytes, at: int) -> tuple[DataNotification, axdr.Node]:
    """The notification and the tree of its body, A-XDR or (XT211) bare-described."""
    try:
        return parse_data_notification(apdu), axdr.decode_node(apdu, at)
    except (ApduError, AxdrError):
        described = described_tree(apdu, at)
        if described is None:
            raise
        return parse_data_notification(apdu, lazy=True), described
