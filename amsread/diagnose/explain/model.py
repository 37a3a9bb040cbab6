"""The report explain builds: plain dataclasses (no I/O), and the hex helpers its fields use."""

from __future__ import annotations

from dataclasses import dataclass, field

from amsread.reasons import reason


@dataclass
class Problem:
    """A named cause (stable slug), what is wrong, and what to do next."""

    #: A slug of ``amsread.reasons``: the same name the pipeline counts and logs.
    cause: str
    summary: str
    next_step: str
    #: "error" (nothing decoded because of it) or "warning".
    severity: str = "error"

    def __post_init__(self) -> None:
        reason(self.cause)  # a cause missing from the table is a bug: fail loudly in tests


@dataclass
class Field:
    offset: int
    hex: str
    name: str
    meaning: str
    #: "ok", "bad" or "" (nothing to check).
    status: str = ""


@dataclass
class Block:
    title: str
    fields: list[Field] = field(default_factory=list)


@dataclass
class TreeLine:
    offset: int
    depth: int
    hex: str
    type: str
    value: str
    note: str = ""


@dataclass
class ReadingLine:
    obis: str | None
    name: str | None
    value: int | float | str | None
    unit: str | None


@dataclass
class ProfileCheck:
    name: str
    origin: str
    checks: list[str]
    #: Criteria met, or -1 when a criterion fails.
    score: int
    chosen: bool = False


@dataclass
class ProfileInfo:
    chosen: str | None
    title: str
    reason: str
    candidates: list[ProfileCheck] = field(default_factory=list)


@dataclass
class Section:
    """One frame, damaged frame, run of garbage or bare APDU."""

    index: int
    kind: str
    offset: int | None
    size: int
    #: "decoded", "failed", "skipped" (valid, not a push), "damaged", "garbage".
    outcome: str = "failed"
    summary: str = ""
    blocks: list[Block] = field(default_factory=list)
    tree: list[TreeLine] = field(default_factory=list)
    readings: list[ReadingLine] = field(default_factory=list)
    profile: ProfileInfo | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    source: str
    size: int
    verdict: str = ""
    ok: bool = False
    sections: list[Section] = field(default_factory=list)
    #: Frames past the limit, by outcome, and their problems by cause.
    omitted: dict[str, int] = field(default_factory=dict)
    omitted_problems: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    redacted: bool = False

    def add(self, section: Section, limit: int) -> None:
        """Show ``section``, or only count it and its errors once ``limit`` are shown."""
        if not limit or len(self.sections) < limit:
            self.sections.append(section)
            return
        self.omitted[section.outcome] = self.omitted.get(section.outcome, 0) + 1
        for problem in section.problems:
            if problem.severity == "error":
                count = self.omitted_problems.get(problem.cause, 0)
                self.omitted_problems[problem.cause] = count + 1


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def upper_hex(data: bytes) -> str:
    return data.hex().upper()


def spaced_hex(data: bytes) -> str:
    return data.hex(" ").upper()
