"""The loans service's consumers, driven with the producers' own events (``tests.events``: the members and
sanitation domain code, real stream versions) on real PostgreSQL (the Kafka path is in
test_tranche_saga_kafka.py): members learned from the members service, tranches released by inspections."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.loans.reactions import MemberDirectory, TrancheRelease
from shared.consumer import PoisonEvent, apply_events
from shared.contracts import load_all
from shared.envelope import Envelope
from tests.events import members, sanitation
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers
from tests.services.loans.support import MANAGER, OFFICER, Walk, define_product, events, known_member

REGISTRY = load_all()


def release(loans: ServiceClient) -> TrancheRelease:
    return next(p for p in loans.runtime.projections if isinstance(p, TrancheRelease))  # type: ignore[misc]


async def handle(loans: ServiceClient, env: Envelope) -> None:
    assert loans.runtime.pool is not None
    async with loans.runtime.pool.acquire() as conn, conn.transaction():
        await release(loans).handle(conn, env, REGISTRY.decode(env))


async def test_a_passed_inspection_releases_tranche_two_once(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    # the job the first tranche ordered, as the sanitation service's domain code takes it through a failed
    # inspection, a rework and a pass (tests.events: real stream versions)
    job = await sanitation().started(BMI, w.member_id, w.id, job_id=w.body["tranches"][0]["job_id"])
    failed = await sanitation().inspected(BMI, job, passed=False, on=date(2025, 1, 20))
    passed = await sanitation().inspected(BMI, job, passed=True)
    assert (failed.payload["inspection_number"], passed.payload["inspection_number"]) == (1, 2)
    assert passed.version > failed.version and passed.stream_type == "job"
    await handle(loans, failed)
    await handle(loans, passed)
    await handle(loans, passed)  # delivered again
    released = [e for e in await events(loans) if e.type == "loans.TrancheDisbursed"]
    assert [e.payload["tranche_number"] for e in released] == [1, 2]
    second = released[1]
    assert second.payload["amount"] == 3_000_000 and second.payload["job_id"] == w.body["tranches"][0]["job_id"]
    assert second.payload["source_of_funds"] == "donor_working_capital" and second.payload["disbursed_on"] == "2025-02-03"
    assert second.causation_id == passed.event_id and second.correlation_id == passed.correlation_id
    assert second.actor == "reaction:loans.tranche-release.v1"
    body = (await loans.get(f"/financings/{w.id}", headers=headers(BMI, OFFICER))).json()
    assert body["disbursed"] == 6_000_000 and body["tranches"][1]["waiting_for"] is None
    listed = (await loans.get("/financings?status=active", headers=headers(BMI, OFFICER))).json()
    assert listed["items"][0]["version"] == body["version"]


async def test_failed_or_foreign_inspections_release_nothing(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    tranche_job = w.body["tranches"][0]["job_id"]
    job = await sanitation().started(BMI, w.member_id, w.id, job_id=tranche_job)
    await handle(loans, await sanitation().inspected(BMI, job, passed=False))
    other_job = await sanitation().started(BMI, w.member_id, w.id)  # not the job the tranche ordered
    await handle(loans, await sanitation().inspected(BMI, other_job))
    cash_job = await sanitation().started(BMI, w.member_id, None)  # paid in cash: no financing
    await handle(loans, await sanitation().inspected(BMI, cash_job))
    assert [e.payload["tranche_number"] for e in await events(loans) if e.type == "loans.TrancheDisbursed"] == [1]


async def test_an_unknown_financing_is_a_dead_letter_not_a_release(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    stray_job = await sanitation().started(BMI, w.member_id, uuid.uuid4())  # a financing loans never had
    stray = await sanitation().inspected(BMI, stray_job)
    with pytest.raises(PoisonEvent, match="unknown in kopsyah-bmi"):
        await handle(loans, stray)
    # through the consumer machinery it becomes a dead letter and the next event still applies
    job = await sanitation().started(BMI, w.member_id, w.id, job_id=w.body["tranches"][0]["job_id"])
    good = await sanitation().inspected(BMI, job)
    async with loans.runtime.pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, release(loans), REGISTRY, [stray, good])
    assert (outcome.applied, outcome.dead) == (1, 1) and "PoisonEvent" in dead[0].error
    assert [e.payload["tranche_number"] for e in await events(loans) if e.type == "loans.TrancheDisbursed"] == [1, 2]


async def test_an_inspection_in_another_cooperative_does_not_touch_this_one(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    # the same job and financing ids, recorded in another cooperative's sanitation books
    job = await sanitation().started("koperasi-baik", w.member_id, w.id, job_id=w.body["tranches"][0]["job_id"])
    with pytest.raises(PoisonEvent):
        await handle(loans, await sanitation().inspected("koperasi-baik", job))
    assert len([e for e in await events(loans) if e.type == "loans.TrancheDisbursed"]) == 1


async def test_member_directory_learns_exits(loans: ServiceClient) -> None:
    await define_product(loans)
    member_id = await known_member(loans)
    exited = await members().exited(BMI, member_id, date(2025, 1, 1))  # the member's stream, version 2
    async with loans.runtime.pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, MemberDirectory(), REGISTRY, [exited])
    assert dead == [] and outcome.applied == 1 and exited.version == 2
    r = await loans.post("/financings", headers=headers(BMI, OFFICER), json={
        "member_id": member_id, "product_id": "mikro-tata-sanitasi", "amount": 2_000_000, "instalments": 12,
        "applied_on": "2025-01-06"})
    assert r.status_code == 422 and "left the cooperative on 2025-01-01" in r.json()["reason"]
    assert (await loans.get("/financings", headers=headers(BMI, MANAGER))).json()["total"] == 0
