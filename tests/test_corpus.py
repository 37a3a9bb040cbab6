"""Every real capture in tests/corpus/ decodes to its golden JSON lines.

Each ``<name>.toml`` holds a capture as data: its hex, the command that reads
it (``decode`` for frames or APDUs given as hex, ``replay`` for bytes as read
from the line), the options it needs (keys), where it came from, and the exit
status it must give. ``<name>.jsonl`` beside it is what amsread must print,
with the host's ``received_at`` left out. ``AMSREAD_UPDATE_GOLDEN=1`` writes the
golden files anew from what amsread prints now: review the diff before
committing it.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from amsread.app.cli import cli

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.rglob("*.toml"))


def _case_id(path: Path) -> str:
    return str(path.relative_to(CORPUS).with_suffix(""))


def _run(case: dict[str, object], tmp_path: Path) -> tuple[int, list[dict[str, object]]]:
    data = bytes.fromhex("".join(str(case["hex"]).split()))
    args = [str(arg) for arg in case.get("args", [])]  # type: ignore[attr-defined]
    if case["command"] == "replay":
        capture = tmp_path / "capture.bin"
        capture.write_bytes(data)
        command = ["replay", str(capture), *args]
    else:
        command = ["decode", data.hex(), *args]
    result = CliRunner().invoke(cli, command)
    messages = [json.loads(line) for line in result.stdout.splitlines() if line]
    for message in messages:
        message.pop("received_at", None)
    return result.exit_code, messages


def test_the_corpus_is_not_empty() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("path", CASES, ids=_case_id)
def test_capture_decodes_to_its_golden_output(path: Path, tmp_path: Path) -> None:
    case = tomllib.loads(path.read_text("utf-8"))
    assert case["source"], f"{path.name} must say where the capture came from"
    status, messages = _run(case, tmp_path)
    golden = path.with_suffix(".jsonl")
    if os.environ.get("AMSREAD_UPDATE_GOLDEN"):
        golden.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages))
    expected = [json.loads(line) for line in golden.read_text("utf-8").splitlines() if line]
    assert messages == expected
    assert status == case["exit_status"]
