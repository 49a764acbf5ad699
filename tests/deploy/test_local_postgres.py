"""The embedded PostgreSQL's authentication (deploy/local/postgres.py), on real servers: the superuser only
over the Unix socket, every TCP login by password (scram-sha-256), and a data folder too deep for a socket
path keeps one socket URL across restarts (the chaos run restarts its server under running services)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local.kafka import InfraError
from deploy.local.postgres import SOCKET_DIR_MAX, LocalPostgres


@pytest.fixture
def deep() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="washfin-deep-pg-"))
    path = base.joinpath(*["a-rather-long-folder-name"] * 4) / "pg"
    assert len(str(path / "pgdata")) >= SOCKET_DIR_MAX
    yield path
    shutil.rmtree(base, ignore_errors=True)


def _socket_dir(data_dir: Path) -> Path:
    digest = hashlib.sha256(str((data_dir / "pgdata").resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"washfin-pgsock-{digest}"


def test_a_deep_folder_keeps_its_socket_url_across_restarts_and_tcp_wants_passwords(deep: Path) -> None:
    pg = LocalPostgres(deep).start()
    try:
        url = pg.url("postgres")
        assert pg.socket_dir is not None and len(str(pg.socket_dir)) < SOCKET_DIR_MAX

        async def as_superuser() -> str:
            conn = await asyncpg.connect(url)
            try:
                return str(await conn.fetchval("SELECT current_user"))
            finally:
                await conn.close()

        assert asyncio.run(as_superuser()) == "postgres"
        pg.ensure_login("washfin_probe")
        login = pg.login_url("washfin_probe", "postgres")

        async def tcp() -> None:
            conn = await asyncpg.connect(login)  # the right password
            await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(login.replace(pg.password("washfin_probe"), "wrong"))
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres")

        asyncio.run(tcp())
        pg.stop()
        pg.start()
        assert pg.url("postgres") == url
        assert asyncio.run(as_superuser()) == "postgres"  # a service holding the old URL reconnects
    finally:
        pg.stop()
    assert not _socket_dir(deep).exists()


def test_a_socket_folder_somebody_else_made_is_refused(deep: Path) -> None:
    planted = _socket_dir(deep)
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    try:
        with pytest.raises(InfraError, match="socket folder"):
            LocalPostgres(deep).start()
    finally:
        shutil.rmtree(planted, ignore_errors=True)
