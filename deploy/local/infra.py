"""Choosing real infrastructure for tests and benchmarks, in this order:

1. ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when set: use those servers;
2. a Docker engine that answers: testcontainers starts PostgreSQL and Kafka;
3. otherwise the local ones: embedded PostgreSQL (pgserver's binaries) and the Kafka broker from
   Maven Central (KRaft), both on loopback and free ports.

A missing prerequisite raises ``InfraError`` with one line naming it: tests fail, they never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from deploy.local.kafka import InfraError, LocalKafka, kafka_version
from deploy.local.postgres import LocalPostgres


def docker_available() -> bool:
    if os.environ.get("WASHFIN_NO_DOCKER") or not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@dataclass
class PostgresHandle:
    """A server URL (any database on it) and how it was obtained."""

    url: str
    origin: str
    _stop: Any = field(default=None, repr=False)

    def database_url(self, name: str) -> str:
        return with_database(self.url, name)

    async def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        import asyncpg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.database_url("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.database_url(name)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


@dataclass
class KafkaHandle:
    bootstrap_servers: str
    origin: str
    version: str
    local: LocalKafka | None = None
    _stop: Any = field(default=None, repr=False)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def start_postgres(workdir: Path | None = None) -> PostgresHandle:
    if url := os.environ.get("DATABASE_URL"):
        return PostgresHandle(url, "DATABASE_URL")
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        container: AbstractContextManager[Any] = PostgresContainer("postgres:16-alpine", driver=None)
        c = container.__enter__()
        return PostgresHandle(c.get_connection_url(), "testcontainers", lambda: container.__exit__(None, None, None))
    base = workdir or Path(tempfile.mkdtemp(prefix="washfin-pg-"))
    pg = LocalPostgres(base, settings={"fsync": "on"}).start()
    return PostgresHandle(pg.url(), f"embedded PostgreSQL ({pg.data_dir})",
                          lambda: (pg.stop(), shutil.rmtree(base, ignore_errors=True)))


def start_kafka(workdir: Path | None = None) -> KafkaHandle:
    if bs := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return KafkaHandle(bs, "KAFKA_BOOTSTRAP_SERVERS", "external")
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        image = f"apache/kafka:{kafka_version()}"
        container: Any = KafkaContainer(image).with_kraft()
        c = container.__enter__()
        return KafkaHandle(c.get_bootstrap_server(), "testcontainers", kafka_version(),
                           _stop=lambda: container.__exit__(None, None, None))
    base = workdir or Path(tempfile.mkdtemp(prefix="washfin-kafka-"))
    k = LocalKafka(base).start()
    return KafkaHandle(k.bootstrap_servers, f"local broker from Maven Central ({base})", k.version, local=k,
                       _stop=lambda: (k.stop(), shutil.rmtree(base, ignore_errors=True)))


__all__ = ["InfraError", "KafkaHandle", "PostgresHandle", "docker_available", "start_kafka", "start_postgres"]
