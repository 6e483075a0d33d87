"""Log cleanup on the hosts: the job logrotate and tmpreaper do, driven by the `logs` var."""

from .clean import CleanOptions, clean_host
from .rules import LogRule, parse_rules

__all__ = ["CleanOptions", "LogRule", "clean_host", "parse_rules"]
