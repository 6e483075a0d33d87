"""Step times for records that say where a task's time went (a drill's `steps`)."""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any


def timed_step(
    steps: MutableMapping[str, float], step: str, function: Callable[..., Any], *args: Any
) -> Any:
    """Call FUNCTION(*ARGS) and record its seconds under STEP, whether it returns or raises:
    a failed step's time is part of the story too."""
    started = time.monotonic()
    try:
        return function(*args)
    finally:
        steps[step] = round(time.monotonic() - started, 3)
