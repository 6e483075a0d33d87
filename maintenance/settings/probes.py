"""`health.probes`: checks of the services around PostgreSQL, each adding a check to
health.check named after the probe.

The kind of a probe is the key that names its target (`http: URL`, `tcp: host:port`,
`rabbitmq: URL`, `redis: URL`, `sql: query`, `command: command line`); a probe has exactly one.
Every kind is its own section, so a typo gets a did-you-mean from that kind's keys, and a
problem is said at the path as written (`health.probes[2].warn_ms`).

Secrets are never written in the inventory: a header's value or a password is named by the
environment variable that holds it on the control machine (`{env: API_TOKEN}`,
`password_env: RMQ_PASSWORD`), read when the probe runs and never shown.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .certs import split_endpoint
from .kinds import Kinded, KindedList
from .thresholds import Worse, misordered, refuse_misordered
from .types import Count, EnvName, Number, Percent, Positive, Section, Text, Timeout, url_of

DEFAULT_TIMEOUT_S = 10.0

Milliseconds = Annotated[Number, Field(ge=0)]
JsonScalar = str | int | float | bool | None


def _endpoint(value: str) -> str:
    split_endpoint(value)
    return value


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, int | str) and not isinstance(value, bool) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


StatusCode = Annotated[int, Field(ge=100, le=599)]
_STATUS_SCHEMA = {"type": "integer", "minimum": 100, "maximum": 599}


class ProbeBase(Kinded):
    """Keys every probe has."""

    name: Text = Field(
        description="the check's name in health.check (unique on a host)", examples=["api"]
    )
    timeout: Timeout = Field(
        DEFAULT_TIMEOUT_S,
        gt=0,
        description="seconds (or a duration) the probe may take; past it the check is CRITICAL",
    )
    via: Literal["control", "host"] = Field(
        "control",
        description="where the probe runs: `control` (the machine running maint) or `host` "
        "(on the host through its runner, for services bound to its loopback; needs python3 "
        "there for http and tcp)",
    )


class HeaderFromEnv(Section):
    """A header value read from an environment variable of the control machine when the
    probe runs (with `via: host` too: it reaches the host on stdin); sent, never shown."""

    env: EnvName = Field(description="the variable holding the value", examples=["API_TOKEN"])


def _header_kind(value: Any) -> str:
    return "env" if isinstance(value, dict | HeaderFromEnv) else "text"


HeaderValue = Annotated[
    Annotated[str, Tag("text")] | Annotated[HeaderFromEnv, Tag("env")],
    Discriminator(_header_kind),
]


class HttpProbe(ProbeBase):
    """`http: URL`: a request whose status, body and latency are graded. Redirects are not
    followed: a 3xx is the answer (expect it with `status: 301`)."""

    kind: ClassVar[str] = "http"

    http: Annotated[str, url_of("http", "https")] = Field(
        description="the URL requested", examples=["http://127.0.0.1:8001/health"]
    )
    method: Annotated[
        Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        BeforeValidator(_upper),
    ] = Field("GET", description="the request method")
    status: (
        Annotated[
            list[StatusCode],
            BeforeValidator(_one_or_list),
            WithJsonSchema(
                {
                    "x-type": "status code or list of codes",
                    "anyOf": [{**_STATUS_SCHEMA}, {"type": "array", "items": _STATUS_SCHEMA}],
                }
            ),
        ]
        | None
    ) = Field(
        None,
        min_length=1,
        description="expected status code or list of codes (default: any 2xx)",
        examples=[[200, 204]],
    )
    expect_json: dict[Text, JsonScalar] | None = Field(
        None,
        alias="json",
        description="the body is JSON and these keys (dotted paths for nested keys) have "
        "these values",
        examples=[{"status": "healthy"}],
    )
    contains: Text | None = Field(None, description="text the body must contain")
    warn_ms: Milliseconds | None = Field(
        None, description="WARNING when the answer takes this many milliseconds or more"
    )
    crit_ms: Milliseconds | None = Field(
        None, description="CRITICAL when the answer takes this many milliseconds or more"
    )
    verify_tls: bool = Field(True, description="verify the server's certificate and name (https)")
    ca_file: Text | None = Field(
        None,
        description="CA certificates to verify against instead of the system's (a file where "
        "the probe runs)",
    )
    headers: dict[Text, HeaderValue] = Field(
        default_factory=dict,
        description="request headers; a value may be `{env: NAME}`, read from the control "
        "machine's environment and never shown",
        examples=[{"Authorization": {"env": "API_TOKEN"}}],
    )

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        refuse_misordered(misordered(self, "warn_ms", "crit_ms", "higher"))
        return self


class TcpProbe(ProbeBase):
    """`tcp: host:port`: a connection opened within the timeout."""

    kind: ClassVar[str] = "tcp"

    tcp: Annotated[str, AfterValidator(_endpoint)] = Field(
        description="host:port to connect to", examples=["127.0.0.1:587"]
    )
    warn_ms: Milliseconds | None = Field(
        None, description="WARNING when connecting takes this many milliseconds or more"
    )
    crit_ms: Milliseconds | None = Field(
        None, description="CRITICAL when connecting takes this many milliseconds or more"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        refuse_misordered(misordered(self, "warn_ms", "crit_ms", "higher"))
        return self


class GradedProbe(ProbeBase):
    """A probe measuring one number, graded against `warn` and `crit`."""

    warn: Number | None = Field(None, description="WARNING at this value or beyond")
    crit: Number | None = Field(None, description="CRITICAL at this value or beyond")
    worse: Worse = Field(
        "higher", description="`higher`: more is worse (the default); `lower`: less is worse"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        refuse_misordered(misordered(self, "warn", "crit", self.worse))
        return self


class SqlProbe(GradedProbe):
    """`sql: query`: a query on the host's PostgreSQL server (postgres.dsn) returning one
    number, run in a read-only transaction."""

    kind: ClassVar[str] = "sql"

    sql: Text = Field(
        description="a query whose first column of its first row is the number graded",
        examples=["SELECT count(*) FROM jobs WHERE status = 'processing'"],
    )
    database: Text | None = Field(None, description="the database (default: the DSN's)")

    @field_validator("via")
    @classmethod
    def _from_here(cls, value: str) -> str:
        if value != "control":
            raise ValueError(
                "an sql probe connects as every task does (postgres.ssh_tunnel reaches a "
                "server bound to the host); 'via: host' is not for it"
            )
        return value


class CommandProbe(GradedProbe):
    """`command: command line`: graded by the number it prints when `warn` or `crit` is set,
    else by its exit code as monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL, other UNKNOWN."""

    kind: ClassVar[str] = "command"

    command: Text = Field(
        description="a shell command line, run on the control machine or (`via: host`) on the host",
        examples=["/usr/local/bin/consumer-lag events"],
    )


class QueueLimits(Section):
    """Thresholds of one queue (or of every queue a pattern matches)."""

    warn: Count | None = Field(None, description="WARNING at this many messages ready or more")
    crit: Count | None = Field(None, description="CRITICAL at this many messages ready or more")
    unacked_warn: Count | None = Field(
        None, description="WARNING at this many unacknowledged messages or more"
    )
    unacked_crit: Count | None = Field(
        None, description="CRITICAL at this many unacknowledged messages or more"
    )
    min_consumers: Count | None = Field(None, description="CRITICAL with fewer consumers than this")

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        refuse_misordered(
            misordered(self, "warn", "crit", "higher"),
            misordered(self, "unacked_warn", "unacked_crit", "higher"),
        )
        return self


class RabbitmqProbe(ProbeBase):
    """`rabbitmq: URL` of the management HTTP API: queue depths, consumers, dead letters."""

    kind: ClassVar[str] = "rabbitmq"

    rabbitmq: Annotated[str, url_of("http", "https")] = Field(
        description="the management API's base URL", examples=["http://127.0.0.1:15672"]
    )
    user: Text = Field("guest", description="the management API user")
    password_env: EnvName | None = Field(
        None, description="the environment variable holding the user's password"
    )
    vhost: Text = Field("/", description="the virtual host of the queues")
    queues: dict[Text, QueueLimits] = Field(
        default_factory=dict,
        description="queue name or glob pattern (`*`, `?`, `[...]`) -> its thresholds; a name "
        "that is not a queue is CRITICAL, a pattern matching none a WARNING",
        examples=[{"birthday_messages": {"warn": 1000, "crit": 5000, "min_consumers": 1}}],
    )
    dead_letter: list[Text] = Field(
        default_factory=list,
        description="queues (names or glob patterns) that must be empty: CRITICAL with any message",
        examples=[["birthday_messages_dlq"]],
    )
    verify_tls: bool = Field(
        True, description="verify the management API's certificate and name (https)"
    )
    ca_file: Text | None = Field(
        None,
        description="CA certificates to verify against instead of the system's (a file where "
        "the probe runs)",
    )

    @field_validator("rabbitmq")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        if urlsplit(value).username is not None:
            raise ValueError(
                "the URL carries credentials: name the user in `user` and the password's "
                "environment variable in `password_env`"
            )
        return value


class RedisProbe(ProbeBase):
    """`redis: URL`: PING, used memory against maxmemory, connected and rejected clients."""

    kind: ClassVar[str] = "redis"

    redis: Annotated[str, url_of("redis", "rediss")] = Field(
        description="the server's URL: `redis://` or `rediss://` (TLS), host, port (default "
        "6379), database number as the path (default 0); an ACL user may precede the host",
        examples=["redis://127.0.0.1:6379/0"],
    )
    password_env: EnvName | None = Field(
        None, description="the environment variable holding the password"
    )
    verify_tls: bool = Field(True, description="verify the server's certificate and name (rediss)")
    ca_file: Text | None = Field(
        None, description="CA certificates to verify a rediss:// server against (a file)"
    )
    memory_warn_pct: Percent | None = Field(
        80, description="WARNING when used memory is this % of maxmemory or more"
    )
    memory_crit_pct: Percent | None = Field(
        90, description="CRITICAL when used memory is this % of maxmemory or more"
    )
    clients_warn: Count | None = Field(
        None, description="WARNING at this many connected clients or more"
    )
    clients_crit: Count | None = Field(
        None, description="CRITICAL at this many connected clients or more"
    )
    rejected_warn: Positive | None = Field(
        None,
        description="WARNING when Redis has rejected this many connections (maxclients reached) "
        "since it started or since `CONFIG RESETSTAT`",
    )

    @field_validator("redis")
    @classmethod
    def _database_and_no_password(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.password is not None:
            raise ValueError(
                "the URL carries a password: name its environment variable in `password_env`"
            )
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ValueError(f"the URL's path is the database number, got {parts.path!r}")
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        refuse_misordered(
            misordered(self, "memory_warn_pct", "memory_crit_pct", "higher"),
            misordered(self, "clients_warn", "clients_crit", "higher"),
        )
        return self


PROBES = KindedList(
    "probe",
    (HttpProbe, TcpProbe, RabbitmqProbe, RedisProbe, SqlProbe, CommandProbe),
    action="probed",
    name_is="its check's name",
    value_unions=("headers",),
)

Probe = Annotated[
    Annotated[HttpProbe, Tag("http")]
    | Annotated[TcpProbe, Tag("tcp")]
    | Annotated[RabbitmqProbe, Tag("rabbitmq")]
    | Annotated[RedisProbe, Tag("redis")]
    | Annotated[SqlProbe, Tag("sql")]
    | Annotated[CommandProbe, Tag("command")],
    PROBES.discriminator(),
]


def checked_probes(value: Any, handler: Any) -> list[ProbeBase]:
    """`health.probes` validated, each problem said at the path as written, names unique.

    For a field validator in wrap mode: HANDLER validates the list.
    """
    return PROBES.checked(value, handler)
