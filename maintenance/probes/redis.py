"""The `redis` probe: PING, then used memory against maxmemory, connected clients and
rejected connections from one INFO.

Used memory is graded as a percentage of `maxmemory`; a server without a limit (maxmemory 0)
has no percentage, so its memory is reported and never graded. The check's value is the used
memory in bytes, its warn/crit the thresholds in bytes (the percentages of maxmemory), so a
graph of it needs no second unit. `rejected_connections` is
Redis's counter since the server started (or since `CONFIG RESETSTAT`): past `rejected_warn`
the check stays WARNING until someone looks and resets the statistics, which is the point of
a counter of refusals. A server that cannot be reached, refuses the password or does not
answer PING is CRITICAL.

With `via: host` the probe connects through the host's runner (an SSH tunnel to the address
as the host sees it; nothing to forward for a local host), so a Redis bound to the host's
loopback is reached without running anything there. Over such a tunnel a `rediss://`
certificate is checked against the tunnel's address, 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..monitoring import Check, State, worst
from ..secrets import env_secret
from ..settings.probes import RedisProbe
from ..units import format_size
from .base import ProbeContext, graded, measured


def probe(settings: RedisProbe, context: ProbeContext) -> Check:
    password = env_secret(settings.password_env, "password_env")
    target = urlsplit(settings.redis)
    where = f"{target.hostname}:{target.port or 6379}"
    try:
        with _client(settings, context, password) as client:
            client.ping()
            info: dict[str, Any] = client.info()
    except redis.AuthenticationError as exc:
        if password is None:  # Redis's own words are about HELLO and AUTH, not the setting
            return Check(settings.name, State.CRITICAL, f"{where}: needs a password (password_env)")
        return Check(settings.name, State.CRITICAL, f"{where}: authentication failed: {exc}")
    except (redis.RedisError, OSError) as exc:
        return Check(settings.name, State.CRITICAL, f"{where}: {_reason(exc)}")
    return assessed(settings, info)


def assessed(settings: RedisProbe, info: dict[str, Any]) -> Check:
    """The probe's check from the server's INFO: memory, clients and rejections graded."""
    used, limit = int(info["used_memory"]), int(info["maxmemory"])
    clients, rejected = int(info["connected_clients"]), int(info["rejected_connections"])
    percent = round(100.0 * used / limit, 1) if limit else None
    warn_pct, crit_pct = settings.memory_warn_pct, settings.memory_crit_pct
    if percent is None:
        memory_state = State.OK
        memory = f"memory {format_size(used)} (no maxmemory)"
    else:
        memory_state = graded(percent, warn_pct, crit_pct)
        memory = (
            f"memory {measured(percent, warn_pct, crit_pct, '%')} of maxmemory: "
            f"{format_size(used)} of {format_size(limit)}"
        )
    clients_state = graded(clients, settings.clients_warn, settings.clients_crit)
    rejected_state = graded(rejected, settings.rejected_warn, None)
    words = [
        memory,
        f"clients {measured(clients, settings.clients_warn, settings.clients_crit)}",
        f"rejected connections {measured(rejected, settings.rejected_warn, None)}",
    ]
    state = worst((memory_state, clients_state, rejected_state))
    return Check(
        settings.name,
        state,
        "; ".join(words),
        used,
        _bytes_at(warn_pct, limit),
        _bytes_at(crit_pct, limit),
    )


def _bytes_at(percent: float | None, limit: int) -> float | None:
    """A memory threshold in bytes, the unit of the check's value (none without maxmemory)."""
    return None if percent is None or not limit else round(limit * percent / 100)


@contextlib.contextmanager
def _client(
    settings: RedisProbe, context: ProbeContext, password: str | None
) -> Iterator[redis.Redis]:
    """A client of the URL's server and database, through the host's runner with `via: host`."""
    target = urlsplit(settings.redis)
    address, port = target.hostname or "127.0.0.1", target.port or 6379
    endpoint = (
        context.runner.tunnel(address, port)
        if settings.via == "host"
        else contextlib.nullcontext((address, port))
    )
    with endpoint as (reached_address, reached_port):
        tls = target.scheme == "rediss"
        client = redis.Redis(
            host=reached_address,
            port=reached_port,
            db=int(target.path.strip("/") or 0),
            username=target.username or None,
            password=password,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            retry=Retry(NoBackoff(), 0),  # a probe says what it found; the next check retries
            **(_tls_options(settings) if tls else {}),
        )
        try:
            yield client
        finally:
            client.close()


def _tls_options(settings: RedisProbe) -> dict[str, Any]:
    return {
        "ssl": True,
        "ssl_cert_reqs": "required" if settings.verify_tls else "none",
        "ssl_check_hostname": settings.verify_tls,
        "ssl_ca_certs": settings.ca_file,
    }


def _reason(exc: BaseException) -> str:
    """redis-py's words without its retry preamble, or the class when it has none."""
    return str(exc).strip() or type(exc).__name__
