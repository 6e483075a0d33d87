"""The root task collection shown by `invoke --list` and `maint --list`."""

from invoke import Collection

from . import backup, health, restore


def build_namespace() -> Collection:
    """Assemble every task namespace; nothing runs at import."""
    return Collection(backup.namespace, health.namespace, restore.namespace)
