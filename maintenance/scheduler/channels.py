"""Where alerts go: each Apprise URL of `notify.urls` and the `notify.webhook_url`, a channel.

Apprise (one library for mail, Slack, JSON and ~100 other services, by URL) does the sending;
the webhook keeps its own Slack/JSON body for the receivers written against it. Channels are
sent to at once, each in a thread with a deadline, so a slow one costs at most the deadline;
one that fails is reported by its label, which shows the scheme and host only: the URLs are
credentials. An alert travels as a Message, plain data, so that the daemon can hand it to a
child process (sender.py) and never load Apprise itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import MaintError
from ..secrets import mask_text
from ..settings.scheduler import NotifySettings
from .alerts import Alert

# localhost, a dotted name or IPv4 address, or a bracketed IPv6 one; with a port or not.
_NETWORK_HOST = re.compile(r"(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\])(:\d+)?")
ICONS = {
    "failure": ":red_circle:",
    "warning": ":large_yellow_circle:",
    "recovery": ":large_green_circle:",
    "test": ":bell:",
}
# Past its own timeouts (connect, then read), a channel gets this much more before it is
# given up: Apprise's plugins may make more than one request.
GRACE_S = 5.0


class ChannelError(MaintError):
    """A channel did not take the message; the words say why, without the URL's secrets."""


@dataclass(frozen=True)
class Message:
    """An alert as the channels send it: a title (a mail's subject), a body, and the webhook's
    Slack and JSON bodies."""

    title: str
    body: str
    slack: dict[str, Any]
    document: dict[str, Any]

    @classmethod
    def of(cls, alert: Alert) -> Message:
        return cls(alert.title, alert.body, _slack_body(alert), alert.to_dict())


class Channel(Protocol):
    label: str  # shown in logs and by notify.test: no secret in it

    def send(self, message: Message) -> None:
        """Deliver MESSAGE. Raise ChannelError."""


class AppriseChannel:
    """One of `notify.urls`: any service Apprise knows by its URL."""

    def __init__(self, index: int, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.label = f"urls[{index}] {masked_url(url)}"

    def send(self, message: Message) -> None:
        import apprise

        plugin = apprise.Apprise.instantiate(self.url, suppress_exceptions=True)
        if plugin is None:  # checked at load; a plugin Apprise can no longer load
            raise ChannelError("Apprise cannot use this URL")
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, self.timeout)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, self.timeout)
        with _apprise_reasons() as reasons:
            sent = plugin.notify(body=message.body, title=message.title)
        if not sent:
            raise ChannelError(mask_text("; ".join(reasons)) or "not delivered")


class WebhookChannel:
    """`notify.webhook_url`: a Slack-compatible or a JSON body, POSTed."""

    def __init__(self, url: str, style: str, timeout: float) -> None:
        self.url = url
        self.style = style
        self.timeout = timeout
        self.label = f"webhook_url {masked_url(url)}"

    def send(self, message: Message) -> None:
        body = message.slack if self.style == "slack" else message.document
        request_url(self.url, json.dumps(body).encode(), self.timeout)


def channels_of(settings: NotifySettings) -> list[Channel]:
    """The channels alerts go to: the webhook, then each Apprise URL in order."""
    channels: list[Channel] = []
    if settings.webhook_url:
        channels.append(
            WebhookChannel(settings.webhook_url, settings.webhook_format, settings.timeout)
        )
    channels += [
        AppriseChannel(index, url, settings.timeout) for index, url in enumerate(settings.urls)
    ]
    return channels


def url_problems(urls: Sequence[str]) -> list[str]:
    """What Apprise says of each of notify.urls: an unknown scheme, or a URL it cannot use
    (a part missing or malformed). Named by index; the URL, a credential, is never repeated."""
    if not urls:
        return []
    import apprise
    from apprise.manager_plugins import NotificationManager

    known = NotificationManager()
    problems = []
    with _apprise_reasons():  # why Apprise refuses a URL goes to its log, URL and all
        for index, url in enumerate(urls):
            scheme = url.partition("://")[0]
            if scheme.lower() not in known:
                problems.append(
                    f"notify.urls[{index}]: unknown Apprise scheme {scheme!r} "
                    "(e.g. mailto, json, slack)"
                )
            elif apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
                problems.append(
                    f"notify.urls[{index}]: Apprise cannot use this {scheme}:// URL: a part is "
                    "missing or malformed (see the Apprise wiki page of the service)"
                )
    return problems


def deliver(channels: Sequence[Channel], message: Message, timeout: float) -> dict[str, str | None]:
    """Send MESSAGE to every channel at once; each label with None (sent) or why it was not.

    A channel still going after deadline_s(TIMEOUT) is left behind, reported as not
    answering: a hung service costs a bounded wait, not the caller.
    """
    outcome: dict[str, str | None] = {}

    def send(channel: Channel) -> None:
        try:
            channel.send(message)
            outcome[channel.label] = None
        except ChannelError as exc:
            outcome[channel.label] = str(exc)
        except Exception as exc:  # a plugin's bug costs its channel, never the caller
            outcome[channel.label] = mask_text(f"{type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=send, args=(channel,), name=f"notify {channel.label}", daemon=True)
        for channel in channels
    ]
    for thread in threads:
        thread.start()
    limit = deadline_s(timeout)
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = f"no answer within {limit:g}s"
    return {channel.label: outcome.get(channel.label, late) for channel in channels}


def deadline_s(timeout: float) -> float:
    """How long a channel may take: its connect and read timeouts, and a grace."""
    return 2 * timeout + GRACE_S


def request_url(url: str, body: bytes | None, timeout: float) -> None:
    """GET URL, or POST BODY as JSON to it. Raise ChannelError with the reason, URL unsaid."""
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in the settings
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json", "User-Agent": "maint-scheduler"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ChannelError(mask_text(str(reason))) from None


def _slack_body(alert: Alert) -> dict[str, Any]:
    """Slack's {"text": ...}: the title in bold, then a bullet per change."""
    lines = [f"{ICONS[alert.event]} *{alert.title}*"]
    if alert.test:
        lines.append(alert.body)
    else:
        lines += [f"• {change.line()}" for change in alert.changes]
    return {"text": "\n".join(lines)}


def masked_url(url: str) -> str:
    """scheme://host:port/… : enough to tell which service, nothing of the path or user.

    The host is shown when it is a DNS name or an address; services that put a token there
    (slack://T000/…, tgram://BOT-TOKEN/…) show none: scheme://…
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}/…" if _NETWORK_HOST.fullmatch(host) else f"{parts.scheme}://…"


class _Reasons(logging.Handler):
    """Collects, per thread, the warnings Apprise logs while a channel sends: its reasons.

    Apprise says why a send failed only in its log (in privacy mode, URLs shortened)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        found = getattr(self.local, "found", None)
        if found is not None:
            found.append(record.getMessage())


_REASONS = _Reasons()


@contextlib.contextmanager
def _apprise_reasons() -> Iterator[list[str]]:
    """The warnings Apprise logs in this thread within the block."""
    logger = logging.getLogger("apprise")
    if _REASONS not in logger.handlers:
        logger.addHandler(_REASONS)
    _REASONS.local.found = []
    try:
        yield _REASONS.local.found
    finally:
        _REASONS.local.found = None
