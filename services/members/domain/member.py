"""A cooperative member: state rebuilt from events, and commands as pure functions returning events."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from shared.contracts.members import MemberRegistered
from shared.envelope import Envelope, NewEvent

STREAM_TYPE = "member"


class MemberRuleViolation(Exception):
    pass


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
    programme_consent: bool = False
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.member_id is not None


def evolve(state: Member, event: Envelope) -> Member:
    if event.type == MemberRegistered.event_type:
        p = MemberRegistered.model_validate(event.payload)
        return Member(
            member_id=str(p.member_id), member_number=p.member_number, sex=p.sex, joined_on=p.joined_on,
            household_size=p.household_size, group_id=p.group_id, village=p.village, district=p.district,
            area=p.area, b40=p.b40, programme_consent=p.programme_consent, version=event.version,
        )
    return replace(state, version=event.version)


def fold(events: list[Envelope]) -> Member:
    state = Member()
    for e in events:
        state = evolve(state, e)
    return state


def register(state: Member, member_id: str, details: dict[str, Any], today: date) -> list[NewEvent]:
    """Register a new member. ``details`` holds the non-personal facts only."""
    if state.exists:
        raise MemberRuleViolation(f"member {member_id} is already registered")
    joined_on = details["joined_on"]
    if joined_on > today:
        raise MemberRuleViolation("joined_on cannot be in the future")
    event = MemberRegistered(member_id=member_id, **details)
    return [NewEvent(MemberRegistered.event_type, event.model_dump(mode="json"), MemberRegistered.schema_version)]
