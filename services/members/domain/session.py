"""Promotion and community triggering (pemicuan) sessions, their attendance, and the leads they produce.

The funnel attended -> lead -> applied -> disbursed is reported from the published events: attendance
from ``PromotionSessionHeld`` / ``SessionAttendanceAdded``, leads from ``LeadMarked`` (which names the
session, so a lead is attributed to the session where the interest was shown), applications and
disbursements from the loans service's events of the same member.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from functools import reduce
from typing import Any

from services.members.domain.errors import MemberRuleViolation, StateConflict
from shared.contracts import new_event
from shared.contracts.members import LeadMarked, PromotionSessionHeld, SessionAttendanceAdded
from shared.envelope import Envelope, NewEvent

STREAM_TYPE = "promotion_session"


@dataclass(frozen=True)
class Session:
    session_id: str | None = None
    kind: str | None = None
    held_on: date | None = None
    topics: tuple[str, ...] = ()
    group_id: str | None = None
    village: str | None = None
    district: str | None = None
    facilitator_id: str | None = None
    other_attendees: int = 0
    attendees: tuple[str, ...] = ()
    leads: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.session_id is not None


def evolve(state: Session, event: Envelope) -> Session:
    if event.type == PromotionSessionHeld.event_type:
        p = PromotionSessionHeld.model_validate(event.payload)
        return Session(session_id=str(p.session_id), kind=p.kind, held_on=p.held_on, topics=tuple(p.topics),
                       group_id=p.group_id, village=p.village, district=p.district, facilitator_id=p.facilitator_id,
                       other_attendees=p.other_attendees, attendees=tuple(str(m) for m in p.attendee_member_ids),
                       version=event.version)
    if event.type == SessionAttendanceAdded.event_type:
        a = SessionAttendanceAdded.model_validate(event.payload)
        return replace(state, attendees=state.attendees + tuple(str(m) for m in a.member_ids), version=event.version)
    if event.type == LeadMarked.event_type:
        lead = LeadMarked.model_validate(event.payload)
        return replace(state, leads=state.leads | {(str(lead.member_id), lead.product)}, version=event.version)
    return replace(state, version=event.version)


def fold(events: list[Envelope]) -> Session:
    return reduce(evolve, events, Session())


def _check_attendees(member_ids: list[str], active_members: dict[str, bool], field_name: str) -> None:
    """Attendees are members of this cooperative who had not exited by the session's day, each listed once
    (someone may attend before joining: triggering sessions recruit)."""
    dupes = sorted(m for m, n in Counter(member_ids).items() if n > 1)
    if dupes:
        raise MemberRuleViolation(f"listed more than once: {', '.join(dupes)}", field=field_name)
    unknown = [m for m in member_ids if m not in active_members]
    if unknown:
        raise MemberRuleViolation(f"no such member in this cooperative: {', '.join(unknown)}", field=field_name)
    inactive = [m for m in member_ids if not active_members[m]]
    if inactive:
        raise MemberRuleViolation(f"had exited before the session's day: {', '.join(inactive)}",
                                  field=field_name)


def hold_session(state: Session, session_id: str, details: dict[str, Any], today: date, *,
                 active_members: dict[str, bool]) -> list[NewEvent]:
    """Record a session that was held, with the members who attended.

    ``active_members`` maps each listed member id known to the cooperative to whether they had not
    exited by the session's day (the handler looks them up).
    """
    if state.exists:
        raise StateConflict(f"session {session_id} is already recorded")
    held_on: date = details["held_on"]
    if held_on > today:
        raise MemberRuleViolation("a session is recorded after it was held", field="held_on")
    if not details.get("group_id") and not details.get("village"):
        raise MemberRuleViolation("say which group or village the session was for", field="group_id")
    attendees = [str(m) for m in details.get("attendee_member_ids", [])]
    _check_attendees(attendees, active_members, "attendee_member_ids")
    if not attendees and not details.get("other_attendees"):
        raise MemberRuleViolation("a session needs at least one attendee", field="attendee_member_ids")
    return [new_event(PromotionSessionHeld(session_id=session_id, **{**details, "attendee_member_ids": attendees}))]


def add_attendance(state: Session, member_ids: list[str], *, active_members: dict[str, bool]) -> list[NewEvent]:
    """Add members to the attendance of a recorded session."""
    if not state.exists:
        raise MemberRuleViolation("no such session")
    member_ids = [str(m) for m in member_ids]
    already = sorted(set(member_ids) & set(state.attendees))
    if already:
        raise StateConflict(f"already recorded as attending: {', '.join(already)}", field="member_ids")
    _check_attendees(member_ids, active_members, "member_ids")
    return [new_event(SessionAttendanceAdded(session_id=state.session_id, member_ids=member_ids))]


def mark_lead(state: Session, member_id: str, product: str, marked_on: date, today: date, *,
              member_active: bool) -> list[NewEvent]:
    """Mark an attendee as a lead for a water or sanitation product."""
    if not state.exists:
        raise MemberRuleViolation("no such session")
    assert state.held_on is not None
    if member_id not in state.attendees:
        raise MemberRuleViolation("only an attendee of this session can be marked as its lead", field="member_id")
    if not member_active:
        raise MemberRuleViolation("the member has exited", field="member_id")
    if (member_id, product) in state.leads:
        raise StateConflict(f"already a {product} lead of this session", field="product")
    if marked_on > today:
        raise MemberRuleViolation("marked_on cannot be in the future", field="marked_on")
    if marked_on < state.held_on:
        raise MemberRuleViolation(f"before the session was held ({state.held_on})", field="marked_on")
    return [new_event(LeadMarked(session_id=state.session_id, member_id=member_id, product=product,  # type: ignore[arg-type]
                              marked_on=marked_on))]
