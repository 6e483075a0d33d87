"""The daemon's alerts, sent by a child process: `python -m maintenance.scheduler.sender`.

Apprise loads every one of its plugins (about 25 MB and 0.3 s) to send through any of them;
in a child that exits after sending, the daemon stays small. And a channel that hangs past
every timeout is ended with its process instead of being left running in a thread. Alerts are
rare (state changes), so a child's start per alert costs nothing that matters.
The daemon writes the channels' settings and the message as JSON on the child's stdin (the
URLs are secrets: never in argv) and reads each channel's outcome from its stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from ..secrets import mask_text, register_secret
from ..settings.scheduler import NotifySettings
from .channels import Message, channels_of, deadline_s, deliver

# The child's own start (interpreter, settings model, Apprise's plugins) on a busy machine.
START_S = 15.0
ERROR_TAIL_CHARS = 500


def deliver_in_child(settings: NotifySettings, message: Message) -> dict[str, str | None]:
    """Send MESSAGE to SETTINGS' channels from a child; each label with None or why not."""
    labels = [channel.label for channel in channels_of(settings)]
    request = {
        "urls": list(settings.urls),
        "webhook_url": settings.webhook_url,
        "webhook_format": settings.webhook_format,
        "timeout": settings.timeout,
        "message": asdict(message),
    }
    limit = deadline_s(settings.timeout) + START_S
    try:
        done = subprocess.run(
            [sys.executable, "-m", "maintenance.scheduler.sender"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limit,  # past it, the child is killed
        )
    except subprocess.TimeoutExpired:
        return dict.fromkeys(labels, f"no answer within {limit:g}s")
    except OSError as exc:
        return dict.fromkeys(labels, f"cannot start the sender: {exc.strerror}")
    outcome = _outcome(done.stdout)
    if outcome is None or set(outcome) != set(labels):
        tail = mask_text(done.stderr.strip())[-ERROR_TAIL_CHARS:] or f"exit code {done.returncode}"
        return dict.fromkeys(labels, f"sender failed: {tail}")
    return outcome


def _outcome(stdout: str) -> dict[str, str | None] | None:
    try:
        outcome = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(outcome, dict):
        return None
    return {str(label): None if error is None else str(error) for label, error in outcome.items()}


def main(request: dict[str, Any]) -> dict[str, str | None]:
    """Send the request's message to its channels; each label with None or why not."""
    settings = NotifySettings(
        urls=request["urls"],
        webhook_url=request["webhook_url"],
        webhook_format=request["webhook_format"],
        timeout=request["timeout"],
    )
    for url in (settings.webhook_url, *settings.urls):
        if url:
            register_secret(url)
    return deliver(channels_of(settings), Message(**request["message"]), settings.timeout)


if __name__ == "__main__":
    json.dump(main(json.load(sys.stdin)), sys.stdout)
