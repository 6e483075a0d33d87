"""Certificate checks: TLS endpoints (with PostgreSQL and SMTP STARTTLS) and files on hosts."""

from .check import check_host
from .targets import CertsOptions, host_certs

__all__ = ["CertsOptions", "check_host", "host_certs"]
