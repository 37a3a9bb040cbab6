"""List profiles: everything meter-specific, as TOML data files.

A profile names a list family (how to recognise it) and supplies what the
meter does not send: OBIS codes for items sent without one, and implied
scalers and units. Built-in profiles live in ``amsread/profiles/``; users add
or override them with ``--profile FILE``. Every profile cites the public list
definition it encodes.

Format::

    name = "kamstrup-dk"
    title = "Kamstrup Omnipower, Danish push list"
    sources = ["Radius: DLMS/COSEM introduction, 2020-01-03, section 4"]

    [match]                      # every key given must hold; more keys = more specific
    list_id = ["Kamstrup_V0001"] # the list version string sent in the data
    items = [65]                 # element count of the notification body
    manufacturer = ["KAM"]       # system-title manufacturer flag

    leading_obis = "1.1.0.2.129.255"   # a leading element sent without OBIS code

    [[implied]]                  # scaler/unit for codes sent without them
    obis = "1.*.31.7.0.255"      # '*' matches any value of a group
    scaler = -2
    unit = "A"

    [[position]]                 # lists with no OBIS codes at all, in order
    obis = "1.0.1.8.0.255"
    scaler = 0
    unit = "Wh"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from amsread.errors import UsageError
from amsread.obis import parse_obis

_TOP_KEYS = {"name", "title", "sources", "match", "leading_obis", "implied", "position", "notes"}
_MATCH_KEYS = {"list_id", "items", "manufacturer"}
_RULE_KEYS = {"obis", "scaler", "unit", "name"}


@dataclass(frozen=True, slots=True)
class Rule:
    """Implied meaning for one OBIS pattern or one position."""

    pattern: tuple[int | None, ...]
    scaler: int | None = None
    unit: str | None = None
    name: str | None = None

    def matches(self, code: bytes) -> bool:
        return all(p is None or p == c for p, c in zip(self.pattern, code, strict=True))

    @property
    def obis(self) -> bytes | None:
        """The exact code for a position rule (no wildcards), else None."""
        if any(p is None for p in self.pattern):
            return None
        return bytes(p for p in self.pattern if p is not None)


@dataclass(frozen=True)
class Profile:
    name: str
    title: str = ""
    sources: tuple[str, ...] = ()
    list_ids: tuple[str, ...] = ()
    items: tuple[int, ...] = ()
    manufacturers: tuple[str, ...] = ()
    leading_obis: bytes | None = None
    implied: tuple[Rule, ...] = ()
    positions: tuple[Rule, ...] = ()
    origin: str = "built-in"
    _cache: dict[bytes, Rule | None] = field(default_factory=dict, compare=False, repr=False)

    def score(self, list_id: str | None, items: int, manufacturer: str | None) -> int:
        """How specifically this profile matches (criteria met), or -1."""
        score = 0
        for wanted, actual in (
            (self.list_ids, list_id),
            (self.items, items),
            (self.manufacturers, manufacturer),
        ):
            if wanted:
                if actual not in wanted:
                    return -1
                score += 1
        return score

    def implied_for(self, code: bytes) -> Rule | None:
        """The first implied rule matching ``code`` (cached per code)."""
        try:
            return self._cache[code]
        except KeyError:
            rule = next((r for r in self.implied if r.matches(code)), None)
            self._cache[code] = rule
            return rule


def _pattern(text: str, where: str) -> tuple[int | None, ...]:
    try:
        probe = text.replace("*", "0")
        parse_obis(probe)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    groups = text.replace("-", ".").replace(":", ".").split(".")
    return tuple(None if g == "*" else int(g) for g in groups)


def _rule(entry: object, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a table")
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise UsageError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    obis = entry.get("obis")
    if not isinstance(obis, str):
        raise UsageError(f"{where}: 'obis' (a string like \"1.0.1.8.0.255\") is required")
    scaler = entry.get("scaler")
    if scaler is not None and (not isinstance(scaler, int) or not -10 <= scaler <= 10):
        raise UsageError(f"{where}: 'scaler' must be an integer from -10 to 10")
    return Rule(_pattern(obis, where), scaler, entry.get("unit"), entry.get("name"))


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"{where}: expected a string or a list of strings")


def parse_profile(data: dict[str, object], origin: str) -> Profile:
    """Validate a profile's TOML table; errors name the file and the key."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise UsageError(f"{origin}: unknown key {sorted(unknown)[0]!r}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{origin}: 'name' is required")
    match = data.get("match", {})
    if not isinstance(match, dict):
        raise UsageError(f"{origin}: [match] must be a table")
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise UsageError(f"{origin}: unknown key match.{sorted(unknown)[0]}")
    items = match.get("items", [])
    if isinstance(items, int):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, int) for i in items):
        raise UsageError(f"{origin}: match.items must be a list of integers")
    leading = data.get("leading_obis")
    implied = data.get("implied", [])
    positions = data.get("position", [])
    if not isinstance(implied, list) or not isinstance(positions, list):
        raise UsageError(f"{origin}: [[implied]] and [[position]] must be arrays of tables")
    return Profile(
        name=name,
        title=str(data.get("title", "")),
        sources=_strings(data.get("sources", []), f"{origin}: sources"),
        list_ids=_strings(match.get("list_id", []), f"{origin}: match.list_id"),
        items=tuple(items),
        manufacturers=_strings(match.get("manufacturer", []), f"{origin}: match.manufacturer"),
        leading_obis=parse_obis(leading) if isinstance(leading, str) else None,
        implied=tuple(_rule(r, f"{origin}: implied[{i}]") for i, r in enumerate(implied)),
        positions=tuple(_rule(r, f"{origin}: position[{i}]") for i, r in enumerate(positions)),
        origin=origin,
    )


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
    folder = resources.files("amsread").joinpath("profiles")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text("utf-8"))
            found.append(parse_profile(data, f"built-in {entry.name}"))
    return tuple(found)


class ProfileSet:
    """Chooses the profile for a list; user profiles win ties over built-in ones."""

    def __init__(self, extra: Sequence[Profile] = (), builtin: Iterable[Profile] | None = None):
        base = tuple(builtin_profiles() if builtin is None else builtin)
        # Later entries win ties, so user profiles go last.
        self.profiles: tuple[Profile, ...] = base + tuple(extra)
        self._chosen: dict[tuple[str | None, int, str | None], Profile | None] = {}

    def select(self, list_id: str | None, items: int, manufacturer: str | None) -> Profile | None:
        key = (list_id, items, manufacturer)
        try:
            return self._chosen[key]
        except KeyError:
            pass
        best: Profile | None = None
        best_score = -1
        for profile in self.profiles:
            score = profile.score(list_id, items, manufacturer)
            if score >= 0 and score >= best_score:
                best, best_score = profile, score
        self._chosen[key] = best
        return best
