"""Every reacting service driven through its real consumer machinery, by events the producing service's
own code appended: the four services in-process on real PostgreSQL, wired the embedded way (each
service's consumers tail the other services' event logs with ``EventLogSource``, as ``make run`` does),
one financed septic tank walked through the public APIs. No handler is called directly and no envelope
is built by hand: each reaction is checked against the producer's own event (its id as the cause, its
stream version in the consumer's bookkeeping).

loans <- members (member directory), sanitation <- loans (a disbursed tranche orders the job),
loans <- sanitation (a passed inspection releases tranche 2), members <- loans (loan standing) and
members <- sanitation (the handover makes the household's sanitation basic; the contractor's jobs),
loans <- members (member numbers), sanitation <- members (member directory), reporting <- all three."""

from __future__ import annotations

import uuid
from typing import Any

from deploy.local.infra import PostgresHandle
from shared.contracts import load_all
from shared.tenancy import Role
from tests.events import produced
from tests.helpers import ServiceClient, eventually
from tests.services.reporting.conftest import start_system
from tests.services.reporting.scenario import BMI, TANK, Coop, job_of, key

REGISTRY = load_all()


async def seen_by(client: ServiceClient, tenant: str, stream_id: str) -> dict[str, int]:
    """Per consumer of ``client``'s service: the version of ``stream_id`` its consumer has applied."""
    rows = await client.runtime.worker_pool.fetch(
        "SELECT consumer, version FROM consumer_streams WHERE tenant_id = $1 AND stream_id = $2", tenant, stream_id)
    return {r["consumer"]: r["version"] for r in rows}


async def latest_published(client: ServiceClient, stream_id: str) -> int:
    """The version of the newest event of ``stream_id`` the producing service publishes (its consumers
    are offered those only: internal events stay home)."""
    from shared.envelope import LogPosition

    return max(r.envelope.version for r in await client.runtime.store.read_log(LogPosition(), 100_000)
               if r.envelope.stream_id == stream_id and REGISTRY.topic_of(r.envelope.type) is not None)


async def reaches(consumer_side: ServiceClient, consumer: str | None, producer: ServiceClient, stream_id: str) -> None:
    """``consumer`` of ``consumer_side`` (every one of its consumers of the stream, when None) has applied
    ``stream_id`` up to the newest version ``producer`` published of it."""
    async def done() -> dict[str, int] | None:
        latest = await latest_published(producer, stream_id)
        seen = await seen_by(consumer_side, BMI, stream_id)
        if consumer is not None:
            seen = {k: v for k, v in seen.items() if k == consumer}
        return seen if seen and all(v == latest for v in seen.values()) else None

    await eventually(done, timeout=60)


async def one(client: ServiceClient, event_type: str, **payload: Any) -> Any:
    """The single ``event_type`` event ``client``'s service appended with ``payload``, once it is there."""
    async def found() -> Any:
        got = await produced(client, event_type, **payload)
        assert len(got) <= 1, got
        return got[0] if got else None

    return await eventually(found, timeout=60)


async def test_each_reaction_runs_through_its_consumer_on_the_producers_own_events(
        pg: PostgresHandle, platform_url: str) -> None:
    async with start_system(pg, platform_url) as system:
        c = Coop(BMI, system.members, system.loans, system.sanitation)

        # loans <- members: the member registered by the members service reaches the loans service's
        # member directory, at the version the members store gave it
        member = await c.member("m1", "female", "2022-01-10", 5, "rural", True)
        registered = await one(system.members, "members.MemberRegistered", member_id=member)
        assert registered.stream_id == member
        await c.product("tank", "septic_tank", 10, [50, 50], ["own_funds", "water_org"])
        await c.contractor("K1", certified=True)
        await c.apply("F1", "m1", "tank", TANK, 10, "2025-01-02")  # accepted once loans knows the member
        await reaches(system.loans, "loans.members.v1", system.members, member)
        assert (await seen_by(system.loans, BMI, member))["loans.members.v1"] >= registered.version
        # ... and its member numbers (a consumer of its own, filled from the start of the members log)
        await reaches(system.loans, "loans.member-numbers.v1", system.members, member)
        assert await system.loans.runtime.worker_pool.fetchval(
            "SELECT member_id FROM loan_member_numbers WHERE tenant_id = $1 AND member_number = $2",
            BMI, registered.payload["member_number"]) == uuid.UUID(member)
        # sanitation <- members: its member directory (a job is ordered only for a member it knows)
        await reaches(system.sanitation, "sanitation.members.v1", system.members, member)
        assert await system.sanitation.runtime.worker_pool.fetchval(
            "SELECT member_number FROM sanitation_members WHERE tenant_id = $1 AND member_id = $2",
            BMI, uuid.UUID(member)) == registered.payload["member_number"]

        # sanitation <- loans: the first tranche the loans service disbursed orders the job, caused by it
        await c.approve("F1", "2025-01-03")
        await c.sign("F1", ("contractor", "K1"), TANK, "2025-01-04", "2025-01-05", "2025-02-15")
        await c.disburse("F1", "2025-01-06", "water_org")
        financing = c.ids["F1"]
        first = await one(system.loans, "loans.TrancheDisbursed", financing_id=financing, tranche_number=1)
        job = job_of(financing)
        ordered = await one(system.sanitation, "sanitation.JobOrdered", job_id=job)
        assert ordered.causation_id == first.event_id and ordered.correlation_id == first.correlation_id
        assert ordered.actor == "reaction:sanitation.tranche-orders-job.v1"
        await reaches(system.sanitation, "sanitation.tranche-orders-job.v1", system.loans, financing)

        # loans <- sanitation: the inspection the sanitation service recorded as passed releases tranche 2
        c.ids["J1"] = await c.financed_job("J1", "F1")
        await c.build("J1", "septic_tank", "K1", "2025-01-07", "2025-01-10", [("2025-01-20", True)], "2025-01-25")
        inspection = await one(system.sanitation, "sanitation.InspectionRecorded", job_id=job, passed=True)
        second = await one(system.loans, "loans.TrancheDisbursed", financing_id=financing, tranche_number=2)
        assert second.causation_id == inspection.event_id
        assert second.actor == "reaction:loans.tranche-release.v1"
        await reaches(system.loans, "loans.tranche-release.v1", system.sanitation, job)

        # members <- sanitation: the handover makes the household's sanitation basic, from construction
        completed = await one(system.sanitation, "sanitation.JobCompleted", job_id=job)
        headers = {"X-API-Key": key(BMI, Role.FIELD_OFFICER)}

        async def basic() -> Any:
            body = (await system.members.get(f"/members/{member}", headers=headers)).json()
            return body if body.get("sanitation_rung") == "basic" else None

        await eventually(basic, timeout=60)
        await reaches(system.members, "members.sanitation-works.v1", system.sanitation, job)
        assert (await seen_by(system.members, BMI, job))["members.sanitation-works.v1"] >= completed.version

        # members <- sanitation: the contractor's open and handed-over jobs, with the assignment the
        # sanitation service recorded and its handover
        assigned = await one(system.sanitation, "sanitation.ContractorAssigned", job_id=job)
        await reaches(system.members, "members.contractor-jobs.v1", system.sanitation, job)
        row = await system.members.runtime.worker_pool.fetchrow(
            "SELECT member_id, contractor_id, assigned_seq, completed_on FROM member_contractor_jobs"
            " WHERE tenant_id = $1 AND job_id = $2", BMI, uuid.UUID(job))
        assert row is not None and (str(row["member_id"]), str(row["contractor_id"])) == (member, c.ids["K1"])
        assert row["assigned_seq"] == assigned.version and row["completed_on"] is not None

        # members <- loans: the loan standing consumer applied the loans service's financing stream
        signed = await one(system.loans, "loans.ContractSigned", financing_id=financing)
        await reaches(system.members, "members.loan_standing.v1", system.loans, financing)
        assert (await seen_by(system.members, BMI, financing))["members.loan_standing.v1"] >= signed.version

        # reporting <- members, loans, sanitation: each of its consumers of a stream reached the newest
        # version its producer published
        for producer, stream in ((system.members, member), (system.loans, financing), (system.sanitation, job)):
            await reaches(system.reporting, None, producer, stream)
