"""The reaction to loans.TrancheDisbursed, driven the way a consumer drives it (``apply_events`` in the
consumer's transaction): the first tranche of a construction financing orders the job exactly once,
whatever is delivered again; other tranches and purposes order nothing."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from services.loans.domain.product import CONSTRUCTION_PURPOSES
from services.sanitation.reactions import TrancheOrdersJob
from shared.consumer import apply_events
from shared.contracts import load_all
from shared.envelope import Envelope
from tests.events import loans
from tests.helpers import ServiceClient
from tests.services.sanitation.helpers import (
    BAIK,
    BMI,
    CONTRACTOR,
    INSPECTOR,
    KEYED_CONTRACTOR,
    contractor,
    events,
    findings,
    headers,
    job_at,
    ok,
)

REGISTRY = load_all()
MEMBER = uuid.UUID("5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85")


TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def tranche(tenant: str = BMI, *, number: int = 1, purpose: str = "septic_tank",
                  financing_id: uuid.UUID | None = None, member_id: uuid.UUID = MEMBER,
                  payee_type: str = "contractor", payee_id: str = "contractor-cv-tirta") -> Envelope:
    """A tranche as the loans service decides it (``tests.events.LoansProducer``): a financing of
    Rp 6,000,000 for ``purpose`` signed on 2 April 2025 with its work order's payee, the first tranche paid
    on 3 April (for a construction, to the job the loans service derives from the financing), the second
    released by a passed inspection on 2 May. The TrancheDisbursed envelope of tranche ``number``."""
    producer = loans()
    producer.traceparent = TRACE
    terms: dict[str, Any] = {} if purpose in CONSTRUCTION_PURPOSES else {"tranche_percents": [100]}
    signed = await producer.signed(tenant, member_id, financing_id=financing_id, purpose=purpose,
                                   payee_type=payee_type, payee_id=payee_id, **terms)
    disbursed = await producer.disbursed(tenant, signed.stream_id, date(2025, 4, 3))
    return disbursed if number == 1 else await producer.released(tenant, signed.stream_id, date(2025, 5, 2))


def republished(envelope: Envelope) -> Envelope:
    """The same disbursement published again as a new event: a new id at a later version of its stream."""
    return envelope.model_copy(update={"event_id": uuid.uuid4(), "version": envelope.version + 4})


def reaction(client: ServiceClient) -> TrancheOrdersJob:
    found = [p for p in client.runtime.projections if isinstance(p, TrancheOrdersJob)]
    assert len(found) == 1
    return found[0]


async def deliver(client: ServiceClient, *envelopes: Envelope) -> Any:
    """As the consumer does: the batch in one transaction, skipping stream versions applied before."""
    pool = client.runtime.pool
    assert pool is not None
    async with pool.acquire() as conn, conn.transaction():
        outcome, dead = await apply_events(conn, reaction(client), REGISTRY, list(envelopes))
    assert dead == []
    return outcome


async def ordered(client: ServiceClient) -> list[Envelope]:
    return [e for e in await events(client) if e.type == "sanitation.JobOrdered"]


async def test_first_tranche_orders_the_job_it_names(sanitation: ServiceClient) -> None:
    cause = await tranche()
    job_id = cause.payload["job_id"]
    await deliver(sanitation, cause)
    [e] = await ordered(sanitation)
    assert (e.tenant_id, e.stream_type, e.stream_id, e.version) == (BMI, "job", str(job_id), 1)
    assert e.payload == {"job_id": job_id, "member_id": str(MEMBER), "kind": "septic_tank",
                         "financing_id": cause.payload["financing_id"], "ordered_on": "2025-04-03"}
    # caused by the tranche, in its correlation and trace
    assert e.causation_id == cause.event_id and e.correlation_id == cause.correlation_id
    assert e.actor == "reaction:sanitation.tranche-orders-job.v1"
    assert e.traceparent and e.traceparent.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    assert (job["status"], job["financing_id"], job["village"]) == ("ordered", cause.payload["financing_id"], None)
    assert ok(await sanitation.get("/jobs", headers=headers(BMI)))["total"] == 1
    assert (await sanitation.get(f"/jobs/{job_id}", headers=headers(BAIK))).status_code == 404


async def test_the_same_event_twice_orders_once(sanitation: ServiceClient) -> None:
    cause = await tranche()
    first = await deliver(sanitation, cause)
    again = await deliver(sanitation, cause)                 # redelivered: the consumer's progress skips it
    assert (first.applied, again.skipped) == (1, 1)
    await reaction(sanitation).handle(None, cause, REGISTRY.decode(cause))  # type: ignore[arg-type]
    # ... and even without that progress (a crash between the append and the checkpoint), the
    # reaction's idempotency key appends nothing twice
    assert len(await ordered(sanitation)) == 1


async def test_two_events_about_the_same_job_order_it_once(sanitation: ServiceClient) -> None:
    cause = await tranche()
    await deliver(sanitation, cause)
    # loans re-published the disbursement as a new event (new id, later version)
    await deliver(sanitation, republished(cause))
    assert len(await ordered(sanitation)) == 1


async def test_without_a_job_id_the_job_is_derived_from_the_financing(sanitation: ServiceClient) -> None:
    # as the loans service recorded tranches before its events named the job (older events in its log)
    financing = uuid.uuid4()
    older = [e.model_copy(update={"payload": {k: v for k, v in e.payload.items() if k != "job_id"}})
             for e in (await tranche(financing_id=financing, purpose="water_connection"),
                       await tranche(BAIK, financing_id=financing, purpose="toilet_upgrade"))]
    assert all("job_id" not in e.payload for e in older)
    await deliver(sanitation, *older)
    expected = str(uuid.uuid5(financing, "job"))
    jobs = {(e.tenant_id, e.stream_id, e.payload["kind"]) for e in await ordered(sanitation)}
    assert jobs == {(BMI, expected, "water_connection"), (BAIK, expected, "toilet_upgrade")}  # one per cooperative


async def test_later_tranches_and_desludging_fees_order_nothing(sanitation: ServiceClient) -> None:
    second, fee = await tranche(number=2), await tranche(purpose="desludging")
    assert (second.payload["tranche_number"], fee.payload["job_id"]) == (2, None)
    outcome = await deliver(sanitation, second, fee)
    assert outcome.applied == 2 and await ordered(sanitation) == []


async def test_a_financed_jobs_inspection_names_its_financing(sanitation: ServiceClient) -> None:
    cause = await tranche()
    job_id = cause.payload["job_id"]
    await deliver(sanitation, cause)
    ok(await sanitation.put(f"/jobs/{job_id}/village", json={"village": "Pasir Jaya"}, headers=headers(BMI)))
    cid = await contractor(sanitation)
    h = headers(BMI)
    ok(await sanitation.post(f"/jobs/{job_id}/assignment", json={"contractor_id": cid, "assigned_on": "2025-04-05"}, headers=h))
    ok(await sanitation.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=h))
    ok(await sanitation.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR),
                             json={"inspected_on": "2025-04-20", "septic_tank": findings()}))
    [inspection] = [e for e in await events(sanitation) if e.type == "sanitation.InspectionRecorded"]
    assert inspection.payload["financing_id"] == cause.payload["financing_id"] and inspection.payload["passed"] is True
    # a cash job's inspection names none
    cash = await job_at(sanitation, "inspection_passed")
    cash_inspections = [e for e in await events(sanitation)
                        if e.type == "sanitation.InspectionRecorded" and e.stream_id == cash]
    assert {e.payload["financing_id"] for e in cash_inspections} == {None}



# -- the work order's contractor --------------------------------------------------------------------------


async def test_the_work_orders_certified_contractor_is_assigned_with_the_order(sanitation: ServiceClient) -> None:
    keyed = await contractor(sanitation, contractor_id=KEYED_CONTRACTOR[BMI])
    cause = await tranche(payee_id=keyed)
    job_id = cause.payload["job_id"]
    await deliver(sanitation, cause)
    job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
    assert (job["status"], job["contractor_id"], job["assigned_on"], job["assignment_problem"]) == (
        "assigned", keyed, "2025-04-03", None)
    [assigned] = [e for e in await events(sanitation) if e.type == "sanitation.ContractorAssigned"]
    assert assigned.stream_id == job_id and assigned.version == 2 and assigned.causation_id == cause.event_id
    # the contractor's own key finds it at once, and starts the work; another cooperative's key sees nothing
    mine = ok(await sanitation.get("/jobs", headers=headers(BMI, CONTRACTOR)))
    assert [j["job_id"] for j in mine["items"]] == [job_id]
    ok(await sanitation.post(f"/jobs/{job_id}/start", json={"started_on": "2025-04-07"}, headers=headers(BMI, CONTRACTOR)))
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK, CONTRACTOR)))["total"] == 0
    # delivered again, nothing more is appended
    before = len(await events(sanitation))
    await reaction(sanitation).handle(None, cause, REGISTRY.decode(cause))  # type: ignore[arg-type]
    assert len(await events(sanitation)) == before


async def test_a_work_order_contractor_who_may_not_take_the_job_leaves_it_unassigned_with_the_reason(
        sanitation: ServiceClient) -> None:
    uncertified = await contractor(sanitation, certified=False)
    lapsed = await contractor(sanitation, valid_until="2025-03-31")
    baik_contractor = await contractor(sanitation, BAIK, contractor_id=KEYED_CONTRACTOR[BAIK])
    cases = [(uncertified, "needs a certified contractor"), (lapsed, "expired on 2025-04-01"),
             ("CV Tirta", "not registered in this cooperative"),
             (baik_contractor, "not registered in this cooperative")]  # another cooperative's contractor
    for ref, reason in cases:
        cause = await tranche(payee_id=ref)
        job_id = cause.payload["job_id"]
        await deliver(sanitation, cause)
        job = ok(await sanitation.get(f"/jobs/{job_id}", headers=headers(BMI)))
        assert (job["status"], job["contractor_id"]) == ("ordered", None), ref
        assert reason in job["assignment_problem"] and ref in job["assignment_problem"], job["assignment_problem"]
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK, CONTRACTOR)))["total"] == 0
    assert ok(await sanitation.get("/jobs", headers=headers(BAIK)))["total"] == 0
    assert [e for e in await events(sanitation) if e.type == "sanitation.ContractorAssigned"] == []
    # an uncertified contractor may still connect water; a PDAM payee names no contractor at all
    by_contractor = await tranche(payee_id=uncertified, purpose="water_connection")
    by_pdam = await tranche(payee_type="pdam", payee_id="PDAM-TKR", purpose="water_connection")
    water, pdam = by_contractor.payload["job_id"], by_pdam.payload["job_id"]
    await deliver(sanitation, by_contractor, by_pdam)
    assert ok(await sanitation.get(f"/jobs/{water}", headers=headers(BMI)))["contractor_id"] == uncertified
    assert [ok(await sanitation.get(f"/jobs/{pdam}", headers=headers(BMI)))[k]
            for k in ("status", "assignment_problem")] == ["ordered", None]
    # an officer assigns a certified contractor by hand: the reason is gone
    cause = await tranche(payee_id=uncertified)
    job_id = cause.payload["job_id"]
    await deliver(sanitation, cause)
    certified = await contractor(sanitation)
    job = ok(await sanitation.post(f"/jobs/{job_id}/assignment", headers=headers(BMI),
                                   json={"contractor_id": certified, "assigned_on": "2025-04-05"}))
    assert (job["status"], job["contractor_id"], job["assignment_problem"]) == ("assigned", certified, None)


async def test_a_record_of_another_kind_holding_the_derived_job_id_cannot_block_the_job(
        sanitation: ServiceClient) -> None:
    """A job's id is derived from its financing: a contractor registered with that id beforehand used to hold
    the stream, so the order failed as "already ordered" (or, with the reaction's fallback, went to another id
    whose inspection loans refuses: "this financing paid for job ..."), and tranche 2 waited forever (issue 14,
    item 5). Stream ids are per kind of record: the job is ordered under the very id loans named."""
    financing = uuid.uuid4()
    squatter = str(uuid.uuid5(financing, "job"))
    await contractor(sanitation, contractor_id=squatter, certified=False)
    cause = await tranche(financing_id=financing)
    assert cause.payload["job_id"] == squatter  # the job the loans service names: the id the contractor holds
    await deliver(sanitation, cause)
    [e] = await ordered(sanitation)
    assert (e.payload["financing_id"], e.stream_type, e.stream_id) == (str(financing), "job", squatter)
    job = ok(await sanitation.get(f"/jobs/{squatter}", headers=headers(BMI)))
    assert (job["status"], job["financing_id"]) == ("ordered", str(financing))
    held = ok(await sanitation.get(f"/contractors/{squatter}", headers=headers(BMI)))
    assert (held["contractor_id"], held["active"]) == (squatter, True)  # the contractor is left as it was
    # delivered again without the consumer's progress, and re-published by loans as a new event: one job
    await reaction(sanitation).handle(None, cause, REGISTRY.decode(cause))  # type: ignore[arg-type]
    await deliver(sanitation, republished(cause))
    assert len(await ordered(sanitation)) == 1


async def test_a_job_ordered_under_another_id_before_is_not_ordered_again(sanitation: ServiceClient) -> None:
    """Before stream ids were per kind, a squatted job was ordered under an id derived from its cause's event:
    a re-publication of its financing's tranche (which names the derived id, free now) orders no second job."""
    financing = uuid.uuid4()
    cause = await tranche(financing_id=financing)
    earlier = str(uuid.uuid5(cause.event_id, "job"))  # where the fallback put it
    await deliver(sanitation, cause.model_copy(update={"payload": {**cause.payload, "job_id": earlier}}))
    [e] = await ordered(sanitation)
    assert (e.stream_id, e.payload["financing_id"]) == (earlier, str(financing))
    await deliver(sanitation, republished(cause))
    assert [x.stream_id for x in await ordered(sanitation)] == [earlier]
