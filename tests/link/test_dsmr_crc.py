"""The telegram CRC computed from what changed since the telegram before equals the full CRC."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.link.dsmr import MAX_CHANGED_RUNS, TelegramCrc, crc16_arc

_SIZE = 300


@st.composite
def _telegram_runs(draw: st.DrawFn) -> list[bytes]:
    """Inputs in a row: one base, then copies with a few bytes changed (or another length)."""
    base = bytearray(draw(st.binary(min_size=_SIZE, max_size=_SIZE)))
    out = [bytes(base)]
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            out.append(draw(st.binary(max_size=_SIZE + 2)))  # another length, computed in full
            continue
        changes = draw(st.lists(st.tuples(st.integers(0, _SIZE - 1), st.integers(0, 255))))
        for index, value in changes:
            base[index] = value
        out.append(bytes(base))
    return out


@settings(max_examples=300, deadline=None)
@given(_telegram_runs())
def test_crc_from_the_changes_equals_the_full_crc(inputs: list[bytes]) -> None:
    crc = TelegramCrc()
    assert [crc(data) for data in inputs] == [crc16_arc(data) for data in inputs]


def test_many_scattered_changes_fall_back_to_the_full_crc_and_agree() -> None:
    first = bytes(1000)
    second = bytes(1 if i % 3 == 0 else 0 for i in range(1000))  # 334 runs of changes
    assert MAX_CHANGED_RUNS < 1000 // 3
    crc = TelegramCrc()
    assert crc(first) == crc16_arc(first) == 0
    assert crc(second) == crc16_arc(second)
    assert crc(b"123456789") == 0xBB3D  # the check value, after inputs of another length


def test_a_change_in_the_last_byte_and_the_first_byte() -> None:
    crc = TelegramCrc()
    text = b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n!"
    assert crc(text) == crc16_arc(text)
    for changed in (b"X" + text[1:], text[:-1] + b"?", b"?" + text[1:-1] + b"?"):
        assert crc(changed) == crc16_arc(changed)
