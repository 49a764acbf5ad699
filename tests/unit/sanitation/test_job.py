"""A construction job, given events / when command / then events or refusal, for every transition."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.sanitation.domain import job as j
from services.sanitation.domain.checklist import JudgedItem
from services.sanitation.domain.errors import AlreadyExists, RuleViolation
from services.sanitation.domain.settings import DEFAULTS, CooperativeSettings
from shared.contracts.sanitation import InspectionRecorded
from tests.unit.sanitation.given import History, types
from tests.unit.sanitation.jobs import (
    ASSIGNED,
    CERTIFIED,
    COMPLETED,
    FINANCING,
    INSPECTED,
    JOB,
    MEMBER,
    ORDERED,
    OTHER,
    REINSPECTED,
    REWORKED,
    STARTED,
    TODAY,
    assigned,
    completed,
    contractor,
    failed,
    findings,
    in_rework,
    inspect,
    judged,
    ordered,
    passed,
    started,
)

# -- order --------------------------------------------------------------------------------------------


def test_order_a_financed_job() -> None:
    h = ordered()
    assert types([*h.envelopes]) == ["sanitation.JobOrdered"]  # type: ignore[list-item]
    assert h.envelopes[0].payload == {"job_id": JOB, "member_id": MEMBER, "kind": "septic_tank",
                                      "financing_id": FINANCING, "ordered_on": "2025-04-03"}
    s = h.state
    assert (s.status, s.kind, s.financing_id, s.ordered_on, s.village) == ("ordered", "septic_tank", FINANCING,
                                                                           ORDERED, None)


def test_order_a_cash_job_with_its_village() -> None:
    h = ordered("toilet_upgrade", financing=None, village="Pasir Jaya")
    assert [e.type for e in h.envelopes] == ["sanitation.JobOrdered", "sanitation.JobVillageSet"]
    assert h.state.financing_id is None and h.state.village == "Pasir Jaya"


def test_order_twice_is_refused() -> None:
    with pytest.raises(AlreadyExists, match="already ordered"):
        j.order(ordered().state, JOB, MEMBER, "septic_tank", None, ORDERED, None, TODAY)


def test_a_member_who_left_gets_no_job_ordered_on_or_after_the_day() -> None:
    for left in (ORDERED, date(2025, 1, 2)):
        with pytest.raises(RuleViolation, match=f"member {MEMBER} left the cooperative on {left}") as e:
            j.order(j.ConstructionJob(), JOB, MEMBER, "septic_tank", None, ORDERED, None, TODAY,
                    member_exited_on=left)
        assert e.value.field == "member_id"
    later = j.order(j.ConstructionJob(), JOB, MEMBER, "septic_tank", None, ORDERED, None, TODAY,
                    member_exited_on=date(2025, 4, 4))
    assert [e.type for e in later] == ["sanitation.JobOrdered"]


def test_order_in_the_future_or_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(RuleViolation, match="future") as e:
        j.order(j.ConstructionJob(), JOB, MEMBER, "septic_tank", None, date(2026, 7, 1), None, TODAY)
    assert e.value.field == "ordered_on"
    with pytest.raises(RuleViolation, match="unknown job kind") as e:
        j.order(j.ConstructionJob(), JOB, MEMBER, "pond", None, ORDERED, None, TODAY)  # type: ignore[arg-type]
    assert e.value.field == "kind"


def test_set_village_later() -> None:
    h = ordered()
    h.given(j.set_village(h.state, "Bitung Jaya"))
    assert h.state.village == "Bitung Jaya"
    assert j.set_village(h.state, "Bitung Jaya") == []


# -- assign -------------------------------------------------------------------------------------------


def test_assign_a_certified_contractor() -> None:
    h = assigned()
    e = h.envelopes[-1]
    assert e.type == "sanitation.ContractorAssigned"
    assert e.payload == {"job_id": JOB, "member_id": MEMBER, "kind": "septic_tank", "financing_id": FINANCING,
                         "contractor_id": CERTIFIED, "assigned_on": "2025-04-05"}
    assert (h.state.status, h.state.contractor_id, h.state.assigned_on) == ("assigned", CERTIFIED, ASSIGNED)


def test_reassign_before_work_starts() -> None:
    h = assigned()
    h.given(j.assign(h.state, contractor(OTHER), date(2025, 4, 6), TODAY))
    assert h.state.contractor_id == OTHER and h.state.status == "assigned"


def test_assigning_the_same_contractor_again_is_refused() -> None:
    with pytest.raises(AlreadyExists, match="already assigned"):
        j.assign(assigned().state, contractor(), ASSIGNED, TODAY)


def test_contractor_cannot_change_after_work_started() -> None:
    with pytest.raises(RuleViolation, match="only change before work starts"):
        j.assign(started().state, contractor(OTHER), date(2025, 4, 8), TODAY)


@pytest.mark.parametrize(("who", "reason"), [
    (contractor(OTHER, certified=False), "septic-tank work needs a certified contractor: the contractor has no "
                                         "SNI 2398:2017 septic-tank certification"),
    (contractor(OTHER, valid_until=date(2025, 4, 4)), "certification SNI-001 expired on 2025-04-05 "
                                                      "(valid until 2025-04-04)"),
    (contractor(OTHER, active=False), "is inactive (stopped working)"),
])
def test_septic_tank_work_needs_an_active_validly_certified_contractor(who, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as e:
        j.assign(ordered().state, who, ASSIGNED, TODAY)
    assert reason in e.value.message and e.value.field == "contractor_id"


def test_certification_is_checked_on_the_assignment_day() -> None:
    who = contractor(OTHER, valid_until=date(2025, 4, 5))
    assert j.assign(ordered().state, who, date(2025, 4, 5), TODAY)  # last valid day
    with pytest.raises(RuleViolation, match="expired on 2025-04-06"):
        j.assign(ordered().state, who, date(2025, 4, 6), TODAY)


@pytest.mark.parametrize("kind", ["toilet_upgrade", "water_connection"])
def test_other_kinds_take_an_uncertified_but_active_contractor(kind: str) -> None:
    h = ordered(kind)
    h.given(j.assign(h.state, contractor(OTHER, certified=False), ASSIGNED, TODAY))
    assert h.state.status == "assigned"
    with pytest.raises(RuleViolation, match="inactive"):
        j.assign(ordered(kind).state, contractor(OTHER, certified=False, active=False), ASSIGNED, TODAY)


@pytest.mark.parametrize(("day", "message"), [(date(2025, 4, 2), "before the order"), (date(2026, 7, 1), "future")])
def test_assignment_date_is_checked(day: date, message: str) -> None:
    with pytest.raises(RuleViolation, match=message) as e:
        j.assign(ordered().state, contractor(), day, TODAY)
    assert e.value.field == "assigned_on"


# -- start --------------------------------------------------------------------------------------------


def test_start() -> None:
    h = started()
    assert h.envelopes[-1].payload == {"job_id": JOB, "member_id": MEMBER, "contractor_id": CERTIFIED,
                                       "started_on": "2025-04-07"}
    assert h.state.status == "started" and h.state.started_on == STARTED


def test_start_needs_a_contractor() -> None:
    with pytest.raises(RuleViolation, match="no contractor is assigned"):
        j.start(ordered().state, STARTED, TODAY)


def test_start_twice_is_refused() -> None:
    with pytest.raises(RuleViolation, match="already started"):
        j.start(started().state, STARTED, TODAY)


@pytest.mark.parametrize(("day", "message"), [(date(2025, 4, 4), "before the assignment"), (date(2026, 7, 1), "future")])
def test_start_date_is_checked(day: date, message: str) -> None:
    with pytest.raises(RuleViolation, match=message):
        j.start(assigned().state, day, TODAY)


# -- inspect ------------------------------------------------------------------------------------------


def test_a_failed_inspection() -> None:
    h = failed()
    assert [e.type for e in h.envelopes[-2:]] == ["sanitation.InspectionFindingsRecorded",
                                                  "sanitation.InspectionRecorded"]
    published = InspectionRecorded.model_validate(h.envelopes[-1].payload)
    assert published.passed is False and published.inspection_number == 1
    assert str(published.financing_id) == FINANCING and published.inspected_on == INSPECTED
    assert [i.code for i in published.items if not i.passed] == ["dimensions"]
    assert len(published.items) == 10
    internal = h.envelopes[-2].payload
    assert internal["septic_tank"]["width_m"] == "0.7" and internal["settings"]["min_width_m"] == "0.75"
    assert h.state.status == "inspection_failed"
    last = h.state.last_inspection
    assert last is not None and replace(last, failures=()) == j.Inspection(1, INSPECTED, False, ("dimensions",))
    assert [(f.code, "width 0.7 m (min 0.75 m) FAIL" in (f.finding or "")) for f in last.failures] == [("dimensions", True)]


def test_a_passed_reinspection_after_rework() -> None:
    h = passed()
    published = InspectionRecorded.model_validate(h.envelopes[-1].payload)
    assert published.passed is True and published.inspection_number == 2 and all(i.passed for i in published.items)
    assert str(published.financing_id) == FINANCING
    assert h.state.status == "inspection_passed" and len(h.state.reworks) == 1


def test_passed_is_true_only_when_every_item_passed() -> None:
    for over in ({"vent_pipe": False}, {"distance_to_well_m": 9}, {"household_size": 13}):  # 13 x 130 L > 1.664 m3
        h = started()
        h.given(j.inspect(h.state, INSPECTED, findings(**over), None, DEFAULTS, TODAY))
        published = InspectionRecorded.model_validate(h.envelopes[-1].payload)
        assert published.passed is False and sum(not i.passed for i in published.items) == 1


def test_a_cash_job_inspection_carries_no_financing() -> None:
    h = inspect(started(financing=None), True, INSPECTED)
    assert InspectionRecorded.model_validate(h.envelopes[-1].payload).financing_id is None


@pytest.mark.parametrize("kind", ["toilet_upgrade", "water_connection"])
def test_other_kinds_are_inspected_with_their_items(kind: str) -> None:
    h = inspect(started(kind), False, INSPECTED)
    assert h.state.status == "inspection_failed"
    published = InspectionRecorded.model_validate(h.envelopes[-1].payload)
    assert [i.code for i in published.items] == list(judged(kind))
    with pytest.raises(RuleViolation, match="inspected with the items"):
        j.inspect(started(kind).state, INSPECTED, findings(), None, DEFAULTS, TODAY)


@pytest.mark.parametrize(("history", "message"), [
    (ordered, "work has not started"),
    (assigned, "work has not started"),
    (failed, "must record the rework before a re-inspection"),
    (passed, "already passed inspection #2"),
    (completed, "already passed inspection #2"),
])
def test_inspection_is_refused_outside_started_and_rework(history, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation, match=message):
        j.inspect(history().state, TODAY, findings(), None, DEFAULTS, TODAY)


@pytest.mark.parametrize(("history", "day", "message"), [
    (started, date(2025, 4, 6), "before the start of work"),
    (in_rework, date(2025, 4, 21), "before the rework"),
    (started, date(2026, 7, 1), "future"),
])
def test_inspection_date_is_checked(history, day: date, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation, match=message) as e:
        j.inspect(history().state, day, findings(), None, DEFAULTS, TODAY)
    assert e.value.field == "inspected_on"


def test_the_thresholds_in_force_decide() -> None:
    h = started()
    strict = CooperativeSettings(min_distance_to_well_m=20)  # type: ignore[arg-type]
    h.given(j.inspect(h.state, INSPECTED, findings(), None, strict, TODAY))
    assert h.state.status == "inspection_failed" and h.state.last_inspection.failed_items == ("distance_to_well",)  # type: ignore[union-attr]
    assert h.envelopes[-2].payload["settings"]["min_distance_to_well_m"] == "20"


@pytest.mark.parametrize(("kind", "inspection", "expected"), [
    # a septic tank: the computed finding, with the inspector's note and photo for the item
    ("septic_tank", dict(septic_tank=findings(width_m=j.Decimal("0.7"), compartments=1, evidence={
        "two_compartments": {"note": "one wall missing", "photo_ref": "p/1.jpg"}})), [
        j.FailedItem("two_compartments", "1 compartment (min 2)", "one wall missing", "p/1.jpg"),
        j.FailedItem("dimensions", "length:width 2.29:1 (2:1 to 3:1) ok; width 0.7 m (min 0.75 m) FAIL; "
                                   "length 1.6 m (min 1.5 m) ok; depth incl. freeboard 1.6 m (min 1.5 m) ok; "
                                   "freeboard 0.3 m (min 0.3 m) ok")]),
    # a judged checklist: no computed finding, the inspector's note is the reason
    ("water_connection", dict(items={"meter_installed": JudgedItem(passed=True),
                                     "water_flows": JudgedItem(passed=False, note="no pressure at the tap"),
                                     "no_leaks": JudgedItem(passed=False)}), [
        j.FailedItem("water_flows", None, "no pressure at the tap"), j.FailedItem("no_leaks")]),
    ("septic_tank", dict(septic_tank=findings()), []),
])
def test_an_inspection_keeps_why_each_item_failed(kind: str, inspection: dict, expected: list) -> None:  # type: ignore[type-arg]
    h = started(kind)
    h.given(j.inspect(h.state, INSPECTED, inspection.get("septic_tank"), inspection.get("items"), DEFAULTS, TODAY))
    last = h.state.last_inspection
    assert last is not None and list(last.failures) == expected
    assert last.failed_items == tuple(f.code for f in expected) and last.passed == (not expected)
    assert h.state.pending_notes == ()


# -- rework -------------------------------------------------------------------------------------------


def test_rework_after_a_failed_inspection() -> None:
    h = in_rework()
    assert h.envelopes[-1].type == "sanitation.ReworkStarted"
    assert h.envelopes[-1].payload == {"job_id": JOB, "after_inspection": 1, "started_on": "2025-04-22",
                                       "note": "widened the tank"}
    assert h.state.status == "rework" and h.state.reworks == (REWORKED,)


@pytest.mark.parametrize(("history", "message"), [
    (started, "only a job whose last inspection failed"),
    (passed, "only a job whose last inspection failed"),
    (in_rework, "already under way"),
])
def test_rework_is_refused_unless_the_last_inspection_failed(history, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation, match=message):
        j.rework(history().state, TODAY, None, TODAY)


def test_rework_cannot_predate_the_failed_inspection() -> None:
    with pytest.raises(RuleViolation, match="before the failed inspection #1"):
        j.rework(failed().state, date(2025, 4, 19), None, TODAY)


def test_several_rework_rounds() -> None:
    h = in_rework()
    inspect(h, False, REINSPECTED)
    h.given(j.rework(h.state, date(2025, 4, 26), None, TODAY))
    inspect(h, True, date(2025, 4, 27))
    assert [i.passed for i in h.state.inspections] == [False, False, True]
    assert len(h.state.reworks) == 2 and h.state.status == "inspection_passed"


# -- complete -----------------------------------------------------------------------------------------


def test_complete_a_septic_tank_schedules_its_first_desludging() -> None:
    h = completed()
    assert [e.type for e in h.envelopes[-2:]] == ["sanitation.JobCompleted", "sanitation.DesludgingScheduled"]
    assert h.envelopes[-2].payload == {"job_id": JOB, "member_id": MEMBER, "kind": "septic_tank",
                                       "financing_id": FINANCING, "contractor_id": CERTIFIED,
                                       "completed_on": "2025-04-28", "pdam_customer_number": None}
    assert h.envelopes[-1].payload == {"job_id": JOB, "member_id": MEMBER, "completed_on": "2025-04-28",
                                       "interval_years": 3, "due_on": "2028-04-28"}
    assert h.state.status == "completed" and h.state.desludging == j.DesludgingSchedule(3, date(2028, 4, 28))


@pytest.mark.parametrize(("completed_on", "interval", "due_on"), [
    (date(2024, 2, 29), 3, date(2027, 2, 28)),
    (date(2024, 2, 29), 4, date(2028, 2, 29)),
    (date(2025, 4, 28), 2, date(2027, 4, 28)),
    (date(2025, 4, 28), 5, date(2030, 4, 28)),
])
def test_first_due_date_uses_the_cooperatives_interval(completed_on: date, interval: int, due_on: date) -> None:
    h = passed()
    # a tank handed over on a leap day: dates of the lifecycle are shifted, the rule is the same
    state = replace(h.state, inspections=(j.Inspection(1, date(2024, 2, 1), True),))
    events = j.complete(state, completed_on, None, CooperativeSettings(desludging_interval_years=interval), TODAY)
    assert events[1].payload["due_on"] == due_on.isoformat() and events[1].payload["interval_years"] == interval


def test_completing_a_job_whose_last_inspection_failed_is_refused() -> None:
    with pytest.raises(RuleViolation) as e:
        j.complete(failed().state, COMPLETED, None, DEFAULTS, TODAY)
    assert e.value.message == ("the last inspection (#1 on 2025-04-20) failed (dimensions): the job can be "
                              "completed only after a re-inspection passes")
    with pytest.raises(RuleViolation, match="failed"):
        j.complete(in_rework().state, COMPLETED, None, DEFAULTS, TODAY)


@pytest.mark.parametrize("history", [ordered, assigned, started])
def test_completing_before_any_inspection_is_refused(history) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation, match="only after an inspection passes"):
        j.complete(history().state, COMPLETED, None, DEFAULTS, TODAY)


def test_completing_twice_is_refused() -> None:
    with pytest.raises(AlreadyExists, match="already handed over on 2025-04-28"):
        j.complete(completed().state, COMPLETED, None, DEFAULTS, TODAY)


def test_a_water_connection_completes_with_its_pdam_customer_number() -> None:
    with pytest.raises(RuleViolation, match="PDAM customer number") as e:
        j.complete(passed("water_connection").state, COMPLETED, None, DEFAULTS, TODAY)
    assert e.value.field == "pdam_customer_number"
    h = completed("water_connection", pdam="PDAM-TKR-0012345")
    assert [e.type for e in h.envelopes[-1:]] == ["sanitation.JobCompleted"]  # no desludging for water
    assert h.envelopes[-1].payload["pdam_customer_number"] == "PDAM-TKR-0012345"
    assert h.state.pdam_customer_number == "PDAM-TKR-0012345" and h.state.desludging is None


@pytest.mark.parametrize("kind", ["septic_tank", "toilet_upgrade"])
def test_only_a_water_connection_has_a_pdam_number(kind: str) -> None:
    with pytest.raises(RuleViolation, match="only a water connection") as e:
        j.complete(passed(kind).state, COMPLETED, "PDAM-1", DEFAULTS, TODAY)
    assert e.value.field == "pdam_customer_number"


def test_a_toilet_upgrade_completes_without_desludging() -> None:
    h = completed("toilet_upgrade")
    assert h.envelopes[-1].type == "sanitation.JobCompleted" and h.state.desludging is None


@pytest.mark.parametrize(("day", "message"), [(date(2025, 4, 24), "before the passed inspection #2"),
                                              (date(2026, 7, 1), "future")])
def test_completion_date_is_checked(day: date, message: str) -> None:
    with pytest.raises(RuleViolation, match=message) as e:
        j.complete(passed().state, day, None, DEFAULTS, TODAY)
    assert e.value.field == "completed_on"


def test_the_whole_lifecycle_in_order() -> None:
    h = completed()
    assert [e.type for e in h.envelopes] == [
        "sanitation.JobOrdered", "sanitation.ContractorAssigned", "sanitation.JobStarted",
        "sanitation.InspectionFindingsRecorded", "sanitation.InspectionRecorded", "sanitation.ReworkStarted",
        "sanitation.InspectionFindingsRecorded", "sanitation.InspectionRecorded", "sanitation.JobCompleted",
        "sanitation.DesludgingScheduled",
    ]
    assert h.state.version == 10 and h.state.assigned_on == ASSIGNED and h.state.started_on == STARTED
    assert [i.inspected_on for i in h.state.inspections] == [INSPECTED, REINSPECTED]


# -- a financed job: the work order's contractor ------------------------------------------------------


@pytest.mark.parametrize(("kind", "named", "assigned_to", "problem"), [
    ("septic_tank", contractor(), CERTIFIED, None),
    ("septic_tank", None, None, "which is not registered in this cooperative"),
    ("septic_tank", contractor(certified=False), None, "septic-tank work needs a certified contractor: the "
                                                       "contractor has no SNI 2398:2017"),
    ("septic_tank", contractor(valid_until=date(2025, 4, 2)), None, "expired on 2025-04-03"),
    ("septic_tank", contractor(active=False), None, "is inactive (stopped working)"),
    ("water_connection", contractor(certified=False), CERTIFIED, None),  # only septic tanks need the certificate
])
def test_a_financed_job_takes_the_work_orders_contractor_when_it_may(
        kind: str, named: object, assigned_to: str | None, problem: str | None) -> None:
    h = History(j.evolve, j.ConstructionJob(), JOB).given(
        j.order_financed(JOB, MEMBER, kind, FINANCING, ORDERED, CERTIFIED, named, TODAY))  # type: ignore[arg-type]
    s = h.state
    assert (s.status, s.contractor_id) == ("assigned" if assigned_to else "ordered", assigned_to)
    if problem is None:
        assert s.assignment_problem is None and s.assigned_on == ORDERED
        assert types(h.envelopes) == ["sanitation.JobOrdered", "sanitation.ContractorAssigned"]
    else:
        assert problem in (s.assignment_problem or "") and CERTIFIED in (s.assignment_problem or "")
        assert types(h.envelopes) == ["sanitation.JobOrdered", "sanitation.WorkOrderContractorNotAssigned"]
        # an officer's assignment later clears the reason
        h.given(j.assign(h.state, contractor(OTHER), ASSIGNED, TODAY))
        assert (h.state.status, h.state.contractor_id, h.state.assignment_problem) == ("assigned", OTHER, None)


def test_a_financed_job_without_a_named_contractor_is_only_ordered() -> None:
    events = j.order_financed(JOB, MEMBER, "water_connection", FINANCING, ORDERED, None, None, TODAY)
    assert [e.type for e in events] == ["sanitation.JobOrdered"]
