"""Warn/crit threshold pairs: a crit threshold looser than its warn threshold would make a
check skip WARNING (or never reach CRITICAL) without a word, so every pair is checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel

from .durations import duration_words

Worse = Literal["lower", "higher"]


def misordered(settings: BaseModel, warn: str, crit: str, worse: Worse) -> str | None:
    """Words for a crit threshold on the wrong side of its warn threshold, else None (also
    when either is unset: one threshold alone is a valid choice)."""
    warn_value, crit_value = getattr(settings, warn), getattr(settings, crit)
    if warn_value is None or crit_value is None:
        return None
    if (crit_value <= warn_value) if worse == "lower" else (crit_value >= warn_value):
        return None
    side = "above" if worse == "lower" else "below"
    return (
        f"{crit} ({said(crit_value)}) is {side} {warn} ({said(warn_value)}): "
        f"critical must be at least as {'low' if worse == 'lower' else 'high'} as warning"
    )


def refuse_misordered(*problems: str | None) -> None:
    """Raise ValueError with every problem found, if any."""
    found = [problem for problem in problems if problem]
    if found:
        raise ValueError("; ".join(found))


def said(value: object) -> str:
    """A threshold as a user would write it: 10, 0.5, 2 days."""
    if isinstance(value, timedelta):
        return duration_words(value)
    return f"{value:g}" if isinstance(value, float) else str(value)
