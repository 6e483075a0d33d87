"""The `tcp` probe: a connection to host:port within the timeout; refused or timed out is
CRITICAL, and the time to connect may be graded by `warn_ms`/`crit_ms`."""

from __future__ import annotations

from ..monitoring import Check, State
from ..settings.certs import split_endpoint
from ..settings.probes import TcpProbe
from .base import ProbeContext, graded, milliseconds
from .fetch import tcp_connect
from .remote import fetched


def probe(settings: TcpProbe, context: ProbeContext) -> Check:
    address, port = split_endpoint(settings.tcp)
    request = {"address": address, "port": port, "timeout": settings.timeout}
    answer = fetched(tcp_connect, request, settings, context)
    if "error" in answer:
        return Check(settings.name, State.CRITICAL, f"{settings.tcp}: {answer['error']}")
    ms = round(answer["ms"], 1)
    state = graded(ms, settings.warn_ms, settings.crit_ms)
    message = f"{settings.tcp} accepted a connection in {milliseconds(ms)}"
    return Check(settings.name, state, message, ms, settings.warn_ms, settings.crit_ms)
