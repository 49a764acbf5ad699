"""A construction job, from order to handover, and afterwards the desludging (LLTT) of the septic tank it
built: one stream per job, so handover and the first desludging due date are decided and written together.

Lifecycle: ordered -> assigned -> started -> inspected -> (inspection_failed -> rework -> re-inspected)*
-> inspection_passed -> completed (handed over). A contractor can be (re)assigned until work starts.
Dates of the lifecycle never run backwards and never lie in the future.

Desludging of a handed-over septic tank: the first emptying falls due ``interval`` years after handover;
visits are scheduled and recorded (emptied / hose cannot reach / household absent / cancelled); an
emptying counts only when the treatment plant (IPLT) acknowledges the sludge, and the next due date is
the last acknowledged emptying + the interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import reduce
from typing import Any, Literal

from services.sanitation.domain import checklist
from services.sanitation.domain.contractor import Contractor, certification_problem
from services.sanitation.domain.dates import add_years, month_bounds
from services.sanitation.domain.errors import AlreadyExists, RuleViolation, UnknownVisit, not_future
from services.sanitation.domain.settings import CooperativeSettings
from shared.contracts import new_event
from shared.contracts.sanitation import (
    ContractorAssigned,
    DesludgingScheduled,
    DesludgingVisitRecorded,
    InspectionItem,
    InspectionRecorded,
    IpltReceiptAcknowledged,
    JobCompleted,
    JobOrdered,
    JobStarted,
    NextDesludgingDue,
)
from shared.envelope import Envelope, NewEvent

STREAM_TYPE = "job"
# internal events (not published)
VILLAGE_SET = "sanitation.JobVillageSet"
#: the contractor a financing's work order names could not be assigned (why: ``reason``)
WORK_ORDER_CONTRACTOR_NOT_ASSIGNED = "sanitation.WorkOrderContractorNotAssigned"
FINDINGS_RECORDED = "sanitation.InspectionFindingsRecorded"
REWORK_STARTED = "sanitation.ReworkStarted"
DESLUDGING_REQUESTED = "sanitation.DesludgingRequested"
VISIT_SCHEDULED = "sanitation.DesludgingVisitScheduled"
VISIT_NOTED = "sanitation.DesludgingVisitNoted"  # free text about a visit: kept off the published event

JobKind = Literal["septic_tank", "toilet_upgrade", "water_connection"]
JobStatus = Literal["ordered", "assigned", "started", "inspection_failed", "rework", "inspection_passed",
                    "completed"]
VisitOutcome = Literal["emptied", "hose_cannot_reach", "household_absent", "cancelled"]
CancellationReason = Literal["truck_unavailable", "bad_weather", "access_blocked", "household_declined",
                             "rescheduled", "other"]
DueStatus = Literal["not_due", "due", "overdue"]
KINDS: tuple[str, ...] = ("septic_tank", "toilet_upgrade", "water_connection")


@dataclass(frozen=True)
class FailedItem:
    """Why a checklist item failed: the rule's finding (published) and the inspector's note (kept here)."""

    code: str
    finding: str | None = None
    note: str | None = None
    photo_ref: str | None = None


@dataclass(frozen=True)
class Inspection:
    number: int
    inspected_on: date
    passed: bool
    failed_items: tuple[str, ...] = ()
    failures: tuple[FailedItem, ...] = ()


@dataclass(frozen=True)
class IpltReceipt:
    iplt_id: str
    manifest_number: str
    received_on: date
    volume_received_m3: Decimal
    volume_mismatch: bool


@dataclass(frozen=True)
class DesludgingVisit:
    visit_id: str
    planned_on: date
    operator: str | None = None
    truck_plate: str | None = None
    visited_on: date | None = None
    outcome: VisitOutcome | None = None
    volume_m3: Decimal | None = None
    cancellation_reason: CancellationReason | None = None
    note: str | None = None
    receipt: IpltReceipt | None = None

    @property
    def recorded(self) -> bool:
        return self.outcome is not None


@dataclass(frozen=True)
class DesludgingSchedule:
    """The septic tank's emptying schedule after handover."""

    interval_years: int
    next_due_on: date
    open_request_on: date | None = None
    open_request_reason: str | None = None
    visits: tuple[DesludgingVisit, ...] = ()
    #: the latest emptying the IPLT has acknowledged: only these count as safely emptied
    last_emptied_on: date | None = None

    def visit(self, visit_id: str) -> DesludgingVisit | None:
        return next((v for v in self.visits if v.visit_id == visit_id), None)

    @property
    def open_visit(self) -> DesludgingVisit | None:
        return next((v for v in self.visits if not v.recorded), None)


@dataclass(frozen=True)
class ConstructionJob:
    job_id: str | None = None
    member_id: str | None = None
    kind: JobKind | None = None
    financing_id: str | None = None
    ordered_on: date | None = None
    village: str | None = None
    status: JobStatus | None = None
    contractor_id: str | None = None
    assigned_on: date | None = None
    #: why the work order's contractor was not assigned (until a contractor is)
    assignment_problem: str | None = None
    started_on: date | None = None
    inspections: tuple[Inspection, ...] = ()
    reworks: tuple[date, ...] = ()
    completed_on: date | None = None
    pdam_customer_number: str | None = None
    desludging: DesludgingSchedule | None = None
    #: the inspector's notes of the inspection being recorded (its findings event comes just before it)
    pending_notes: tuple[tuple[int, tuple[tuple[str, str | None], ...]], ...] = ()
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.job_id is not None

    @property
    def last_inspection(self) -> Inspection | None:
        return self.inspections[-1] if self.inspections else None


# -- evolve -------------------------------------------------------------------------------------------


def _visits(s: DesludgingSchedule, visit_id: str, **changes: Any) -> tuple[DesludgingVisit, ...]:
    return tuple(replace(v, **changes) if v.visit_id == visit_id else v for v in s.visits)


def evolve(state: ConstructionJob, event: Envelope) -> ConstructionJob:
    t, p, v = event.type, event.payload, event.version
    if t == JobOrdered.event_type:
        o = JobOrdered.model_validate(p)
        return ConstructionJob(job_id=str(o.job_id), member_id=str(o.member_id), kind=o.kind,
                               financing_id=str(o.financing_id) if o.financing_id else None,
                               ordered_on=o.ordered_on, status="ordered", version=v)
    if t == VILLAGE_SET:
        return replace(state, village=p["village"], version=v)
    if t == ContractorAssigned.event_type:
        a = ContractorAssigned.model_validate(p)
        return replace(state, status="assigned", contractor_id=str(a.contractor_id), assigned_on=a.assigned_on,
                       assignment_problem=None, version=v)
    if t == WORK_ORDER_CONTRACTOR_NOT_ASSIGNED:
        return replace(state, assignment_problem=p["reason"], version=v)
    if t == JobStarted.event_type:
        return replace(state, status="started", started_on=JobStarted.model_validate(p).started_on, version=v)
    if t == FINDINGS_RECORDED:
        notes = tuple((r["code"], r.get("note")) for r in p["results"])
        return replace(state, pending_notes=((p["inspection_number"], notes),), version=v)
    if t == InspectionRecorded.event_type:
        i = InspectionRecorded.model_validate(p)
        notes = dict(next((n for number, n in state.pending_notes if number == i.inspection_number), ()))
        failures = tuple(FailedItem(item.code, item.note, notes.get(item.code), item.photo_ref)
                         for item in i.items if not item.passed)
        inspection = Inspection(i.inspection_number, i.inspected_on, i.passed,
                                tuple(f.code for f in failures), failures)
        return replace(state, status="inspection_passed" if i.passed else "inspection_failed",
                       inspections=(*state.inspections, inspection), pending_notes=(), version=v)
    if t == REWORK_STARTED:
        return replace(state, status="rework", reworks=(*state.reworks, date.fromisoformat(p["started_on"])),
                       version=v)
    if t == JobCompleted.event_type:
        c = JobCompleted.model_validate(p)
        return replace(state, status="completed", completed_on=c.completed_on,
                       pdam_customer_number=c.pdam_customer_number, version=v)
    if t == DesludgingScheduled.event_type:
        d = DesludgingScheduled.model_validate(p)
        return replace(state, desludging=DesludgingSchedule(d.interval_years, d.due_on), version=v)
    s = state.desludging
    if s is not None:
        if t == DESLUDGING_REQUESTED:
            s = replace(s, open_request_on=date.fromisoformat(p["requested_on"]), open_request_reason=p.get("reason"))
        elif t == VISIT_SCHEDULED:
            visit = DesludgingVisit(p["visit_id"], date.fromisoformat(p["planned_on"]), p.get("operator"),
                                    p.get("truck_plate"))
            s = replace(s, visits=(*s.visits, visit))
        elif t == DesludgingVisitRecorded.event_type:
            r = DesludgingVisitRecorded.model_validate(p)
            s = replace(s, visits=_visits(s, str(r.visit_id), visited_on=r.visited_on, outcome=r.outcome,
                                          operator=r.operator, truck_plate=r.truck_plate, volume_m3=r.volume_m3,
                                          cancellation_reason=r.cancellation_reason))
            if r.outcome == "emptied":  # the household's request is answered
                s = replace(s, open_request_on=None, open_request_reason=None)
        elif t == VISIT_NOTED:
            s = replace(s, visits=_visits(s, p["visit_id"], note=p["note"]))
        elif t == IpltReceiptAcknowledged.event_type:
            ack = IpltReceiptAcknowledged.model_validate(p)
            receipt = IpltReceipt(ack.iplt_id, ack.manifest_number, ack.received_on, ack.volume_received_m3,
                                  ack.volume_mismatch)
            s = replace(s, visits=_visits(s, str(ack.visit_id), receipt=receipt))
        elif t == NextDesludgingDue.event_type:
            n = NextDesludgingDue.model_validate(p)
            s = replace(s, next_due_on=n.due_on, interval_years=n.interval_years, last_emptied_on=n.last_emptied_on)
        return replace(state, desludging=s, version=v)
    return replace(state, version=v)


def fold(events: Iterable[Envelope], state: ConstructionJob | None = None) -> ConstructionJob:
    return reduce(evolve, events, state or ConstructionJob())


# -- helpers ------------------------------------------------------------------------------------------


def _not_before(day: date, earlier: date | None, what: str, field: str) -> None:
    if earlier is not None and day < earlier:
        raise RuleViolation(f"{field} ({day}) cannot be before {what} ({earlier})", field=field)


def _label(kind: str | None) -> str:
    return (kind or "job").replace("_", " ")


# -- construction -------------------------------------------------------------------------------------


def order(state: ConstructionJob, job_id: str, member_id: str, kind: JobKind, financing_id: str | None,
          ordered_on: date, village: str | None, today: date, *,
          member_exited_on: date | None = None) -> list[NewEvent]:
    """Order a job: from a financing's first tranche, or by hand for a cash-funded job.

    A cash job is work for a member: one who has left the cooperative (``member_exited_on`` on or before the
    order day) gets none, as the loans service refuses them a financing. A financed job is ordered from a
    tranche already paid out, so it is built even if the member left since."""
    if state.exists:
        raise AlreadyExists(f"job {job_id} is already ordered", field="job_id")
    if member_exited_on is not None and member_exited_on <= ordered_on:
        raise RuleViolation(f"member {member_id} left the cooperative on {member_exited_on}", field="member_id")
    if kind not in KINDS:
        raise RuleViolation(f"unknown job kind {kind!r}; kinds are {', '.join(KINDS)}", field="kind")
    not_future(ordered_on, today, "ordered_on")
    events = [new_event(JobOrdered(job_id=job_id, member_id=member_id, kind=kind,  # type: ignore[arg-type]
                                financing_id=financing_id, ordered_on=ordered_on))]  # type: ignore[arg-type]
    if village:
        events.append(NewEvent(VILLAGE_SET, {"job_id": job_id, "village": village}))
    return events


def order_financed(job_id: str, member_id: str, kind: JobKind, financing_id: str, ordered_on: date,
                   contractor_ref: str | None, contractor: Contractor | None, today: date) -> list[NewEvent]:
    """Order a financed job (its first tranche was disbursed). When the financing's work order names a
    contractor (``contractor_ref``, the payee), that contractor takes the job on the order day if it may:
    registered in this cooperative (``contractor``, None when not), active, and for a septic tank
    certified on the day. Otherwise the job stays ordered, with the reason, for an officer to assign."""
    events = order(ConstructionJob(), job_id, member_id, kind, financing_id, ordered_on, None, today)
    if contractor_ref is None:
        return events
    ordered = ConstructionJob(job_id=job_id, member_id=member_id, kind=kind, financing_id=financing_id,
                              ordered_on=ordered_on, status="ordered")
    if contractor is None or not contractor.exists:
        reason = f"the work order names contractor {contractor_ref}, which is not registered in this cooperative"
    else:
        try:
            return events + assign(ordered, contractor, ordered_on, today)
        except RuleViolation as e:
            reason = f"the work order's contractor {contractor_ref} was not assigned: {e.message}"
    return events + [NewEvent(WORK_ORDER_CONTRACTOR_NOT_ASSIGNED, {
        "job_id": job_id, "contractor_ref": contractor_ref, "reason": reason})]


def set_village(state: ConstructionJob, village: str) -> list[NewEvent]:
    """Where the household is (kept here for the desludging lists: member details live in members)."""
    if state.village == village:
        return []
    return [NewEvent(VILLAGE_SET, {"job_id": state.job_id, "village": village})]


def assign(state: ConstructionJob, contractor: Contractor, assigned_on: date, today: date) -> list[NewEvent]:
    """Assign (or, before work starts, reassign) a contractor. Septic-tank work needs a valid certification."""
    if state.status not in ("ordered", "assigned"):
        raise RuleViolation(f"the job is {state.status}: its contractor can only change before work starts")
    assert contractor.contractor_id is not None
    if state.contractor_id == contractor.contractor_id:
        raise AlreadyExists(f"contractor {contractor.contractor_id} is already assigned to this job",
                            field="contractor_id")
    if not contractor.active:
        raise RuleViolation(f"contractor {contractor.contractor_id} is inactive"
                            + (f" ({contractor.deactivation_reason})" if contractor.deactivation_reason else ""),
                            field="contractor_id")
    not_future(assigned_on, today, "assigned_on")
    _not_before(assigned_on, state.ordered_on, "the order", "assigned_on")
    if state.kind == "septic_tank":
        problem = certification_problem(contractor, assigned_on)
        if problem is not None:
            raise RuleViolation(f"septic-tank work needs a certified contractor: {problem}", field="contractor_id")
    return [new_event(ContractorAssigned(job_id=state.job_id, member_id=state.member_id, kind=state.kind,  # type: ignore[arg-type]
                                      financing_id=state.financing_id, contractor_id=contractor.contractor_id,  # type: ignore[arg-type]
                                      assigned_on=assigned_on))]


def start(state: ConstructionJob, started_on: date, today: date) -> list[NewEvent]:
    if state.status == "ordered":
        raise RuleViolation("no contractor is assigned yet: assign one before work starts")
    if state.status != "assigned":
        raise RuleViolation(f"work has already started (the job is {state.status})")
    not_future(started_on, today, "started_on")
    _not_before(started_on, state.assigned_on, "the assignment", "started_on")
    return [new_event(JobStarted(job_id=state.job_id, member_id=state.member_id,  # type: ignore[arg-type]
                              contractor_id=state.contractor_id, started_on=started_on))]  # type: ignore[arg-type]


def inspect(state: ConstructionJob, inspected_on: date, septic_tank: checklist.SepticTankFindings | None,
            items: Mapping[str, checklist.JudgedItem] | None, settings: CooperativeSettings,
            today: date) -> list[NewEvent]:
    """Record an inspection. It passes only if every checklist item passes."""
    if state.status in ("ordered", "assigned"):
        raise RuleViolation(f"the job is {state.status}: work has not started, there is nothing to inspect")
    if state.status == "inspection_failed":
        last = state.last_inspection
        assert last is not None
        raise RuleViolation(f"inspection #{last.number} failed: the contractor must record the rework before a "
                            "re-inspection")
    if state.status in ("inspection_passed", "completed"):
        last = state.last_inspection
        assert last is not None
        raise RuleViolation(f"the job already passed inspection #{last.number} on {last.inspected_on}")
    not_future(inspected_on, today, "inspected_on")
    _not_before(inspected_on, state.started_on, "the start of work", "inspected_on")
    if state.reworks:
        _not_before(inspected_on, state.reworks[-1], "the rework", "inspected_on")
    assert state.kind is not None
    results = checklist.evaluate(state.kind, septic_tank, items, settings)
    number = len(state.inspections) + 1
    passed = all(r.passed for r in results)
    findings = {
        "job_id": state.job_id,
        "inspection_number": number,
        "septic_tank": septic_tank.model_dump(mode="json") if septic_tank is not None else None,
        "items": {k: i.model_dump(mode="json") for k, i in items.items()} if items is not None else None,
        # the thresholds in force, so this inspection can be explained after the settings change
        "settings": settings.model_dump(mode="json"),
        # the inspector's free-text notes live here only: the published event carries the findings
        "results": [{"code": r.code, "passed": r.passed, "finding": r.finding, "note": r.note,
                     "photo_ref": r.photo_ref} for r in results],
    }
    recorded = InspectionRecorded(
        job_id=state.job_id, member_id=state.member_id, financing_id=state.financing_id,  # type: ignore[arg-type]
        inspection_number=number, passed=passed, inspected_on=inspected_on,
        items=[InspectionItem(code=r.code, passed=r.passed, note=r.contract_note(), photo_ref=r.photo_ref)
               for r in results],
    )
    return [NewEvent(FINDINGS_RECORDED, findings), new_event(recorded)]


def rework(state: ConstructionJob, started_on: date, note: str | None, today: date) -> list[NewEvent]:
    """The contractor reworks what failed; a re-inspection follows."""
    if state.status == "rework":
        raise RuleViolation("the rework is already under way: it needs a re-inspection now")
    if state.status != "inspection_failed":
        raise RuleViolation(f"only a job whose last inspection failed can be reworked (the job is {state.status})")
    not_future(started_on, today, "started_on")
    last = state.last_inspection
    assert last is not None
    _not_before(started_on, last.inspected_on, f"the failed inspection #{last.number}", "started_on")
    return [NewEvent(REWORK_STARTED, {"job_id": state.job_id, "after_inspection": last.number,
                                      "started_on": started_on.isoformat(), "note": note})]


def complete(state: ConstructionJob, completed_on: date, pdam_customer_number: str | None,
             settings: CooperativeSettings, today: date) -> list[NewEvent]:
    """Hand the work over. Only after a passed inspection; a water connection needs its PDAM customer
    number; a septic tank enters scheduled desludging with its first due date."""
    last = state.last_inspection
    if state.status == "completed":
        raise AlreadyExists(f"the job was already handed over on {state.completed_on}")
    if state.status in ("inspection_failed", "rework"):
        assert last is not None
        failed = ", ".join(last.failed_items)
        raise RuleViolation(f"the last inspection (#{last.number} on {last.inspected_on}) failed ({failed}): "
                            "the job can be completed only after a re-inspection passes")
    if state.status != "inspection_passed" or last is None:
        raise RuleViolation(f"the job is {state.status}: it can be completed only after an inspection passes")
    if state.kind == "water_connection" and not pdam_customer_number:
        raise RuleViolation("a water connection is completed with the PDAM customer number",
                            field="pdam_customer_number")
    if state.kind != "water_connection" and pdam_customer_number:
        raise RuleViolation(f"only a water connection has a PDAM customer number (this is a {_label(state.kind)})",
                            field="pdam_customer_number")
    not_future(completed_on, today, "completed_on")
    _not_before(completed_on, last.inspected_on, f"the passed inspection #{last.number}", "completed_on")
    events = [new_event(JobCompleted(job_id=state.job_id, member_id=state.member_id, kind=state.kind,  # type: ignore[arg-type]
                                  financing_id=state.financing_id, contractor_id=state.contractor_id,  # type: ignore[arg-type]
                                  completed_on=completed_on, pdam_customer_number=pdam_customer_number))]
    if state.kind == "septic_tank":
        interval = settings.desludging_interval_years
        events.append(new_event(DesludgingScheduled(job_id=state.job_id, member_id=state.member_id,  # type: ignore[arg-type]
                                                 completed_on=completed_on, interval_years=interval,
                                                 due_on=first_due_date(completed_on, interval))))
    return events


# -- desludging ---------------------------------------------------------------------------------------


def first_due_date(completed_on: date, interval_years: int) -> date:
    """The first desludging falls due ``interval_years`` after handover."""
    return add_years(completed_on, interval_years)


def next_due_date(last_acknowledged_emptying: date, interval_years: int) -> date:
    """After an acknowledged emptying, the next one falls due ``interval_years`` after it."""
    return add_years(last_acknowledged_emptying, interval_years)


def due_status(next_due_on: date, as_of: date) -> DueStatus:
    """overdue: the due date has passed; due: it falls on ``as_of`` or later in the same month; else not due."""
    if next_due_on < as_of:
        return "overdue"
    _, month_end = month_bounds(as_of.year, as_of.month)
    return "due" if next_due_on <= month_end else "not_due"


def _tank(state: ConstructionJob) -> DesludgingSchedule:
    if state.kind != "septic_tank":
        raise RuleViolation(f"desludging is for septic tanks; this job is a {_label(state.kind)}")
    if state.status != "completed" or state.desludging is None:
        raise RuleViolation(f"the septic tank has not been handed over yet (the job is {state.status})")
    return state.desludging


def request_desludging(state: ConstructionJob, requested_on: date, reason: str | None,
                       today: date) -> list[NewEvent]:
    """The household asks for an emptying before it falls due (on demand)."""
    s = _tank(state)
    if s.open_request_on is not None:
        raise AlreadyExists(f"an emptying was already requested on {s.open_request_on} and is not done yet")
    not_future(requested_on, today, "requested_on")
    _not_before(requested_on, state.completed_on, "the handover", "requested_on")
    return [NewEvent(DESLUDGING_REQUESTED, {"job_id": state.job_id, "requested_on": requested_on.isoformat(),
                                            "reason": reason})]


def schedule_visit(state: ConstructionJob, visit_id: str, planned_on: date, operator: str | None,
                   truck_plate: str | None) -> list[NewEvent]:
    """Plan a truck's visit (on any date after handover, in the future too)."""
    s = _tank(state)
    if s.visit(visit_id) is not None:
        raise AlreadyExists(f"visit {visit_id} is already scheduled", field="visit_id")
    open_visit = s.open_visit
    if open_visit is not None:
        raise RuleViolation(f"visit {open_visit.visit_id} planned for {open_visit.planned_on} is still open: "
                            "record its outcome (or cancel it) first")
    _not_before(planned_on, state.completed_on, "the handover", "planned_on")
    return [NewEvent(VISIT_SCHEDULED, {"job_id": state.job_id, "visit_id": visit_id,
                                       "planned_on": planned_on.isoformat(), "operator": operator,
                                       "truck_plate": truck_plate})]


def record_visit(state: ConstructionJob, visit_id: str, visited_on: date, outcome: VisitOutcome,
                 operator: str | None, truck_plate: str | None, volume_m3: Decimal | None,
                 cancellation_reason: CancellationReason | None, note: str | None, today: date) -> list[NewEvent]:
    """Record what happened at a scheduled visit. Operator and truck default to the scheduled ones. A
    cancelled visit needs its reason (a code); ``note`` is free text kept in an internal event."""
    s = _tank(state)
    visit = s.visit(visit_id)
    if visit is None:
        raise UnknownVisit(f"no desludging visit {visit_id} is scheduled for this tank", field="visit_id")
    if visit.recorded:
        raise AlreadyExists(f"visit {visit_id} was already recorded ({visit.outcome} on {visit.visited_on})")
    not_future(visited_on, today, "visited_on")
    _not_before(visited_on, state.completed_on, "the handover", "visited_on")
    operator, truck_plate = operator or visit.operator, truck_plate or visit.truck_plate
    if outcome == "cancelled":
        if not cancellation_reason:
            raise RuleViolation("a cancelled visit needs the cancellation reason", field="cancellation_reason")
    elif cancellation_reason is not None:
        raise RuleViolation(f"only a cancelled visit has a cancellation reason (this one: {outcome.replace('_', ' ')})",
                            field="cancellation_reason")
    elif not operator or not truck_plate:
        raise RuleViolation(f"a visit that happened ({outcome.replace('_', ' ')}) needs the operator and the truck",
                            field="operator" if not operator else "truck_plate")
    if outcome == "emptied":
        if volume_m3 is None or volume_m3 <= 0:
            raise RuleViolation("an emptying needs the volume removed (m3, more than 0)", field="volume_m3")
    elif volume_m3 is not None:
        raise RuleViolation(f"no sludge was removed at a visit that ended {outcome.replace('_', ' ')}: "
                            "leave volume_m3 out", field="volume_m3")
    events = [new_event(DesludgingVisitRecorded(job_id=state.job_id, member_id=state.member_id,  # type: ignore[arg-type]
                                             visit_id=visit_id, visited_on=visited_on, outcome=outcome,  # type: ignore[arg-type]
                                             operator=operator, truck_plate=truck_plate, volume_m3=volume_m3,
                                             cancellation_reason=cancellation_reason))]
    if note:
        events.append(NewEvent(VISIT_NOTED, {"job_id": state.job_id, "visit_id": visit_id, "note": note}))
    return events


def volume_mismatch(removed: Decimal, received: Decimal, tolerance_pct: int) -> bool:
    """True when the plant received more or less than removed by more than ``tolerance_pct`` % of it."""
    return abs(received - removed) * 100 > removed * tolerance_pct


def acknowledge_receipt(state: ConstructionJob, visit_id: str, iplt_id: str, manifest_number: str,
                        received_on: date, volume_received_m3: Decimal, settings: CooperativeSettings,
                        today: date) -> list[NewEvent]:
    """The IPLT acknowledges the sludge of an emptying: the tank counts as safely emptied, and when this is
    the latest acknowledged emptying the next one falls due an interval after it."""
    s = _tank(state)
    visit = s.visit(visit_id)
    if visit is None:
        raise UnknownVisit(f"no desludging visit {visit_id} on this tank", field="visit_id")
    if not visit.recorded:
        raise RuleViolation(f"visit {visit_id} has no recorded outcome yet: nothing was delivered", field="visit_id")
    if visit.outcome != "emptied":
        raise RuleViolation(f"visit {visit_id} did not empty the tank ({str(visit.outcome).replace('_', ' ')}): "
                            "there is no sludge to receive", field="visit_id")
    if visit.receipt is not None:
        raise AlreadyExists(f"the IPLT already acknowledged visit {visit_id} (manifest "
                            f"{visit.receipt.manifest_number} on {visit.receipt.received_on})", field="visit_id")
    assert visit.visited_on is not None and visit.volume_m3 is not None
    not_future(received_on, today, "received_on")
    _not_before(received_on, visit.visited_on, "the emptying", "received_on")
    tolerance = settings.iplt_volume_tolerance_pct
    events = [new_event(IpltReceiptAcknowledged(
        job_id=state.job_id, member_id=state.member_id, visit_id=visit_id, iplt_id=iplt_id,  # type: ignore[arg-type]
        manifest_number=manifest_number, received_on=received_on, volume_removed_m3=visit.volume_m3,
        volume_received_m3=volume_received_m3,
        volume_mismatch=volume_mismatch(visit.volume_m3, volume_received_m3, tolerance)))]
    if s.last_emptied_on is None or visit.visited_on > s.last_emptied_on:
        interval = settings.desludging_interval_years
        events.append(new_event(NextDesludgingDue(job_id=state.job_id, member_id=state.member_id,  # type: ignore[arg-type]
                                               last_emptied_on=visit.visited_on, interval_years=interval,
                                               due_on=next_due_date(visit.visited_on, interval))))
    return events

