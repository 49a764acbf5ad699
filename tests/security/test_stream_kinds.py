"""A record of one kind cannot hold the stream of a record of another kind (issue 14, item 5), attacked through
the public APIs of the four services in-process on real PostgreSQL (the reporting tests' system: fresh
databases, the embedded wiring).

A financed job's id is predictable: uuid5(financing id, "job"), and the financing id is in the answer to the
application. A field officer who registers a contractor under that id before the first tranche is paid used
to hold the job's stream: the job could not be ordered under the id the loans service named (nor, after the
sanitation reaction's fallback, inspected under it), and tranche 2 waited forever. Stream identity is now
(cooperative, kind, id): the job is ordered under its own id, its passed inspection releases tranche 2, and the
contractor stays as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.local.infra import PostgresHandle
from shared.contracts import load_all
from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.reporting.conftest import System, start_system
from tests.services.reporting.scenario import BMI, TANK, Coop, job_of, key

REGISTRY = load_all()


@pytest.fixture
async def four(pg: PostgresHandle, platform_url: str) -> AsyncIterator[System]:
    async with start_system(pg, platform_url) as s:
        yield s


async def test_a_contractor_under_a_financed_jobs_id_cannot_block_the_job_or_tranche_2(four: System) -> None:
    c = Coop(BMI, four.members, four.loans, four.sanitation)
    await c.member("m1", "female", "2022-01-10", 5, "rural", True)
    await c.product("kinds-tank", "septic_tank", 10, [50, 50], ["own_funds"])
    await c.contractor("K1", certified=True)
    financing = await c.apply("F1", "m1", "kinds-tank", TANK, 10, "2025-01-02")
    job_id = job_of(financing)

    # the squat: a contractor registered under the job's id, through the API, by a field officer
    officer = {"X-API-Key": key(BMI, Role.FIELD_OFFICER)}
    r = await four.sanitation.post("/contractors", headers=officer, json={
        "contractor_id": job_id, "name": "CV Squat", "contact": "021 000", "trained_on": "2020-06-01"})
    assert r.status_code == 201, r.text
    assert r.json()["contractor_id"] == job_id
    # certified: its second event is published, so every consumer of sanitation sees version 2 of this id
    r = await four.sanitation.post(f"/contractors/{job_id}/certification", headers=officer, json={
        "certificate_number": "SNI-SQUAT", "certified_on": "2020-07-01", "valid_until": "2030-12-31"})
    assert r.status_code == 200, r.text

    await c.approve("F1", "2025-01-03")
    await c.sign("F1", ("contractor", "K1"), TANK, "2025-01-04", "2025-01-05", "2025-02-15")
    await c.disburse("F1", "2025-01-06", "own_funds")
    assert (await c.financing("F1"))["tranches"][0]["job_id"] == job_id  # the job loans paid for

    # the job is ordered under the id loans named ...
    assert await c.financed_job("J1", "F1") == job_id
    job = (await four.sanitation.get(f"/jobs/{job_id}", headers=officer)).json()
    assert (job["job_id"], job["financing_id"], job["status"]) == (job_id, financing, "ordered")
    # ... its passed inspection releases tranche 2 ...
    await c.build("J1", "septic_tank", "K1", "2025-01-07", "2025-01-10", [("2025-01-20", True)], "2025-01-25")
    await c.tranche_released("F1", 2)
    # ... and the contractor is untouched: its own record, its own history
    held = (await four.sanitation.get(f"/contractors/{job_id}", headers=officer)).json()
    assert (held["contractor_id"], held["name"], held["active"]) == (job_id, "CV Squat", True)
    kinds = [(r["stream_type"], r["type"]) for r in await four.sanitation.runtime.pool.fetch(  # type: ignore[union-attr]
        "SELECT stream_type, type FROM events WHERE tenant_id = $1 AND stream_id = $2 ORDER BY position", BMI, job_id)]
    of_contractor = [t for k, t in kinds if k == "contractor"]
    of_job = [t for k, t in kinds if k == "job"]
    assert of_contractor == ["sanitation.ContractorRegistered", "sanitation.ContractorCertified"]
    assert of_job[0] == "sanitation.JobOrdered" and "sanitation.InspectionRecorded" in of_job
    assert len(of_contractor) + len(of_job) == len(kinds)

    # the consumers of sanitation's events applied the job's from its version 1 on: none was taken for the
    # contractor's version 2 of the same id, already applied
    published = [(k, v) for k, v, t in [(r["stream_type"], r["version"], r["type"]) for r in
                 await four.sanitation.runtime.pool.fetch(  # type: ignore[union-attr]
                     "SELECT stream_type, version, type FROM events WHERE tenant_id = $1 AND stream_id = $2", BMI, job_id)]
                 if REGISTRY.topic_of(t) is not None]
    last = {k: max(v for kk, v in published if kk == k) for k in ("contractor", "job")}

    async def applied() -> dict[str, int]:
        rows = await four.reporting.runtime.pool.fetch(  # type: ignore[union-attr]
            "SELECT stream_type, version FROM consumer_streams WHERE consumer = 'reporting.sanitation.v1' "
            "AND tenant_id = $1 AND stream_id = $2", BMI, job_id)
        return {r["stream_type"]: r["version"] for r in rows}

    async def caught_up() -> bool:
        return await applied() == last

    await eventually(caught_up, timeout=30)
