"""The compiled per-layout fast path: a *plan*.

A meter sends the same layout every few seconds, and only the values change.
The first message of a layout is decoded in full and compiled into a plan: a
bit mask of the bytes that must not change (tags, lengths, OBIS codes,
scalers, the list id), one ``struct`` format that unpacks every value at
once, and a converter per reading. Later messages with the same bytes outside
the value fields skip A-XDR decoding entirely (see ``ReadingsBuilder``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter
from typing import Any, NamedTuple

from amsread.dlms import axdr
from amsread.model import ListLayout, ReadingLabels
from amsread.readings.obis import format_obis
from amsread.readings.profiles import Layout, Profile
from amsread.readings.shapes import Extracted, Item, Path
from amsread.readings.values import (
    NUMERIC_TAGS,
    STRUCT_CODES,
    Converter,
    ResolvedItem,
    present,
    raw_note,
    raw_summary,
    resolve_item,
    value_converter,
)

_CLOCK = b"\x01\x00\x00"  # C.D.E of the clock, 0.0.1.0.0.255


class ReadingSpec(NamedTuple):
    """How one reading of a layout is made from the unpacked values."""

    #: Index of the value in the unpacked tuple (slots, then constants).
    value_index: int
    obis: str | None
    name: str | None
    unit: str | None
    #: Run on the value (scaler, text, date), or None to take it as unpacked.
    convert: Converter | None


#: Where a reading's value comes from while compiling: a leaf's path, or a
#: negative number counting the layout's constants (-1 is the first).
ValueRef = Path | int
#: A ``ReadingSpec`` whose value index is not known yet (a ``ValueRef``).
_DraftSpec = tuple[ValueRef, str | None, str | None, str | None, Converter | None]


class LayoutFacts(NamedTuple):
    """A ``ListLayout`` but for its labels, in its field order."""

    list_id: str | None
    profile: str | None
    shape: str
    layout: str | None
    hint: str | None
    raw_notes: tuple[str, ...]


#: A ``Guard`` with the value's index in the unpacked tuple instead of its path.
PlanGuard = tuple[int, Callable[[object], bool], bool]


class LayoutPlan:
    """A compiled layout: how to turn one body of this exact shape into readings.

    ``specs`` (value index, obis, name, unit, converter), one per reading, are
    kept as the pieces a message needs: the ``ListLayout`` (labels, list id,
    profile, shape: shared by every message of the layout), one C-level pick of
    the values in reading order, and the few converters (scalers, text, dates)
    to run on them.
    """

    __slots__ = (
        "constants",
        "converters",
        "guards",
        "list_layout",
        "mask",
        "pick",
        "skeleton",
        "time_index",
        "unpack",
    )

    def __init__(
        self,
        mask: int,
        skeleton: int,
        unpack: Callable[[bytes], tuple[Any, ...]],
        constants: tuple[Any, ...],
        specs: tuple[ReadingSpec, ...],
        raw: tuple[bool, ...],
        guards: tuple[PlanGuard, ...],
        time_index: int,
        facts: LayoutFacts,
    ) -> None:
        self.mask = mask
        self.skeleton = skeleton
        self.unpack = unpack
        self.constants = constants
        labels = ReadingLabels([(obis, name, unit) for _, obis, name, unit, _ in specs], raw)
        self.list_layout = ListLayout(labels, *facts)
        self.pick = _picker([index for index, *_ in specs])
        self.converters = tuple(
            (position, spec[4]) for position, spec in enumerate(specs) if spec[4] is not None
        )
        self.guards = guards
        self.time_index = time_index


def _picker(indexes: list[int]) -> Callable[[tuple[Any, ...]], list[Any]]:
    """The values at ``indexes``, in that order, as a new list."""
    if len(indexes) > 1:
        get = itemgetter(*indexes)  # one C call instead of a loop over the readings
        return lambda values: list(get(values))
    return lambda values: [values[i] for i in indexes]  # itemgetter(i) gives no tuple


def collect_leaves(node: axdr.Node, path: Path, out: dict[Path, axdr.Node]) -> None:
    if node.tag in (axdr.STRUCTURE, axdr.ARRAY):
        for i, child in enumerate(node.children):
            collect_leaves(child, (*path, i), out)
    else:
        out[path] = node


class PlanMaker:
    """Compiles one decoded body into a ``LayoutPlan``."""

    def __init__(self, body: bytes, leaves: dict[Path, axdr.Node], extracted: Extracted) -> None:
        self.body = body
        self.leaves = leaves
        self.extracted = extracted
        self.slots: dict[Path, tuple[int, int, str]] = {}
        self.constants: list[object] = []
        self.draft_specs: list[_DraftSpec] = []
        self.raw_flags: list[bool] = []
        self.raw_notes: list[str] = []
        self.clock_path: Path | None = None

    def _slot(self, path: Path) -> tuple[str, int] | None:
        """Make the leaf at ``path`` a value field: (path key, tag), or None if no leaf."""
        node = self.leaves.get(path)
        if node is None or node.tag == axdr.NULL_DATA:
            return None
        code = STRUCT_CODES.get(node.tag, f"{node.end - node.content}s")
        self.slots[path] = (node.content, node.end, code)
        return code, node.tag

    def _constant(self, value: object) -> int:
        self.constants.append(value)
        return -len(self.constants)  # resolved once the slot count is known

    def make(self, profile: Profile | None, layout: Layout | None, hint: str | None) -> LayoutPlan:
        """The plan for this body, read with ``profile`` (and ``layout`` if positional)."""
        extracted = self.extracted
        for index, item in enumerate(extracted.items):
            if item.value is None:
                continue  # null-data: an absent value, e.g. a phase the meter lacks
            self._add_item(index, item, profile, layout)
        time_path = extracted.leading_time_path or self.clock_path
        if time_path is not None and time_path not in self.slots:
            self._slot(time_path)
        order = sorted(self.slots, key=lambda p: self.slots[p][0])
        index_of = {path: i for i, path in enumerate(order)}
        count = len(order)

        def ref_index(ref: ValueRef) -> int:
            return index_of[ref] if isinstance(ref, tuple) else count - ref - 1

        specs = tuple(ReadingSpec(ref_index(r), o, n, u, c) for r, o, n, u, c in self.draft_specs)
        guards = tuple(
            (index_of[path], predicate, outcome)
            for path, predicate, outcome in extracted.guards
            if path in index_of
        )
        return LayoutPlan(
            *self._masks(order),
            unpack=self._unpacker(order),
            constants=tuple(self.constants),
            specs=specs,
            raw=tuple(self.raw_flags),
            guards=guards,
            time_index=index_of[time_path] if time_path is not None else -1,
            facts=self._facts(profile, layout, hint),
        )

    def _add_item(
        self, index: int, item: Item, profile: Profile | None, layout: Layout | None
    ) -> None:
        """One reading's draft spec: a value field of the body, or a constant."""
        resolved = resolve_item(item, index, self.extracted, profile, layout)
        obis = format_obis(resolved.obis) if resolved.obis is not None else None
        node = self.leaves.get(item.path)
        self.raw_flags.append(self._raw_flag(resolved, node))
        if self.raw_flags[-1]:
            self.raw_notes.append(raw_note(resolved, index, layout))
        if node is None or item.constant or item.value is not node.value:
            # A container, or a value that is part of the fixed layout.
            value = item.value
            if node is not None and item.value is node.value:
                convert = value_converter(node.tag, resolved.scaler, resolved.factor)
                value = self._raw(node)
                value = value if convert is None else convert(value)
            ref: ValueRef = self._constant(present(value))
            self.draft_specs.append((ref, obis, resolved.name, resolved.unit, None))
            return
        slot = self._slot(item.path)
        assert slot is not None
        convert = value_converter(slot[1], resolved.scaler, resolved.factor)
        self.draft_specs.append((item.path, obis, resolved.name, resolved.unit, convert))
        if (
            self.clock_path is None
            and resolved.obis is not None
            and resolved.obis[2:5] == _CLOCK
            and node.end - node.content == 12
        ):
            self.clock_path = item.path

    def _facts(
        self, profile: Profile | None, layout: Layout | None, hint: str | None
    ) -> LayoutFacts:
        """What every message of the layout says besides its readings."""
        several = layout is not None and len(profile.layouts if profile else ()) > 1
        return LayoutFacts(
            list_id=self.extracted.list_id,
            profile=profile.name if profile else None,
            shape=self.extracted.shape,
            layout=layout.name if several and layout is not None else None,
            hint=hint,
            raw_notes=(raw_summary(self.raw_notes, layout),) if self.raw_notes else (),
        )

    @staticmethod
    def _raw_flag(resolved: ResolvedItem, node: axdr.Node | None) -> bool:
        """Whether the reading goes out raw: unscaled, and a number."""
        if not resolved.raw:
            return False
        if node is not None and node.tag in NUMERIC_TAGS:
            return True
        resolved.unit = resolved.raw_unit  # text or a structure: no scale to miss
        return False

    def _raw(self, node: axdr.Node) -> object:
        code = STRUCT_CODES.get(node.tag, f"{node.end - node.content}s")
        return struct.unpack_from(">" + code, self.body, node.content)[0]

    def _masks(self, order: list[Path]) -> tuple[int, int]:
        mask = bytearray(b"\xff") * len(self.body)
        for path in order:
            start, end, _ = self.slots[path]
            mask[start:end] = bytes(end - start)
        mask_int = int.from_bytes(mask, "big")
        return mask_int, int.from_bytes(self.body, "big") & mask_int

    def _unpacker(self, order: list[Path]) -> Callable[[bytes], tuple[Any, ...]]:
        parts = [">"]
        cursor = 0
        for path in order:
            start, end, code = self.slots[path]
            if start > cursor:
                parts.append(f"{start - cursor}x")
            parts.append(code)
            cursor = end
        return struct.Struct("".join(parts)).unpack_from
