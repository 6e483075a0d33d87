"""Logs on the hosts: the jobs logrotate and tmpreaper do, driven by the `logs` var."""

from .clean import CleanOptions, clean_host
from .rotate import RotateOptions, read_imports, rotate_host

__all__ = ["CleanOptions", "RotateOptions", "clean_host", "read_imports", "rotate_host"]
