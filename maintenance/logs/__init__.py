"""Log cleanup on the hosts: the job logrotate and tmpreaper do, driven by the `logs` var."""

from .clean import CleanOptions, clean_host

__all__ = ["CleanOptions", "clean_host"]
