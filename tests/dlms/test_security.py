"""The DLMS push-ciphering matrix, built independently with tests/builders.py.

Every security control value met in the field (0x10, 0x20, 0x21, 0x30, 0x31),
both ciphering tags (0xDB glo, 0xDC ded) and every BER length form, from the
seed plaintexts; then tag failures, wrong keys, swapped keys and diagnosis.
"""

from __future__ import annotations

import pytest
import seed_vectors as sv
from builders import LLC, cipher_apdu, hdlc_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms.ciphering import Decryptor, parse_ciphered
from amsread.dlms.keys import Keys, parse_key
from amsread.errors import ApduError, UnsupportedSecurityError
from amsread.model import Failure, Message
from amsread.pipeline import Pipeline

EK = parse_key(sv.RADIUS_KEY)
AK = parse_key(sv.RADIUS_AUTH_KEY)
OTHER = bytes(range(16))
TITLE = bytes.fromhex(sv.RADIUS_SYSTEM_TITLE)

# A short push cut from the Norwegian-list plaintext (its header and its
# active-power item), so that the ciphered APDU fits a one-byte BER length.
SHORT_PLAINTEXT = (
    sv.NORWEGIAN_LIST_PLAINTEXT[:18] + bytes.fromhex("0202") + bytes.fromhex("09060101010700ff")
) + bytes.fromhex("06000000a9")

SECURITY_CONTROLS = (0x10, 0x20, 0x21, 0x30, 0x31)
CIPHERING_TAGS = (0xDB, 0xDC)
# The plaintext used for each BER length form: the largest seed that fits it.
PLAINTEXT_FOR_FORM = {
    "short": SHORT_PLAINTEXT,
    "81": sv.NORWEGIAN_LIST_PLAINTEXT,
    "82": sv.RADIUS_PLAINTEXT,
    "84": sv.RADIUS_PLAINTEXT,
}
LENGTH_BYTE = {"81": 0x81, "82": 0x82, "84": 0x84}


def seal(plaintext: bytes, sc: int, **kwargs: object) -> bytes:
    options: dict[str, object] = {
        "key": EK,
        "auth_key": AK,
        "system_title": TITLE,
        "security_control": sc,
    }
    options.update(kwargs)
    return cipher_apdu(plaintext, **options)  # type: ignore[arg-type]


def plain_readings(plaintext: bytes) -> list[tuple[object, object, object]]:
    [message] = Pipeline().feed_apdu(plaintext)
    assert isinstance(message, Message)
    return triples(message)


def triples(message: Message) -> list[tuple[object, object, object]]:
    return [(r.obis, r.value, r.unit) for r in message.readings]


def one_event(keys: Keys, apdu: bytes) -> Message | Failure:
    [event] = Pipeline(keys).feed_apdu(apdu)
    assert isinstance(event, Message | Failure)
    return event


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# -- the matrix ------------------------------------------------------------


@pytest.mark.parametrize("form", list(PLAINTEXT_FOR_FORM))
@pytest.mark.parametrize("tag", CIPHERING_TAGS)
@pytest.mark.parametrize("sc", SECURITY_CONTROLS)
def test_every_security_control_tag_and_length_form_decodes_to_the_plaintext_readings(
    sc: int, tag: int, form: str
) -> None:
    plaintext = PLAINTEXT_FOR_FORM[form]
    apdu = seal(plaintext, sc, tag=tag, length_form=form, invocation_counter=0x01020304)
    assert apdu[0] == tag
    assert apdu[10] == LENGTH_BYTE.get(form, apdu[10])
    if form == "short":
        assert apdu[10] < 0x80
    message = one_event(Keys(EK, AK), apdu)
    assert isinstance(message, Message), message
    assert triples(message) == plain_readings(plaintext)
    assert message.system_title == sv.RADIUS_SYSTEM_TITLE
    assert message.invocation_counter == 0x01020304
    assert message.authenticated is (True if sc & 0x10 else None)


@pytest.mark.parametrize("sc", SECURITY_CONTROLS)
def test_every_security_control_decodes_inside_an_hdlc_frame_with_llc(sc: int) -> None:
    frame = hdlc_frame(LLC + seal(sv.KAIFA_AT_PLAINTEXT, sc, length_form="82"))
    [message] = Pipeline(Keys(EK, AK)).feed(frame)
    assert isinstance(message, Message)
    assert triples(message) == sv.KAIFA_AT_READINGS


def test_parse_ciphered_reads_the_fields_of_the_radius_apdu() -> None:
    ciphered = parse_ciphered(sv.RADIUS_FRAME[11:-3])
    assert ciphered.system_title.hex().upper() == sv.RADIUS_SYSTEM_TITLE
    assert ciphered.invocation_counter == sv.RADIUS_INVOCATION_COUNTER
    assert ciphered.security_control == 0x30
    assert ciphered.auth_tag is not None and len(ciphered.auth_tag) == 12


@pytest.mark.parametrize("cut", [1, 12, 200])
def test_a_ciphered_apdu_cut_short_is_a_bad_apdu_not_a_crash(cut: int) -> None:
    apdu = seal(sv.RADIUS_PLAINTEXT, 0x30, length_form="84")
    event = one_event(Keys(EK, AK), apdu[:-cut])
    assert isinstance(event, Failure) and event.reason == "bad_apdu"
    assert "announces" in event.detail


def test_bytes_after_a_ciphered_apdu_are_a_bad_apdu() -> None:
    event = one_event(Keys(EK, AK), seal(SHORT_PLAINTEXT, 0x30) + b"\x00")
    assert isinstance(event, Failure) and event.reason == "bad_apdu"


def test_a_huge_four_byte_length_is_reported_not_allocated() -> None:
    apdu = bytes([0xDB, 8]) + TITLE + b"\x84\xff\xff\xff\xff" + b"\x30" + bytes(20)
    with pytest.raises(ApduError, match="announces 4294967295 bytes"):
        parse_ciphered(apdu)


# -- without the authentication key -----------------------------------------


@pytest.mark.parametrize("sc", [0x30, 0x31])
def test_encrypted_and_authenticated_without_auth_key_decrypts_unauthenticated(sc: int) -> None:
    message = one_event(Keys(EK), seal(sv.RADIUS_PLAINTEXT, sc))
    assert isinstance(message, Message)
    assert message.authenticated is False
    assert triples(message) == plain_readings(sv.RADIUS_PLAINTEXT)


def test_radius_frame_with_encryption_key_only_gives_the_same_readings_unauthenticated() -> None:
    [full] = Pipeline(Keys(EK, AK)).feed(sv.RADIUS_FRAME)
    pipeline = Pipeline(Keys(EK))
    [partial] = pipeline.feed(sv.RADIUS_FRAME)
    assert isinstance(full, Message) and isinstance(partial, Message)
    assert triples(partial) == triples(full)
    assert (full.authenticated, partial.authenticated) == (True, False)
    assert pipeline.counters["unauthenticated"] == 1


def test_authentication_only_without_auth_key_gives_the_clear_apdu_unauthenticated() -> None:
    message = one_event(Keys(EK), seal(sv.KAIFA_AT_PLAINTEXT, 0x10))
    assert isinstance(message, Message)
    assert message.authenticated is False
    assert triples(message) == sv.KAIFA_AT_READINGS


# -- tag failures and wrong keys ----------------------------------------------


@pytest.mark.parametrize("sc", [0x10, 0x30, 0x31])
@pytest.mark.parametrize("where", ["first payload byte", "last tag byte", "invocation counter"])
def test_a_damaged_authenticated_frame_fails_authentication_and_gives_no_readings(
    sc: int, where: str
) -> None:
    apdu = seal(sv.RADIUS_PLAINTEXT, sc)
    index = {"first payload byte": 18, "last tag byte": len(apdu) - 1, "invocation counter": 14}
    pipeline = Pipeline(Keys(EK, AK))
    [event] = pipeline.feed_apdu(flip(apdu, index[where]))
    assert isinstance(event, Failure)
    assert event.reason == "auth_failed"
    assert "cannot tell which" in event.detail
    assert pipeline.counters["auth_failed"] == 1
    assert pipeline.counters["messages"] == 0


@pytest.mark.parametrize("sc", [0x10, 0x30, 0x31])
@pytest.mark.parametrize("keys", [Keys(OTHER, AK), Keys(EK, OTHER)], ids=["wrong EK", "wrong AK"])
def test_a_wrong_key_with_a_tag_fails_authentication(sc: int, keys: Keys) -> None:
    event = one_event(keys, seal(sv.RADIUS_PLAINTEXT, sc))
    assert isinstance(event, Failure) and event.reason == "auth_failed"


@pytest.mark.parametrize("sc", [0x20, 0x21, 0x30])
@pytest.mark.parametrize("plaintext", [SHORT_PLAINTEXT, sv.RADIUS_PLAINTEXT])
def test_a_wrong_encryption_key_without_a_checkable_tag_is_no_valid_apdu(
    sc: int, plaintext: bytes
) -> None:
    event = one_event(Keys(OTHER), seal(plaintext, sc))
    assert isinstance(event, Failure)
    assert event.reason == "decrypt_failed"
    assert event.detail == "decryption gave no valid APDU: wrong encryption key or damaged frame"


def test_encryption_only_plaintext_with_bytes_left_over_is_no_valid_apdu() -> None:
    event = one_event(Keys(EK), seal(SHORT_PLAINTEXT + b"\x00", 0x20))
    assert isinstance(event, Failure) and event.reason == "decrypt_failed"


def test_an_authentic_but_malformed_apdu_is_a_bad_apdu_not_a_key_problem() -> None:
    event = one_event(Keys(EK, AK), seal(SHORT_PLAINTEXT + b"\x00", 0x30))
    assert isinstance(event, Failure) and event.reason == "bad_apdu"


def test_seed_000_kaifa_example_with_the_given_key_gives_no_valid_apdu() -> None:
    pipeline = Pipeline(Keys(parse_key(sv.KAIFA_AT_KEY)))
    [event] = pipeline.feed_apdu(sv.KAIFA_AT_CIPHERED)
    assert isinstance(event, Failure)
    assert "no valid APDU" in event.detail
    assert pipeline.counters["decrypt_failed"] == 1 and pipeline.counters["messages"] == 0


@given(index=st.integers(min_value=0, max_value=len(SHORT_PLAINTEXT) + 29))
@settings(max_examples=60, deadline=None)
def test_no_single_byte_change_of_an_authenticated_apdu_yields_readings(index: int) -> None:
    apdu = seal(SHORT_PLAINTEXT, 0x30, tag=0xDC)
    pipeline = Pipeline(Keys(EK, AK))
    events = pipeline.feed_apdu(flip(apdu, index % len(apdu)))
    assert not any(isinstance(e, Message) for e in events)
    assert pipeline.counters["messages"] == 0


# -- keys given the wrong way round -------------------------------------------


@pytest.mark.parametrize("sc", [0x10, 0x30, 0x31])
def test_swapped_keys_are_detected_decoded_and_kept_for_later_frames(sc: int) -> None:
    pipeline = Pipeline(Keys(AK, EK))
    first = pipeline.feed_apdu(seal(sv.RADIUS_PLAINTEXT, sc, invocation_counter=5))
    second = pipeline.feed_apdu(seal(sv.RADIUS_PLAINTEXT, sc, invocation_counter=6))
    [one], [two] = first, second
    assert isinstance(one, Message) and isinstance(two, Message)
    assert one.keys_swapped is True
    assert two.keys_swapped is False
    assert one.authenticated is two.authenticated is True
    assert pipeline.decryptor.keys == Keys(EK, AK)


def test_radius_frame_with_swapped_keys_decodes_and_says_so() -> None:
    [message] = Pipeline(Keys(AK, EK)).feed(sv.RADIUS_FRAME)
    assert isinstance(message, Message)
    assert message.keys_swapped is True
    assert triples(message)[1:] == sv.RADIUS_READINGS


def test_wrong_keys_are_not_reported_as_swapped() -> None:
    pipeline = Pipeline(Keys(OTHER, AK))
    [event] = pipeline.feed_apdu(seal(sv.RADIUS_PLAINTEXT, 0x30))
    assert isinstance(event, Failure) and event.reason == "auth_failed"
    assert pipeline.decryptor.keys == Keys(OTHER, AK)


def test_the_same_key_for_encryption_and_authentication_is_legal() -> None:
    apdu = cipher_apdu(sv.RADIUS_PLAINTEXT, key=EK, auth_key=EK, security_control=0x30)
    message = one_event(Keys(EK, EK), apdu)
    assert isinstance(message, Message) and message.authenticated is True


# -- other diagnoses -----------------------------------------------------------


def test_encrypted_frames_without_a_key_say_a_key_is_needed() -> None:
    event = one_event(Keys(), seal(sv.RADIUS_PLAINTEXT, 0x30))
    assert isinstance(event, Failure) and event.reason == "no_key"
    assert "no encryption key was given" in event.detail


@pytest.mark.parametrize(
    ("sc", "named"),
    [(0x32, "security control byte 0x32"), (0x25, "suite 5"), (0xB0, "0xB0")],
)
def test_unsupported_security_names_the_byte(sc: int, named: str) -> None:
    apdu = seal(SHORT_PLAINTEXT, sc & 0x3F)
    apdu = apdu[:11] + bytes([sc]) + apdu[12:]
    event = one_event(Keys(EK, AK), apdu)
    assert isinstance(event, Failure) and event.reason == "unsupported_security"
    assert named in event.detail
    with pytest.raises(UnsupportedSecurityError):
        Decryptor(Keys(EK, AK)).decrypt(parse_ciphered(apdu))


def test_security_control_without_protection_is_decoded_as_sent() -> None:
    apdu = bytes([0xDB, 8]) + TITLE + bytes([5 + len(SHORT_PLAINTEXT), 0x00]) + b"\0\0\0\1"
    message = one_event(Keys(), apdu + SHORT_PLAINTEXT)
    assert isinstance(message, Message)
    assert message.authenticated is None
    assert triples(message) == plain_readings(SHORT_PLAINTEXT)


@given(
    counter=st.integers(min_value=0, max_value=0xFFFFFFFF),
    title=st.binary(min_size=8, max_size=8),
    sc=st.sampled_from(SECURITY_CONTROLS),
    tag=st.sampled_from(CIPHERING_TAGS),
)
@settings(max_examples=40, deadline=None)
def test_any_system_title_and_counter_round_trip(
    counter: int, title: bytes, sc: int, tag: int
) -> None:
    apdu = seal(SHORT_PLAINTEXT, sc, system_title=title, invocation_counter=counter, tag=tag)
    message = one_event(Keys(EK, AK), apdu)
    assert isinstance(message, Message)
    assert message.system_title == title.hex().upper()
    assert message.invocation_counter == counter
