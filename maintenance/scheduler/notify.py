"""Telling people and monitors how jobs went: a webhook on failure and recovery, heartbeats.

Webhook: a Slack-compatible body ({"text": ...}) or a generic JSON body, posted when a run
fails and when a job's run succeeds after a failed one. Heartbeat (healthchecks.io style):
URL/start when a run starts, URL on success, URL/fail on failure, so a monitor notices a
daemon that stopped running jobs. Each job pings its own URL (its `heartbeat_url`, else
notify.heartbeat_url with `{job}` replaced by its name), so one failing job does not share a
check with the others. The URLs are credentials: logs show only scheme and host.
An endpoint that is down costs a warning in the log, never the job.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import structlog

from ..secrets import register_secret
from ..settings.scheduler import NotifySettings
from .config import Job
from .state import FAILED, OK, Outcome, history_hosts

log = structlog.get_logger()


class Notifier:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def started(self, job: Job) -> None:
        url = heartbeat_url(job, self.settings.heartbeat_url)
        if url:
            self._send(_join(url, "start"), None, "heartbeat", job)

    def finished(self, job: Job, outcome: Outcome, previous_status: str | None) -> None:
        """Heartbeat for every run; webhook for a failure, or for a success after a failure."""
        url = heartbeat_url(job, self.settings.heartbeat_url)
        if url:
            if outcome.status != OK:
                url = _join(url, "fail")
            self._send(url, (outcome.error or "").encode()[:10000] or None, "heartbeat", job)
        event = webhook_event(outcome.status, previous_status)
        if event and self.settings.webhook_url:
            body = webhook_body(self.settings.webhook_format, event, job, outcome)
            self._send(self.settings.webhook_url, json.dumps(body).encode(), "webhook", job)

    def _send(self, url: str, body: bytes | None, what: str, job: Job) -> None:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in config
            url,
            data=body,
            method="POST" if body is not None else "GET",
            headers={"Content-Type": "application/json", "User-Agent": "maint-scheduler"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:  # noqa: S310
                response.read(1024)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or exc
            log.warning(
                f"{what} not delivered", job=job.name, url=masked_url(url), error=str(reason)
            )
            return
        log.debug(f"{what} sent", job=job.name, url=masked_url(url))


def heartbeat_url(job: Job, template: str | None) -> str | None:
    """JOB's heartbeat URL: its own, else TEMPLATE; `{job}` becomes the job's URL-quoted name."""
    url = job.heartbeat_url or template
    if not url:
        return None
    url = url.replace("{job}", quote(job.name, safe=""))
    register_secret(url)  # the resolved URL is as secret as the template
    return url


def webhook_event(status: str, previous_status: str | None) -> str | None:
    """'failure' for a failed run, 'recovery' for an ok run after a failed one, else None."""
    if status == FAILED:
        return "failure"
    if status == OK and previous_status == FAILED:
        return "recovery"
    return None


def webhook_body(style: str, event: str, job: Job, outcome: Outcome) -> dict[str, Any]:
    """The JSON posted for EVENT: Slack's {"text": ...} or a generic document."""
    origin = socket.gethostname()
    if style == "slack":
        icon = ":red_circle:" if event == "failure" else ":large_green_circle:"
        verb = "failed" if event == "failure" else "recovered"
        lines = [f"{icon} maint job *{job.name}* ({job.task}) {verb} on {origin}"]
        lines += [
            f"• {host['host']}: {host['status']}" + (f" ({host['error']})" if host["error"] else "")
            for host in outcome.hosts
        ]
        if outcome.error and not outcome.hosts:
            lines.append(outcome.error)
        return {"text": "\n".join(lines)}
    return {
        "event": event,
        "job": job.name,
        "task": job.task,
        "status": outcome.status,
        "daemon_host": origin,
        "started": outcome.started.isoformat(),
        "ended": outcome.ended.isoformat(),
        "duration_s": round(outcome.duration_s, 3),
        "hosts": history_hosts(outcome),
        "error": outcome.error,
    }


def masked_url(url: str) -> str:
    """scheme://host/… : enough to tell which service, nothing of the secret path or token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def _join(url: str, suffix: str) -> str:
    return url.rstrip("/") + "/" + suffix
