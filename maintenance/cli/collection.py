"""The root task collection shown by `invoke --list` and `maint --list`."""

from invoke import Collection

from . import health


def build_namespace() -> Collection:
    """Assemble every task namespace; nothing runs at import."""
    return Collection(health.namespace)
