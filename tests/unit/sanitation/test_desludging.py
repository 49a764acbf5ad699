"""Scheduled desludging of a handed-over septic tank: requests, visits and their outcomes, IPLT receipts,
and the next due date from the last acknowledged emptying only."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.sanitation.domain import job as j
from services.sanitation.domain.errors import AlreadyExists, RuleViolation, UnknownVisit
from services.sanitation.domain.settings import DEFAULTS, CooperativeSettings
from tests.unit.sanitation.given import History
from tests.unit.sanitation.jobs import JOB, MEMBER, TODAY, completed, passed, started

V1, V2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
D = Decimal


def scheduled(visit_id: str = V1, on: date = date(2026, 5, 1), h: History | None = None) -> History:
    h = h or completed()
    return h.given(j.schedule_visit(h.state, visit_id, on, "UPTD PAL Tangerang", "B 9123 TXA"))


def emptied(visit_id: str = V1, on: date = date(2026, 5, 2), volume: str = "2.5", h: History | None = None) -> History:
    h = scheduled(visit_id, on, h)
    return h.given(j.record_visit(h.state, visit_id, on, "emptied", None, None, D(volume), None, None, TODAY))


def acknowledged(visit_id: str = V1, on: date = date(2026, 5, 2), received: str = "2.5",
                 settings: CooperativeSettings = DEFAULTS, h: History | None = None) -> History:
    h = emptied(visit_id, on, h=h)
    return h.given(j.acknowledge_receipt(h.state, visit_id, "iplt-tangerang", f"MNF-{visit_id[:4]}", on,
                                         D(received), settings, TODAY))


# -- only handed-over septic tanks --------------------------------------------------------------------


@pytest.mark.parametrize(("history", "message"), [
    (lambda: started(), "has not been handed over yet \\(the job is started\\)"),
    (lambda: passed(), "has not been handed over yet \\(the job is inspection_passed\\)"),
    (lambda: completed("toilet_upgrade"), "desludging is for septic tanks; this job is a toilet upgrade"),
    (lambda: completed("water_connection", pdam="P-1"), "this job is a water connection"),
])
def test_desludging_is_for_handed_over_septic_tanks(history, message: str) -> None:  # type: ignore[no-untyped-def]
    state = history().state
    for attempt in (lambda: j.request_desludging(state, TODAY, None, TODAY),
                    lambda: j.schedule_visit(state, V1, TODAY, "op", "B 1"),
                    lambda: j.record_visit(state, V1, TODAY, "emptied", "op", "B 1", D(1), None, None, TODAY),
                    lambda: j.acknowledge_receipt(state, V1, "i", "m", TODAY, D(1), DEFAULTS, TODAY)):
        with pytest.raises(RuleViolation, match=message):
            attempt()


# -- on-demand requests -------------------------------------------------------------------------------


def test_request_on_demand() -> None:
    h = completed()
    h.given(j.request_desludging(h.state, date(2026, 1, 10), "overflowing in the rainy season", TODAY))
    assert h.envelopes[-1].type == "sanitation.DesludgingRequested"
    assert h.state.desludging.open_request_on == date(2026, 1, 10)  # type: ignore[union-attr]
    with pytest.raises(AlreadyExists, match="already requested on 2026-01-10"):
        j.request_desludging(h.state, date(2026, 1, 11), None, TODAY)


@pytest.mark.parametrize(("day", "message"), [(date(2025, 4, 27), "before the handover"), (date(2026, 7, 1), "future")])
def test_request_date_is_checked(day: date, message: str) -> None:
    with pytest.raises(RuleViolation, match=message):
        j.request_desludging(completed().state, day, None, TODAY)


def test_an_emptying_answers_the_request_but_other_outcomes_do_not() -> None:
    h = completed()
    h.given(j.request_desludging(h.state, date(2026, 1, 10), None, TODAY))
    scheduled(V1, date(2026, 1, 12), h)
    h.given(j.record_visit(h.state, V1, date(2026, 1, 12), "household_absent", None, None, None, None, None, TODAY))
    assert h.state.desludging.open_request_on == date(2026, 1, 10)  # type: ignore[union-attr]
    emptied(V2, date(2026, 1, 20), h=h)
    assert h.state.desludging.open_request_on is None  # type: ignore[union-attr]


# -- visits -------------------------------------------------------------------------------------------


def test_schedule_a_visit() -> None:
    h = scheduled(on=date(2026, 8, 1))  # a plan may lie in the future
    assert h.envelopes[-1].payload == {"job_id": JOB, "visit_id": V1, "planned_on": "2026-08-01",
                                       "operator": "UPTD PAL Tangerang", "truck_plate": "B 9123 TXA"}
    assert h.state.desludging.open_visit.visit_id == V1  # type: ignore[union-attr]


def test_one_open_visit_at_a_time() -> None:
    h = scheduled()
    with pytest.raises(RuleViolation, match=f"visit {V1} planned for 2026-05-01 is still open"):
        j.schedule_visit(h.state, V2, date(2026, 5, 3), None, None)
    with pytest.raises(AlreadyExists, match="already scheduled"):
        j.schedule_visit(h.state, V1, date(2026, 5, 3), None, None)


def test_a_visit_cannot_be_planned_before_handover() -> None:
    with pytest.raises(RuleViolation, match="before the handover") as e:
        j.schedule_visit(completed().state, V1, date(2025, 4, 1), None, None)
    assert e.value.field == "planned_on"


def test_record_an_emptying_with_the_scheduled_operator_and_truck() -> None:
    h = emptied()
    e = h.envelopes[-1]
    assert e.type == "sanitation.DesludgingVisitRecorded"
    assert e.payload == {"job_id": JOB, "member_id": MEMBER, "visit_id": V1, "visited_on": "2026-05-02",
                         "outcome": "emptied", "operator": "UPTD PAL Tangerang", "truck_plate": "B 9123 TXA",
                         "volume_m3": "2.5", "cancellation_reason": None}
    visit = h.state.desludging.visit(V1)  # type: ignore[union-attr]
    assert visit.outcome == "emptied" and visit.volume_m3 == D("2.5") and visit.receipt is None  # type: ignore[union-attr]
    assert h.state.desludging.open_visit is None  # type: ignore[union-attr]


def test_an_unacknowledged_emptying_does_not_move_the_due_date() -> None:
    h = emptied()
    assert h.state.desludging.next_due_on == date(2028, 4, 28)  # type: ignore[union-attr]
    assert h.state.desludging.last_emptied_on is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("outcome", "operator", "truck", "volume", "reason", "ok", "field"), [
    ("emptied", None, None, "2.5", None, True, None),                     # operator/truck from the schedule
    ("emptied", "Other op", "B 1 X", "2.5", None, True, None),
    ("emptied", None, None, None, None, False, "volume_m3"),
    ("emptied", None, None, "0", None, False, "volume_m3"),
    ("emptied", None, None, "2.5", "other", False, "cancellation_reason"),
    ("hose_cannot_reach", None, None, None, None, True, None),
    ("hose_cannot_reach", None, None, "1.0", None, False, "volume_m3"),
    ("household_absent", None, None, None, None, True, None),
    ("household_absent", None, None, "0.5", None, False, "volume_m3"),
    ("household_absent", None, None, None, "rescheduled", False, "cancellation_reason"),
    ("cancelled", None, None, None, "truck_unavailable", True, None),
    ("cancelled", None, None, None, None, False, "cancellation_reason"),
    ("cancelled", None, None, "1", "other", False, "volume_m3"),
])
def test_visit_outcomes(outcome: str, operator: str | None, truck: str | None, volume: str | None,
                        reason: str | None, ok: bool, field: str | None) -> None:
    state = scheduled().state
    args = (state, V1, date(2026, 5, 2), outcome, operator, truck, D(volume) if volume else None, reason, None,
            TODAY)
    if ok:
        assert [e.type for e in j.record_visit(*args)] == ["sanitation.DesludgingVisitRecorded"]  # type: ignore[arg-type]
    else:
        with pytest.raises(RuleViolation) as e:
            j.record_visit(*args)  # type: ignore[arg-type]
        assert e.value.field == field


def test_a_visit_that_happened_needs_operator_and_truck() -> None:
    h = completed()
    h.given(j.schedule_visit(h.state, V1, date(2026, 5, 1), None, None))
    with pytest.raises(RuleViolation, match="needs the operator and the truck") as e:
        j.record_visit(h.state, V1, date(2026, 5, 1), "household_absent", None, None, None, None, None, TODAY)
    assert e.value.field == "operator"
    assert j.record_visit(h.state, V1, date(2026, 5, 1), "cancelled", None, None, None, "bad_weather", None, TODAY)


def test_a_visits_free_text_note_stays_off_the_published_event() -> None:
    h = scheduled()
    events = j.record_visit(h.state, V1, date(2026, 5, 1), "hose_cannot_reach", None, None, None, None,
                            "Ibu Siti's alley is too narrow", TODAY)
    assert [e.type for e in events] == ["sanitation.DesludgingVisitRecorded", "sanitation.DesludgingVisitNoted"]
    assert "Siti" not in str(events[0].payload)
    h.given(events)
    assert h.state.desludging.visit(V1).note == "Ibu Siti's alley is too narrow"  # type: ignore[union-attr]


def test_recording_an_unknown_or_recorded_visit_is_refused() -> None:
    with pytest.raises(UnknownVisit, match=f"no desludging visit {V2} is scheduled"):
        j.record_visit(scheduled().state, V2, date(2026, 5, 2), "emptied", None, None, D(1), None, None, TODAY)
    with pytest.raises(AlreadyExists, match="already recorded \\(emptied on 2026-05-02\\)"):
        j.record_visit(emptied().state, V1, date(2026, 5, 2), "emptied", None, None, D(1), None, None, TODAY)


@pytest.mark.parametrize(("day", "message"), [(date(2025, 4, 27), "before the handover"), (date(2026, 7, 1), "future")])
def test_visit_date_is_checked(day: date, message: str) -> None:
    with pytest.raises(RuleViolation, match=message):
        j.record_visit(scheduled().state, V1, day, "emptied", None, None, D(1), None, None, TODAY)


# -- IPLT receipts ------------------------------------------------------------------------------------


def test_an_acknowledged_emptying_sets_the_next_due_date() -> None:
    h = acknowledged()
    receipt, due = h.envelopes[-2], h.envelopes[-1]
    assert receipt.type == "sanitation.IpltReceiptAcknowledged"
    assert receipt.payload == {"job_id": JOB, "member_id": MEMBER, "visit_id": V1, "iplt_id": "iplt-tangerang",
                               "manifest_number": "MNF-1111", "received_on": "2026-05-02",
                               "volume_removed_m3": "2.5", "volume_received_m3": "2.5", "volume_mismatch": False}
    assert due.type == "sanitation.NextDesludgingDue"
    assert due.payload == {"job_id": JOB, "member_id": MEMBER, "last_emptied_on": "2026-05-02",
                           "interval_years": 3, "due_on": "2029-05-02"}
    s = h.state.desludging
    assert s.next_due_on == date(2029, 5, 2) and s.last_emptied_on == date(2026, 5, 2)  # type: ignore[union-attr]
    assert s.visit(V1).receipt.manifest_number == "MNF-1111"  # type: ignore[union-attr]


def test_next_due_date_uses_the_interval_in_force_and_leap_days() -> None:
    h = acknowledged(on=date(2026, 2, 28), settings=CooperativeSettings(desludging_interval_years=2))
    assert h.state.desludging.next_due_on == date(2028, 2, 28) and h.state.desludging.interval_years == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(("removed", "received", "tolerance", "mismatch"), [
    ("2.5", "2.5", 10, False),
    ("2.5", "2.25", 10, False),    # exactly 10 % less: within tolerance
    ("2.5", "2.75", 10, False),    # exactly 10 % more
    ("2.5", "2.249", 10, True),
    ("2.5", "2.751", 10, True),
    ("2.5", "2.4", 0, True),       # no tolerance
    ("3.0", "1.5", 50, False),
    ("3.0", "0", 10, True),        # nothing arrived at the plant
])
def test_volume_mismatch_beyond_the_tolerance_is_flagged(removed: str, received: str, tolerance: int,
                                                         mismatch: bool) -> None:
    assert j.volume_mismatch(D(removed), D(received), tolerance) is mismatch
    h = emptied(volume=removed)
    events = j.acknowledge_receipt(h.state, V1, "iplt", "M-1", date(2026, 5, 3), D(received),
                                   CooperativeSettings(iplt_volume_tolerance_pct=tolerance), TODAY)
    assert events[0].payload["volume_mismatch"] is mismatch
    assert events[1].type == "sanitation.NextDesludgingDue"  # a flagged receipt is still an acknowledgement


def test_acknowledging_a_receipt_for_an_unknown_visit_is_refused() -> None:
    with pytest.raises(UnknownVisit, match=f"no desludging visit {V2} on this tank") as e:
        j.acknowledge_receipt(emptied().state, V2, "iplt", "M", date(2026, 5, 3), D(2), DEFAULTS, TODAY)
    assert e.value.field == "visit_id"


@pytest.mark.parametrize("outcome", ["hose_cannot_reach", "household_absent", "cancelled"])
def test_only_an_emptying_has_sludge_to_receive(outcome: str) -> None:
    h = scheduled()
    reason = "other" if outcome == "cancelled" else None
    h.given(j.record_visit(h.state, V1, date(2026, 5, 2), outcome, None, None, None, reason, None, TODAY))  # type: ignore[arg-type]
    with pytest.raises(RuleViolation, match=f"did not empty the tank \\({outcome.replace('_', ' ')}\\)"):
        j.acknowledge_receipt(h.state, V1, "iplt", "M", date(2026, 5, 3), D(2), DEFAULTS, TODAY)


def test_a_visit_not_yet_recorded_has_nothing_delivered() -> None:
    with pytest.raises(RuleViolation, match="no recorded outcome yet"):
        j.acknowledge_receipt(scheduled().state, V1, "iplt", "M", date(2026, 5, 3), D(2), DEFAULTS, TODAY)


def test_a_receipt_is_acknowledged_once() -> None:
    with pytest.raises(AlreadyExists, match="already acknowledged visit"):
        j.acknowledge_receipt(acknowledged().state, V1, "iplt", "M-2", date(2026, 5, 3), D(2), DEFAULTS, TODAY)


@pytest.mark.parametrize(("day", "message"), [(date(2026, 5, 1), "before the emptying"), (date(2026, 7, 1), "future")])
def test_receipt_date_is_checked(day: date, message: str) -> None:
    with pytest.raises(RuleViolation, match=message) as e:
        j.acknowledge_receipt(emptied().state, V1, "iplt", "M", day, D(2), DEFAULTS, TODAY)
    assert e.value.field == "received_on"


def test_the_latest_acknowledged_emptying_counts_whatever_order_receipts_arrive() -> None:
    h = emptied(V1, date(2026, 1, 5))
    emptied(V2, date(2026, 3, 9), h=h)
    # the later emptying is acknowledged first
    h.given(j.acknowledge_receipt(h.state, V2, "iplt", "M-2", date(2026, 3, 9), D("2.5"), DEFAULTS, TODAY))
    assert h.state.desludging.next_due_on == date(2029, 3, 9)  # type: ignore[union-attr]
    late = j.acknowledge_receipt(h.state, V1, "iplt", "M-1", date(2026, 3, 10), D("2.5"), DEFAULTS, TODAY)
    assert [e.type for e in late] == ["sanitation.IpltReceiptAcknowledged"]  # no earlier due date
    h.given(late)
    assert h.state.desludging.next_due_on == date(2029, 3, 9)  # type: ignore[union-attr]
    assert h.state.desludging.last_emptied_on == date(2026, 3, 9)  # type: ignore[union-attr]
