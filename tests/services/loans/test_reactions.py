"""The loans service's consumers, driven with real events on real PostgreSQL (the Kafka path is in
test_tranche_saga_kafka.py): members learned from the members service, tranches released by inspections."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.loans.reactions import MemberDirectory, TrancheRelease
from shared.consumer import PoisonEvent, apply_events
from shared.contracts import Contract, load_all
from shared.contracts.members import MemberExited
from shared.contracts.sanitation import InspectionItem, InspectionRecorded
from shared.envelope import Envelope
from tests.events import sanitation
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers
from tests.services.loans.support import MANAGER, OFFICER, Walk, define_product, events, known_member

REGISTRY = load_all()


def envelope(event: Contract, tenant: str = BMI, stream_id: str | None = None, version: int = 1) -> Envelope:
    now = datetime.now(UTC)
    return Envelope(event_id=uuid.uuid4(), tenant_id=tenant, stream_type="job", stream_id=stream_id or str(uuid.uuid4()),
                    version=version, type=event.event_type, schema_version=1, occurred_at=now, recorded_at=now,
                    correlation_id=uuid.uuid4(), payload=event.model_dump(mode="json"))


def inspection(w: Walk, passed: bool = True, number: int = 1, job: str | None = None) -> InspectionRecorded:
    return InspectionRecorded(
        job_id=uuid.UUID(job or w.body["tranches"][0]["job_id"]), member_id=uuid.UUID(w.member_id),
        financing_id=uuid.UUID(w.id), inspection_number=number, passed=passed,
        items=[InspectionItem(code="leak_test_12h", passed=passed)], inspected_on=date(2025, 2, 3))


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
    await handle(loans, envelope(inspection(w, passed=False)))
    await handle(loans, envelope(inspection(w, job=str(uuid.uuid4()))))
    cash = inspection(w).model_copy(update={"financing_id": None})
    await handle(loans, envelope(cash))
    assert [e.payload["tranche_number"] for e in await events(loans) if e.type == "loans.TrancheDisbursed"] == [1]


async def test_an_unknown_financing_is_a_dead_letter_not_a_release(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    stray = inspection(w).model_copy(update={"financing_id": uuid.uuid4()})
    with pytest.raises(PoisonEvent, match="unknown in kopsyah-bmi"):
        await handle(loans, envelope(stray))
    # through the consumer machinery it becomes a dead letter and the next event still applies
    assert loans.runtime.pool is not None
    good = envelope(inspection(w))
    async with loans.runtime.pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, release(loans), REGISTRY, [envelope(stray), good])
    assert (outcome.applied, outcome.dead) == (1, 1) and "PoisonEvent" in dead[0].error
    assert [e.payload["tranche_number"] for e in await events(loans) if e.type == "loans.TrancheDisbursed"] == [1, 2]


async def test_an_inspection_in_another_cooperative_does_not_touch_this_one(loans: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    with pytest.raises(PoisonEvent):
        await handle(loans, envelope(inspection(w), tenant="koperasi-baik"))
    assert len([e for e in await events(loans) if e.type == "loans.TrancheDisbursed"]) == 1


async def test_member_directory_learns_exits(loans: ServiceClient) -> None:
    await define_product(loans)
    member_id = await known_member(loans)
    exited = MemberExited(member_id=uuid.UUID(member_id), exited_on=date(2025, 1, 1), reason="moved_away")
    assert loans.runtime.pool is not None
    async with loans.runtime.pool.acquire() as conn:
        await MemberDirectory().handle(conn, envelope(exited, stream_id=member_id, version=2), exited)
    r = await loans.post("/financings", headers=headers(BMI, OFFICER), json={
        "member_id": member_id, "product_id": "mikro-tata-sanitasi", "amount": 2_000_000, "instalments": 12,
        "applied_on": "2025-01-06"})
    assert r.status_code == 422 and "left the cooperative on 2025-01-01" in r.json()["reason"]
    assert (await loans.get("/financings", headers=headers(BMI, MANAGER))).json()["total"] == 0
