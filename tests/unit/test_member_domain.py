"""Given events / when command / then events, for the member aggregate (no infrastructure)."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from services.members.domain.member import Member, MemberRuleViolation, fold, register
from shared.contracts.members import MemberRegistered
from shared.envelope import Envelope
from tests.events import recorded as stored

DETAILS = {"member_number": "BMI-1", "sex": "female", "joined_on": date(2022, 1, 5), "household_size": 4,
           "group_id": "majelis-1", "village": "Pasir Jaya", "district": "Cikupa", "area": "rural",
           "b40": True, "programme_consent": True}


def recorded(events: list, stream_id: str) -> list[Envelope]:  # type: ignore[type-arg]
    return stored(events, stream_id, stream_type="member")


def test_register_a_new_member() -> None:
    member_id = str(uuid4())
    events = register(Member(), member_id, DETAILS, today=date(2024, 1, 1))
    assert [e.type for e in events] == ["members.MemberRegistered"]
    payload = MemberRegistered.model_validate(events[0].payload)
    assert str(payload.member_id) == member_id and payload.household_size == 4
    state = fold(recorded(events, member_id))
    assert state.exists and state.member_number == "BMI-1" and state.version == 1 and state.b40 is True


def test_cannot_register_twice() -> None:
    member_id = str(uuid4())
    state = fold(recorded(register(Member(), member_id, DETAILS, today=date(2024, 1, 1)), member_id))
    with pytest.raises(MemberRuleViolation, match="already registered"):
        register(state, member_id, DETAILS, today=date(2024, 1, 1))


def test_join_date_cannot_be_in_the_future() -> None:
    with pytest.raises(MemberRuleViolation, match="future"):
        register(Member(), str(uuid4()), {**DETAILS, "joined_on": date(2024, 1, 2)}, today=date(2024, 1, 1))


def test_personal_fields_are_not_part_of_the_event() -> None:
    with pytest.raises(ValueError):
        register(Member(), str(uuid4()), {**DETAILS, "nik": "3603124501800001"}, today=date(2024, 1, 1))
