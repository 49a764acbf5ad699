"""The one envelope factory of the tests: a producing service's events as its own domain code decides
them, recorded by a real event store, so a consumer under test gets the stream type, stream id, versions,
event ids and metadata the producer's store would give it, never invented ones.

``Produced`` keeps the producer's streams in a store (the in-memory store by default: the contract suite
``shared/eventstore/testing.py`` holds it to the PostgreSQL store's behaviour; pass a
``PostgresEventStore`` to write a producer's log that a consumer then tails). Each ``decide`` reads the
stream, folds it with the producer's own ``fold``, runs the producer's own decision and appends what it
returns at the stream's version, as the producer's handler does.

``MembersProducer`` says it in the members service's words (registered, corrected, exited);
``SanitationProducer`` in the sanitation service's (a job started, inspected, completed);
``members()`` and ``sanitation()`` are the test's own (one per event loop, so each test starts with an empty log).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from shared.envelope import Envelope, Metadata, NewEvent
from shared.eventstore.memory import InMemoryEventStore


class Produced:
    """A producing service's streams, written by its domain code and recorded by an event store."""

    def __init__(self, store: Any | None = None) -> None:
        self.store = store or InMemoryEventStore()

    async def decide(self, tenant: str, stream_type: str, stream_id: str, fold: Callable[[list[Envelope]], Any],
                     decide: Callable[[Any], Sequence[NewEvent]], *, actor: str | None = None,
                     causation_id: uuid.UUID | None = None) -> list[Envelope]:
        """Fold the stream, decide on it, append the decision at the stream's version; the recorded envelopes."""
        history = await self.store.read_stream(tenant, stream_id)
        new = list(decide(fold(history)))
        assert new, f"the producer decided nothing for {stream_type} {stream_id}"
        result = await self.store.append(tenant, stream_type, stream_id, len(history), new,
                                         meta=Metadata(correlation_id=uuid.uuid4(), causation_id=causation_id,
                                                       actor=actor))
        return list(result.events)


def per_loop(make: Callable[[], Any]) -> Callable[[], Any]:
    """One producer per running event loop (each test has its own loop, and a store's lock belongs to one)."""
    made: dict[int, Any] = {}

    def get() -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if id(loop) not in made or made[id(loop)][0] is not loop:
            made[id(loop)] = (loop, make())
        return made[id(loop)][1]

    return get


class MembersProducer(Produced):
    """The members service's member streams, decided by ``services.members.domain.member``."""

    async def registered(self, tenant: str, *, member_id: uuid.UUID | None = None, member_number: str | None = None,
                         sex: str = "female", joined_on: date = date(2020, 1, 1), household_size: int = 4,
                         today: date | None = None, **details: Any) -> Envelope:
        """A member registered (``details``: further facts of MemberRegistered, e.g. village, district);
        the MemberRegistered envelope."""
        from services.members.domain import member as domain

        mid = member_id or uuid.uuid4()
        facts = {"member_number": member_number or f"M-{mid.hex[:6]}", "sex": sex, "joined_on": joined_on,
                 "household_size": household_size, **details}
        recorded = await self.decide(
            tenant, domain.STREAM_TYPE, str(mid), domain.fold,
            lambda state: domain.register(state, str(mid), facts, today or max(joined_on, date.today())),
            actor="key:officer")
        return next(e for e in recorded if e.type == "members.MemberRegistered")

    async def corrected(self, tenant: str, member_id: uuid.UUID | str, today: date | None = None,
                        **changes: Any) -> list[Envelope]:
        """Non-personal details corrected (e.g. village=...): what the members service records."""
        from services.members.domain import member as domain

        return await self.decide(tenant, domain.STREAM_TYPE, str(member_id), domain.fold,
                                 lambda state: domain.correct_details(state, changes, today or date.today()),
                                 actor="key:officer")

    async def exited(self, tenant: str, member_id: uuid.UUID | str, exited_on: date, reason: str = "moved_away",
                     today: date | None = None) -> Envelope:
        from services.members.domain import member as domain

        [recorded] = await self.decide(
            tenant, domain.STREAM_TYPE, str(member_id), domain.fold,
            lambda state: domain.exit_member(state, exited_on, reason, today or max(exited_on, date.today())),
            actor="key:officer")
        return recorded

    async def erased(self, tenant: str, member_id: uuid.UUID | str, today: date) -> Envelope:
        """An exited member's personal data erased (recorded on ``today``)."""
        from services.members.domain import member as domain

        [recorded] = await self.decide(tenant, domain.STREAM_TYPE, str(member_id), domain.fold,
                                       lambda state: domain.erase_personal_data(state, today), actor="key:manager")
        return recorded

    async def recorded(self, tenant: str, event: Any) -> list[Envelope]:
        """What the members service records for ``event``, a members contract a test states in its words
        (MemberRegistered, MemberDetailsChanged, MemberExited, MemberPersonalDataErased): the producer's
        domain code decides it on the member's stream so far, so its version and stream are real."""
        from shared.contracts import members as c

        if isinstance(event, c.MemberRegistered):
            facts = event.model_dump(exclude={"member_id"}, exclude_none=True)
            return [await self.registered(tenant, member_id=event.member_id, **facts)]
        if isinstance(event, c.MemberDetailsChanged):
            changes = {f: getattr(event, f) for f in event.changed_fields}
            return await self.corrected(tenant, event.member_id, **changes)
        if isinstance(event, c.MemberExited):
            return [await self.exited(tenant, event.member_id, event.exited_on, event.reason)]
        if isinstance(event, c.MemberPersonalDataErased):
            return [await self.erased(tenant, event.member_id, event.erased_on)]
        raise TypeError(f"no members decision for {type(event).__name__}")


#: a septic tank that passes the SNI 2398:2017 checklist (and one too narrow for it)
GOOD_TANK: dict[str, Any] = {
    "household_size": 5, "leak_test_12h_passed": True, "compartments": 2, "inlet_pipe": True, "outlet_pipe": True,
    "vent_pipe": True, "access_manhole": True, "length_m": "1.8", "width_m": "0.8", "depth_m": "1.6",
    "freeboard_m": "0.3", "system": "separate", "effluent_treatment": "upflow_filter", "distance_to_well_m": "11.5",
    "distance_to_building_m": "2", "distance_to_infiltration_well_m": None,
}
NARROW_TANK = {**GOOD_TANK, "width_m": "0.7"}


class SanitationProducer(Produced):
    """The sanitation service's contractor and construction-job streams, decided by
    ``services.sanitation.domain`` (contractor, job, checklist): a septic-tank job ordered for a financing,
    assigned to a certified contractor, started, inspected and handed over."""

    TODAY = date(2025, 12, 31)

    async def certified_contractor(self, tenant: str) -> Any:
        """A registered, trained and certified contractor's state (as the job decisions need it)."""
        from services.sanitation.domain import contractor as domain

        cid = str(uuid.uuid4())
        await self.decide(tenant, domain.STREAM_TYPE, cid, domain.fold,
                          lambda s: domain.register(s, cid, date(2020, 6, 1), date(2020, 6, 1)))
        await self.decide(tenant, domain.STREAM_TYPE, cid, domain.fold,
                          lambda s: domain.certify(s, f"SNI-{cid[:6]}", date(2020, 7, 1), date(2030, 12, 31),
                                                   self.TODAY))
        return domain.fold(await self.store.read_stream(tenant, cid))

    async def job(self, tenant: str, decide: Callable[[Any], Sequence[NewEvent]], job_id: str) -> list[Envelope]:
        from services.sanitation.domain import job as domain

        return await self.decide(tenant, domain.STREAM_TYPE, job_id, domain.fold, decide, actor="key:officer")

    async def started(self, tenant: str, member_id: uuid.UUID | str, financing_id: uuid.UUID | str | None,
                      job_id: uuid.UUID | str | None = None) -> str:
        """A septic-tank job ordered (for ``financing_id``, or paid in cash), assigned and started; its id."""
        from services.sanitation.domain import job as domain

        jid = str(job_id or uuid.uuid4())
        contractor = await self.certified_contractor(tenant)
        await self.job(tenant, lambda s: domain.order(s, jid, str(member_id), "septic_tank",
                                                      str(financing_id) if financing_id else None,
                                                      date(2025, 1, 6), None, self.TODAY), jid)
        await self.job(tenant, lambda s: domain.assign(s, contractor, date(2025, 1, 7), self.TODAY), jid)
        await self.job(tenant, lambda s: domain.start(s, date(2025, 1, 10), self.TODAY), jid)
        return jid

    async def inspected(self, tenant: str, job_id: str, passed: bool = True,
                        on: date = date(2025, 2, 3)) -> Envelope:
        """An SNI inspection of the job (after a rework when the last one failed); the published
        InspectionRecorded envelope (the findings event before it stays in sanitation)."""
        from services.sanitation.domain import checklist
        from services.sanitation.domain import job as domain
        from services.sanitation.domain.settings import DEFAULTS

        history = await self.store.read_stream(tenant, job_id)
        if domain.fold(history).status == "inspection_failed":
            await self.job(tenant, lambda s: domain.rework(s, on, "rebuilt", self.TODAY), job_id)
        tank = checklist.SepticTankFindings(**(GOOD_TANK if passed else NARROW_TANK))
        recorded = await self.job(tenant, lambda s: domain.inspect(s, on, tank, None, DEFAULTS, self.TODAY), job_id)
        return next(e for e in recorded if e.type == "sanitation.InspectionRecorded")

    async def completed(self, tenant: str, job_id: str, on: date = date(2025, 3, 20)) -> list[Envelope]:
        """The handover (JobCompleted, and DesludgingScheduled for a tank)."""
        from services.sanitation.domain import job as domain
        from services.sanitation.domain.settings import DEFAULTS

        return await self.job(tenant, lambda s: domain.complete(s, on, None, DEFAULTS, self.TODAY), job_id)


members = per_loop(MembersProducer)
sanitation = per_loop(SanitationProducer)


async def produced(client: Any, event_type: str, **payload: Any) -> list[Envelope]:
    """The ``event_type`` events a running service's own code appended (read back from its store, in log
    order), whose payload holds ``payload``: what its consumers are delivered, with their real ids and versions."""
    from shared.envelope import LogPosition

    rows = await client.runtime.store.read_log(LogPosition(), 100_000)
    return [r.envelope for r in rows if r.envelope.type == event_type
            and all(r.envelope.payload.get(k) == v for k, v in payload.items())]
