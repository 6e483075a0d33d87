"""The scheduler: jobs from the inventory's `schedule`, run on their cadence by a daemon.

Modules: calendar (next-run arithmetic), catalog (tasks and flags from the invoke collection),
config (validated settings), state / state_sqlite / state_postgres (history and claims),
child (one run as a child process), daemon, metrics, textfile, notify (heartbeats and
alerts), alerts (states and changes), channels and sender (where alerts go), export.
"""
