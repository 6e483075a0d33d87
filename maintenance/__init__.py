"""maintenance-automation: PostgreSQL maintenance runbooks as code, across an inventory."""

__version__ = "0.1.0"
