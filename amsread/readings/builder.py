"""From a notification body to readings, whatever shape the list has.

The pieces: ``shapes`` finds the items and the list's shape, ``values``
names, scales and converts them (profiles, OBIS table, raw marking), and
``plan`` compiles a layout into the fast path. An unknown positional list is
output raw, and the message carries a hint (``Message.hint``) naming the
profile fields that would decode it.

Speed: the first message of a layout is decoded in full and compiled into a
plan; later messages with the same bytes outside the value fields skip A-XDR
decoding entirely, anything else is decoded afresh and gets its own plan. A
message is the plan's ``ListLayout`` (labels, list id, profile, shape) and
the values, with ``Reading`` objects made only if something reads
``readings`` (the JSON-lines writer does not).
"""

from __future__ import annotations

from itertools import groupby

from amsread.dlms import axdr
from amsread.dlms.apdu import DataNotification
from amsread.dlms.axdr import Structure
from amsread.errors import ApduError, AxdrError
from amsread.model import Message, Security
from amsread.readings.described import described_tree
from amsread.readings.plan import LayoutPlan, PlanMaker, collect_leaves
from amsread.readings.profiles import Layout, Profile, ProfileSet
from amsread.readings.shapes import Extracted, Item, Path, extract
from amsread.readings.timestamps import cosem_datetime_iso

__all__ = ["Extracted", "Item", "ReadingsBuilder", "extract"]

#: Layouts remembered per (manufacturer, body size), and (manufacturer, size) keys kept.
PLANS_PER_KEY = 4
MAX_PLAN_KEYS = 256
MAX_TITLES = 1024


def _describe_types(leaves: dict[Path, axdr.Node], items: list[Item]) -> str:
    """``octet-string, 8 x double-long-unsigned``: the A-XDR types in order."""
    names = []
    for item in items:
        node = leaves.get(item.path)
        if node is not None:
            names.append(node.type_name)
        else:
            names.append("structure" if isinstance(item.value, Structure) else "array")
    runs = [(name, len(list(group))) for name, group in groupby(names)]
    return ", ".join(name if n == 1 else f"{n} x {name}" for name, n in runs)


def _hint(extracted: Extracted, leaves: dict[Path, axdr.Node], manufacturer: str | None) -> str:
    """One line for the log: which profile fields would decode this bare list."""
    n = extracted.count
    criteria = []
    if extracted.list_id is not None:
        criteria.append(f'list_id = "{extracted.list_id}"')
    if manufacturer is not None:
        criteria.append(f'manufacturer = "{manufacturer}"')
    match = f" and [match] {', '.join(criteria)}" if criteria else ""
    return (
        f"a list of {n} values without OBIS codes matches no profile, so its values are"
        f" output unnamed; a profile with {n} [[position]] entries in order (obis; scaler"
        f" and unit for numbers){match} would decode it. The values are:"
        f" {_describe_types(leaves, extracted.items)}"
        " (see README, 'Supported list shapes and profiles')"
    )


class ReadingsBuilder:
    """Turns data-notifications into ``Message`` objects using the profiles."""

    def __init__(self, profiles: ProfileSet | None = None) -> None:
        self.profiles = profiles or ProfileSet()
        self._plans: dict[tuple[str | None, int], list[LayoutPlan]] = {}
        self._titles: dict[bytes, tuple[str, str | None]] = {}

    def build(
        self,
        notification: DataNotification,
        system_title: bytes | None = None,
        *,
        security: Security | None = None,
        received_at: float = 0.0,
    ) -> Message:
        """Readings for one notification; ``ApduError`` if its body is malformed."""
        body = notification.body_bytes
        title, manufacturer = self._title(system_title)
        key = (manufacturer, len(body))
        plans = self._plans.get(key)
        if plans:
            number = int.from_bytes(body, "big")
            for plan in plans:
                if number & plan.mask == plan.skeleton:
                    message = self._apply(
                        plan, body, notification.meter_time, title, received_at, security
                    )
                    if message is not None:
                        return message
        plan = self._compile(body, manufacturer)
        self._remember(key, plan)
        message = self._apply(
            plan, body, notification.meter_time, title, received_at, security, check=False
        )
        assert message is not None  # guards hold on the body they were taken from
        return message

    def _title(self, system_title: bytes | None) -> tuple[str | None, str | None]:
        if system_title is None:
            return None, None
        known = self._titles.get(system_title)
        if known is None:
            if len(self._titles) >= MAX_TITLES:
                self._titles.clear()
            known = (system_title.hex().upper(), _manufacturer(system_title))
            self._titles[system_title] = known
        return known

    def _remember(self, key: tuple[str | None, int], plan: LayoutPlan) -> None:
        if key not in self._plans and len(self._plans) >= MAX_PLAN_KEYS:
            self._plans.clear()
        plans = self._plans.setdefault(key, [])
        plans.insert(0, plan)
        del plans[PLANS_PER_KEY:]

    @staticmethod
    def _apply(
        plan: LayoutPlan,
        body: bytes,
        header_time: str | None,
        title: str | None,
        received_at: float,
        security: Security | None,
        check: bool = True,
    ) -> Message | None:
        """The message ``plan`` reads from ``body``; None if a guard of the plan fails."""
        values = plan.unpack(body)
        if plan.constants:
            values += plan.constants
        if check:
            for index, predicate, expected in plan.guards:
                if predicate(values[index]) is not expected:
                    return None
        ordered = plan.pick(values)
        for position, convert in plan.converters:
            ordered[position] = convert(ordered[position])
        meter_time = header_time
        if meter_time is None and plan.time_index >= 0:
            raw = values[plan.time_index]
            meter_time = cosem_datetime_iso(raw) if isinstance(raw, bytes) else None
        return Message.in_layout(
            plan.list_layout, tuple(ordered), meter_time, title, received_at, security
        )

    def _compile(self, body: bytes, manufacturer: str | None) -> LayoutPlan:
        try:
            root = axdr.decode_node(body)
            if root.end != len(body):
                raise AxdrError(f"{len(body) - root.end} unexpected bytes after the data", root.end)
        except AxdrError as exc:
            described = described_tree(body)  # not A-XDR: bare class/OBIS/attribute fields?
            if described is None:
                raise ApduError(f"notification body: {exc}") from exc
            root = described
        leaves: dict[Path, axdr.Node] = {}
        collect_leaves(root, (), leaves)
        extracted = extract(root.value)
        profile, layout = self._select(extracted, manufacturer)
        return PlanMaker(body, leaves, extracted).make(
            profile,
            layout,
            _hint(extracted, leaves, manufacturer)
            if extracted.positional and layout is None
            else None,
        )

    def _select(
        self, extracted: Extracted, manufacturer: str | None
    ) -> tuple[Profile | None, Layout | None]:
        if extracted.positional:
            values = [item.value for item in extracted.items]
            found = self.profiles.select_positional(extracted.list_id, values, manufacturer)
            return found if found is not None else (None, None)
        if extracted.shape == "single value":
            return None, None
        labelled = self.profiles.select(
            extracted.list_id, extracted.count, manufacturer, extracted.captures
        )
        return labelled, None


def _manufacturer(system_title: bytes | None) -> str | None:
    if (
        system_title
        and len(system_title) >= 3
        and all(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in system_title[:3])
    ):
        return system_title[:3].decode("ascii").upper()
    return None
