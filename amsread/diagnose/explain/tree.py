"""The A-XDR tree of a data-notification, its values named and scaled, and the profile checks."""

from __future__ import annotations

import json
import math

from amsread.diagnose.explain.model import (
    ProfileCheck,
    TreeLine,
    spaced_hex,
    upper_hex,
)
from amsread.dlms import axdr
from amsread.model import Message, Reading
from amsread.readings.obis import OBIS_SIZE, describe, format_obis, parse_obis
from amsread.readings.profiles import Profile, criterion_met
from amsread.readings.shapes import Extracted, Item
from amsread.readings.timestamps import cosem_datetime_iso, looks_like_datetime
from amsread.readings.units import unit_symbol

#: OBIS value group A runs 0 (abstract) to 15; six bytes starting higher are data.
MAX_OBIS_A = 15


#: A-XDR tree lines shown per frame (a push list has a few hundred at most).
MAX_TREE_LINES = 1000


def tree_lines(apdu: bytes, root: axdr.Node, notes: dict[int, str], base: int) -> list[TreeLine]:
    lines: list[TreeLine] = []
    stack: list[tuple[axdr.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if len(lines) >= MAX_TREE_LINES:
            lines.append(TreeLine(node.start + base, depth, "", "…", "more values not shown"))
            break
        end = (
            node.content if node.children or node.tag in (axdr.STRUCTURE, axdr.ARRAY) else node.end
        )
        lines.append(
            TreeLine(
                node.start + base,
                depth,
                upper_hex(apdu[node.start : end]),
                node.type_name,
                _value_text(node),
                notes.get(id(node), ""),
            )
        )
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return lines


def _value_text(node: axdr.Node) -> str:
    value = node.value
    if node.tag in (axdr.STRUCTURE, axdr.ARRAY):
        return f"{len(node.children)} elements"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, axdr.Enum) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return _bytes_text(value)
    return str(value)


def _bytes_text(value: bytes) -> str:
    if len(value) == 12 and looks_like_datetime(value):
        return str(cosem_datetime_iso(value))
    if len(value) == OBIS_SIZE and value[5] == 0xFF:
        return format_obis(value)
    if value and all(0x20 <= b < 0x7F for b in value):
        return json.dumps(value.decode("ascii"))
    shown = spaced_hex(value[:16])
    return shown + (f" … ({len(value)} bytes)" if len(value) > 16 else "")


def _obis_note(code: bytes) -> str:
    name = describe(code)[0]
    return f"OBIS code: {name}" if name else "OBIS code (not in amsread's table)"


def _scaler_unit_note(scaler: int, unit_code: int | None) -> str:
    unit = unit_symbol(unit_code) if unit_code is not None else None
    return f"scaler {scaler}, unit {unit_code} ({unit or 'none'})"


def annotate(
    root: axdr.Node, extracted: Extracted, message: Message, profile: Profile | None
) -> tuple[dict[int, str], list[axdr.Node]]:
    """Notes for tree nodes (by ``id``), and the value node of each reading, in order.

    OBIS codes and {scaler, unit} structures are named wherever they are;
    each item's value node is found by its path in the tree (``Item.path``),
    and readings pair with the items that have a value, in order.
    """
    notes: dict[int, str] = {}
    nodes = _all_nodes(root)
    for node in nodes:
        note = _generic_note(node)
        if note:
            notes[id(node)] = note
    time_path = getattr(extracted, "leading_time_path", None)
    time_node = _node_at(root, time_path) if time_path is not None else None
    if time_node is None and extracted.leading_time is not None:
        time_node = next((n for n in nodes if n.value is extracted.leading_time), None)
    if time_node is not None and extracted.leading_time is not None:
        notes[id(time_node)] = f"meter time {cosem_datetime_iso(extracted.leading_time)}"
    value_nodes: list[axdr.Node] = []
    readings = iter(message.readings)
    for index, item in enumerate(extracted.items):
        if item.value is None:
            continue
        reading = next(readings, None)
        found = _item_node(root, nodes, item)
        if reading is None or found is None:
            break
        value_nodes.append(found)
        notes[id(found)] = _value_note(item, found, reading, profile, extracted, index)
    return notes, value_nodes


def _all_nodes(root: axdr.Node) -> list[axdr.Node]:
    out = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def _node_at(root: axdr.Node, path: tuple[int, ...]) -> axdr.Node | None:
    node = root
    for i in path:
        if i >= len(node.children):
            return None
        node = node.children[i]
    return node


def _item_node(root: axdr.Node, nodes: list[axdr.Node], item: Item) -> axdr.Node | None:
    path = getattr(item, "path", None)
    if path is not None:
        node = _node_at(root, path)
        if node is not None and node.value is item.value:
            return node
    # The value is the very object in the tree (a string or number as sent).
    return next((n for n in nodes if n.value is item.value), None)


def _generic_note(node: axdr.Node) -> str:
    value = node.value
    if type(value) is bytes and len(value) == OBIS_SIZE and value[0] <= MAX_OBIS_A:
        return _obis_note(value)
    if (
        isinstance(value, axdr.Structure)
        and len(value) == 2
        and type(value[0]) is int
        and isinstance(value[1], axdr.Enum)
    ):
        return _scaler_unit_note(value[0], int(value[1]))
    return ""


def _value_note(
    item: Item,
    node: axdr.Node,
    reading: Reading,
    profile: Profile | None,
    extracted: Extracted,
    index: int,
) -> str:
    parts = []
    if item.obis is None:
        if reading.obis is None:
            parts.append("sent without OBIS code; no profile names it")
        elif index == getattr(extracted, "list_id_index", 0) and extracted.list_id is not None:
            by = f" by profile {profile.name}" if profile else ""
            parts.append(f"list version, {reading.obis}{by}")
        else:
            by = f"profile {profile.name}" if profile else "a profile"
            parts.append(f"{reading.obis} by position {index + 1} in {by}")
    # Next to its OBIS code the value needs no name; elsewhere (positions, capture lists) it does.
    if reading.name and (item.obis is None or extracted.shape == "capture-object list"):
        parts.append(reading.name)
    shown = f"{reading.value}" + (f" {reading.unit}" if reading.unit else "")
    scaling = _scaling(item, node.value, reading, profile)
    parts.append(f"{scaling} = {shown}" if scaling else f"= {shown}")
    return "; ".join(parts)


def _scaling(item: Item, raw: object, reading: Reading, profile: Profile | None) -> str:
    """``× 10^-2 (sent by the meter)`` when a scaler changed the value, else ""."""
    if item.scaler:
        return f"× 10^{item.scaler} (sent by the meter)"
    value = reading.value
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float) or value == raw:
        if profile is None or reading.obis is None or not isinstance(value, float):
            return ""
        # 0 scaled is still 0: the profile's rule says what was applied.
        rule = profile.implied_for(parse_obis(reading.obis))
        scaler = getattr(rule, "scaler", None)
        return f"× 10^{scaler} ({_rule_origin(profile)})" if scaler else ""
    ratio = value / raw if raw else 0
    exponent = round(math.log10(abs(ratio))) if ratio else 0
    factor = f"10^{exponent}" if ratio and math.isclose(ratio, 10.0**exponent) else f"{ratio:g}"
    return f"× {factor} ({_rule_origin(profile)})"


def _rule_origin(profile: Profile | None) -> str:
    return f"implied by profile {profile.name}" if profile else "implied"


def check_profile(
    profile: Profile, extracted: Extracted, flag: str | None, chosen: bool, positional: bool
) -> ProfileCheck:
    criteria: list[tuple[str, tuple[object, ...], object]] = [
        ("list_id", profile.list_ids, extracted.list_id),
        ("manufacturer", profile.manufacturers, flag),
    ]
    if not positional:
        criteria.insert(1, ("items", profile.items, extracted.count))
    checks = []
    score = 0
    failed = False
    for label, wanted, actual in criteria:
        if not wanted:
            continue
        shown = json.dumps(actual) if isinstance(actual, str) else str(actual)
        if criterion_met(wanted, actual):
            checks.append(f"{label} {shown} ✓")
            score += 1
        else:
            want = ", ".join(json.dumps(w) if isinstance(w, str) else str(w) for w in wanted)
            checks.append(f"{label} {shown} ✗ (wants {want})")
            failed = True
    if profile.capture_objects:
        named = profile.names_capture(extracted.captures)
        want = ", ".join(
            ".".join("*" if g is None else str(g) for g in p) for p in profile.capture_objects
        )
        checks.append(f"capture_object {want} {'✓' if named else '✗ (not in the list)'}")
        score += named
        failed = failed or not named
    if positional:
        sizes = sorted({len(getattr(layout, "positions", ())) for layout in profile.layouts})
        fits = extracted.count in sizes
        mark = "✓" if fits else f"✗ (layouts of {', '.join(map(str, sizes))})"
        checks.append(f"values {extracted.count} {mark}")
        score += fits
        failed = failed or not fits
    if not checks:
        failed = True  # a profile without criteria never matches on its own
    return ProfileCheck(profile.name, profile.origin, checks, -1 if failed else score, chosen)
