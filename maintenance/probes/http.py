"""The `http` probe: one request; its status, body and latency graded.

A wrong status, a JSON value that differs or a missing text is CRITICAL (the service answers
but is not healthy); the latency gives WARNING or CRITICAL past `warn_ms`/`crit_ms`. Header
values named by `{env: NAME}` are read from this machine's environment when the probe runs,
registered as secrets (masked in anything shown) and sent, with `via: host`, on the remote
python's stdin.
"""

from __future__ import annotations

import json
from typing import Any

from ..monitoring import Check, State
from ..secrets import env_secret
from ..settings.probes import HeaderFromEnv, HttpProbe, JsonScalar
from .base import ProbeContext, graded, milliseconds
from .fetch import http_fetch
from .remote import fetched


def probe(settings: HttpProbe, context: ProbeContext) -> Check:
    request = {
        "url": settings.http,
        "method": settings.method,
        "headers": _headers(settings),
        "timeout": settings.timeout,
        "verify_tls": settings.verify_tls,
        "ca_file": settings.ca_file,
    }
    answer = fetched(http_fetch, request, settings, context)
    if "error" in answer:
        return Check(settings.name, State.CRITICAL, f"{settings.http}: {answer['error']}")
    ms = round(answer["ms"], 1)
    said = f"{answer['status']} {answer['reason']}".strip()
    problem = _status_problem(settings, answer["status"]) or _body_problem(settings, answer["body"])
    if problem:
        return Check(settings.name, State.CRITICAL, f"{said}: {problem}", ms)
    state = graded(ms, settings.warn_ms, settings.crit_ms)
    return Check(
        settings.name,
        state,
        f"{said} in {milliseconds(ms)}",
        ms,
        settings.warn_ms,
        settings.crit_ms,
    )


def _headers(settings: HttpProbe) -> dict[str, str]:
    """The headers to send, env values read now. Raise ConfigError naming a variable unset."""
    return {
        name: env_secret(value.env, f"headers.{name}") or ""
        if isinstance(value, HeaderFromEnv)
        else value
        for name, value in settings.headers.items()
    }


def _status_problem(settings: HttpProbe, status: int) -> str | None:
    if settings.status is None:
        return None if 200 <= status < 300 else "expected a 2xx status"
    if status in settings.status:
        return None
    return f"expected status {' or '.join(map(str, settings.status))}"


def _body_problem(settings: HttpProbe, body: str) -> str | None:
    if settings.contains is not None and settings.contains not in body:
        return f"the body does not contain {settings.contains!r}"
    if not settings.expect_json:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return f"the body is not JSON: {body[:80]!r}"
    for path, expected in settings.expect_json.items():
        found = _at(document, path)
        if found is _MISSING:
            return f"JSON has no {path!r} (expected {json.dumps(expected)})"
        if not _same(found, expected):
            return f"JSON {path} is {json.dumps(found)[:80]}, expected {json.dumps(expected)}"
    return None


_MISSING = object()


def _at(document: Any, path: str) -> Any:
    """DOCUMENT's value at PATH: a top-level key as written, else a dotted path (a list index
    is a number: `checks.0.status`)."""
    if isinstance(document, dict) and path in document:
        return document[path]
    for step in path.split("."):
        if isinstance(document, dict) and step in document:
            document = document[step]
        elif isinstance(document, list) and step.isdigit() and int(step) < len(document):
            document = document[int(step)]
        else:
            return _MISSING
    return document


def _same(found: Any, expected: JsonScalar) -> bool:
    """Equal as JSON values: true is not 1, 1 is 1.0."""
    if isinstance(found, bool) or isinstance(expected, bool):
        return found is expected
    return bool(found == expected)
