"""The `backup` section of a host's vars."""

from __future__ import annotations

from pydantic import ConfigDict

from .types import Section


class BackupSettings(Section):
    """Placeholder until the section is modelled: accepts any key."""

    model_config = ConfigDict(extra="allow", frozen=True)


class RestoreSettings(Section):
    """Placeholder until the section is modelled: accepts any key."""

    model_config = ConfigDict(extra="allow", frozen=True)
