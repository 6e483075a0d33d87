"""structlog set-up, done once by the entry point: console on a TTY, JSON lines otherwise.

Logs always go to stderr so `--json` output on stdout stays one clean document. A masking
processor runs last before rendering, so no event can carry a secret out.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from .secrets import mask_value


def _mask_secrets(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> Mapping[str, Any]:
    return mask_value(event)


def configure_logging(level: str = "info", *, json_lines: bool | None = None) -> None:
    """Route structlog events to stderr, rendered for people on a TTY and as JSON otherwise."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # paramiko logs its own transport chatter through stdlib logging; keep it to real problems.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
