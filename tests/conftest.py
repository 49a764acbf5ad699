"""Real infrastructure for the tests that need it, started once per session and stopped at the end.

``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` win when set; else testcontainers where a Docker engine
answers; else the embedded PostgreSQL and the Kafka broker from Maven Central. A missing prerequisite
fails the test with the reason: nothing here skips.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from deploy.local.infra import KafkaHandle, PostgresHandle, start_kafka, start_postgres
from deploy.local.services import ephemeral_personal_data_keys

# every pool refuses a task that holds one of its connections and asks for another (shared.db.Pool): the
# whole suite, and the service processes it starts, run with the check on, so such a path fails a test
# instead of wedging a service under load
os.environ.setdefault("WASHFIN_POOL_NESTING_CHECK", "1")


# the members service seals names, NIKs and phones with keys from settings and does not start without them:
# the session makes its own (random; the service processes it starts inherit them)
ephemeral_personal_data_keys("test-1")

log = logging.getLogger("washfin.tests")
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresHandle]:
    handle = start_postgres(durable=False)  # a test server: no fsync (deploy/local/infra.py)
    print(f"\n[infra] PostgreSQL: {handle.origin}")
    yield handle
    if handle.origin == "DATABASE_URL":
        # a server of its own outlives the session: it keeps none of the session's databases (the embedded
        # server and testcontainers' are thrown away whole)
        loop = asyncio.new_event_loop()  # not the tests' loop, and not made the current one
        try:
            loop.run_until_complete(handle.drop_databases())
        finally:
            loop.close()
    handle.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaHandle]:
    handle = start_kafka()
    print(f"\n[infra] Apache Kafka {handle.version}: {handle.origin} at {handle.bootstrap_servers}")
    yield handle
    if handle.local is not None:
        # the session's own broker is thrown away with its data: a controlled shutdown would move the
        # leadership of every partition the suite made (hundreds of topics) first and took 20-30 s (then
        # SIGKILL) at the end of each worker's session. Nothing after this reads the broker
        handle.local.kill()
    handle.stop()


@pytest.fixture(scope="session")
async def platform_url(pg: PostgresHandle) -> AsyncIterator[str]:
    """A platform (credentials) database with the demo cooperatives and their demo keys."""
    from deploy.local.demo import prepare_demo_platform

    url = await pg.create_database("platform")
    await prepare_demo_platform(url)
    yield url


def pytest_report_header(config: pytest.Config) -> list[str]:
    from deploy.local.kafka import kafka_version

    return [f"washfin: Apache Kafka {kafka_version()} (pinned in deploy/local/kafka-pom.xml)"]


def pytest_configure(config: pytest.Config) -> None:
    # ``--dist loadgroup`` hands the units out in the workers' collection order, which
    # pytest_collection_modifyitems below makes longest first; xdist's own reorder (most tests first)
    # would undo it and leave the longest files, which hold one or two tests, for the end
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _unit(item: pytest.Item) -> str:
    return "security" if _file(item).startswith("tests/security/") else _file(item)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (its own hook of the same name)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` (``make test``) each file is one unit of work, so its module-scoped
    fixtures (a system of services, a browser's page, a database) start once, not once on each worker that
    drew one of its tests; the security suite's files are one unit together (their system is
    package-scoped: four services, the demo data of two cooperatives, ~10 s to start, and a worker that ran
    another package's file between two of its files stopped and started it again). The units go out
    longest first by ``tests/durations.json`` (tests/durations.py), so no long file is left for the end
    while the other worker idles."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_unit(item)))
    if not hasattr(config, "workerinput"):
        return  # one process: the files in their own order
    from tests.durations import load

    measured = load()
    files: dict[str, set[str]] = {}  # unit -> its files
    for item in items:
        files.setdefault(_unit(item), set()).add(_file(item))
    weight = {unit: sum(measured.get(f, 0.0) for f in fs) for unit, fs in files.items()}
    # a stable sort: each unit's items stay together (the collection has them together) and in their order
    items.sort(key=lambda it: -weight[_unit(it)])
