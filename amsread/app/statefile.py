"""Loading ``--state-file`` so that a damaged one never stops the reader.

The state file only guards against replayed frames: losing it costs one
restart's worth of protection, while refusing to start costs every reading
until someone deletes it. So a corrupt or empty file is renamed aside (kept
for a look) with a warning, and amsread starts with no remembered counters.
"""

from __future__ import annotations

import os
import time
from typing import Any

from amsread.dlms.replay import InvocationTracker, StateFileInvalid, load_state


def aside_name(path: str, now: float | None = None) -> str:
    """Where a bad state file goes: beside it, named with the time it was found."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
    return f"{path}.corrupt-{stamp}"


def load_or_set_aside(path: str, log: Any) -> InvocationTracker:
    """The tracker from ``path``; a file with no valid state is moved aside first.

    A directory that does not exist or a file that cannot be read are still
    configuration errors (UsageError): moving aside would not help there.
    """
    try:
        return load_state(path)
    except StateFileInvalid as exc:
        what = str(exc).split(";")[0]  # not its "delete it" advice: done here
        aside = aside_name(path)
        try:
            os.replace(path, aside)
        except OSError as move:
            log.warning(
                f"{what}; cannot move it aside: {move.strerror}; starting without it",
                hint="replayed frames are accepted until the next save",
            )
        else:
            log.warning(
                f"{what}; moved it to {aside} and starting afresh",
                hint="replay protection restarts from the next frame; nothing else is lost",
            )
        return InvocationTracker()
