"""Tasks of the `notify` namespace: prove that the alert channels reach someone.

Heartbeat URLs are left out on purpose: a test ping would tell the monitor that a job ran
well (or failed) when it did not run at all.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

from invoke.exceptions import Exit

from ..errors import ConfigError
from ..logconfig import configure_logging
from ..reporting import EXIT_USAGE, emit, exit_code
from ..results import Result, Status
from .common import inventory_path
from .spec import TaskSpec, collection, dry_run

NOT_PINGED = "heartbeat URLs are not pinged: a test ping would report a run that did not happen"


def _test(flags: SimpleNamespace) -> None:
    from ..scheduler.alerts import notify_test_alert
    from ..scheduler.channels import Message, channels_of, deliver
    from ..scheduler.config import load_notify

    configure_logging()
    try:
        settings = load_notify(inventory_path(flags.inventory))
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    channels = channels_of(settings)
    if not channels:
        raise Exit(
            "error: no alert channel in the inventory: set notify.urls or notify.webhook_url"
            " in all.vars",
            code=EXIT_USAGE,
        )
    if flags.dry_run:
        results = [
            Result(channel.label, Status.SKIPPED, summary="dry run: not sent")
            for channel in channels
        ]
    else:
        sent = deliver(channels, Message.of(notify_test_alert()), settings.timeout)
        results = [
            Result(label, Status.OK, summary="sent")
            if error is None
            else Result(label, Status.FAILED, error=f"not sent: {error}")
            for label, error in sent.items()
        ]
    _report(results, as_json=flags.json, heartbeats=bool(settings.heartbeat_url))
    code = exit_code(results)
    if code:
        raise Exit(code=code)


def _report(results: list[Result], *, as_json: bool, heartbeats: bool) -> None:
    """One line per channel and a count, or the usual JSON document (a result per channel)."""
    if as_json:
        emit("notify.test", results, as_json=True)
        return
    width = max(len(result.host) for result in results)
    for result in results:
        print(f"{result.host:<{width}}  {result.error or result.summary}")
    sent = sum(result.status == Status.OK for result in results)
    failed = sum(result.status == Status.FAILED for result in results)
    line = f"notify.test: {sent} sent, {failed} failed"
    if all(result.status == Status.SKIPPED for result in results):
        line = f"notify.test: {len(results)} channel(s), none sent (dry run)"
    print(line)
    if heartbeats:
        print(f"note: {NOT_PINGED}", file=sys.stderr)


SPECS = (
    TaskSpec(
        "notify.test",
        """Send a test message to every alert channel (notify.urls, notify.webhook_url).

        Prints each channel (scheme and host only) and whether it took the message; exit 1
        when any did not, 2 when none is configured. Heartbeat URLs are not pinged.
        """,
        common=("inventory", "json"),
        flags=(dry_run("list the channels, send nothing"),),
        action=_test,
    ),
)

namespace = collection("notify", SPECS)
