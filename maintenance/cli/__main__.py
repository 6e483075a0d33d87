"""`python -m maintenance.cli`: the `maint` program, as the scheduler daemon starts its jobs.

Started by the daemon (MAINT_SCHEDULER_PID set), the process asks Linux to send it SIGTERM
when the daemon dies, so a killed daemon leaves no orphan run behind to race the next one.
"""

import os
import signal
import sys

from .program import main


def _die_with_scheduler() -> None:
    parent = os.environ.get("MAINT_SCHEDULER_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if str(os.getppid()) != parent:  # the daemon died before the request was in place
        sys.exit(1)


if __name__ == "__main__":
    _die_with_scheduler()
    main()
