"""``amsread explain``: a layer-by-layer breakdown, like a protocol analyser.

For every frame: the bytes of each field and what they mean (flags, frame
format, addresses, control, HCS/FCS computed against received, LLC, APDU tag,
system title with the maker decoded, BER length, security control bits,
invocation counter, tag), then the decrypted APDU as an A-XDR tree with OBIS
codes named and scalers applied, the readings, and which profile matched and
why. Every failure gets a named cause and a next step.

The analysis builds a ``Report`` (plain dataclasses, no I/O); ``render_text``
and ``render_json`` turn it into text that reads well pasted into a forum or
an issue, or into data. The layers themselves (framer, ciphering, A-XDR,
readings, profiles) are the ones the pipeline uses: explain only watches them
work and annotates the bytes they consumed.

``model`` holds the report, ``analyse`` walks the stream and its link frames,
``apdu`` the layers above the link, ``telegram`` DSMR P1 text telegrams (plain
or ciphered), ``fields`` and ``tree`` annotate bytes, ``problems`` names causes
and next steps, ``render`` prints the report.
"""

from amsread.diagnose.explain.analyse import (
    DEFAULT_LIMIT,
    explain_apdus,
    explain_stream,
    looks_like_apdu,
)
from amsread.diagnose.explain.model import Problem, Report, Section
from amsread.diagnose.explain.problems import diagnose_garbage
from amsread.diagnose.explain.render import render_json, render_text

__all__ = [
    "DEFAULT_LIMIT",
    "Problem",
    "Report",
    "Section",
    "diagnose_garbage",
    "explain_apdus",
    "explain_stream",
    "looks_like_apdu",
    "render_json",
    "render_text",
]
