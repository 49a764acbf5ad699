"""A cooperative member and their household: state rebuilt from events, commands as pure functions.

Personal data (name, NIK, phone) is not part of this state nor of any event: it lives in the service's
``member_personal_data`` table. A correction of it leaves only an internal, non-personal trace
(``members.PersonalDataCorrected``: which fields changed), which also gives personal corrections the
same optimistic concurrency as the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import reduce
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from services.members.domain import jmp
from services.members.domain.errors import MemberRuleViolation, StateConflict, not_future
from services.members.domain.settings import DEFAULT, CooperativeSettings, assess_b40, b40_by_rule
from shared.contracts import new_event
from shared.contracts.members import (
    HouseholdSurveyed,
    HygieneInputs,
    MemberDetailsChanged,
    MemberExited,
    MemberGroupChanged,
    MemberPersonalDataErased,
    MemberRegistered,
    SanitationInputs,
    WaterInputs,
)
from shared.envelope import Envelope, NewEvent

__all__ = ["MemberRuleViolation", "StateConflict"]

STREAM_TYPE = "member"
#: internal (never published): which personal fields were corrected, never their values
PERSONAL_DATA_CORRECTED = "members.PersonalDataCorrected"
PERSONAL_FIELDS = ("name", "nik", "phone")
#: internal (never published): what the sanitation service's events showed about the household's facility,
#: recorded by the reaction in ``services/members/sanitation_reactions.py`` (the sanitation service
#: publishes the facts themselves; these are the member's copy, so the member's stream alone gives its rung)
SANITATION_HANDED_OVER = "members.SanitationFacilityHandedOver"
SANITATION_TANK_EMPTIED = "members.SanitationTankEmptied"


class SanitationFacilityHandedOver(BaseModel):
    """A toilet or SNI septic tank built for the household passed its inspection and was handed over
    (sanitation.JobCompleted): an improved sanitation facility."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    member_id: UUID
    job_id: UUID
    kind: str
    completed_on: date


class SanitationTankEmptied(BaseModel):
    """The household's septic tank (the job that built it) was emptied and the treatment plant acknowledged
    the sludge (sanitation.IpltReceiptAcknowledged): excreta removed and treated off-site."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    member_id: UUID
    job_id: UUID
    visit_id: UUID
    received_on: date

#: non-personal details a correction may change; member number and group have their own rules
CORRECTABLE = ("sex", "joined_on", "household_size", "village", "district", "area", "electricity",
               "income_band", "b40", "programme_consent")
REQUIRED = ("sex", "joined_on", "household_size", "programme_consent")
PROXIES = ("electricity", "income_band")


@dataclass(frozen=True)
class SurveySummary:
    survey_id: str
    surveyed_on: date
    kind: str
    water_rung: str
    sanitation_rung: str
    hygiene_rung: str | None
    #: the survey's answer to "shared with other households?" (None: not asked, e.g. no facility)
    sanitation_shared: bool | None = None


@dataclass(frozen=True)
class Handover:
    job_id: str
    kind: str
    completed_on: date


@dataclass(frozen=True)
class Emptying:
    job_id: str
    visit_id: str
    received_on: date


@dataclass(frozen=True)
class Member:
    member_id: str | None = None
    member_number: str | None = None
    sex: str | None = None
    joined_on: date | None = None
    household_size: int = 0
    group_id: str | None = None
    village: str | None = None
    district: str | None = None
    area: str | None = None
    b40: bool | None = None
    electricity: str | None = None
    income_band: str | None = None
    programme_consent: bool = False
    exited_on: date | None = None
    exit_reason: str | None = None
    personal_data_erased: bool = False
    surveys: int = 0
    baseline_on: date | None = None
    current_survey: SurveySummary | None = None
    handovers: tuple[Handover, ...] = ()
    emptyings: tuple[Emptying, ...] = ()
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.member_id is not None

    @property
    def exited(self) -> bool:
        return self.exited_on is not None

    def active_on(self, day: date) -> bool:
        return self.exists and (self.exited_on is None or self.exited_on > day)

    @property
    def handed_over_on(self) -> date | None:
        """The day of the latest sanitation facility handed over to the household."""
        return max((h.completed_on for h in self.handovers), default=None)

    @property
    def tank_emptied_on(self) -> date | None:
        """The first acknowledged emptying of a septic tank handed over to the household."""
        tanks = {h.job_id for h in self.handovers if h.kind == jmp.EMPTIED_JOB_KIND}
        return min((e.received_on for e in self.emptyings if e.job_id in tanks), default=None)

    def sanitation(self) -> tuple[str | None, str | None]:
        """The household's sanitation rung and its source ("survey", "construction" or "emptying")."""
        s = self.current_survey
        return jmp.sanitation_after_works(s.sanitation_rung if s else None,  # type: ignore[arg-type]
                                          s.sanitation_shared if s else None,
                                          bool(self.handovers), self.tank_emptied_on is not None)

    @property
    def follow_up_due(self) -> bool:
        """A facility was handed over and the household has not been surveyed on or since that day."""
        handed = self.handed_over_on
        return handed is not None and (self.current_survey is None or self.current_survey.surveyed_on < handed)


@dataclass(frozen=True)
class GroupInfo:
    """What a command needs to know about the group a member goes to (from the group registry)."""

    group_id: str
    centre_id: str | None
    closed: bool = False


@dataclass(frozen=True)
class SurveyAnswers:
    survey_id: str
    surveyed_on: date
    water: WaterInputs
    sanitation: SanitationInputs
    hygiene: HygieneInputs
    household_size: int | None = None


# -- evolve ------------------------------------------------------------------------------------------------


def evolve(state: Member, event: Envelope) -> Member:
    return _evolve(state, event.type, event.payload, event.version)


def _evolve(state: Member, type_: str, payload: dict[str, Any], version: int) -> Member:
    if type_ == MemberRegistered.event_type:
        p = MemberRegistered.model_validate(payload)
        return Member(
            member_id=str(p.member_id), member_number=p.member_number, sex=p.sex, joined_on=p.joined_on,
            household_size=p.household_size, group_id=p.group_id, village=p.village, district=p.district,
            area=p.area, b40=p.b40, programme_consent=p.programme_consent, version=version,
        )
    if type_ == MemberDetailsChanged.event_type:
        d = MemberDetailsChanged.model_validate(payload)
        return replace(state, **{f: getattr(d, f) for f in d.changed_fields}, version=version)
    if type_ == MemberGroupChanged.event_type:
        g = MemberGroupChanged.model_validate(payload)
        return replace(state, group_id=g.to_group_id, version=version)
    if type_ == HouseholdSurveyed.event_type:
        s = HouseholdSurveyed.model_validate(payload)
        summary = SurveySummary(str(s.survey_id), s.surveyed_on, s.kind, s.water_rung, s.sanitation_rung,
                                s.hygiene_rung, s.sanitation.shared)
        current = state.current_survey
        # the current rungs are the latest survey's by survey date (a late entry of an older one is history)
        if current is None or s.surveyed_on >= current.surveyed_on:
            current = summary
        return replace(state, surveys=state.surveys + 1, current_survey=current, version=version,
                       baseline_on=s.surveyed_on if s.kind == "baseline" else state.baseline_on)
    if type_ == MemberExited.event_type:
        x = MemberExited.model_validate(payload)
        return replace(state, exited_on=x.exited_on, exit_reason=x.reason, version=version)
    if type_ == MemberPersonalDataErased.event_type:
        return replace(state, personal_data_erased=True, version=version)
    if type_ == SANITATION_HANDED_OVER:
        h = SanitationFacilityHandedOver.model_validate(payload)
        return replace(state, handovers=(*state.handovers, Handover(str(h.job_id), h.kind, h.completed_on)),
                       version=version)
    if type_ == SANITATION_TANK_EMPTIED:
        t = SanitationTankEmptied.model_validate(payload)
        return replace(state, emptyings=(*state.emptyings, Emptying(str(t.job_id), str(t.visit_id), t.received_on)),
                       version=version)
    return replace(state, version=version)


def fold(events: list[Envelope]) -> Member:
    return reduce(evolve, events, Member())


def _then(state: Member, events: list[NewEvent]) -> Member:
    """The state after ``events`` (to decide further events in the same command)."""
    for e in events:
        state = _evolve(state, e.type, e.payload, state.version + 1)
    return state


# -- rules shared by commands ------------------------------------------------------------------------------


def _must_be_active(state: Member) -> None:
    if not state.exists:
        raise MemberRuleViolation("no such member")
    if state.exited:
        raise StateConflict(f"the member exited on {state.exited_on}: their record is closed")


def check_group(group_id: str | None, group: GroupInfo | None, settings: CooperativeSettings,
                field: str = "group_id") -> None:
    """A member can go to a group that is open, or to an unregistered group code unless the cooperative
    requires registered groups."""
    if group_id is None:
        return
    if group is None:
        if settings.require_registered_groups:
            raise MemberRuleViolation(f"no group {group_id} in this cooperative: form the group first", field=field)
        return
    if group.closed:
        raise MemberRuleViolation(f"group {group_id} is closed", field=field)


# -- commands ----------------------------------------------------------------------------------------------


def register(state: Member, member_id: str, details: dict[str, Any], today: date, *,
             settings: CooperativeSettings = DEFAULT, group: GroupInfo | None = None,
             baseline: SurveyAnswers | None = None) -> list[NewEvent]:
    """Register a new member. ``details`` holds the non-personal facts only: those of
    ``MemberRegistered`` and, optionally, the poverty proxies ``electricity`` and ``income_band``."""
    if state.exists:
        raise StateConflict(f"member {member_id} is already registered")
    details = dict(details)
    given = {k: details.pop(k, None) for k in PROXIES}
    proxies = {k: v for k, v in given.items() if v is not None}
    if details["joined_on"] > today:
        raise MemberRuleViolation("joined_on cannot be in the future", field="joined_on")
    check_group(details.get("group_id"), group, settings)
    details["b40"] = assess_b40(settings, proxies.get("electricity"), proxies.get("income_band"),
                                details.get("b40"))
    events = [new_event(MemberRegistered(member_id=member_id, **details))]
    if proxies:
        events.append(new_event(MemberDetailsChanged(member_id=member_id, cause="registration",
                                                  changed_fields=list(proxies), **proxies)))
    if baseline is not None:
        try:
            events += record_survey(_then(state, events), baseline, today)
        except MemberRuleViolation as e:
            field = f"baseline_survey.{e.field}" if e.field else "baseline_survey"
            raise type(e)(e.message, field=field) from None
    return events


def correct_details(state: Member, changes: dict[str, Any], today: date, *,
                    settings: CooperativeSettings = DEFAULT,
                    personal_fields_changed: tuple[str, ...] = ()) -> list[NewEvent]:
    """Correct non-personal details (``changes``: only the fields given; None clears an optional one)
    and record which personal fields the caller corrected in the personal-data table. Nothing when
    nothing changes."""
    _must_be_active(state)
    assert state.member_id is not None
    unknown = set(changes) - set(CORRECTABLE)
    if unknown:
        raise MemberRuleViolation(f"cannot be corrected here: {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    for f in REQUIRED:
        if f in changes and changes[f] is None:
            raise MemberRuleViolation("cannot be cleared", field=f)
    if changes.get("joined_on") is not None:
        not_future(changes["joined_on"], today, "joined_on")
    new = {f: changes.get(f, getattr(state, f)) for f in CORRECTABLE}
    computed = b40_by_rule(settings, new["electricity"], new["income_band"])
    if "b40" in changes:
        new["b40"] = assess_b40(settings, new["electricity"], new["income_band"], changes["b40"])
    elif computed is not None:
        new["b40"] = computed  # the proxy decides; without one, the earlier assessment stands
    changed = [f for f in CORRECTABLE if new[f] != getattr(state, f)]
    events: list[NewEvent] = []
    if changed:
        events.append(new_event(MemberDetailsChanged(member_id=state.member_id, cause="correction",
                                                  changed_fields=changed, **{f: new[f] for f in changed})))
    personal = [f for f in PERSONAL_FIELDS if f in personal_fields_changed]
    if personal:
        if state.personal_data_erased:
            raise StateConflict("this member's personal data was erased")
        events.append(NewEvent(PERSONAL_DATA_CORRECTED, {"member_id": state.member_id, "fields": personal}))
    return events


def move_group(state: Member, group_id: str, effective_on: date, today: date, *,
               group: GroupInfo | None, settings: CooperativeSettings = DEFAULT) -> list[NewEvent]:
    """Move the member to another group (majelis)."""
    _must_be_active(state)
    assert state.member_id is not None and state.joined_on is not None
    if group_id == state.group_id:
        raise StateConflict(f"the member is already in group {group_id}", field="group_id")
    check_group(group_id, group, settings)
    not_future(effective_on, today, "effective_on")
    if effective_on < state.joined_on:
        raise MemberRuleViolation(f"before the member joined ({state.joined_on})", field="effective_on")
    return [new_event(MemberGroupChanged(member_id=state.member_id, from_group_id=state.group_id, to_group_id=group_id,
                                      centre_id=group.centre_id if group else None, effective_on=effective_on))]


def record_survey(state: Member, answers: SurveyAnswers, today: date) -> list[NewEvent]:
    """Record a WASH survey of the household and its JMP rungs. The first survey is the baseline; a later
    one may be entered late, but none can predate the baseline."""
    _must_be_active(state)
    assert state.member_id is not None
    not_future(answers.surveyed_on, today, "surveyed_on")
    if state.baseline_on is not None and answers.surveyed_on < state.baseline_on:
        raise MemberRuleViolation(f"before the baseline survey of {state.baseline_on}", field="surveyed_on")
    try:
        rungs = jmp.classify(answers.water, answers.sanitation, answers.hygiene)
    except jmp.SurveyInputError as e:
        raise MemberRuleViolation(e.reason, field=e.field) from None
    return [new_event(HouseholdSurveyed(
        survey_id=answers.survey_id, member_id=state.member_id,
        kind="baseline" if state.surveys == 0 else "follow_up", surveyed_on=answers.surveyed_on,
        household_size=answers.household_size or state.household_size,
        water=answers.water, sanitation=answers.sanitation, hygiene=answers.hygiene,
        water_rung=rungs.water, sanitation_rung=rungs.sanitation, hygiene_rung=rungs.hygiene,
    ))]


def exit_member(state: Member, exited_on: date, reason: str, today: date) -> list[NewEvent]:
    """The member leaves the cooperative."""
    _must_be_active(state)
    assert state.member_id is not None and state.joined_on is not None
    not_future(exited_on, today, "exited_on")
    if exited_on < state.joined_on:
        raise MemberRuleViolation(f"before the member joined ({state.joined_on})", field="exited_on")
    return [new_event(MemberExited(member_id=state.member_id, exited_on=exited_on, reason=reason))]  # type: ignore[arg-type]


def erase_personal_data(state: Member, today: date) -> list[NewEvent]:
    """Erase an exited member's personal data (the caller blanks the personal-data row in the same
    transaction); the event records that it happened, nothing personal."""
    if not state.exists:
        raise MemberRuleViolation("no such member")
    assert state.member_id is not None
    if not state.exited:
        raise StateConflict("only an exited member's personal data can be erased: record the exit first")
    if state.personal_data_erased:
        raise StateConflict("this member's personal data was already erased")
    return [new_event(MemberPersonalDataErased(member_id=state.member_id, erased_on=today))]


# -- what the sanitation service's events show (the reaction's decisions) -------------------------------------


def _known_member(state: Member) -> None:
    if not state.exists:
        raise MemberRuleViolation("no such member")


def record_handover(state: Member, job_id: str, kind: str, completed_on: date) -> list[NewEvent]:
    """A construction job handed over to the household: recorded once per job, and only for a sanitation
    facility (a water connection does not change the sanitation ladder). Recorded for an exited member
    too: it is history, and changes nothing they can be offered."""
    _known_member(state)
    assert state.member_id is not None
    if kind not in jmp.SANITATION_JOB_KINDS or any(h.job_id == job_id for h in state.handovers):
        return []
    payload = SanitationFacilityHandedOver(member_id=state.member_id, job_id=job_id, kind=kind,  # type: ignore[arg-type]
                                           completed_on=completed_on)
    return [NewEvent(SANITATION_HANDED_OVER, payload.model_dump(mode="json"), 1)]


def record_tank_emptied(state: Member, job_id: str, visit_id: str, received_on: date) -> list[NewEvent]:
    """A tank's sludge acknowledged at an IPLT: recorded once per visit, in whatever order it arrives with
    the handover; it counts once the handover of that septic tank is known too."""
    _known_member(state)
    assert state.member_id is not None
    if any(e.visit_id == visit_id for e in state.emptyings):
        return []
    payload = SanitationTankEmptied(member_id=state.member_id, job_id=job_id, visit_id=visit_id,  # type: ignore[arg-type]
                                    received_on=received_on)
    return [NewEvent(SANITATION_TANK_EMPTIED, payload.model_dump(mode="json"), 1)]
