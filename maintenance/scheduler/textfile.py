"""The node_exporter textfile any task writes when the inventory's `metrics.textfile_dir` is set.

Called by every task after its run (cli.common.run_task), so the metrics exist whether the
task ran from the daemon, cron, a systemd timer or a terminal. Never fails the task.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from ..inventory import Host
from ..results import Result

log = structlog.get_logger()


def write_if_asked(task: str, hosts: Sequence[Host], results: Sequence[Result]) -> None:
    """Write TASK's results to the textfile directory named by the hosts' vars, if any."""
    asked = (host.settings.metrics.textfile_dir for host in hosts)
    directory = next((path for path in asked if path), None)
    if not directory:
        return
    from .metrics import write_textfile  # prometheus_client only for those who asked

    try:
        path = write_textfile(
            Path(directory), task, [result.to_dict() for result in results], time.time()
        )
    except (OSError, ValueError) as exc:
        log.warning(
            "metrics textfile not written", task=task, directory=str(directory), error=str(exc)
        )
        return
    log.debug("metrics textfile written", task=task, path=str(path))
