"""The member aggregate: given events / when command / then events or a refusal, for every command."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import uuid4

import pytest

from services.members.domain import member as m
from services.members.domain.errors import MemberRuleViolation, StateConflict
from services.members.domain.member import GroupInfo, SurveyAnswers
from services.members.domain.settings import CooperativeSettings
from shared.contracts.members import HygieneInputs, SanitationInputs, WaterInputs
from tests.unit.members.helpers import given, payload, types

TODAY = date(2025, 6, 10)
DETAILS: dict[str, Any] = {"member_number": "BMI-1", "sex": "female", "joined_on": date(2022, 1, 5),
                           "household_size": 4, "group_id": "majelis-07", "village": "Pasir Jaya",
                           "district": "Cikupa", "area": "rural", "b40": None, "programme_consent": True}
INCOME_RULE = CooperativeSettings(b40_method="income_band")


def survey(on: date = date(2025, 1, 20), **over: Any) -> SurveyAnswers:
    parts: dict[str, Any] = {
        "water": WaterInputs(source="protected_dug_well", on_premises=False, round_trip_minutes=20),
        "sanitation": SanitationInputs(facility="pit_latrine_without_slab"),
        "hygiene": HygieneInputs(facility="none"),
    }
    parts.update(over)
    return SurveyAnswers(survey_id=str(uuid4()), surveyed_on=on, **parts)


class Member:
    """A member stream under test: ``given`` what happened, ``when`` a command."""

    def __init__(self, **details: Any) -> None:
        self.id = str(uuid4())
        self.history: list[list[Any]] = [m.register(m.Member(), self.id, {**DETAILS, **details}, TODAY)]

    @property
    def state(self) -> m.Member:
        return given(m.fold, self.id, *self.history)

    def then(self, events: list[Any]) -> list[Any]:
        self.history.append(events)
        return events


# -- register ------------------------------------------------------------------------------------------------


def test_register_emits_member_registered_only_without_extras() -> None:
    member_id = str(uuid4())
    events = m.register(m.Member(), member_id, DETAILS, TODAY)
    assert types(events) == ["members.MemberRegistered"]
    state = given(m.fold, member_id, events)
    assert state.exists and state.member_number == "BMI-1" and state.version == 1 and not state.exited


@pytest.mark.parametrize(("electricity", "b40"), [
    ("none", True), ("450", True), ("900_subsidised", True), ("900_non_subsidised", False), ("1300", False),
    ("2200", False), ("3500_plus", False)])
def test_b40_follows_the_default_electricity_rule(electricity: str, b40: bool) -> None:
    member_id = str(uuid4())
    events = m.register(m.Member(), member_id, {**DETAILS, "electricity": electricity}, TODAY)
    assert types(events) == ["members.MemberRegistered", "members.MemberDetailsChanged"]
    assert payload(events, "members.MemberRegistered")["b40"] is b40
    changed = payload(events, "members.MemberDetailsChanged")
    assert changed["cause"] == "registration" and changed["changed_fields"] == ["electricity"]
    assert changed["electricity"] == electricity
    state = given(m.fold, member_id, events)
    assert state.b40 is b40 and state.electricity == electricity


@pytest.mark.parametrize(("band", "b40"), [("below_1m", True), ("1m_to_2m", True), ("2m_to_3m", True),
                                           ("3m_to_5m", False), ("5m_and_above", False)])
def test_b40_follows_an_income_band_rule_when_the_cooperative_chose_it(band: str, b40: bool) -> None:
    events = m.register(m.Member(), str(uuid4()), {**DETAILS, "income_band": band, "electricity": "450"}, TODAY,
                        settings=INCOME_RULE)
    assert payload(events, "members.MemberRegistered")["b40"] is b40


def test_without_the_rules_proxy_a_stated_b40_stands() -> None:
    events = m.register(m.Member(), str(uuid4()), {**DETAILS, "b40": True, "income_band": "5m_and_above"}, TODAY)
    assert payload(events, "members.MemberRegistered")["b40"] is True  # electricity rule, no electricity given


def test_a_stated_b40_contradicting_the_rule_is_refused() -> None:
    with pytest.raises(MemberRuleViolation) as e:
        m.register(m.Member(), str(uuid4()), {**DETAILS, "b40": True, "electricity": "2200"}, TODAY)
    assert e.value.field == "b40" and "B40 rule" in e.value.message


def test_register_with_a_baseline_survey() -> None:
    member_id = str(uuid4())
    events = m.register(m.Member(), member_id, DETAILS, TODAY, baseline=survey())
    assert types(events) == ["members.MemberRegistered", "members.HouseholdSurveyed"]
    s = payload(events, "members.HouseholdSurveyed")
    assert s["kind"] == "baseline" and s["household_size"] == 4
    assert (s["water_rung"], s["sanitation_rung"], s["hygiene_rung"]) == ("basic", "unimproved", "no_facility")
    state = given(m.fold, member_id, events)
    assert state.baseline_on == date(2025, 1, 20) and state.current_survey is not None


def test_a_bad_baseline_names_its_field_under_baseline_survey() -> None:
    bad = survey(water=WaterInputs(source="protected_dug_well", on_premises=False))
    with pytest.raises(MemberRuleViolation) as e:
        m.register(m.Member(), str(uuid4()), DETAILS, TODAY, baseline=bad)
    assert e.value.field == "baseline_survey.water.round_trip_minutes"


def test_cannot_register_twice() -> None:
    member = Member()
    with pytest.raises(StateConflict, match="already registered"):
        m.register(member.state, member.id, DETAILS, TODAY)


def test_join_date_cannot_be_in_the_future() -> None:
    with pytest.raises(MemberRuleViolation, match="future") as e:
        m.register(m.Member(), str(uuid4()), {**DETAILS, "joined_on": date(2025, 6, 11)}, TODAY)
    assert e.value.field == "joined_on"


def test_group_rules_at_registration() -> None:
    closed = GroupInfo("majelis-07", "pusat-1", closed=True)
    with pytest.raises(MemberRuleViolation, match="closed"):
        m.register(m.Member(), str(uuid4()), DETAILS, TODAY, group=closed)
    strict = CooperativeSettings(require_registered_groups=True)
    with pytest.raises(MemberRuleViolation, match="form the group first") as e:
        m.register(m.Member(), str(uuid4()), DETAILS, TODAY, settings=strict, group=None)
    assert e.value.field == "group_id"
    # unregistered group codes are fine by default; a registered open group always is
    assert m.register(m.Member(), str(uuid4()), DETAILS, TODAY)
    assert m.register(m.Member(), str(uuid4()), DETAILS, TODAY, settings=strict, group=GroupInfo("majelis-07", None))


# -- correct details -----------------------------------------------------------------------------------------


def test_correct_details_records_only_what_changed() -> None:
    member = Member()
    events = m.correct_details(member.state, {"household_size": 6, "village": "Pasir Jaya", "area": "urban"}, TODAY)
    assert types(events) == ["members.MemberDetailsChanged"]
    p = events[0].payload
    assert p["cause"] == "correction" and p["changed_fields"] == ["household_size", "area"]
    assert p["household_size"] == 6 and p["area"] == "urban" and p["village"] is None
    member.then(events)
    assert member.state.household_size == 6 and member.state.area == "urban" and member.state.village == "Pasir Jaya"


def test_correcting_to_the_same_values_records_nothing() -> None:
    assert m.correct_details(Member().state, {"household_size": 4, "sex": "female"}, TODAY) == []


def test_an_optional_detail_can_be_cleared() -> None:
    member = Member()
    events = member.then(m.correct_details(member.state, {"village": None}, TODAY))
    assert events[0].payload["changed_fields"] == ["village"]
    assert member.state.village is None


def test_a_new_proxy_reassesses_b40() -> None:
    member = Member(electricity="2200")
    assert member.state.b40 is False
    events = member.then(m.correct_details(member.state, {"electricity": "450"}, TODAY))
    assert events[0].payload["changed_fields"] == ["electricity", "b40"] and events[0].payload["b40"] is True
    assert member.state.b40 is True
    with pytest.raises(MemberRuleViolation) as e:
        m.correct_details(member.state, {"b40": False}, TODAY)
    assert e.value.field == "b40"


def test_a_manual_b40_can_be_corrected_without_a_proxy() -> None:
    member = Member(b40=True)
    member.then(m.correct_details(member.state, {"b40": False}, TODAY))
    assert member.state.b40 is False


@pytest.mark.parametrize("field", ["sex", "joined_on", "household_size", "programme_consent"])
def test_required_details_cannot_be_cleared(field: str) -> None:
    with pytest.raises(MemberRuleViolation) as e:
        m.correct_details(Member().state, {field: None}, TODAY)
    assert e.value.field == field


def test_member_number_and_group_are_not_corrected_here() -> None:
    with pytest.raises(MemberRuleViolation) as e:
        m.correct_details(Member().state, {"member_number": "X"}, TODAY)
    assert e.value.field == "member_number"
    with pytest.raises(MemberRuleViolation):
        m.correct_details(Member().state, {"group_id": "majelis-12"}, TODAY)


def test_corrected_join_date_cannot_be_in_the_future() -> None:
    with pytest.raises(MemberRuleViolation, match="future"):
        m.correct_details(Member().state, {"joined_on": date(2026, 1, 1)}, TODAY)


def test_personal_corrections_leave_only_the_field_names() -> None:
    member = Member()
    events = m.correct_details(member.state, {}, TODAY, personal_fields_changed=("phone", "name"))
    assert types(events) == [m.PERSONAL_DATA_CORRECTED]
    assert events[0].payload == {"member_id": member.id, "fields": ["name", "phone"]}
    both = m.correct_details(member.state, {"household_size": 5}, TODAY, personal_fields_changed=("nik",))
    assert types(both) == ["members.MemberDetailsChanged", m.PERSONAL_DATA_CORRECTED]
    member.then(events)
    assert member.state.version == 2


def test_an_exited_members_record_is_closed() -> None:
    member = Member()
    member.then(m.exit_member(member.state, date(2025, 3, 1), "voluntary", TODAY))
    with pytest.raises(StateConflict, match="exited on 2025-03-01"):
        m.correct_details(member.state, {"household_size": 5}, TODAY)


def test_commands_on_an_unknown_member_are_refused() -> None:
    for command in (lambda s: m.correct_details(s, {"household_size": 2}, TODAY),
                    lambda s: m.record_survey(s, survey(), TODAY),
                    lambda s: m.exit_member(s, TODAY, "other", TODAY),
                    lambda s: m.erase_personal_data(s, TODAY),
                    lambda s: m.move_group(s, "g", TODAY, TODAY, group=None)):
        with pytest.raises(MemberRuleViolation, match="no such member"):
            command(m.Member())


# -- move group ----------------------------------------------------------------------------------------------


def test_move_to_another_group() -> None:
    member = Member()
    events = member.then(m.move_group(member.state, "majelis-12", date(2025, 5, 6), TODAY,
                                      group=GroupInfo("majelis-12", "pusat-2")))
    assert types(events) == ["members.MemberGroupChanged"]
    assert events[0].payload == {"member_id": member.id, "from_group_id": "majelis-07", "to_group_id": "majelis-12",
                                 "centre_id": "pusat-2", "effective_on": "2025-05-06"}
    assert member.state.group_id == "majelis-12"


def test_group_move_refusals() -> None:
    member = Member()
    state = member.state
    with pytest.raises(StateConflict, match="already in group"):
        m.move_group(state, "majelis-07", TODAY, TODAY, group=None)
    with pytest.raises(MemberRuleViolation, match="closed"):
        m.move_group(state, "majelis-9", TODAY, TODAY, group=GroupInfo("majelis-9", None, closed=True))
    with pytest.raises(MemberRuleViolation, match="form the group first"):
        m.move_group(state, "majelis-9", TODAY, TODAY, group=None,
                     settings=CooperativeSettings(require_registered_groups=True))
    with pytest.raises(MemberRuleViolation, match="future") as e:
        m.move_group(state, "majelis-9", date(2025, 6, 11), TODAY, group=None)
    assert e.value.field == "effective_on"
    with pytest.raises(MemberRuleViolation, match="before the member joined"):
        m.move_group(state, "majelis-9", date(2021, 12, 31), TODAY, group=None)
    # an unregistered group code is accepted by default, with no centre
    assert m.move_group(state, "majelis-9", TODAY, TODAY, group=None)[0].payload["centre_id"] is None


# -- surveys -------------------------------------------------------------------------------------------------


def test_first_survey_is_the_baseline_later_ones_follow_up() -> None:
    member = Member()
    first = member.then(m.record_survey(member.state, survey(date(2025, 1, 20)), TODAY))
    assert first[0].payload["kind"] == "baseline"
    better = survey(date(2025, 5, 2), sanitation=SanitationInputs(facility="flush_to_septic_tank", shared=False,
                                                                   excreta="never_emptied"), household_size=5)
    second = member.then(m.record_survey(member.state, better, TODAY))
    p = second[0].payload
    assert p["kind"] == "follow_up" and p["sanitation_rung"] == "safely_managed" and p["household_size"] == 5
    state = member.state
    assert state.surveys == 2 and state.baseline_on == date(2025, 1, 20)
    assert state.current_survey is not None and state.current_survey.sanitation_rung == "safely_managed"


def test_a_late_entered_older_follow_up_does_not_replace_the_current_rungs() -> None:
    member = Member()
    member.then(m.record_survey(member.state, survey(date(2025, 1, 20)), TODAY))
    member.then(m.record_survey(member.state, survey(date(2025, 5, 2), hygiene=HygieneInputs(
        facility="fixed", water_available=True, soap="soap_or_detergent")), TODAY))
    member.then(m.record_survey(member.state, survey(date(2025, 3, 1)), TODAY))
    current = member.state.current_survey
    assert current is not None and current.surveyed_on == date(2025, 5, 2) and current.hygiene_rung == "basic"


def test_survey_refusals() -> None:
    member = Member()
    member.then(m.record_survey(member.state, survey(date(2025, 1, 20)), TODAY))
    with pytest.raises(MemberRuleViolation, match="before the baseline") as e:
        m.record_survey(member.state, survey(date(2025, 1, 19)), TODAY)
    assert e.value.field == "surveyed_on"
    with pytest.raises(MemberRuleViolation, match="future"):
        m.record_survey(member.state, survey(date(2025, 6, 11)), TODAY)
    with pytest.raises(MemberRuleViolation) as e:
        m.record_survey(member.state, survey(sanitation=SanitationInputs(facility="flush_to_septic_tank")), TODAY)
    assert e.value.field == "sanitation.shared"
    member.then(m.exit_member(member.state, date(2025, 3, 1), "deceased", TODAY))
    with pytest.raises(StateConflict):
        m.record_survey(member.state, survey(date(2025, 2, 1)), TODAY)


# -- exit and erasure ----------------------------------------------------------------------------------------


def test_exit() -> None:
    member = Member()
    events = member.then(m.exit_member(member.state, date(2025, 3, 1), "moved_away", TODAY))
    assert types(events) == ["members.MemberExited"]
    assert events[0].payload == {"member_id": member.id, "exited_on": "2025-03-01", "reason": "moved_away"}
    state = member.state
    assert state.exited and not state.active_on(date(2025, 3, 1)) and state.active_on(date(2025, 2, 28))


def test_exit_refusals() -> None:
    member = Member()
    with pytest.raises(MemberRuleViolation, match="future"):
        m.exit_member(member.state, date(2025, 6, 11), "voluntary", TODAY)
    with pytest.raises(MemberRuleViolation, match="before the member joined"):
        m.exit_member(member.state, date(2022, 1, 4), "voluntary", TODAY)
    member.then(m.exit_member(member.state, date(2025, 3, 1), "voluntary", TODAY))
    with pytest.raises(StateConflict, match="exited"):
        m.exit_member(member.state, TODAY, "voluntary", TODAY)


def test_erase_personal_data_only_after_exit_and_once() -> None:
    member = Member()
    with pytest.raises(StateConflict, match="record the exit first"):
        m.erase_personal_data(member.state, TODAY)
    member.then(m.exit_member(member.state, date(2025, 3, 1), "voluntary", TODAY))
    events = member.then(m.erase_personal_data(member.state, TODAY))
    assert types(events) == ["members.MemberPersonalDataErased"]
    assert events[0].payload == {"member_id": member.id, "erased_on": "2025-06-10"}
    assert member.state.personal_data_erased
    with pytest.raises(StateConflict, match="already erased"):
        m.erase_personal_data(member.state, TODAY)


def test_no_member_event_carries_personal_data() -> None:
    member = Member(electricity="450")
    member.then(m.correct_details(member.state, {"household_size": 5}, TODAY, personal_fields_changed=("nik",)))
    member.then(m.record_survey(member.state, survey(), TODAY))
    member.then(m.exit_member(member.state, TODAY, "voluntary", TODAY))
    member.then(m.erase_personal_data(member.state, TODAY))
    for batch in member.history:
        for e in batch:
            assert not {"name", "nik", "phone"} & set(e.payload), e.type
