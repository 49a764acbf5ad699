"""A contractor of one cooperative: on-the-job SNI training, certification and its validity, active or not.

Name and contact are personal data: they stay in the service's own table, never in events. Only a
contractor whose certification is valid on the day can be assigned septic-tank work
(``certification_problem`` says why not). The quality record comes from the jobs it built
(``quality_record``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import reduce

from services.sanitation.domain.errors import AlreadyExists, RuleViolation, not_future
from shared.contracts.sanitation import ContractorCertificationExpired, ContractorCertified
from shared.envelope import Envelope, NewEvent

STREAM_TYPE = "contractor"
# internal events (not published): they carry nothing another service needs
REGISTERED = "sanitation.ContractorRegistered"
TRAINED = "sanitation.ContractorTrained"
DEACTIVATED = "sanitation.ContractorDeactivated"
REACTIVATED = "sanitation.ContractorReactivated"


@dataclass(frozen=True)
class Contractor:
    contractor_id: str | None = None
    registered_on: date | None = None
    trained_on: date | None = None
    certificate_number: str | None = None
    certified_on: date | None = None
    valid_until: date | None = None
    #: the ``valid_until`` whose expiry has been recorded (a renewal makes it stale)
    expiry_recorded_for: date | None = None
    active: bool = True
    deactivation_reason: str | None = None
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.contractor_id is not None

    def certified_on_day(self, day: date) -> bool:
        return certification_problem(self, day) is None


def evolve(state: Contractor, event: Envelope) -> Contractor:
    p = event.payload
    if event.type == REGISTERED:
        trained = date.fromisoformat(p["trained_on"]) if p.get("trained_on") else None
        return Contractor(contractor_id=p["contractor_id"], registered_on=date.fromisoformat(p["registered_on"]),
                          trained_on=trained, version=event.version)
    if event.type == TRAINED:
        return replace(state, trained_on=date.fromisoformat(p["trained_on"]), version=event.version)
    if event.type == ContractorCertified.event_type:
        c = ContractorCertified.model_validate(p)
        return replace(state, certificate_number=c.certificate_number, trained_on=c.trained_on,
                       certified_on=c.certified_on, valid_until=c.valid_until, version=event.version)
    if event.type == ContractorCertificationExpired.event_type:
        x = ContractorCertificationExpired.model_validate(p)
        return replace(state, expiry_recorded_for=x.valid_until, version=event.version)
    if event.type == DEACTIVATED:
        return replace(state, active=False, deactivation_reason=p.get("reason"), version=event.version)
    if event.type == REACTIVATED:
        return replace(state, active=True, deactivation_reason=None, version=event.version)
    return replace(state, version=event.version)


def fold(events: Iterable[Envelope], state: Contractor | None = None) -> Contractor:
    return reduce(evolve, events, state or Contractor())


def register(state: Contractor, contractor_id: str, trained_on: date | None, today: date) -> list[NewEvent]:
    if state.exists:
        raise AlreadyExists(f"contractor {contractor_id} is already registered", field="contractor_id")
    if trained_on is not None:
        not_future(trained_on, today, "trained_on")
    return [NewEvent(REGISTERED, {"contractor_id": contractor_id, "registered_on": today.isoformat(),
                                  "trained_on": trained_on.isoformat() if trained_on else None})]


def record_training(state: Contractor, trained_on: date, today: date) -> list[NewEvent]:
    """The on-the-job SNI septic-tank training, a condition of certification."""
    not_future(trained_on, today, "trained_on")
    if state.trained_on == trained_on:
        return []
    return [NewEvent(TRAINED, {"contractor_id": state.contractor_id, "trained_on": trained_on.isoformat()})]


def certify(state: Contractor, certificate_number: str, certified_on: date, valid_until: date,
            today: date) -> list[NewEvent]:
    """Record a new or renewed certification. It needs the training first, and a validity after its start."""
    if state.trained_on is None:
        raise RuleViolation("the contractor has no on-the-job SNI septic-tank training recorded: record the "
                            "training before the certification", field="certified_on")
    not_future(certified_on, today, "certified_on")
    if certified_on < state.trained_on:
        raise RuleViolation(f"certified_on ({certified_on}) is before the training ({state.trained_on})",
                            field="certified_on")
    if valid_until <= certified_on:
        raise RuleViolation(f"valid_until ({valid_until}) must be after certified_on ({certified_on})",
                            field="valid_until")
    if (state.certificate_number, state.certified_on, state.valid_until) == (certificate_number, certified_on,
                                                                           valid_until):
        raise AlreadyExists(f"certificate {certificate_number} is already recorded", field="certificate_number")
    event = ContractorCertified(contractor_id=state.contractor_id, certificate_number=certificate_number,  # type: ignore[arg-type]
                                trained_on=state.trained_on, certified_on=certified_on, valid_until=valid_until)
    return [NewEvent(event.event_type, event.model_dump(mode="json"), event.schema_version)]


def record_expiry(state: Contractor, today: date) -> list[NewEvent]:
    """Record that the certification has expired, once per certificate; nothing if it has not (yet)."""
    if state.valid_until is None or state.valid_until >= today or state.expiry_recorded_for == state.valid_until:
        return []
    assert state.certificate_number is not None
    event = ContractorCertificationExpired(contractor_id=state.contractor_id,  # type: ignore[arg-type]
                                           certificate_number=state.certificate_number,
                                           valid_until=state.valid_until, recorded_on=today)
    return [NewEvent(event.event_type, event.model_dump(mode="json"), event.schema_version)]


def deactivate(state: Contractor, reason: str, today: date) -> list[NewEvent]:
    if not state.active:
        raise RuleViolation("the contractor is already inactive")
    return [NewEvent(DEACTIVATED, {"contractor_id": state.contractor_id, "reason": reason,
                                   "deactivated_on": today.isoformat()})]


def reactivate(state: Contractor, today: date) -> list[NewEvent]:
    if state.active:
        raise RuleViolation("the contractor is already active")
    return [NewEvent(REACTIVATED, {"contractor_id": state.contractor_id, "reactivated_on": today.isoformat()})]


def certification_problem(state: Contractor, day: date) -> str | None:
    """Why the contractor may not take septic-tank work on ``day``; None when its certification is valid."""
    if state.certified_on is None or state.valid_until is None:
        return "the contractor has no SNI 2398:2017 septic-tank certification"
    if day < state.certified_on:
        return f"the contractor's certification {state.certificate_number} is valid only from {state.certified_on}"
    if day > state.valid_until:
        return (f"the contractor's certification {state.certificate_number} expired on "
                f"{state.valid_until + timedelta(days=1)} (valid until {state.valid_until})")
    return None


# -- quality record -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOutcome:
    """What the quality record needs of one job the contractor built."""

    inspections: int
    first_inspection_passed: bool | None
    reworks: int
    ordered_on: date
    completed_on: date | None


@dataclass(frozen=True)
class QualityRecord:
    jobs_inspected: int
    passed_first_time: int
    #: share of inspected jobs whose first inspection passed (0..1); None before any inspection
    first_time_pass_rate: float | None
    rework_count: int
    jobs_handed_over: int
    #: median days from order to handover over handed-over jobs; None before any handover
    median_days_to_handover: float | None


def quality_record(outcomes: Iterable[JobOutcome]) -> QualityRecord:
    jobs = list(outcomes)
    inspected = [j for j in jobs if j.inspections > 0]
    first_pass = sum(1 for j in inspected if j.first_inspection_passed)
    days = [(j.completed_on - j.ordered_on).days for j in jobs if j.completed_on is not None]
    return QualityRecord(
        jobs_inspected=len(inspected),
        passed_first_time=first_pass,
        first_time_pass_rate=round(first_pass / len(inspected), 4) if inspected else None,
        rework_count=sum(j.reworks for j in jobs),
        jobs_handed_over=len(days),
        median_days_to_handover=float(statistics.median(days)) if days else None,
    )
