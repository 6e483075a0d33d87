"""The scheduler: jobs from the inventory's `schedule`, run on their cadence by a daemon.

Modules: calendar (next-run arithmetic), catalog (tasks and flags from the invoke collection),
config (validated settings), state / state_sqlite / state_postgres (history and claims),
child (one run as a child process), daemon, metrics, textfile, notify, export.
"""

from .calendar import Daily, Interval, Monthly, Weekly, latest_slot, next_slot
from .config import Job, Settings, load_settings

__all__ = [
    "Daily",
    "Interval",
    "Job",
    "Monthly",
    "Settings",
    "Weekly",
    "latest_slot",
    "load_settings",
    "next_slot",
]
