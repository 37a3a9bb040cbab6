"""The report as text (to paste into a forum or an issue) or as JSON."""

from __future__ import annotations

import dataclasses
import json

from amsread.diagnose.explain.model import (
    Field,
    Problem,
    ProfileInfo,
    ReadingLine,
    Report,
    Section,
    TreeLine,
)

#: Bytes shown in a field's hex column before "…".
HEX_SHOWN = 8


_COLORS = {"ok": "32", "bad": "31", "head": "1", "error": "31;1", "warning": "33", "dim": "2"}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not text:
            return text
        return f"\x1b[{_COLORS[style]}m{text}\x1b[0m"


def render_text(report: Report, color: bool = False) -> str:
    """The report as plain text (ANSI colours only if ``color``)."""
    paint = _Painter(color)
    out = [paint(f"amsread explain: {report.source}, {report.size} bytes", "head")]
    if report.redacted:
        out.append("(redacted: meter serials and ids replaced by placeholders, keys never shown)")
    out.append(paint(f"Result: {report.verdict}", "ok" if report.ok else "error"))
    for problem in report.problems:
        out.extend(_problem_lines(problem, paint, "  "))
    for section in report.sections:
        out.append("")
        out.extend(_section_lines(section, paint))
    if report.omitted:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(report.omitted.items()))
        out.append("")
        out.append(
            f"… {sum(report.omitted.values())} more frames not shown ({counts});"
            " use --limit 0 to show all"
        )
    return "\n".join(out) + "\n"


def _section_lines(section: Section, paint: _Painter) -> list[str]:
    where = "" if section.offset is None else f" at byte {section.offset}"
    label = "APDU" if section.kind == "apdu" else section.kind.capitalize()
    head = f"{label} {section.index}{where}, {section.size} bytes: {section.summary}"
    lines = [paint(f"── {head}", "head")]
    for block in section.blocks:
        lines.append(f"  {block.title}")
        lines.extend(_field_line(f, paint) for f in block.fields)
    if section.tree:
        lines.append("  Data (A-XDR; offsets in the APDU)")
        lines.extend(_tree_line(t) for t in section.tree)
    if section.readings:
        lines.append(f"  Readings ({len(section.readings)})")
        lines.extend(_reading_lines(section.readings))
    if section.profile is not None:
        lines.extend(_profile_lines(section.profile))
    for note in section.notes:
        lines.append(f"  note: {note}")
    for problem in section.problems:
        lines.extend(_problem_lines(problem, paint, "  "))
    return lines


def _short_hex(text: str, shown: int = HEX_SHOWN) -> str:
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    if len(pairs) <= shown:
        return " ".join(pairs)
    return " ".join(pairs[: shown - 1]) + " …"


def _field_line(f: Field, paint: _Painter) -> str:
    meaning = paint(f.meaning, f.status) if f.status == "bad" else f.meaning
    return f"  {f.offset:>6}  {_short_hex(f.hex):<24} {f.name:<21} {meaning}".rstrip()


def _tree_line(t: TreeLine) -> str:
    indent = "  " * t.depth
    text = f"  {t.offset:>6}  {_short_hex(t.hex):<24} {indent}{t.type} {t.value}"
    return f"{text}  — {t.note}" if t.note else text


def _reading_lines(readings: list[ReadingLine]) -> list[str]:
    width = max(len(r.obis or "-") for r in readings)
    name_width = max(len(r.name or "-") for r in readings)
    lines = []
    for r in readings:
        value = "null" if r.value is None else str(r.value)
        unit = f" {r.unit}" if r.unit else ""
        lines.append(f"    {r.obis or '-':<{width}}  {r.name or '-':<{name_width}}  {value}{unit}")
    return lines


def _profile_lines(info: ProfileInfo) -> list[str]:
    if info.chosen is None:
        lines = [f"  Profile: none. {info.reason}"]
    else:
        lines = [f"  Profile: {info.chosen} ({info.title})", f"    why: {info.reason}"]
    for c in info.candidates:
        checks = "; ".join(c.checks) or "no criteria"
        mark = " (chosen)" if c.chosen else (" (does not match)" if c.score < 0 else "")
        lines.append(f"    {c.name}: {checks}{mark} [{c.origin}]")
    return lines


def _problem_lines(problem: Problem, paint: _Painter, indent: str) -> list[str]:
    label = "problem" if problem.severity == "error" else "warning"
    return [
        indent + paint(f"{label} ({problem.cause}): {problem.summary}", problem.severity),
        f"{indent}  next step: {problem.next_step}",
    ]


def render_json(report: Report) -> str:
    """The same report as one JSON document."""
    return json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2) + "\n"
