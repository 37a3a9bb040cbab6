"""``amsread check-key``: one verdict line first, and the verdict is the right one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import seed_vectors as sv
from builders import cipher_apdu, hdlc_frame
from click.testing import CliRunner

from amsread.app.cli import cli
from amsread.diagnose.checkkey import check_keys, collect_frames, inspect_key

K, A = sv.RADIUS_KEY, sv.RADIUS_AUTH_KEY


def check(*args: str, data: bytes = sv.RADIUS_FRAME) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check-key", data.hex(), *args])
    return result.exit_code, result.stdout


def verdict(out: str) -> str:
    return out.splitlines()[0]


def test_right_keys_on_the_radius_frame_are_keys_ok() -> None:
    status, out = check("--key", K, "--auth-key", A)
    assert (status, verdict(out)) == (0, "keys OK")
    assert "tag verified on 1 of 1 frames" in out
    assert "data-notification with 65 values" in out


def test_swapped_keys_are_named_as_swapped() -> None:
    status, out = check("--key", A, "--auth-key", K)
    assert status == 1
    assert verdict(out).startswith("keys swapped")


def test_wrong_encryption_key_is_wrong_or_a_damaged_frame() -> None:
    status, out = check("--key", "5AD84121D9D20B364B7A11F3C1B5827E", "--auth-key", A)
    assert status == 1
    assert verdict(out) == "encryption key wrong or damaged frame"
    # A frame that passed its HDLC checksum arrived intact: the key is to blame.
    assert "arrived intact" in out


def test_key_written_with_0x_and_spaces_is_accepted() -> None:
    spaced = "0x" + " ".join(K[i : i + 2] for i in range(0, 32, 2))
    status, out = check("--key", spaced, "--auth-key", A)
    assert (status, verdict(out)) == (0, "keys OK")
    assert "0x prefix is fine" in out and "spaces and separators are fine" in out


def test_c_array_style_key_is_accepted() -> None:
    c_array = ", ".join(f"0x{K[i : i + 2]}" for i in range(0, 32, 2))
    assert verdict(check("--key", c_array, "--auth-key", A)[1]) == "keys OK"


def test_right_encryption_key_and_wrong_authentication_key_names_the_authentication_key() -> None:
    status, out = check("--key", K, "--auth-key", "11" * 16)
    assert status == 1
    assert verdict(out).startswith("encryption key OK, authentication key wrong")


def test_without_auth_key_the_encryption_key_is_checked_by_the_plaintext() -> None:
    status, out = check("--key", K)
    assert status == 0
    assert verdict(out) == "encryption key OK; tag not checked: add --auth-key to verify it"
    assert "authenticated and encrypted" in out and "--auth-key" in out


def test_several_candidate_keys_say_which_one_works() -> None:
    status, out = check("--key", "00" * 16, "--key", K, "--key", A, "--auth-key", A)
    assert status == 0
    assert verdict(out) == "keys OK (--key #2 with --auth-key works)"


def test_ascii_looking_key_is_a_format_problem_and_is_tried_as_text() -> None:
    status, out = check("--key", "MySecretKey12345", "--auth-key", A)
    assert status == 1
    assert verdict(out).startswith("key format wrong")
    assert "looks like ASCII" in out
    assert "MySecretKey12345" not in out


def test_ascii_key_that_works_as_text_is_found() -> None:
    text_key = b"0123456789abcdef"
    apdu = cipher_apdu(sv.RADIUS_PLAINTEXT, key=text_key, security_control=0x20)
    status, out = check("--key", text_key.decode(), data=hdlc_frame(b"\xe6\xe7\x00" + apdu))
    assert status == 0
    assert verdict(out) == "key OK (--key read as ASCII text works): decryption gives a valid push"


def test_two_keys_run_together_are_split_and_tried() -> None:
    status, out = check("--key", K + A)
    assert status == 0
    assert verdict(out) == "keys OK (--key first half with --key second half works)"
    assert "two keys run together" in out


def test_the_authentication_key_given_as_encryption_key_is_named() -> None:
    status, out = check("--key", "22" * 16, "--auth-key", K)
    assert status == 1
    assert verdict(out).startswith("keys mixed up")


def test_short_key_is_a_format_problem() -> None:
    status, out = check("--key", K[:30], "--auth-key", A)
    assert status == 1
    assert verdict(out).startswith("key format wrong") and "30 hex digits" in out


def test_kaifa_example_key_is_wrong_and_flagged_as_the_documentation_example() -> None:
    status, out = check("--key", sv.KAIFA_AT_KEY, data=sv.KAIFA_AT_CIPHERED)
    assert status == 1
    assert verdict(out) == "encryption key wrong or damaged frame"
    assert "example key" in out
    assert "encrypted, no authentication tag" in out
    assert "no checksum" in out  # a bare APDU cannot prove it is intact


def test_encryption_only_frames_say_the_authentication_key_is_not_needed() -> None:
    _, out = check("--key", "00" * 16, "--auth-key", A, data=sv.AM550_STREAM)
    assert "--auth-key is not needed" in out
    assert "12 ciphered APDUs" in out and "2 damaged frames skipped" in out
    assert "Iskraemeco" in out


def test_unencrypted_pushes_need_no_key() -> None:
    frame = hdlc_frame(b"\xe6\xe7\x00" + sv.NORWEGIAN_LIST_PLAINTEXT)
    status, out = check("--key", K, data=frame)
    assert (status, verdict(out)) == (0, "no key needed: the frames are not encrypted")


def test_client_server_traffic_has_nothing_to_check() -> None:
    status, out = check("--key", K, data=sv.GURUX_SESSION)
    assert status == 1
    assert verdict(out).startswith("nothing to check")


@pytest.mark.parametrize("args", [["--key", K, "--auth-key", A], ["--key", A, "--auth-key", K]])
def test_keys_never_appear_in_the_output(args: list[str]) -> None:
    _, out = check(*args)
    for key in (K, A):
        assert key not in out.upper()


def test_file_and_capture_inputs(tmp_path: Path) -> None:
    hexfile = tmp_path / "frame.txt"
    hexfile.write_text(sv.RADIUS_FRAME.hex())
    capture = tmp_path / "capture.bin"
    capture.write_bytes(sv.RADIUS_FRAME * 2)
    for option, path in (("--file", hexfile), ("--capture", capture)):
        result = CliRunner().invoke(
            cli, ["check-key", option, str(path), "--key", K, "--auth-key", A]
        )
        assert result.exit_code == 0 and result.stdout.startswith("keys OK")


def test_a_key_is_required_and_input_is_required() -> None:
    assert CliRunner().invoke(cli, ["check-key", sv.RADIUS_FRAME.hex()]).exit_code == 2
    result = CliRunner().invoke(cli, ["check-key", "--key", K])
    assert result.exit_code == 2 and "exactly one input" in result.stderr


def test_one_damaged_frame_among_good_ones_does_not_hide_a_right_key() -> None:
    frames = collect_frames(sv.RADIUS_FRAME, stream=True)
    damaged = collect_frames(sv.RADIUS_FRAME[11:-3], stream=False).ciphered[0]
    payload = bytearray(damaged.payload)
    payload[5] ^= 1
    frames.ciphered.append(replace(damaged, payload=bytes(payload)))
    report = check_keys(frames, [K], [A])
    assert report.ok and report.verdict == "keys OK"
    assert "1 of 2 frames did not verify" in " ".join(report.details)


def test_inspect_key_never_echoes_the_key() -> None:
    for text in ("MySecretKey12345", K[:31], K + "zz", K + A):
        for candidate in inspect_key(text, "--key"):
            assert text not in (candidate.problem or "") + " ".join(candidate.notes)
