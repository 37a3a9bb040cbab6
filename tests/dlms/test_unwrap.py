"""The one APDU dispatch: the steps each kind of APDU goes through, in order."""

from __future__ import annotations

import pytest
import seed_vectors as sv
from builders import cipher_apdu, gbt_blocks

from amsread.dlms.ciphering import Ciphered, Decryptor
from amsread.dlms.keys import Keys, parse_key
from amsread.dlms.unwrap import (
    BlockLost,
    BlockReceived,
    CipheredHeader,
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
    DecryptionError,
    NoKeyError,
    ReplayError,
)
from amsread.model import Rejected, Skipped

EK = parse_key(sv.RADIUS_KEY)
AK = parse_key(sv.RADIUS_AUTH_KEY)
OTHER = bytes(range(16))
RADIUS_KEYS = Keys(EK, AK)
GET_RESPONSE = bytes.fromhex("C4 01 C1 00 06 00 00 00 2A")


def seal(plaintext: bytes, **options: object) -> bytes:
    kwargs: dict[str, object] = {"key": EK, "auth_key": AK, "invocation_counter": 7}
    kwargs.update(options)
    return cipher_apdu(plaintext, **kwargs)  # type: ignore[arg-type]


def unwrapper(keys: Keys | None = RADIUS_KEYS, **options: object) -> Unwrapper:
    decrypt = Decryptor(keys).decrypt if keys is not None else None
    return Unwrapper(decrypt, **options)  # type: ignore[arg-type]


def kinds(steps: list[Step]) -> list[str]:
    return [type(step).__name__ for step in steps]


def test_a_data_notification_in_clear_is_ready_at_once() -> None:
    steps = unwrapper().feed(sv.RADIUS_PLAINTEXT)
    assert kinds(steps) == ["NotificationReady"]
    [ready] = steps
    assert isinstance(ready, NotificationReady)
    assert ready.apdu == sv.RADIUS_PLAINTEXT
    assert ready.ciphered is None and ready.plain is None


def test_a_ciphered_push_gives_its_header_its_plaintext_then_the_notification() -> None:
    steps = unwrapper().feed(seal(sv.RADIUS_PLAINTEXT))
    assert kinds(steps) == ["CipheredHeader", "Decrypted", "NotificationReady"]
    header, decrypted, ready = steps
    assert isinstance(header, CipheredHeader)
    assert header.ciphered.invocation_counter == 7
    assert header.ciphered.system_title == b"KAMtest1"
    assert isinstance(decrypted, Decrypted)
    assert decrypted.plain.authenticated is True
    assert decrypted.plain.keys_swapped is False
    assert isinstance(ready, NotificationReady)
    assert ready.apdu == sv.RADIUS_PLAINTEXT
    assert ready.ciphered is header.ciphered


def test_the_radius_frame_unwraps_to_its_published_plaintext() -> None:
    apdu = sv.RADIUS_FRAME[11:-3]  # after flag, header, HCS and LLC; before FCS and flag
    *_, ready = unwrapper().feed(apdu)
    assert isinstance(ready, NotificationReady)
    assert ready.apdu == sv.RADIUS_PLAINTEXT
    assert ready.ciphered is not None
    assert ready.ciphered.invocation_counter == sv.RADIUS_INVOCATION_COUNTER


def test_keys_given_swapped_are_said_in_the_decrypted_step() -> None:
    steps = unwrapper(Keys(AK, EK)).feed(seal(sv.RADIUS_PLAINTEXT))
    decrypted = steps[1]
    assert isinstance(decrypted, Decrypted)
    assert decrypted.plain.keys_swapped is True
    assert isinstance(steps[-1], NotificationReady)


def test_without_an_auth_key_the_plaintext_is_marked_unchecked() -> None:
    steps = unwrapper(Keys(EK)).feed(seal(sv.RADIUS_PLAINTEXT))
    decrypted = steps[1]
    assert isinstance(decrypted, Decrypted)
    assert decrypted.plain.authenticated is False
    assert isinstance(steps[-1], NotificationReady)


def test_without_a_decryptor_the_header_is_the_last_step() -> None:
    apdu = seal(sv.RADIUS_PLAINTEXT)
    steps = unwrapper(None).feed(apdu)
    assert kinds(steps) == ["CipheredHeader"]


def test_a_tag_that_fails_is_a_failure_carrying_the_header() -> None:
    steps = unwrapper(Keys(OTHER, AK)).feed(seal(sv.RADIUS_PLAINTEXT))
    assert kinds(steps) == ["CipheredHeader", "Failed"]
    failed = steps[-1]
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, AuthenticationError)
    assert failed.ciphered is not None and failed.ciphered.invocation_counter == 7


def test_encrypted_frames_without_a_key_fail_with_no_key() -> None:
    steps = unwrapper(Keys()).feed(seal(sv.RADIUS_PLAINTEXT))
    failed = steps[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, NoKeyError)


def test_a_malformed_ciphered_header_fails_before_any_header_step() -> None:
    apdu = seal(sv.RADIUS_PLAINTEXT)[:-3]
    steps = unwrapper().feed(apdu)
    assert kinds(steps) == ["Failed"]
    failed = steps[0]
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, ApduError)
    assert failed.apdu == apdu and failed.ciphered is None


def test_a_wrong_key_without_a_tag_is_a_decryption_failure() -> None:
    apdu = seal(sv.RADIUS_PLAINTEXT, key=OTHER, security_control=0x20)
    steps = unwrapper(Keys(EK)).feed(apdu)
    assert kinds(steps) == ["CipheredHeader", "Decrypted", "Failed"]
    failed = steps[-1]
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, DecryptionError)
    assert "wrong encryption key" in str(failed.error)


def test_a_deciphered_notification_that_does_not_parse_means_a_wrong_key_unless_proven() -> None:
    broken = sv.RADIUS_PLAINTEXT[:6]  # a data-notification tag, cut inside its header
    unproven = unwrapper(Keys(EK)).feed(seal(broken, security_control=0x20))[-1]
    proven = unwrapper().feed(seal(broken))[-1]
    assert isinstance(unproven, NotificationReady) and isinstance(proven, NotificationReady)
    cause = ApduError("data-notification has no body")
    unproven_error = unproven.parse_failure(cause)
    assert isinstance(unproven_error, DecryptionError)
    assert unproven_error.__cause__ is cause
    assert proven.parse_failure(cause) is cause


def test_client_traffic_is_another_apdu_named_for_skipping() -> None:
    [step] = unwrapper().feed(GET_RESPONSE)
    assert isinstance(step, OtherApdu)
    assert step.what == "get-response"


def test_ciphered_client_traffic_is_skipped_only_when_its_tag_verified() -> None:
    verified = unwrapper().feed(seal(GET_RESPONSE))[-1]
    assert isinstance(verified, OtherApdu)
    assert verified.what == "ciphered get-response"
    unchecked = unwrapper(Keys(EK)).feed(seal(GET_RESPONSE))[-1]
    assert isinstance(unchecked, Failed)
    assert isinstance(unchecked.error, DecryptionError)


def test_an_empty_apdu_fails() -> None:
    [failed] = unwrapper().feed(b"")
    assert isinstance(failed, Failed)
    assert str(failed.error) == "empty APDU"


def test_the_replay_guard_is_asked_before_decrypting() -> None:
    asked: list[int] = []

    def guard(ciphered: Ciphered) -> None:
        asked.append(ciphered.invocation_counter)
        raise ReplayError("seen before")

    steps = unwrapper(replay_guard=guard).feed(seal(sv.RADIUS_PLAINTEXT))
    assert asked == [7]
    assert kinds(steps) == ["CipheredHeader", "Failed"]
    assert isinstance(steps[-1], Failed) and isinstance(steps[-1].error, ReplayError)


def test_blocks_are_received_then_joined_and_the_joined_apdu_unwrapped() -> None:
    apdu = seal(sv.RADIUS_PLAINTEXT)
    blocks = gbt_blocks(apdu, 3)
    dispatch = unwrapper()
    first, second = dispatch.feed(blocks[0]), dispatch.feed(blocks[1])
    assert kinds(first) == kinds(second) == ["BlockReceived"]
    assert isinstance(second[0], BlockReceived) and second[0].block.number == 2
    last = dispatch.feed(blocks[2])
    assert kinds(last) == ["TransferComplete", "CipheredHeader", "Decrypted", "NotificationReady"]
    complete = last[0]
    assert isinstance(complete, TransferComplete)
    assert complete.apdu == apdu and complete.blocks == 3


def test_a_missing_block_is_lost_and_the_rest_of_its_transfer_skipped() -> None:
    blocks = gbt_blocks(sv.RADIUS_PLAINTEXT, 4)
    dispatch = unwrapper()
    dispatch.feed(blocks[0])
    lost = dispatch.feed(blocks[2])
    assert kinds(lost) == ["BlockLost", "BlockLost"]
    assert isinstance(lost[0], BlockLost) and isinstance(lost[0].event, Rejected)
    assert lost[0].event.reason == "blocks_lost"
    assert isinstance(lost[1], BlockLost) and isinstance(lost[1].event, Skipped)
    [skipped] = dispatch.feed(blocks[3])
    assert isinstance(skipped, BlockLost) and isinstance(skipped.event, Skipped)


def test_a_transfer_cut_by_the_end_of_the_stream_is_lost_on_close() -> None:
    dispatch = unwrapper()
    dispatch.feed(gbt_blocks(sv.RADIUS_PLAINTEXT, 2)[0])
    [lost] = dispatch.close("the stream ended")
    assert isinstance(lost, BlockLost) and isinstance(lost.event, Rejected)
    assert "the stream ended" in lost.event.detail
    assert dispatch.close("again") == []


def test_a_malformed_block_drops_the_partial_transfer_and_fails() -> None:
    blocks = gbt_blocks(sv.RADIUS_PLAINTEXT, 2)
    dispatch = unwrapper()
    dispatch.feed(blocks[0])
    steps = dispatch.feed(blocks[1] + b"\x00")
    assert kinds(steps) == ["BlockLost", "Failed"]
    assert isinstance(steps[1], Failed) and isinstance(steps[1].error, ApduError)


def test_a_block_transfer_inside_another_fails() -> None:
    inner = gbt_blocks(sv.RADIUS_PLAINTEXT, 1)[0]
    [outer] = gbt_blocks(inner, 1)
    steps = unwrapper().feed(outer)
    assert kinds(steps) == ["TransferComplete", "Failed"]
    failed = steps[-1]
    assert isinstance(failed, Failed)
    assert str(failed.error) == "a general-block-transfer inside another one"


@pytest.mark.parametrize("tag", [0xDB, 0xDC])
def test_both_ciphering_tags_unwrap(tag: int) -> None:
    steps = unwrapper().feed(seal(sv.RADIUS_PLAINTEXT, tag=tag))
    assert isinstance(steps[-1], NotificationReady)
    assert isinstance(steps[0], CipheredHeader) and steps[0].ciphered.tag == tag


def test_untraced_a_ciphered_push_gives_only_its_notification() -> None:
    steps = unwrapper(trace=False).feed(seal(sv.RADIUS_PLAINTEXT))
    assert kinds(steps) == ["NotificationReady"]
    [ready] = steps
    assert isinstance(ready, NotificationReady)
    assert ready.plain is not None and ready.plain.authenticated is True


def test_untraced_blocks_give_nothing_until_the_joined_push() -> None:
    dispatch = unwrapper(trace=False)
    blocks = gbt_blocks(seal(sv.RADIUS_PLAINTEXT), 3)
    assert dispatch.feed(blocks[0]) == [] and dispatch.feed(blocks[1]) == []
    assert kinds(dispatch.feed(blocks[2])) == ["NotificationReady"]


def test_untraced_losses_and_failures_are_still_returned() -> None:
    dispatch = unwrapper(Keys(OTHER, AK), trace=False)
    blocks = gbt_blocks(seal(sv.RADIUS_PLAINTEXT), 3)
    dispatch.feed(blocks[0])
    assert kinds(dispatch.feed(blocks[2])) == ["BlockLost", "BlockLost"]
    assert kinds(dispatch.feed(seal(sv.RADIUS_PLAINTEXT))) == ["Failed"]


def test_untraced_without_a_decryptor_the_header_is_still_the_result() -> None:
    assert kinds(unwrapper(None, trace=False).feed(seal(sv.RADIUS_PLAINTEXT))) == ["CipheredHeader"]
