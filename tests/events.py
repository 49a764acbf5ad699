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
``LoansProducer`` in the loans service's (a contract signed, a tranche paid, a repayment, a settlement);
``members()``, ``sanitation()`` and ``loans()`` are the test's own (one per event loop, so each test starts with an empty log).

``recorded`` is the same record without a store, for the unit tests' pure folds of a domain's own events
(no event loop): no other test builds an ``Envelope`` itself, except the kernel's and the contracts' own
tests of envelopes of any kind and the tests that forge or replay one on purpose (``model_copy``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

from shared.envelope import Envelope, Metadata, NewEvent
from shared.eventstore.memory import InMemoryEventStore


def recorded(events: Sequence[NewEvent], stream_id: str, *, stream_type: str, tenant: str = "t",
             after: int = 0, actor: str | None = None, at: datetime | None = None,
             meta: Metadata | None = None) -> list[Envelope]:
    """``events`` as an event store records one append of them to a stream at version ``after``, without a
    store: for a pure fold in a test that has no event loop. The envelopes the in-memory store's ``append``
    makes (``test_recorded_is_what_the_store_records``): versions following on, one new event id each, the
    append's metadata on every event, ``occurred_at`` the event's own or the append's instant ``at``
    (``recorded_at``); the payload through JSON, as the PostgreSQL store keeps it."""
    now = at or datetime.now(UTC)
    m = meta or Metadata(actor=actor)
    return [Envelope(event_id=uuid.uuid4(), tenant_id=tenant, stream_type=stream_type, stream_id=stream_id,
                     version=after + i + 1, type=e.type, schema_version=e.schema_version,
                     occurred_at=e.occurred_at or now, recorded_at=now, correlation_id=m.correlation_id,
                     causation_id=m.causation_id, actor=m.actor if actor is None else actor,
                     traceparent=m.traceparent, payload=orjson.loads(orjson.dumps(e.payload)))
            for i, e in enumerate(events)]


class Produced:
    """A producing service's streams, written by its domain code and recorded by an event store."""

    def __init__(self, store: Any | None = None) -> None:
        self.store = store or InMemoryEventStore()
        #: the W3C trace context the producer's requests carried (copied onto every event, as the services do)
        self.traceparent: str | None = None

    async def decide(self, tenant: str, stream_type: str, stream_id: str, fold: Callable[[list[Envelope]], Any],
                     decide: Callable[[Any], Sequence[NewEvent]], *, actor: str | None = None,
                     causation_id: uuid.UUID | None = None) -> list[Envelope]:
        """Fold the stream, decide on it, append the decision at the stream's version; the recorded envelopes."""
        history = await self.store.read_stream(tenant, stream_type, stream_id)
        new = list(decide(fold(history)))
        assert new, f"the producer decided nothing for {stream_type} {stream_id}"
        result = await self.store.append(tenant, stream_type, stream_id, len(history), new,
                                         meta=Metadata(correlation_id=uuid.uuid4(), causation_id=causation_id,
                                                       actor=actor, traceparent=self.traceparent))
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

    async def certified_contractor(self, tenant: str, contractor_id: uuid.UUID | str | None = None) -> Any:
        """A registered, trained and certified contractor's state (as the job decisions need it); the same
        one again when ``contractor_id`` was certified before."""
        from services.sanitation.domain import contractor as domain

        cid = str(contractor_id or uuid.uuid4())
        if not await self.store.read_stream(tenant, domain.STREAM_TYPE, cid):
            await self.decide(tenant, domain.STREAM_TYPE, cid, domain.fold,
                              lambda s: domain.register(s, cid, date(2020, 6, 1), date(2020, 6, 1)))
            await self.decide(tenant, domain.STREAM_TYPE, cid, domain.fold,
                              lambda s: domain.certify(s, f"SNI-{cid[:6]}", date(2020, 7, 1), date(2030, 12, 31),
                                                       self.TODAY))
        return domain.fold(await self.store.read_stream(tenant, domain.STREAM_TYPE, cid))

    async def job(self, tenant: str, decide: Callable[[Any], Sequence[NewEvent]], job_id: str) -> list[Envelope]:
        from services.sanitation.domain import job as domain

        return await self.decide(tenant, domain.STREAM_TYPE, job_id, domain.fold, decide, actor="key:officer")

    async def ordered(self, tenant: str, member_id: uuid.UUID | str, financing_id: uuid.UUID | str | None = None,
                      job_id: uuid.UUID | str | None = None, kind: str = "septic_tank") -> str:
        """A job (a septic tank unless ``kind``) ordered on 6 January 2025, for ``financing_id`` or paid in
        cash; its id."""
        from services.sanitation.domain import job as domain

        jid = str(job_id or uuid.uuid4())
        await self.job(tenant, lambda s: domain.order(s, jid, str(member_id), kind,  # type: ignore[arg-type]
                                                      str(financing_id) if financing_id else None,
                                                      date(2025, 1, 6), None, self.TODAY), jid)
        return jid

    async def assigned(self, tenant: str, job_id: str, contractor_id: uuid.UUID | str | None = None,
                       on: date = date(2025, 1, 7)) -> Envelope:
        """The job (re)assigned to a certified contractor (``contractor_id``, or a new one); ContractorAssigned."""
        from services.sanitation.domain import job as domain

        contractor = await self.certified_contractor(tenant, contractor_id)
        [recorded] = await self.job(tenant, lambda s: domain.assign(s, contractor, on, self.TODAY), job_id)
        return recorded

    async def started(self, tenant: str, member_id: uuid.UUID | str, financing_id: uuid.UUID | str | None,
                      job_id: uuid.UUID | str | None = None, kind: str = "septic_tank") -> str:
        """A job (a septic tank unless ``kind``) ordered (for ``financing_id``, or paid in cash), assigned and
        started; its id."""
        from services.sanitation.domain import job as domain

        jid = await self.ordered(tenant, member_id, financing_id, job_id, kind)
        await self.assigned(tenant, jid)
        await self.job(tenant, lambda s: domain.start(s, max(date(2025, 1, 10), s.assigned_on), self.TODAY), jid)
        return jid

    async def inspected(self, tenant: str, job_id: str, passed: bool = True,
                        on: date = date(2025, 2, 3)) -> Envelope:
        """An SNI inspection of the job (after a rework when the last one failed); the published
        InspectionRecorded envelope (the findings event before it stays in sanitation)."""
        from services.sanitation.domain import checklist
        from services.sanitation.domain import job as domain
        from services.sanitation.domain.settings import DEFAULTS

        history = await self.store.read_stream(tenant, domain.STREAM_TYPE, job_id)
        state = domain.fold(history)
        if state.status == "inspection_failed":
            await self.job(tenant, lambda s: domain.rework(s, on, "rebuilt", self.TODAY), job_id)
        if state.kind == "septic_tank":
            tank, items = checklist.SepticTankFindings(**(GOOD_TANK if passed else NARROW_TANK)), None
        else:  # a toilet upgrade or a water connection: its judged items, all passed (or the first failed)
            codes = checklist.JUDGED_CHECKLISTS[state.kind]
            tank, items = None, {c: checklist.JudgedItem(passed=passed or i > 0) for i, c in enumerate(codes)}
        recorded = await self.job(tenant, lambda s: domain.inspect(s, on, tank, items, DEFAULTS, self.TODAY), job_id)
        return next(e for e in recorded if e.type == "sanitation.InspectionRecorded")

    async def completed(self, tenant: str, job_id: str, on: date = date(2025, 3, 20)) -> list[Envelope]:
        """The handover (JobCompleted, and DesludgingScheduled for a tank)."""
        from services.sanitation.domain import job as domain
        from services.sanitation.domain.settings import DEFAULTS

        pdam = None
        if domain.fold(await self.store.read_stream(tenant, domain.STREAM_TYPE, job_id)).kind == "water_connection":
            pdam = f"PDAM-{job_id[:8]}"
        return await self.job(tenant, lambda s: domain.complete(s, on, pdam, DEFAULTS, self.TODAY), job_id)

    async def handed_over(self, tenant: str, member_id: uuid.UUID | str, kind: str = "septic_tank",
                          on: date = date(2025, 3, 20)) -> tuple[str, Envelope]:
        """A job paid in cash built, passed and handed over on ``on``: (its id, the JobCompleted envelope)."""
        jid = await self.started(tenant, member_id, None, kind=kind)
        await self.inspected(tenant, jid, on=on)
        return jid, next(e for e in await self.completed(tenant, jid, on) if e.type == "sanitation.JobCompleted")

    async def emptied(self, tenant: str, job_id: str, on: date = date(2025, 9, 2),
                      visit_id: uuid.UUID | str | None = None) -> Envelope:
        """A truck's visit scheduled and recorded as an emptying of 2 m3; the DesludgingVisitRecorded envelope."""
        from decimal import Decimal

        from services.sanitation.domain import job as domain

        vid = str(visit_id or uuid.uuid4())
        await self.job(tenant, lambda s: domain.schedule_visit(s, vid, on, "UPTD PALD", "B 9123 TX"), job_id)
        [recorded] = await self.job(tenant, lambda s: domain.record_visit(
            s, vid, on, "emptied", None, None, Decimal("2.000"), None, None, self.TODAY), job_id)
        return recorded

    async def received(self, tenant: str, job_id: str, visit_id: uuid.UUID | str, on: date = date(2025, 9, 3)) -> Envelope:
        """The treatment plant (IPLT) acknowledges the visit's sludge; the IpltReceiptAcknowledged envelope."""
        from decimal import Decimal

        from services.sanitation.domain import job as domain
        from services.sanitation.domain.settings import DEFAULTS

        recorded = await self.job(tenant, lambda s: domain.acknowledge_receipt(
            s, str(visit_id), "iplt-suwung", f"M-{str(visit_id)[:6]}", on, Decimal("1.950"), DEFAULTS, self.TODAY),
            job_id)
        return next(e for e in recorded if e.type == "sanitation.IpltReceiptAcknowledged")


class LoansProducer(Produced):
    """The loans service's financing streams, decided by ``services.loans.domain.financing``: a member
    applies for a product, a manager approves, the work order is recorded, the contract signed; then
    tranches, repayments, reschedules, settlements and write-offs, each as the loans service decides them.
    The product is the demo's septic-tank one (12 or 24 monthly instalments, margin 12% a year, two
    tranches of 50%, the second on the SNI inspection) unless a test gives its own terms."""

    TODAY = date(2030, 1, 1)  # far enough ahead that no business date in the tests is "in the future"
    OFFICER, MANAGER = "key:officer00001", "key:manager00001"

    def __init__(self, store: Any | None = None) -> None:
        super().__init__(store)
        self.members: dict[str, str] = {}

    async def on(self, tenant: str, financing_id: uuid.UUID | str, decide: Callable[..., Sequence[NewEvent]],
                 cmd: Any, *args: Any, actor: str | None = None) -> list[Envelope]:
        """``decide(state, cmd, *args, today=)`` on the financing's stream; the recorded envelopes."""
        from services.loans.domain import financing as fin

        extra: dict[str, Any] = {} if decide is fin.decide_release_on_inspection else {"today": self.TODAY}
        return await self.decide(tenant, fin.STREAM_TYPE, str(financing_id), fin.fold,
                                 lambda state: decide(state, cmd, *args, **extra), actor=actor or self.MANAGER)

    async def signed(self, tenant: str, member_id: uuid.UUID | str, *, financing_id: uuid.UUID | str | None = None,
                     amount: int = 6_000_000, instalments: int = 12, signed_on: date = date(2025, 4, 2),
                     first_due_on: date | None = None, payee_type: str = "contractor",
                     payee_id: str = "contractor-cv-tirta", **product: Any) -> Envelope:
        """A financing applied for, approved, work-ordered and signed (its first instalment due a month after
        the signing unless ``first_due_on``); ``product``: terms other than the demo product's, e.g.
        ``purpose="water_connection"``, ``tranche_percents=[100]``. The ContractSigned envelope."""
        from datetime import timedelta

        from services.loans.domain import financing as fin
        from services.loans.domain.commands import Apply, Approve, MemberFacts, RecordWorkOrder, SignContract
        from tests.unit.loans.story import product as make_product

        fid, mid = str(financing_id or uuid.uuid4()), str(member_id)
        self.members[fid] = mid
        offered = make_product(**product)
        await self.on(tenant, fid, fin.decide_apply,
                      Apply(fid, mid, amount, instalments, signed_on - timedelta(days=7), self.OFFICER), offered,
                      MemberFacts(joined_on=date(2020, 1, 1)), actor=self.OFFICER)
        await self.on(tenant, fid, fin.decide_approve, Approve(signed_on - timedelta(days=5), self.MANAGER))
        await self.on(tenant, fid, fin.decide_record_work_order,
                      RecordWorkOrder("WO-1", payee_type, payee_id, amount, signed_on - timedelta(days=3)))  # type: ignore[arg-type]
        recorded = await self.on(tenant, fid, fin.decide_sign_contract, SignContract(signed_on, first_due_on))
        return next(e for e in recorded if e.type == "loans.ContractSigned")

    async def disbursed(self, tenant: str, financing_id: uuid.UUID | str, on: date = date(2025, 4, 3),
                        source_of_funds: str | None = None) -> Envelope:
        """The next tranche paid by hand (the first, for a septic tank); the TrancheDisbursed envelope."""
        from services.loans.domain import financing as fin
        from services.loans.domain.commands import DisburseTranche

        [recorded] = await self.on(tenant, financing_id, fin.decide_disburse, DisburseTranche(on, source_of_funds))
        return recorded

    async def released(self, tenant: str, financing_id: uuid.UUID | str, inspected_on: date = date(2025, 5, 2)) -> Envelope:
        """The tranche waiting for the SNI inspection, released by a passed one (as the loans reaction does)."""
        from services.loans.domain import financing as fin
        from services.loans.domain.commands import ReleaseTrancheOnInspection

        fid = str(financing_id)
        [recorded] = await self.on(tenant, fid, fin.decide_release_on_inspection,
                                   ReleaseTrancheOnInspection(fin.job_id_for(fid), True, inspected_on),
                                   actor="service:loans")
        return recorded

    async def repaid(self, tenant: str, financing_id: uuid.UUID | str, receipt: str, paid_on: date,
                     amount: int) -> list[Envelope]:
        """A repayment (allocated by the loans service, oldest instalment first); RepaymentRecorded, and
        FinancingClosed when it paid everything."""
        from services.loans.domain import financing as fin
        from services.loans.domain.commands import RecordRepayment

        return await self.on(tenant, financing_id, fin.decide_record_repayment, RecordRepayment(receipt, amount, paid_on),
                             actor=self.OFFICER)

    async def settled_early(self, tenant: str, financing_id: uuid.UUID | str, receipt: str, on: date) -> list[Envelope]:
        """Settled in full on ``on`` for the quoted amount (everything owed less the rebate)."""
        from services.loans.domain import financing as fin
        from services.loans.domain.commands import SettleEarly

        state = fin.fold(await self.store.read_stream(tenant, fin.STREAM_TYPE, str(financing_id)))
        quote = fin.settlement_quote(state, on)
        return await self.on(tenant, financing_id, fin.decide_settle_early, SettleEarly(receipt, quote.to_pay, on))

    async def rescheduled(self, tenant: str, financing_id: uuid.UUID | str, instalments: int, on: date,
                          first_due_on: date | None = None, reason: str = "hardship") -> Envelope:
        """What is unpaid spread over ``instalments`` new ones from ``first_due_on``; FinancingRescheduled."""
        from services.loans.domain import financing as fin
        from services.loans.domain.commands import Reschedule

        recorded = await self.on(tenant, financing_id, fin.decide_reschedule,
                                 Reschedule(instalments, on, reason, first_due_on))  # type: ignore[arg-type]
        return next(e for e in recorded if e.type == "loans.FinancingRescheduled")

    async def written_off(self, tenant: str, financing_id: uuid.UUID | str, on: date,
                          reason: str = "uncollectable") -> list[Envelope]:
        from services.loans.domain import financing as fin
        from services.loans.domain.commands import WriteOff

        return await self.on(tenant, financing_id, fin.decide_write_off, WriteOff(on, reason))  # type: ignore[arg-type]


members = per_loop(MembersProducer)
sanitation = per_loop(SanitationProducer)
loans = per_loop(LoansProducer)


async def produced(client: Any, event_type: str, **payload: Any) -> list[Envelope]:
    """The ``event_type`` events a running service's own code appended (read back from its store, in log
    order), whose payload holds ``payload``: what its consumers are delivered, with their real ids and versions."""
    from shared.envelope import LogPosition

    rows = await client.runtime.store.read_log(LogPosition(), 100_000)
    return [r.envelope for r in rows if r.envelope.type == event_type
            and all(r.envelope.payload.get(k) == v for k, v in payload.items())]
