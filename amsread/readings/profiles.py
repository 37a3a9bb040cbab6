"""List profiles: everything meter-specific, as TOML data files.

A profile names a list family (how to recognise it) and supplies what the
meter does not send: OBIS codes for items sent without one, and implied
scalers and units. Built-in profiles live in ``amsread/readings/data/profiles/``; users add
or override them with ``--profile FILE`` (a user profile with the name of a
built-in one replaces it). Every built-in profile cites the public list
definition it encodes.

A profile is either *labelled* (the meter sends OBIS codes; the profile adds
scalers, units, a code for a leading list-version string) or *positional*
(the meter sends bare values; the profile names them by position)::

    name = "kamstrup-no"               # labelled
    title = "Kamstrup, Norwegian HAN lists"
    sources = ["Kamstrup: 'Kamstrup HAN-NVE interface description'"]

    [match]                      # every key given must hold; more keys = more specific
    list_id = ["Kamstrup_V0001"] # the list id sent in the data; "ISK*": any id starting "ISK"
    items = [25, 35]             # element count of the notification body
    manufacturer = ["KAM"]       # system-title manufacturer flag
    capture_object = ["0.8.25.9.0.255"]  # a code the push's capture-object list names

    leading_obis = "1.1.0.2.129.255"   # a leading element sent without OBIS code

    [[implied]]                  # scaler/unit for codes sent without them
    obis = "1.*.31.7.0.255"      # '*' matches any value of a group
    scaler = -2                  # value x 10^scaler
    unit = "A"
    scale = 40                   # optional extra factor (current-transformer ratio)

    name = "kaifa-no"                  # positional, several layouts
    [[layout]]
    name = "list 2, three-phase"
    items = 13                   # optional: must equal the number of positions
    list_id = ["KFM_001"]        # optional, per layout
    [[layout.position]]          # one per element, in order
    obis = "1.1.0.2.129.255"
    [[layout.position]]
    obis = "1.0.31.7.0.255"
    scaler = -3
    unit = "A"

A single-layout positional profile may use top-level ``[[position]]`` tables.
A position without ``obis`` is output unnamed. ``type`` (``number``, ``text``,
``date-time``, ``any``) says what a position must hold; it defaults to
``number`` when the position has a scaler, unit or scale, to ``date-time``
for the clock (C.D.E = 1.0.0) and ``text`` for the list version (0.2.129).
A positional layout only applies to a list whose values fit these types.
A rule with neither ``scaler`` nor ``unit`` (nor ``scale``) states no scale:
a quantity it names is output raw (``Reading.raw``), never as scaled.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from amsread.errors import UsageError
from amsread.readings.obis import OBIS_SIZE, parse_obis
from amsread.readings.units import UNITS

_TOP_KEYS = frozenset(
    {"name", "title", "sources", "notes", "match", "leading_obis", "implied", "position", "layout"}
)
_MATCH_KEYS = frozenset({"list_id", "items", "manufacturer", "capture_object"})
_RULE_KEYS = frozenset({"obis", "scaler", "unit", "name", "scale", "type"})
_LAYOUT_KEYS = frozenset({"name", "items", "list_id", "position"})
KINDS = ("number", "text", "date-time", "any")
_UNIT_SYMBOLS = frozenset(UNITS.values())
_SNAKE = re.compile(r"[a-z][a-z0-9_]*\Z")
_FLAG = re.compile(r"[A-Za-z]{3}\Z")
#: Scalers beyond this are no meter's; they catch typos such as 30 for -3.
MAX_SCALER = 10
#: Entries each lookup cache keeps: list ids and OBIS codes come from the line,
#: so a stream of ever-new ones must not grow memory without bound.
MAX_CACHED = 1024
_CLOCK = (1, 0, 0)
_LIST_VERSION = (0, 2, 129)


@dataclass(frozen=True, slots=True)
class Rule:
    """Implied meaning for one OBIS pattern or one position.

    ``pattern`` is None for a position the profile leaves unnamed.
    """

    pattern: tuple[int | None, ...] | None
    scaler: int | None = None
    unit: str | None = None
    name: str | None = None
    scale: int | float | None = None
    kind: str = "any"

    def matches(self, code: bytes) -> bool:
        if self.pattern is None or len(code) != OBIS_SIZE:
            return False
        return all(p is None or p == c for p, c in zip(self.pattern, code, strict=True))

    @property
    def obis(self) -> bytes | None:
        """The exact code of a position rule (no wildcards), else None."""
        if self.pattern is None or any(p is None for p in self.pattern):
            return None
        return bytes(p for p in self.pattern if p is not None)

    def accepts(self, value: object) -> bool:
        """Whether a value sent at this position fits the rule's type."""
        if value is None or self.kind == "any":
            return True  # null-data stands in for any absent value
        if self.kind == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str | bytes)
        return isinstance(value, bytes) and len(value) == 12  # date-time


@dataclass(frozen=True, slots=True)
class Layout:
    """One positional list: a rule per element, in order."""

    name: str
    positions: tuple[Rule, ...]
    list_ids: tuple[str, ...] = ()

    @property
    def items(self) -> int:
        return len(self.positions)


@dataclass(frozen=True)
class Profile:
    name: str
    title: str = ""
    sources: tuple[str, ...] = ()
    notes: str = ""
    list_ids: tuple[str, ...] = ()
    items: tuple[int, ...] = ()
    manufacturers: tuple[str, ...] = ()
    #: OBIS patterns of which the push's capture-object list must name one
    #: (e.g. its push setup): the push says which configuration it is.
    capture_objects: tuple[tuple[int | None, ...], ...] = ()
    leading_obis: bytes | None = None
    implied: tuple[Rule, ...] = ()
    layouts: tuple[Layout, ...] = ()
    origin: str = "built-in"
    _cache: dict[bytes, Rule | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def positional(self) -> bool:
        return bool(self.layouts)

    @property
    def positions(self) -> tuple[Rule, ...]:
        """The positions of a single-layout profile (empty otherwise)."""
        return self.layouts[0].positions if len(self.layouts) == 1 else ()

    def score(
        self,
        list_id: str | None,
        items: int,
        manufacturer: str | None,
        captures: tuple[bytes, ...] = (),
    ) -> int:
        """How specifically this labelled profile matches (criteria met), or -1."""
        score = _score(
            ((self.list_ids, list_id), (self.items, items), (self.manufacturers, manufacturer))
        )
        if score < 0 or not self.capture_objects:
            return score
        return score + 1 if self.names_capture(captures) else -1

    def names_capture(self, captures: Sequence[bytes]) -> bool:
        """Whether one of ``captures`` (capture-list OBIS codes) fits ``[match] capture_object``."""
        return any(Rule(p).matches(code) for p in self.capture_objects for code in captures)

    def layout_for(
        self, list_id: str | None, values: Sequence[object], manufacturer: str | None
    ) -> tuple[int, Layout] | None:
        """The best layout of this positional profile for ``values``, with its score."""
        best: tuple[int, Layout] | None = None
        for layout in self.layouts:
            if layout.items != len(values):
                continue
            score = _score(
                (
                    (layout.list_ids or self.list_ids, list_id),
                    (self.manufacturers, manufacturer),
                )
            )
            fits = all(r.accepts(v) for r, v in zip(layout.positions, values, strict=True))
            if score < 0 or not fits:
                continue
            if best is None or score + 1 > best[0]:
                best = (score + 1, layout)  # +1: the item count matched
        return best

    def implied_for(self, code: bytes) -> Rule | None:
        """The first implied rule matching ``code`` (cached per code)."""
        try:
            return self._cache[code]
        except KeyError:
            rule = next((r for r in self.implied if r.matches(code)), None)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[code] = rule
            return rule


def _score(criteria: Iterable[tuple[tuple[object, ...], object]]) -> int:
    score = 0
    for wanted, actual in criteria:
        if wanted:
            if not criterion_met(wanted, actual):
                return -1
            score += 1
    return score


def criterion_met(wanted: Iterable[object], actual: object) -> bool:
    """``actual`` equals one of ``wanted``, or starts as a list id ending in '*' ("ISK*")."""
    return any(_fits(w, actual) for w in wanted)


def _fits(wanted: object, actual: object) -> bool:
    if isinstance(wanted, str) and wanted.endswith("*") and isinstance(actual, str):
        return actual.startswith(wanted[:-1])
    return wanted == actual


# -- parsing and validation ------------------------------------------------


def _groups(text: str) -> list[str]:
    """Split an OBIS code written as 1.0.1.8.0.255, 1-0:1.8.0.255 or 1-0:1.8.0*255."""
    parts = re.split(r"[.:-]", text)
    if len(parts) == OBIS_SIZE - 1 and re.fullmatch(r"\d+\*\d+", parts[-1]):
        parts[-1:] = parts[-1].split("*")
    return parts


def _pattern(text: object, where: str, *, wildcards: bool) -> tuple[int | None, ...]:
    """An OBIS code, with '*' for "any value" in a group where ``wildcards`` allows."""
    if not isinstance(text, str):
        raise UsageError(f"{where}: 'obis' must be a string like \"1.0.1.8.0.255\"")
    groups = _groups(text)
    if "*" in groups and not wildcards:
        raise UsageError(f"{where}: needs an exact OBIS code, not the pattern {text!r}")
    try:
        parse_obis(".".join("0" if g == "*" else g for g in groups))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return tuple(None if g == "*" else int(g) for g in groups)


def _number(entry: dict[str, object], key: str, where: str) -> int | float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where}: '{key}' must be a number")
    return value


def _rule(entry: object, where: str, *, position: bool) -> Rule:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a table")
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise UsageError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (known: obis, "
            "scaler, unit, name, scale, type)"
        )
    obis = entry.get("obis")
    if obis is None and not position:
        raise UsageError(f"{where}: 'obis' (a string like \"1.0.1.8.0.255\") is required")
    pattern = None if obis is None else _pattern(obis, where, wildcards=not position)
    scaler = entry.get("scaler")
    if scaler is not None and (
        isinstance(scaler, bool) or not isinstance(scaler, int) or abs(scaler) > MAX_SCALER
    ):
        raise UsageError(f"{where}: 'scaler' must be an integer from -10 to 10 (value x 10^scaler)")
    unit = entry.get("unit")
    if unit is not None and unit not in _UNIT_SYMBOLS:
        raise UsageError(
            f"{where}: unknown unit {unit!r}; use a DLMS unit symbol such as W, Wh, var, "
            "varh, VA, A, V, Hz"
        )
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not _SNAKE.match(name)):
        raise UsageError(f"{where}: 'name' must be snake_case, like \"current_l1\"")
    scale = _number(entry, "scale", where)
    if scale == 0:
        raise UsageError(f"{where}: 'scale' must not be 0")
    kind = entry.get("type")
    if kind is None:
        kind = _default_kind(pattern, scaler, unit, scale) if position else "any"
    elif kind not in KINDS:
        raise UsageError(f"{where}: 'type' must be one of {', '.join(KINDS)}")
    return Rule(pattern, scaler, unit, name, scale, str(kind))


def _default_kind(
    pattern: tuple[int | None, ...] | None,
    scaler: object,
    unit: object,
    scale: object,
) -> str:
    if scaler is not None or unit is not None or scale is not None:
        return "number"
    if pattern is not None and pattern[2:5] == _CLOCK:
        return "date-time"
    if pattern is not None and pattern[2:5] == _LIST_VERSION:
        return "text"
    return "any"


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise UsageError(f"{where}: expected a non-empty string or a list of them")


def _table(data: dict[str, object], key: str, origin: str) -> dict[str, object]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{origin}: [{key}] must be a table")
    return value


def _tables(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise UsageError(f"{where}: must be an array of tables ([[...]])")
    return value


def _layout(entry: object, where: str, positions_where: str | None = None) -> Layout:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a table")
    unknown = set(entry) - _LAYOUT_KEYS
    if unknown:
        raise UsageError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    raw = _tables(entry.get("position", []), f"{where}.position")
    positions = tuple(_rule(r, f"{where}.position[{i}]", position=True) for i, r in enumerate(raw))
    if not positions:
        raise UsageError(f"{where}: a layout needs [[...position]] tables, one per element")
    items = entry.get("items", len(positions))
    if items != len(positions):
        raise UsageError(f"{where}: items = {items!r} but {len(positions)} positions are given")
    list_ids = _strings(entry["list_id"], f"{where}.list_id") if "list_id" in entry else ()
    return Layout(str(entry.get("name", where)), positions, list_ids)


def parse_profile(data: dict[str, object], origin: str) -> Profile:
    """Validate a profile's TOML table; errors name the file and the key."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise UsageError(
            f"{origin}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{origin}: 'name' is required")
    match = _table(data, "match", origin)
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise UsageError(
            f"{origin}: unknown key match.{sorted(unknown)[0]} "
            "(known: list_id, items, manufacturer, capture_object)"
        )
    items = _match_items(match, origin)
    manufacturers = _match_manufacturers(match, origin)
    implied_raw = _tables(data.get("implied", []), f"{origin}: implied")
    implied = tuple(
        _rule(r, f"{origin}: implied[{i}]", position=False) for i, r in enumerate(implied_raw)
    )
    layouts = _profile_layouts(data, origin)
    leading = data.get("leading_obis")
    if layouts and (implied or leading is not None or items):
        raise UsageError(
            f"{origin}: a profile is either positional ([[position]] or [[layout]]) or"
            " labelled ([[implied]], leading_obis, match.items); split it in two files"
        )
    list_ids = _strings(match.get("list_id", []), f"{origin}: match.list_id")
    captures = tuple(
        _pattern(text, f"{origin}: match.capture_object", wildcards=True)
        for text in _strings(match.get("capture_object", []), f"{origin}: match.capture_object")
    )
    if not layouts and not (list_ids or items or manufacturers or captures):
        raise UsageError(
            f"{origin}: [match] needs at least one of list_id, items, manufacturer,"
            " capture_object"
            " (otherwise the profile would apply to every meter)"
        )
    leading_obis = _leading_obis(leading, origin)
    return Profile(
        name=name,
        title=str(data.get("title", "")),
        sources=_strings(data.get("sources", []), f"{origin}: sources"),
        notes=str(data.get("notes", "")),
        list_ids=list_ids,
        items=tuple(items),
        manufacturers=tuple(m.upper() for m in manufacturers),
        capture_objects=captures,
        leading_obis=leading_obis,
        implied=implied,
        layouts=layouts,
        origin=origin,
    )


def _match_items(match: dict[str, object], origin: str) -> list[int]:
    items = match.get("items", [])
    if isinstance(items, int):
        items = [items]
    if not isinstance(items, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in items
    ):
        raise UsageError(f"{origin}: match.items must be a positive integer or a list of them")
    return items


def _match_manufacturers(match: dict[str, object], origin: str) -> tuple[str, ...]:
    manufacturers = _strings(match.get("manufacturer", []), f"{origin}: match.manufacturer")
    for flag in manufacturers:
        if not _FLAG.match(flag):
            raise UsageError(f"{origin}: match.manufacturer {flag!r} is not a 3-letter flag")
    return manufacturers


def _profile_layouts(data: dict[str, object], origin: str) -> tuple[Layout, ...]:
    """The ``[[layout]]`` tables, and a top-level ``position`` list as one more."""
    layouts = tuple(
        _layout(entry, f"{origin}: layout[{i}]")
        for i, entry in enumerate(_tables(data.get("layout", []), f"{origin}: layout"))
    )
    if "position" in data:
        single = _layout({"position": data["position"]}, origin, f"{origin}: position")
        layouts += (Layout("positions", single.positions),)
    return layouts


def _leading_obis(leading: object, origin: str) -> bytes | None:
    if leading is None:
        return None
    _pattern(leading, f"{origin}: leading_obis", wildcards=False)
    return parse_obis(".".join(_groups(str(leading))))


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"profile file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read profile {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"profile {path} is not valid TOML: {exc}") from None
    return parse_profile(data, str(path))


@cache
def builtin_profiles() -> tuple[Profile, ...]:
    folder = resources.files("amsread.readings").joinpath("data/profiles")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text("utf-8"))
            found.append(parse_profile(data, f"built-in {entry.name}"))
    return tuple(found)


class ProfileSet:
    """Chooses the profile for a list; user profiles win ties over built-in ones."""

    def __init__(
        self, extra: Sequence[Profile] = (), builtin: Iterable[Profile] | None = None
    ) -> None:
        base = tuple(builtin_profiles() if builtin is None else builtin)
        overridden = {p.name for p in extra}
        # Later entries win ties, so user profiles go last.
        self.profiles: tuple[Profile, ...] = tuple(
            p for p in base if p.name not in overridden
        ) + tuple(extra)
        self._chosen: dict[
            tuple[str | None, int, str | None, tuple[bytes, ...]], Profile | None
        ] = {}

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> ProfileSet:
        """Built-in profiles plus the user's profile files (later files win ties)."""
        return cls([load_profile(p) for p in paths])

    def select(
        self,
        list_id: str | None,
        items: int,
        manufacturer: str | None,
        captures: tuple[bytes, ...] = (),
    ) -> Profile | None:
        """The labelled profile for a list with OBIS codes, if any matches.

        ``captures``: the OBIS codes of a capture-object list, if the push sent one.
        """
        key = (list_id, items, manufacturer, captures)
        try:
            return self._chosen[key]
        except KeyError:
            pass
        best: Profile | None = None
        best_score = -1
        for profile in self.profiles:
            if profile.positional:
                continue
            score = profile.score(list_id, items, manufacturer, captures)
            if score > 0 and score >= best_score:
                best, best_score = profile, score
        if len(self._chosen) >= MAX_CACHED:
            self._chosen.clear()
        self._chosen[key] = best
        return best

    def select_positional(
        self, list_id: str | None, values: Sequence[object], manufacturer: str | None
    ) -> tuple[Profile, Layout] | None:
        """The positional profile and layout whose positions fit ``values``."""
        best: tuple[Profile, Layout] | None = None
        best_score = -1
        for profile in self.profiles:
            if not profile.positional:
                continue
            found = profile.layout_for(list_id, values, manufacturer)
            if found is not None and found[0] >= best_score:
                best_score = found[0]
                best = (profile, found[1])
        return best
