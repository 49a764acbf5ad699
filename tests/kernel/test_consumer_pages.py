"""``shared.consumer.pages`` (the rebuild's reading of a source log) against the path as it was.

- ``decode_json`` (each payload validated once, from its text) gives the contract ``ContractRegistry.decode``
  gives from the payload's dict, and ``bare_envelope`` the envelope ``Envelope.model_construct`` gives
  (the oracles: the reader's ``_envelope_from_row`` and the registry's decode);
- a log read by ``read_page`` and applied by ``apply_page``, in pages, writes exactly what the same log read
  by ``read_log`` and applied by ``apply_events`` writes: every table of the build (``row_hash``), the
  consumer's stream versions and per-cooperative change counts, its dead letters and outcomes. Books are
  generated (the loans domain's histories of ``test_portfolio_rewrite``), with the producer's internal
  events, and in some an event that does not decode; for the financing family (every loans
  event projected) and the catalogue (its products only: the others passed by undecoded).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.local.infra import PostgresHandle
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from shared.consumer import TRACKING_MIGRATIONS, apply_events, event_types_of, record_dead_letters
from shared.consumer.pages import apply_page, bare_envelope, decode_json, read_page
from shared.contracts import load_all
from shared.db import create_pool, migrate
from shared.envelope import Envelope, LogPosition
from shared.kafka import service_topic
from shared.eventstore.postgres import MIGRATIONS as EVENTSTORE_MIGRATIONS
from shared.eventstore.postgres import PostgresLogReader, _envelope_from_row
from tests.services.reporting.test_portfolio_rewrite import TENANTS, history, mix

REGISTRY = load_all()
_BUILDS = itertools.count(1)
LOANS = service_topic("loans")


@pytest.fixture(scope="module")
async def dbs(pg: PostgresHandle) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    log = await create_pool(await pg.create_database("pages_log"), 1, 2)
    rep = await create_pool(await pg.create_database("pages_reporting"), 1, 2)
    async with log.acquire() as conn:
        await migrate(conn, "eventstore", EVENTSTORE_MIGRATIONS)
    async with rep.acquire() as conn:
        await migrate(conn, "tracking", TRACKING_MIGRATIONS)
    yield log, rep
    await log.close()
    await rep.close()


async def _append(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
    for e in envelopes:
        await conn.execute(
            """INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                                   occurred_at, correlation_id, actor, payload)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version, e.type, e.schema_version,
            e.occurred_at, e.correlation_id, e.actor, e.payload)


def _book(rng: random.Random, financings: int, first: date, undecodable: bool) -> list[Envelope]:
    """The histories' every event (internal ones too), streams interleaved, perhaps one event whose payload
    does not decode (a published type)."""
    histories = [history(rng.choice(TENANTS), rng, first, 500) for _ in range(financings)]
    out = mix((h.envelopes for h in histories), rng)
    published = [i for i, e in enumerate(out) if REGISTRY.topic_of(e.type) and e.type != "loans.ContractSigned"]
    if undecodable and published:
        i = rng.choice(published)
        out[i] = out[i].model_copy(update={"payload": {**out[i].payload, "financing_id": "not a uuid"}})
    return out


async def _state(conn: asyncpg.Connection, b: Build) -> tuple[Any, ...]:
    streams = await conn.fetch("""SELECT tenant_id, stream_type, stream_id, version FROM consumer_streams
                                  WHERE consumer = $1 ORDER BY 1, 2, 3""", b.name)
    tenants = await conn.fetch("SELECT tenant_id, changes FROM consumer_tenants WHERE consumer = $1 ORDER BY 1",
                               b.name)
    dead = await conn.fetch("""SELECT event_id, event_type, error FROM dead_letters WHERE consumer = $1
                               ORDER BY event_id""", b.name)
    return (await b.row_hash(conn), [tuple(r) for r in streams], [tuple(r) for r in tenants],
            [tuple(r) for r in dead])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), financings=st.integers(1, 6), page=st.integers(5, 80),
       first=st.dates(date(2023, 1, 1), date(2025, 1, 1)), undecodable=st.booleans(),
       family=st.sampled_from(["financing", "catalogue"]))
async def test_a_log_applied_in_pages_writes_what_apply_events_writes(
        dbs: tuple[asyncpg.Pool, asyncpg.Pool], rng: random.Random, financings: int, page: int, first: date,
        undecodable: bool, family: str) -> None:
    log, rep = dbs
    n = next(_BUILDS)
    ref = Build(FAMILIES[family], f"pages.ref.{n}", f"v9_r{n}")
    new = Build(FAMILIES[family], f"pages.new.{n}", f"v8_r{n}")
    async with rep.acquire() as conn:
        for b in (ref, new):
            await migrate(conn, f"projection:{b.name}", list(b.migrations))
    async with log.acquire() as conn:
        await conn.execute("TRUNCATE events")
        book = _book(rng, financings, first, undecodable)
        await _append(conn, book)
    reader = PostgresLogReader(log)
    projected = event_types_of(new)
    at_ref = at_new = LogPosition()
    outcomes: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = []
    while True:
        # the path as it was: EventLogSource.step (read_log, the topics' events, apply_events)
        rows = await reader.read_log(at_ref, page)
        p = await read_page(reader, at_new, page, "loans", new, REGISTRY, projected)
        assert p.covered == len(rows)
        if not rows:
            break
        envs = [r.envelope for r in rows if REGISTRY.topic_of(r.envelope.type) == LOANS]
        assert [e.event_id for e in p.envelopes] == [e.event_id for e in envs]
        async with rep.acquire() as conn, conn.transaction():
            o1, d1 = await apply_events(conn, ref, REGISTRY, envs, source="loans")
            await record_dead_letters(conn, ref.name, d1)
        async with rep.acquire() as conn, conn.transaction():
            o2, d2 = await apply_page(conn, new, REGISTRY, p, source="loans")
            await record_dead_letters(conn, new.name, d2)
        outcomes.append(((o1.applied, o1.skipped, o1.dead), (o2.applied, o2.skipped, o2.dead)))
        at_ref, at_new = rows[-1].log_position, p.last  # type: ignore[assignment]
        assert at_new == at_ref
    for was, got in outcomes:
        assert got == was
    async with rep.acquire() as conn:
        a, b = await _state(conn, ref), await _state(conn, new)
    assert a[0] == b[0], "the build's rows differ"
    assert a[1] == b[1] and a[2] == b[2], "the consumer's stream versions or change counts differ"
    if family == "financing":
        assert a[3] == b[3], "the dead letters differ"
    else:  # an event the catalogue does not project is passed by undecoded: no dead letter for it
        assert b[3] == [d for d in a[3] if d[1] in projected]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), financings=st.integers(1, 6))
async def test_one_decode_from_the_text_gives_the_registrys_contract_and_envelope(
        dbs: tuple[asyncpg.Pool, asyncpg.Pool], rng: random.Random, financings: int) -> None:
    log, _ = dbs
    async with log.acquire() as conn:
        await conn.execute("TRUNCATE events")
        await _append(conn, _book(rng, financings, date(2024, 1, 1), undecodable=False))
    rows = await PostgresLogReader(log).read_log_rows(LogPosition(), 100_000)
    assert rows
    for r in rows:
        payload = orjson.loads(r["payload_json"])
        old = _envelope_from_row(r, payload)
        assert bare_envelope(r, payload) == old
        assert bare_envelope(r) == old.model_copy(update={"payload": {}})
        if REGISTRY.topic_of(r["type"]) is None:
            continue
        assert decode_json(REGISTRY, r["type"], r["schema_version"], r["payload_json"]) == REGISTRY.decode(old)
