"""The product's settings: one typed model of every key it reads from an inventory.

Layer: the bottom. Procedures, runners and stores read these objects; nothing here imports
them. The inventory parses each host's merged vars into `HostSettings` once, and every problem
of every host is reported together before anything runs (see `validate`).
"""

from .durations import Age, parse_age, parse_duration
from .host import HostSettings

__all__ = ["Age", "HostSettings", "parse_age", "parse_duration"]
