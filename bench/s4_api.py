"""S4: API figures. The members service's HTTP API, in process (httpx over ASGI, no network), with 16
concurrent clients: registering a member (``POST /members``) and reading one (``GET /members/{id}``).

Baseline, same run, same transport and concurrency: a bare FastAPI app whose POST does one INSERT of the
JSON body and whose GET does one SELECT by primary key, on its own asyncpg pool: the least an API write
or read can cost on this machine. What washfin does on top, per request: the key looked up in the
platform database, the body validated, the member's stream folded or checked, the event appended with its
read tables and personal data in one transaction, all behind the row-level-security scope of the key's
cooperative (``TenantPool``). Its pools are sized for the 16 clients: requests (``db_pool_max``) and
the key look-ups in the platform database (``platform_pool_max``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.common import Bench, Row, Timed, run_async_writers
from deploy.local.demo import key_for, prepare_demo_platform
from shared.db import create_pool
from shared.tenancy import Role

TENANT = "kopsyah-bmi"
CLIENTS = 16
seq = count(1)


def nik(n: int, female: bool) -> str:
    """A well-formed NIK, unique per ``n``: region, birth date DDMMYY (women: day + 40), serial."""
    k = n // 10_000
    day, month, year = 1 + k % 28, 1 + (k // 28) % 12, 80 + (k // 336) % 20
    return f"360312{day + (40 if female else 0):02d}{month:02d}{year:02d}{n % 10_000:04d}"


def member_body(n: int) -> dict[str, Any]:
    return {"member_number": f"S4-{n:07d}", "name": f"Anggota {n}", "sex": "female" if n % 5 else "male",
            "joined_on": "2023-01-15", "household_size": 3 + n % 4, "village": "Pasir Jaya", "district": "Cikupa",
            "area": "rural" if n % 3 else "urban", "phone": f"0812{n:08d}", "nik": nik(n, bool(n % 5)), "b40": n % 2 == 0,
            "programme_consent": True}


@contextlib.asynccontextmanager
async def _washfin(bench: Bench) -> AsyncIterator[httpx.AsyncClient]:
    from services.members.app import create_app
    from services.members.settings import MembersSettings

    platform = await bench.fresh_db("bench_s4_platform")
    await prepare_demo_platform(platform)
    settings = MembersSettings(database_url=await bench.fresh_db("bench_s4_members"), platform_database_url=platform,
                               kafka_bootstrap_servers=None, event_source="none", log_level="WARNING",
                               db_pool_max=CLIENTS + 2, platform_pool_max=CLIENTS)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                     headers={"X-API-Key": key_for(TENANT, Role.FIELD_OFFICER)}) as client:
            yield client


@contextlib.asynccontextmanager
async def _bare(bench: Bench) -> AsyncIterator[httpx.AsyncClient]:
    url = await bench.fresh_db("bench_s4_bare")
    pool = await create_pool(url, CLIENTS, CLIENTS)
    await pool.execute("CREATE TABLE members (member_id uuid PRIMARY KEY, tenant_id text NOT NULL, body jsonb NOT NULL)")
    app = FastAPI()

    @app.post("/members", status_code=201)
    async def register(request: Request) -> JSONResponse:
        member_id = uuid.uuid4()
        await pool.execute("INSERT INTO members VALUES ($1, $2, $3)", member_id, TENANT, await request.json())
        return JSONResponse({"member_id": str(member_id)}, status_code=201)

    @app.get("/members/{member_id}")
    async def read(member_id: uuid.UUID) -> JSONResponse:
        row = await pool.fetchrow("SELECT member_id, body FROM members WHERE member_id = $1", member_id)
        return JSONResponse({"member_id": str(row["member_id"]), **row["body"]})

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            yield client
    finally:
        await pool.close()


async def _measure(bench: Bench, client: httpx.AsyncClient, name: str) -> tuple[Timed, Timed]:
    sz = bench.sizes
    ids: list[str] = []

    async def write() -> int:
        r = await client.post("/members", json=member_body(next(seq)))
        if r.status_code != 201:
            raise RuntimeError(f"{name}: POST /members answered {r.status_code}: {r.text[:200]}")
        ids.append(r.json()["member_id"])
        return 1

    writes = await run_async_writers([write] * CLIENTS, sz.s1_warmup, sz.s1_seconds)
    reads_of = count()

    async def read() -> int:
        member_id = ids[next(reads_of) % len(ids)]
        r = await client.get(f"/members/{member_id}")
        if r.status_code != 200:
            raise RuntimeError(f"{name}: GET /members/{{id}} answered {r.status_code}: {r.text[:200]}")
        return 1

    reads = await run_async_writers([read] * CLIENTS, sz.s1_warmup, sz.s1_seconds)
    lat = lambda t: f"p50 {t.pct_ms(50):.1f} ms, p99 {t.pct_ms(99):.1f} ms"  # noqa: E731
    bench.note("S4", f"{name}: POST {writes.rate:,.0f}/s ({lat(writes)}); GET {reads.rate:,.0f}/s ({lat(reads)})")
    return writes, reads


async def run(bench: Bench) -> list[Row]:
    async with _washfin(bench) as client:
        w_writes, w_reads = await _measure(bench, client, "washfin members API")
    async with _bare(bench) as client:
        b_writes, b_reads = await _measure(bench, client, "bare FastAPI + asyncpg")
    rs = "requests/s"
    return [
        Row("S4", f"POST /members (register), {CLIENTS} clients", w_writes.rate, rs,
            "bare FastAPI, 1 INSERT per request (ceiling)", b_writes.rate),
        Row("S4", "POST /members, p99 latency", w_writes.pct_ms(99), "ms", "bare FastAPI INSERT p99",
            b_writes.pct_ms(99)),
        Row("S4", f"GET /members/{{id}}, {CLIENTS} clients", w_reads.rate, rs,
            "bare FastAPI, 1 SELECT per request (ceiling)", b_reads.rate),
        Row("S4", "GET /members/{id}, p99 latency", w_reads.pct_ms(99), "ms", "bare FastAPI SELECT p99",
            b_reads.pct_ms(99)),
    ]
