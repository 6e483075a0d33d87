"""The `certs` section of a host's vars."""

from __future__ import annotations

from pydantic import ConfigDict

from .types import Section


class CertsSettings(Section):
    """Placeholder until the section is modelled: accepts any key."""

    model_config = ConfigDict(extra="allow", frozen=True)
