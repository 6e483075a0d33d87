"""The `scheduler` section of a host's vars."""

from __future__ import annotations

from pydantic import ConfigDict

from .types import Section


class SchedulerSettings(Section):
    """Placeholder until the section is modelled: accepts any key."""

    model_config = ConfigDict(extra="allow", frozen=True)


class MetricsSettings(Section):
    """Placeholder until the section is modelled: accepts any key."""

    model_config = ConfigDict(extra="allow", frozen=True)


class NotifySettings(Section):
    """Placeholder until the section is modelled: accepts any key."""

    model_config = ConfigDict(extra="allow", frozen=True)
