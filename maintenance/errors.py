"""One exception root for the product, so entry points can map failures to exit codes.

ConfigError is bad input (exit 2 / UNKNOWN); HostUnreachable marks a host we never reached;
everything else under MaintError is a procedure failing on a host (exit 1).
"""


class MaintError(Exception):
    """Root of every error the product raises on purpose."""


class ConfigError(MaintError):
    """Bad inventory, flags or vars: the user must fix input before anything can run."""


class HostUnreachable(MaintError):
    """The host could not be reached (connect refused, timeout, DNS, authentication)."""


class HostKeyError(HostUnreachable):
    """The host's SSH key is unknown or differs from known_hosts: refused, never accepted."""


class CommandError(MaintError):
    """A command on a host failed in a way the caller asked to treat as an error."""


class CommandTimeout(CommandError):
    """A command on a host ran past its timeout and was stopped."""
