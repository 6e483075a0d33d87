"""The `rabbitmq` probe: queue depths, consumers and dead letters from the management HTTP API.

One request per probe (`GET /api/queues/{vhost}?columns=...`: only the figures graded, so a
broker with many queues answers cheaply) through the same fetch as the http probe, so
`via: host` reaches a management API bound to the host's loopback. Each queue rule (a name or
a glob pattern) grades every queue it matches; a queue named outright that does not exist is
CRITICAL (the application's queue is gone), a pattern that matches nothing is a WARNING (a
typo would otherwise pass unseen). A dead-letter queue holding any message is CRITICAL: each
message there is work that failed for good and waits for a person.

The check is named after the probe and carries the worst state; its message names the queues
that are not OK with their figures (the first few queues when every one is OK). Its value is
the most messages ready in any queue the probe watches (the backlog a graph wants), with no
warn/crit of its own since each rule has its own; without rules it counts the vhost's queues
(the broker answering is the check).
"""

from __future__ import annotations

import base64
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

from ..monitoring import Check, State, worst
from ..secrets import env_secret
from ..settings.probes import QueueLimits, RabbitmqProbe
from .base import ProbeContext, graded, measured
from .fetch import http_fetch
from .remote import fetched

_COLUMNS = ("name", "messages_ready", "messages_unacknowledged", "consumers")
# An OK message names this many queues, then counts the rest.
_SHOWN = 5


@dataclass(frozen=True)
class Queue:
    """A queue's figures as the management API shows them; None before its first sample."""

    name: str
    ready: int | None
    unacked: int | None
    consumers: int | None


@dataclass(frozen=True)
class Finding:
    """What one rule found about one queue (or about a queue that is missing)."""

    queue: str
    state: State
    words: str


def probe(settings: RabbitmqProbe, context: ProbeContext) -> Check:
    answer = fetched(http_fetch, _request(settings), settings, context)
    if "error" in answer:
        return Check(settings.name, State.CRITICAL, f"{settings.rabbitmq}: {answer['error']}")
    if answer["status"] != 200:
        return Check(settings.name, State.CRITICAL, _refusal(settings, answer))
    try:
        queues = [_queue(entry) for entry in json.loads(answer["body"])]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        message = f"{settings.rabbitmq}: unreadable answer from the management API ({exc})"
        return Check(settings.name, State.UNKNOWN, message)
    return assessed(settings, queues)


def assessed(settings: RabbitmqProbe, queues: list[Queue]) -> Check:
    """The probe's check from the vhost's QUEUES: every rule and dead-letter queue graded."""
    findings = [
        finding
        for pattern, limits in settings.queues.items()
        for finding in _findings(pattern, queues, partial(_graded_queue, limits=limits))
    ]
    findings += [
        finding
        for pattern in settings.dead_letter
        for finding in _findings(pattern, queues, _dead_letters)
    ]
    if not findings:
        message = f"{len(queues)} queues in vhost {settings.vhost!r}"
        return Check(settings.name, State.OK, message, len(queues))
    watched = {finding.queue for finding in findings}
    deepest = max((q.ready or 0 for q in queues if q.name in watched), default=0)
    state = worst(finding.state for finding in findings)
    return Check(settings.name, state, _message(findings, state), deepest)


def _request(settings: RabbitmqProbe) -> dict[str, Any]:
    password = env_secret(settings.password_env, "password_env") or ""
    credentials = base64.b64encode(f"{settings.user}:{password}".encode()).decode()
    return {
        "url": (
            f"{settings.rabbitmq.rstrip('/')}/api/queues/{quote(settings.vhost, safe='')}"
            f"?columns={','.join(_COLUMNS)}"
        ),
        "method": "GET",
        "headers": {"Authorization": f"Basic {credentials}", "Accept": "application/json"},
        "timeout": settings.timeout,
        "verify_tls": settings.verify_tls,
        "ca_file": settings.ca_file,
    }


def _refusal(settings: RabbitmqProbe, answer: dict[str, Any]) -> str:
    said = f"{answer['status']} {answer['reason']}".strip()
    if answer["status"] == 401:
        return f"{settings.rabbitmq}: the management API refused user {settings.user!r} ({said})"
    if answer["status"] == 404:
        return f"{settings.rabbitmq}: no vhost {settings.vhost!r} ({said})"
    return f"{settings.rabbitmq}: the management API answered {said}"


def _queue(entry: dict[str, Any]) -> Queue:
    def figure(key: str) -> int | None:
        value = entry.get(key)
        return None if value is None else int(value)

    return Queue(
        str(entry["name"]),
        figure("messages_ready"),
        figure("messages_unacknowledged"),
        figure("consumers"),
    )


def _findings(
    pattern: str, queues: list[Queue], grade: Callable[[Queue], Finding]
) -> list[Finding]:
    """GRADE's finding for each queue PATTERN names; a finding of its own if it names none."""
    if not _is_pattern(pattern):
        matched = [queue for queue in queues if queue.name == pattern]
        return [grade(queue) for queue in matched] or [
            Finding(pattern, State.CRITICAL, f"{pattern}: no such queue")
        ]
    matched = [queue for queue in queues if fnmatch.fnmatchcase(queue.name, pattern)]
    return [grade(queue) for queue in matched] or [
        Finding(pattern, State.WARNING, f"no queue matches {pattern!r}")
    ]


def _is_pattern(name: str) -> bool:
    return any(character in name for character in "*?[")


def _unsampled(queue: Queue) -> Finding:
    return Finding(queue.name, State.UNKNOWN, f"{queue.name}: no statistics yet (a new queue)")


def _graded_queue(queue: Queue, limits: QueueLimits) -> Finding:
    """QUEUE against LIMITS: messages ready, unacknowledged, and consumers."""
    if queue.ready is None or queue.unacked is None or queue.consumers is None:
        return _unsampled(queue)
    ready = graded(queue.ready, limits.warn, limits.crit)
    unacked = graded(queue.unacked, limits.unacked_warn, limits.unacked_crit)
    starved = limits.min_consumers is not None and queue.consumers < limits.min_consumers
    consumers = State.CRITICAL if starved else State.OK
    parts = [
        f"ready {measured(queue.ready, limits.warn, limits.crit)}",
        f"unacked {measured(queue.unacked, limits.unacked_warn, limits.unacked_crit)}",
        f"consumers {queue.consumers}"
        + (f" (at least {limits.min_consumers})" if limits.min_consumers is not None else ""),
    ]
    state = worst((ready, unacked, consumers))
    return Finding(queue.name, state, f"{queue.name}: {', '.join(parts)}")


def _dead_letters(queue: Queue) -> Finding:
    """A dead-letter QUEUE: any message in it, ready or held by a consumer, is CRITICAL."""
    if queue.ready is None or queue.unacked is None:
        return _unsampled(queue)
    held = queue.ready + queue.unacked
    if held == 0:
        return Finding(queue.name, State.OK, f"{queue.name}: no dead letters")
    plural = "s" if held != 1 else ""
    return Finding(
        queue.name, State.CRITICAL, f"{queue.name}: {held} dead letter{plural} (expected none)"
    )


def _message(findings: list[Finding], state: State) -> str:
    """The findings that are not OK, worst first; when all are OK, the first few of them."""
    if state != State.OK:
        shown = sorted((f for f in findings if f.state != State.OK), key=lambda f: -f.state)
        return "; ".join(finding.words for finding in shown)
    words = [finding.words for finding in findings[:_SHOWN]]
    if len(findings) > _SHOWN:
        words.append(f"and {len(findings) - _SHOWN} more queues OK")
    return "; ".join(words)
