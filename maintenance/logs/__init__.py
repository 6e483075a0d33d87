"""Logs on the hosts: the jobs logrotate and tmpreaper do, driven by the `logs` var."""

from .clean import CleanOptions, clean_host
from .rotate import Imports, RotateOptions, check_imports, rotate_host

__all__ = ["CleanOptions", "Imports", "RotateOptions", "check_imports", "clean_host", "rotate_host"]
