"""Telling people and monitors how jobs went: alerts on state changes, and heartbeats.

Alerts (alerts.py decides, channels.py sends, from a child process: sender.py): after each
run, the states of the job, of each host and of each check are compared with the kept ones;
changes, recoveries and the repeats of states still not OK go out as one message per run to
every channel (`notify.urls` through Apprise, and `notify.webhook_url`).
Heartbeat (healthchecks.io style): URL/start when a run starts, URL on success, URL/fail on
failure, so a monitor notices a daemon that stopped running jobs. Each job pings its own URL
(its `heartbeat_url`, else notify.heartbeat_url with `{job}` replaced by its name), so one
failing job does not share a check with the others.
The URLs are credentials: logs show only scheme and host. An endpoint that is down costs a
warning in the log, never the job.
"""

from __future__ import annotations

import threading
from datetime import datetime
from urllib.parse import quote

import structlog

from ..secrets import register_secret
from ..settings.scheduler import NotifySettings
from .alerts import Alert, CheckState, Key, evaluate, observe
from .channels import ChannelError, Message, channels_of, masked_url, request_url
from .config import Job
from .sender import deliver_in_child
from .state import OK, Outcome, StateError, StateStore

log = structlog.get_logger()


class Notifier:
    """Heartbeats and alerts of the daemon's runs; alert states kept in STORE."""

    def __init__(self, settings: NotifySettings, store: StateStore) -> None:
        self.settings = settings
        self.store = store
        self.channels = channels_of(settings)
        # The states this daemon last kept per job: used when the store cannot be read, so
        # a state database outage does not turn every run into a first sighting.
        self._known: dict[str, dict[Key, CheckState]] = {}
        self._mutex = threading.Lock()

    def started(self, job: Job) -> None:
        url = heartbeat_url(job, self.settings.heartbeat_url)
        if url:
            self._ping(url.rstrip("/") + "/start", None, job)

    def finished(self, job: Job, slot: datetime, outcome: Outcome) -> None:
        """Heartbeat for every run; an alert when states changed (or are due a repeat)."""
        url = heartbeat_url(job, self.settings.heartbeat_url)
        if url:
            if outcome.status != OK:
                url = url.rstrip("/") + "/fail"
            self._ping(url, (outcome.error or "").encode()[:10000] or None, job)
        self._alert(job, slot, outcome)

    def _alert(self, job: Job, slot: datetime, outcome: Outcome) -> None:
        bound = log.bind(job=job.name)
        try:
            kept = self.store.alert_states(job.name)
        except StateError as exc:
            bound.error("alert states not read: using this daemon's own", error=str(exc))
            with self._mutex:
                kept = self._known.get(job.name, {})
        states, changes = evaluate(kept, observe(outcome), slot, self.settings.repeat)
        with self._mutex:
            self._known[job.name] = {**kept, **{state.key: state for state in states}}
        try:
            self.store.keep_alert_states(job.name, states)
        except StateError as exc:
            bound.error("alert states not kept", error=str(exc))
        if not changes or not self.channels:
            return
        alert = Alert(job.name, job.task, slot, tuple(changes), outcome, self.settings.repeat)
        sent = deliver_in_child(self.settings, Message.of(alert))
        for channel, error in sent.items():
            if error is None:
                bound.info("alert sent", channel=channel, title=alert.title)
            else:
                bound.warning("alert not delivered", channel=channel, error=error)

    def _ping(self, url: str, body: bytes | None, job: Job) -> None:
        try:
            request_url(url, body, self.settings.timeout)
        except ChannelError as exc:
            log.warning(
                "heartbeat not delivered", job=job.name, url=masked_url(url), error=str(exc)
            )
            return
        log.debug("heartbeat sent", job=job.name, url=masked_url(url))


def heartbeat_url(job: Job, template: str | None) -> str | None:
    """JOB's heartbeat URL: its own, else TEMPLATE; `{job}` becomes the job's URL-quoted name."""
    url = job.heartbeat_url or template
    if not url:
        return None
    url = url.replace("{job}", quote(job.name, safe=""))
    register_secret(url)  # the resolved URL is as secret as the template
    return url
