"""``amsread check-key`` on ciphered DSMR telegrams (Luxembourg's Smarty, Austrian P1).

The telegrams are DSMR 5 text sealed in general-glo-ciphering (security
control 0x30) under a test encryption key and the published Smarty
authentication key, as tests/corpus/dsmr/README.md describes.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amsread.app.cli import cli
from amsread.diagnose.checkkey import SMARTY_AUTH_KEY, check_keys, collect_frames

CORPUS = Path(__file__).parent.parent / "corpus" / "dsmr"
V5 = (CORPUS / "v5_iskra.txt").read_bytes()
V4 = (CORPUS / "v4_2_kaifa.txt").read_bytes()
EK = "000102030405060708090A0B0C0D0E0F"
WRONG_EK = "000102030405060708090A0B0C0D0E0E"
AK = SMARTY_AUTH_KEY
TITLE = bytes.fromhex("4D4D4D0000BC614E")


def seal(telegram: bytes, counter: int, ek: str = EK, ak: str = AK) -> bytes:
    """A Smarty frame: DB 08 <title> 82 <length> 30 <counter> <ciphertext> <12-byte tag>."""
    iv = TITLE + counter.to_bytes(4, "big")
    sealed = AESGCM(bytes.fromhex(ek)).encrypt(iv, telegram, b"\x30" + bytes.fromhex(ak))
    body = b"\x30" + counter.to_bytes(4, "big") + sealed[:-16] + sealed[-16:-4]
    return b"\xdb\x08" + TITLE + b"\x82" + len(body).to_bytes(2, "big") + body


SMARTY_CAPTURE = seal(V5, 1) + seal(V4, 2)


def check_capture(tmp_path: Path, data: bytes, *args: str) -> tuple[int, list[str]]:
    capture = tmp_path / "smarty.bin"
    capture.write_bytes(data)
    result = CliRunner().invoke(cli, ["check-key", "--capture", str(capture), *args])
    return result.exit_code, result.stdout.splitlines()


def test_right_keys_verify_the_tag_and_name_the_telegram(tmp_path: Path) -> None:
    status, lines = check_capture(tmp_path, SMARTY_CAPTURE, "--key", EK, "--auth-key", AK)
    assert (status, lines[0]) == (0, "keys OK")
    assert "  frames: 2 ciphered DSMR telegrams (Smarty, Austrian P1); maker unknown (MMM)" in lines
    assert "  tag verified on 2 of 2 frames" in lines
    assert (
        "  decrypted: a DSMR telegram with a valid CRC, 37 data lines (/ISk5\\2MT382-1000)" in lines
    )


def test_the_framing_that_reads_them_is_named(tmp_path: Path) -> None:
    _status, lines = check_capture(tmp_path, SMARTY_CAPTURE, "--key", EK, "--auth-key", AK)
    assert any(line.endswith("read them with --framing dsmr") for line in lines)


def test_a_tag_that_does_not_verify_is_said_while_the_key_decrypts(tmp_path: Path) -> None:
    other_ak = "FF" * 16
    capture = seal(V5, 1, ak=other_ak) + seal(V4, 2, ak=other_ak)
    status, lines = check_capture(tmp_path, capture, "--key", EK, "--auth-key", AK)
    # amsread reads these telegrams (unverified, CRC-guarded): the key works.
    assert status == 0
    assert lines[0] == (
        "encryption key OK: the telegrams decrypt with a valid CRC, but the"
        " authentication tag does not verify with --auth-key"
    )
    assert any("without verifying the tag" in line for line in lines)
    assert not any(line.startswith("  tag verified") for line in lines)


def test_without_an_auth_key_the_published_smarty_key_is_suggested(tmp_path: Path) -> None:
    status, lines = check_capture(tmp_path, SMARTY_CAPTURE, "--key", EK)
    assert (status, lines[0]) == (
        0,
        "encryption key OK; tag not checked: add --auth-key to verify it",
    )
    assert f"  Smarty meters use the published authentication key {SMARTY_AUTH_KEY}" in lines


def test_a_wrong_encryption_key_is_wrong_and_says_why_the_frames_cannot_be_blamed(
    tmp_path: Path,
) -> None:
    status, lines = check_capture(tmp_path, SMARTY_CAPTURE, "--key", WRONG_EK, "--auth-key", AK)
    assert (status, lines[0]) == (1, "encryption key wrong or damaged frame")
    assert not any("decrypted:" in line for line in lines)
    assert any("no checksum outside their ciphertext" in line for line in lines)


def test_swapped_keys_are_named_as_swapped(tmp_path: Path) -> None:
    status, lines = check_capture(tmp_path, SMARTY_CAPTURE, "--key", AK, "--auth-key", EK)
    assert status == 1
    assert lines[0].startswith("keys swapped")


def test_a_damaged_telegram_among_good_ones_does_not_hide_the_right_key(tmp_path: Path) -> None:
    good, other = seal(V5, 1), seal(V4, 2)
    damaged = other[:40] + bytes([other[40] ^ 0x01]) + other[41:]
    status, lines = check_capture(tmp_path, good + damaged, "--key", EK, "--auth-key", AK)
    assert (status, lines[0]) == (0, "keys OK")
    assert "  tag verified on 1 of 2 frames" in lines
    assert "  1 of 2 frames did not verify: damaged frames, the key is right" in lines


def test_one_smarty_frame_as_hex_is_checked_as_one_apdu() -> None:
    result = CliRunner().invoke(
        cli, ["check-key", seal(V5, 9).hex(), "--key", EK, "--auth-key", AK]
    )
    lines = result.stdout.splitlines()
    assert (result.exit_code, lines[0]) == (0, "keys OK")
    assert "  tag verified on 1 of 1 frames" in lines
    assert "  frames: 1 ciphered APDUs; maker unknown (MMM)" in lines


def test_text_telegrams_need_no_key(tmp_path: Path) -> None:
    status, lines = check_capture(tmp_path, V5 + V4, "--key", EK)
    assert (status, lines[0]) == (0, "no key needed: the frames are not encrypted")


def test_collected_telegrams_are_ciphered_apdus_no_checksum_vouches_for() -> None:
    frames = collect_frames(SMARTY_CAPTURE, stream=True)
    assert [c.invocation_counter for c in frames.ciphered] == [1, 2]
    assert frames.telegrams == 2
    assert frames.framing == "dsmr"
    assert frames.checked is False
    report = check_keys(frames, [EK], [AK])
    assert (report.verdict, report.ok) == ("keys OK", True)
