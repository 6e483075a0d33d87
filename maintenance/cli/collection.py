"""The root task collection shown by `invoke --list` and `maint --list`."""

from invoke import Collection

from . import backup, certs, config, db, health, jobs, logs, notify, report, restore, schedule


class _Root(Collection):
    """The root collection, which also answers to the underscore spelling of task names.

    DESIGN names tasks with underscores (`db.unused_indexes`) and cron lines and schedule
    configs are written that way, but invoke dashes every underscore (`db.unused-indexes`),
    aliases included. The parser builds its contexts from the root's `task_names`, so the
    underscore spelling is added there. `invoke` itself copies tasks.py's namespace into a
    plain Collection, so in the repository root only the dashed spelling works; `maint` takes
    both.
    """

    @property
    def task_names(self) -> dict[str, list[str]]:
        names = super().task_names
        for primary, aliases in names.items():
            underscored = primary.replace("-", "_")
            if underscored != primary:
                aliases.append(underscored)
        return names


def build_namespace() -> Collection:
    """Assemble every task namespace; nothing runs at import."""
    return _Root(
        backup.namespace,
        certs.namespace,
        config.namespace,
        db.namespace,
        health.namespace,
        jobs.namespace,
        logs.namespace,
        notify.namespace,
        report.task,
        restore.namespace,
        schedule.namespace,
    )
