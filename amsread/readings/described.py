"""Lists whose every element names itself in bare bytes (Sagemcom XT211). Sans-I/O.

The Sagemcom XT211 of the Czech grid operators pushes a body that is not
plain A-XDR::

    structure(2) {
        enum                      the list's kind
        array(n) of structure(2) {
            class id              2 bytes, no tag  } the attribute descriptor,
            OBIS code             6 bytes, no tag  } counted as one element
            attribute             1 byte, no tag   }
            value                 tagged A-XDR (double-long-unsigned, …)
        }
    }

Real pushes (ČEZ and EG.D captures published with esphome-libs/dlms_parser)
count the bare descriptor as one element, so each element's structure says 2;
a count of 4 (each field an element) is read the same way.

``described_tree`` reads that layout into the same ``axdr.Node`` tree the
A-XDR decoder gives, with the bare fields as untagged nodes at their real
offsets, so the readings builder (shape detection, compiled plans) treats it
like any other list. It returns None for any other body.
"""

from __future__ import annotations

from amsread.dlms import axdr
from amsread.dlms.axdr import Array, Node, Structure
from amsread.errors import AxdrError

#: Bytes of one element's bare header: structure tag and count, class id (2),
#: OBIS code (6), attribute (1).
_ELEMENT_HEAD = 2 + 2 + 6 + 1
#: Element counts a structure header may give: descriptor and value (as the
#: meters send it), or the four fields counted one by one.
_ELEMENT_COUNTS = (2, 4)


def described_tree(data: bytes, at: int = 0) -> Node | None:
    """The Node tree of a bare-described list, or None if it is not one.

    The list is ``data[at:]`` and must end with ``data``; node offsets are
    into ``data`` (a whole APDU, for annotating its bytes, or the body alone).
    """
    if len(data) - at < 6 or data[at : at + 2] != bytes((axdr.STRUCTURE, 2)):
        return None
    if data[at + 2] != axdr.ENUM or data[at + 4] != axdr.ARRAY:
        return None
    kind = Node(axdr.ENUM, "enum", data[at + 3], at + 2, at + 3, at + 4)
    try:
        count, pos = axdr.decode_length(data, at + 5)
    except AxdrError:
        return None
    content = pos
    elements = []
    for _ in range(count):
        element = _element(data, pos)
        if element is None:
            return None
        elements.append(element)
        pos = element.end
    if pos != len(data):
        return None
    values = Array([e.value for e in elements])
    array = Node(axdr.ARRAY, "array", values, at + 4, content, pos, tuple(elements))
    value = Structure([kind.value, array.value])
    return Node(axdr.STRUCTURE, "structure", value, at, at + 2, pos, (kind, array))


def _element(body: bytes, start: int) -> Node | None:
    """One ``{class id, OBIS, attribute, value}`` with its three bare fields."""
    if start + _ELEMENT_HEAD >= len(body):
        return None
    if body[start] != axdr.STRUCTURE or body[start + 1] not in _ELEMENT_COUNTS:
        return None
    at = start + 2
    class_id = Node(
        axdr.LONG_UNSIGNED, "long-unsigned", int.from_bytes(body[at : at + 2]), at, at, at + 2
    )
    obis = Node(axdr.OCTET_STRING, "octet-string", body[at + 2 : at + 8], at + 2, at + 2, at + 8)
    attribute = Node(axdr.UNSIGNED, "unsigned", body[at + 8], at + 8, at + 8, at + 9)
    try:
        value = axdr.decode_node(body, at + 9, 2)
    except AxdrError:
        return None
    fields = (class_id, obis, attribute, value)
    items = Structure([f.value for f in fields])
    return Node(axdr.STRUCTURE, "structure", items, start, start + 2, value.end, fields)
