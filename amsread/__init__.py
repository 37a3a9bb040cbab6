"""amsread: read the customer port (HAN/P1) of European smart electricity meters.

The public API: feed bytes to a ``Pipeline``, get ``Message`` events (and
``Rejected``, ``Failure``, ``Skipped``, ``Notice``) back; nothing here does I/O::

    from amsread import Keys, Message, Pipeline
    pipeline = Pipeline(Keys(encryption=bytes.fromhex("...")))
    for event in pipeline.feed(data):
        if isinstance(event, Message):
            print(event.readings)

Layers, one subpackage each: ``link`` (bytes -> frames), ``dlms`` (APDUs,
block transfer, ciphering, A-XDR), ``readings`` (list shapes, profiles, OBIS
names), ``output`` (JSON lines, CSV, Influx), ``diagnose`` (explain, check-key,
redact) and ``app`` (the command line and the daemon).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AmsreadError",
    "DecodeError",
    "Failure",
    "Keys",
    "Message",
    "Notice",
    "Pipeline",
    "Reading",
    "Rejected",
    "Skipped",
    "UsageError",
    "__version__",
]

# Imported when first used, so that `amsread --help` loads no decoder.
_HOMES = {
    "AmsreadError": "amsread.errors",
    "DecodeError": "amsread.errors",
    "UsageError": "amsread.errors",
    "Failure": "amsread.model",
    "Message": "amsread.model",
    "Notice": "amsread.model",
    "Reading": "amsread.model",
    "Rejected": "amsread.model",
    "Skipped": "amsread.model",
    "Keys": "amsread.dlms.keys",
    "Pipeline": "amsread.pipeline",
}

if TYPE_CHECKING:
    from amsread.dlms.keys import Keys
    from amsread.errors import AmsreadError, DecodeError, UsageError
    from amsread.model import Failure, Message, Notice, Reading, Rejected, Skipped
    from amsread.pipeline import Pipeline


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'amsread' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
