"""Real local services (PostgreSQL, sshd, S3, GCS, RabbitMQ, Redis) for testing the maintenance
tool."""

from .net import free_port
from .objectstores import Service, start_gcs_emulator, start_moto
from .postgres import Cluster, drop_cluster, start_cluster
from .rabbitmq import RabbitMQ, start_rabbitmq
from .redis import RedisServer, start_redis
from .sshd import SshFleet, SshHost, start_fleet

__all__ = [
    "Cluster",
    "RabbitMQ",
    "RedisServer",
    "Service",
    "SshFleet",
    "SshHost",
    "drop_cluster",
    "free_port",
    "start_cluster",
    "start_fleet",
    "start_gcs_emulator",
    "start_moto",
    "start_rabbitmq",
    "start_redis",
]
