"""Centres, groups and promotion sessions: given events / when command / then events or a refusal."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from services.members.domain import organisation as org
from services.members.domain import session as ses
from services.members.domain import settings as cfg
from services.members.domain.errors import MemberRuleViolation, StateConflict
from tests.unit.members.helpers import given, types

TODAY = date(2025, 6, 10)
CENTRE = {"name": "Pusat Pasir Jaya", "branch": "Cikupa", "village": "Pasir Jaya", "district": "Cikupa"}


def a_centre() -> org.Centre:
    return given(org.fold_centre, "c", org.open_centre(org.Centre(), "pusat-1", CENTRE, date(2019, 6, 1), TODAY))


def a_group(centre_id: str | None = "pusat-1") -> tuple[org.Group, list]:  # type: ignore[type-arg]
    events = org.form_group(org.Group(), "majelis-07", {"name": "Majelis Mawar", "centre_id": centre_id,
                                                        "meeting_day": "tuesday"}, date(2019, 7, 2), TODAY,
                            centre=a_centre() if centre_id else None)
    return given(org.fold_group, "g", events), events


# -- centres -------------------------------------------------------------------------------------------------


def test_open_and_change_a_centre() -> None:
    events = org.open_centre(org.Centre(), "pusat-1", CENTRE, date(2019, 6, 1), TODAY)
    assert types(events) == [org.CENTRE_OPENED]
    assert events[0].payload == {"centre_id": "pusat-1", **CENTRE, "opened_on": "2019-06-01"}
    state = given(org.fold_centre, "c", events)
    change = org.change_centre(state, {"branch": "Balaraja", "name": "Pusat Pasir Jaya"})
    assert change[0].payload == {"centre_id": "pusat-1", "changed_fields": ["branch"], "branch": "Balaraja"}
    assert given(org.fold_centre, "c", events, change).branch == "Balaraja"
    assert org.change_centre(state, {"village": "Pasir Jaya"}) == []


def test_centre_refusals() -> None:
    with pytest.raises(StateConflict, match="already exists"):
        org.open_centre(a_centre(), "pusat-1", CENTRE, TODAY, TODAY)
    with pytest.raises(MemberRuleViolation, match="future"):
        org.open_centre(org.Centre(), "pusat-2", CENTRE, date(2025, 6, 11), TODAY)
    with pytest.raises(MemberRuleViolation, match="cleared"):
        org.change_centre(a_centre(), {"name": None})
    with pytest.raises(MemberRuleViolation, match="no such centre"):
        org.change_centre(org.Centre(), {"branch": "x"})


def test_stream_ids_derive_from_codes() -> None:
    # the same code always names the same stream (no second centre with that code), a centre and a group
    # of the same code, or two codes, never the same one
    import uuid

    centre = org.centre_stream_id("pusat-1")
    assert uuid.UUID(centre) == uuid.uuid5(uuid.NAMESPACE_URL, "washfin:members:centre:pusat-1")
    assert len({centre, org.centre_stream_id("pusat-2"), org.group_stream_id("pusat-1"),
                org.group_stream_id("pusat-2")}) == 4


# -- groups --------------------------------------------------------------------------------------------------


def test_form_a_group_in_a_centre() -> None:
    state, events = a_group()
    assert types(events) == [org.GROUP_FORMED]
    assert events[0].payload == {"group_id": "majelis-07", "name": "Majelis Mawar", "centre_id": "pusat-1",
                                 "meeting_day": "tuesday", "formed_on": "2019-07-02"}
    assert state.exists and state.centre_id == "pusat-1" and not state.closed


def test_a_group_needs_an_existing_centre_when_it_names_one() -> None:
    with pytest.raises(MemberRuleViolation, match="open it first") as e:
        org.form_group(org.Group(), "majelis-9", {"name": "M", "centre_id": "pusat-x"}, TODAY, TODAY, centre=org.Centre())
    assert e.value.field == "centre_id"
    assert org.form_group(org.Group(), "kelompok-3", {"name": "Kelompok 3"}, TODAY, TODAY, centre=None)


def test_group_changes_and_closing() -> None:
    state, formed = a_group()
    with pytest.raises(StateConflict, match="already exists"):
        org.form_group(state, "majelis-07", {"name": "x"}, TODAY, TODAY, centre=None)
    changed = org.change_group(state, {"meeting_day": "friday", "centre_id": None}, centre=None)
    assert changed[0].payload["changed_fields"] == ["centre_id", "meeting_day"]
    with pytest.raises(MemberRuleViolation, match="open it first"):
        org.change_group(state, {"centre_id": "pusat-x"}, centre=org.Centre())
    with pytest.raises(StateConflict, match="2 active member"):
        org.close_group(state, TODAY, TODAY, active_members=2)
    with pytest.raises(MemberRuleViolation, match="before the group was formed"):
        org.close_group(state, date(2019, 7, 1), TODAY, active_members=0)
    closed = org.close_group(state, date(2025, 6, 1), TODAY, active_members=0)
    assert closed[0].payload == {"group_id": "majelis-07", "closed_on": "2025-06-01"}
    after = given(org.fold_group, "g", formed, closed)
    assert after.closed
    with pytest.raises(StateConflict, match="already closed"):
        org.close_group(after, TODAY, TODAY, active_members=0)
    with pytest.raises(StateConflict, match="closed on"):
        org.change_group(after, {"name": "x"}, centre=None)


# -- sessions ------------------------------------------------------------------------------------------------

A, B, C = (str(uuid4()) for _ in range(3))
S1, S2 = str(uuid4()), str(uuid4())
SESSION = {"kind": "triggering", "held_on": date(2025, 2, 11), "topics": ["sanitation"], "group_id": "majelis-07",
           "village": "Pasir Jaya", "district": "Cikupa", "facilitator_id": "FO-017",
           "attendee_member_ids": [A, B], "other_attendees": 6}


def a_session() -> tuple[ses.Session, list]:  # type: ignore[type-arg]
    events = ses.hold_session(ses.Session(), S1, SESSION, TODAY, active_members={A: True, B: True})
    return given(ses.fold, S1, events), events


def test_hold_a_session_with_attendance() -> None:
    state, events = a_session()
    assert types(events) == ["members.PromotionSessionHeld"]
    p = events[0].payload
    assert p["attendee_member_ids"] == [A, B] and p["other_attendees"] == 6 and p["kind"] == "triggering"
    assert state.attendees == (A, B) and state.held_on == date(2025, 2, 11)


@pytest.mark.parametrize(("over", "known", "field", "message"), [
    ({"held_on": date(2025, 6, 11)}, {A: True, B: True}, "held_on", "after it was held"),
    ({"group_id": None, "village": None}, {A: True, B: True}, "group_id", "group or village"),
    ({"attendee_member_ids": [A, A]}, {A: True}, "attendee_member_ids", "more than once"),
    ({}, {A: True}, "attendee_member_ids", "no such member"),
    ({}, {A: True, B: False}, "attendee_member_ids", "exited"),
    ({"attendee_member_ids": [], "other_attendees": 0}, {}, "attendee_member_ids", "at least one attendee"),
])
def test_session_refusals(over: dict, known: dict, field: str, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(MemberRuleViolation, match=message) as e:
        ses.hold_session(ses.Session(), S1, {**SESSION, **over}, TODAY, active_members=known)
    assert e.value.field == field


def test_a_session_of_non_members_only_and_a_village_session() -> None:
    events = ses.hold_session(ses.Session(), S2, {**SESSION, "group_id": None, "attendee_member_ids": [],
                                                    "other_attendees": 40}, TODAY, active_members={})
    assert events[0].payload["village"] == "Pasir Jaya" and events[0].payload["attendee_member_ids"] == []


def test_add_attendance() -> None:
    state, held = a_session()
    added = ses.add_attendance(state, [C], active_members={C: True})
    assert added[0].payload == {"session_id": S1, "member_ids": [C]}
    assert given(ses.fold, S1, held, added).attendees == (A, B, C)
    with pytest.raises(StateConflict, match="already recorded"):
        ses.add_attendance(state, [A], active_members={A: True})
    with pytest.raises(MemberRuleViolation, match="no such member"):
        ses.add_attendance(state, [C], active_members={})
    with pytest.raises(StateConflict, match="already recorded"):
        ses.hold_session(state, S1, SESSION, TODAY, active_members={A: True, B: True})


def test_mark_a_lead() -> None:
    state, held = a_session()
    lead = ses.mark_lead(state, A, "sanitation", date(2025, 2, 11), TODAY, member_active=True)
    assert lead[0].payload == {"session_id": S1, "member_id": A, "product": "sanitation", "marked_on": "2025-02-11"}
    after = given(ses.fold, S1, held, lead)
    assert (A, "sanitation") in after.leads
    # the same member may be a lead for the other product
    assert ses.mark_lead(after, A, "water", TODAY, TODAY, member_active=True)
    with pytest.raises(StateConflict, match="already a sanitation lead") as e:
        ses.mark_lead(after, A, "sanitation", TODAY, TODAY, member_active=True)
    assert e.value.field == "product"


@pytest.mark.parametrize(("member", "marked_on", "active", "message"), [
    (C, TODAY, True, "only an attendee"),
    (A, TODAY, False, "exited"),
    (A, date(2025, 6, 11), True, "future"),
    (A, date(2025, 2, 10), True, "before the session was held"),
], ids=["not-an-attendee", "exited", "future", "before-the-session"])
def test_lead_refusals(member: str, marked_on: date, active: bool, message: str) -> None:
    state, _ = a_session()
    with pytest.raises(MemberRuleViolation, match=message):
        ses.mark_lead(state, member, "water", marked_on, TODAY, member_active=active)


def test_unknown_session_refusals() -> None:
    with pytest.raises(MemberRuleViolation, match="no such session"):
        ses.add_attendance(ses.Session(), [A], active_members={A: True})
    with pytest.raises(MemberRuleViolation, match="no such session"):
        ses.mark_lead(ses.Session(), A, "water", TODAY, TODAY, member_active=True)


# -- settings ------------------------------------------------------------------------------------------------


def test_settings_change_and_defaults() -> None:
    assert cfg.fold([]) == cfg.DEFAULT
    assert cfg.DEFAULT.min_tenure_months == 12 and cfg.DEFAULT.max_days_overdue == 30
    assert cfg.DEFAULT.b40_electricity == ("none", "450", "900_subsidised")
    new = cfg.CooperativeSettings(b40_method="income_band", min_tenure_months=6)
    events = cfg.change(cfg.DEFAULT, new)
    assert types(events) == [cfg.SETTINGS_CHANGED]
    state = given(cfg.fold, cfg.STREAM_ID, events)
    assert state.b40_method == "income_band" and state.min_tenure_months == 6 and state.version == 1
    assert cfg.change(state, new) == []
    with pytest.raises(MemberRuleViolation) as e:
        cfg.change(state, cfg.CooperativeSettings(max_days_overdue=400))
    assert e.value.field == "max_days_overdue"
