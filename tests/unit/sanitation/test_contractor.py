"""Contractors: registration, training, certification and its expiry, (de)activation, and the quality record."""

from __future__ import annotations

from datetime import date

import pytest

from services.sanitation.domain import contractor as c
from services.sanitation.domain.errors import AlreadyExists, RuleViolation
from tests.unit.sanitation.given import History, types

TODAY = date(2025, 6, 1)
CID = "6f1d2c3b-4a59-4e87-9d6c-5b4a39281706"


def history() -> History:
    return History(c.evolve, c.Contractor(), CID)


def registered(trained_on: date | None = date(2024, 1, 10)) -> History:
    return history().given(c.register(c.Contractor(), CID, trained_on, TODAY))


def certified(certified_on: date = date(2024, 2, 1), valid_until: date = date(2026, 1, 31)) -> History:
    h = registered()
    return h.given(c.certify(h.state, "SNI-TGR-001", certified_on, valid_until, TODAY))


def test_register() -> None:
    h = registered()
    assert h.state.exists and h.state.trained_on == date(2024, 1, 10) and h.state.active
    assert h.state.certified_on is None and h.state.registered_on == TODAY


def test_register_twice_is_refused() -> None:
    with pytest.raises(AlreadyExists, match="already registered"):
        c.register(registered().state, CID, None, TODAY)


def test_training_cannot_be_in_the_future() -> None:
    with pytest.raises(RuleViolation, match="future") as e:
        c.register(c.Contractor(), CID, date(2025, 6, 2), TODAY)
    assert e.value.field == "trained_on"
    with pytest.raises(RuleViolation, match="future"):
        c.record_training(registered().state, date(2025, 6, 2), TODAY)


def test_record_training() -> None:
    h = registered(trained_on=None)
    h.given(c.record_training(h.state, date(2025, 5, 1), TODAY))
    assert h.state.trained_on == date(2025, 5, 1)
    assert c.record_training(h.state, date(2025, 5, 1), TODAY) == []  # unchanged: nothing to record


def test_certify() -> None:
    h = certified()
    assert [e.type for e in h.envelopes] == ["sanitation.ContractorRegistered", "sanitation.ContractorCertified"]
    s = h.state
    assert (s.certificate_number, s.certified_on, s.valid_until) == ("SNI-TGR-001", date(2024, 2, 1), date(2026, 1, 31))
    assert h.envelopes[-1].payload["trained_on"] == "2024-01-10"


def test_certification_needs_training_first() -> None:
    with pytest.raises(RuleViolation, match="no on-the-job SNI septic-tank training"):
        c.certify(registered(trained_on=None).state, "X", date(2024, 2, 1), date(2026, 1, 31), TODAY)


@pytest.mark.parametrize(("certified_on", "valid_until", "field", "message"), [
    (date(2024, 1, 9), date(2026, 1, 1), "certified_on", "before the training"),
    (date(2025, 6, 2), date(2027, 1, 1), "certified_on", "future"),
    (date(2024, 2, 1), date(2024, 2, 1), "valid_until", "must be after"),
    (date(2024, 2, 1), date(2024, 1, 1), "valid_until", "must be after"),
])
def test_certification_dates_are_checked(certified_on: date, valid_until: date, field: str, message: str) -> None:
    with pytest.raises(RuleViolation, match=message) as e:
        c.certify(registered().state, "X", certified_on, valid_until, TODAY)
    assert e.value.field == field


def test_the_same_certificate_twice_is_refused_but_a_renewal_is_recorded() -> None:
    h = certified()
    with pytest.raises(AlreadyExists):
        c.certify(h.state, "SNI-TGR-001", date(2024, 2, 1), date(2026, 1, 31), TODAY)
    h.given(c.certify(h.state, "SNI-TGR-002", date(2025, 5, 1), date(2027, 4, 30), TODAY))
    assert h.state.certificate_number == "SNI-TGR-002" and h.state.valid_until == date(2027, 4, 30)


@pytest.mark.parametrize(("day", "problem"), [
    (date(2024, 1, 31), "valid only from 2024-02-01"),
    (date(2024, 2, 1), None),          # first valid day
    (date(2026, 1, 31), None),         # last valid day (valid_until is inclusive)
    (date(2026, 2, 1), "expired on 2026-02-01 (valid until 2026-01-31)"),
])
def test_certification_problem(day: date, problem: str | None) -> None:
    state = certified().state
    found = c.certification_problem(state, day)
    if problem is None:
        assert found is None and state.certified_on_day(day)
    else:
        assert found is not None and problem in found and "SNI-TGR-001" in found and not state.certified_on_day(day)


def test_uncertified_contractor_has_a_problem() -> None:
    assert c.certification_problem(registered().state, TODAY) == \
        "the contractor has no SNI 2398:2017 septic-tank certification"


def test_expiry_is_recorded_once_per_certificate() -> None:
    h = certified(valid_until=date(2025, 5, 31))
    assert c.record_expiry(h.state, date(2025, 5, 31)) == []   # still valid on its last day
    events = c.record_expiry(h.state, date(2025, 6, 1))
    assert types(events) == ["sanitation.ContractorCertificationExpired"]
    assert events[0].payload == {"contractor_id": CID, "certificate_number": "SNI-TGR-001",
                                 "valid_until": "2025-05-31", "recorded_on": "2025-06-01"}
    h.given(events)
    assert c.record_expiry(h.state, date(2025, 7, 1)) == []     # recorded already
    # a renewal that lapses again is recorded again
    h.given(c.certify(h.state, "SNI-TGR-002", date(2025, 6, 1), date(2025, 12, 31), date(2025, 6, 1)))
    assert c.record_expiry(h.state, date(2025, 12, 31)) == []
    assert types(c.record_expiry(h.state, date(2026, 1, 1))) == ["sanitation.ContractorCertificationExpired"]


def test_nothing_expires_without_a_certification() -> None:
    assert c.record_expiry(registered().state, date(2030, 1, 1)) == []


def test_deactivate_and_reactivate() -> None:
    h = certified()
    h.given(c.deactivate(h.state, "left the programme", TODAY))
    assert not h.state.active and h.state.deactivation_reason == "left the programme"
    with pytest.raises(RuleViolation, match="already inactive"):
        c.deactivate(h.state, "again", TODAY)
    h.given(c.reactivate(h.state, TODAY))
    assert h.state.active and h.state.deactivation_reason is None
    with pytest.raises(RuleViolation, match="already active"):
        c.reactivate(h.state, TODAY)


def test_quality_record() -> None:
    outcomes = [
        c.JobOutcome(inspections=1, first_inspection_passed=True, reworks=0, ordered_on=date(2025, 1, 1),
                     completed_on=date(2025, 1, 21)),                     # 20 days
        c.JobOutcome(inspections=3, first_inspection_passed=False, reworks=2, ordered_on=date(2025, 1, 1),
                     completed_on=date(2025, 2, 10)),                     # 40 days
        c.JobOutcome(inspections=2, first_inspection_passed=False, reworks=1, ordered_on=date(2025, 1, 1),
                     completed_on=None),                                  # still in rework
        c.JobOutcome(inspections=1, first_inspection_passed=True, reworks=0, ordered_on=date(2025, 3, 1),
                     completed_on=date(2025, 4, 5)),                      # 35 days
        c.JobOutcome(inspections=0, first_inspection_passed=None, reworks=0, ordered_on=date(2025, 3, 1),
                     completed_on=None),                                  # not inspected: not counted
    ]
    q = c.quality_record(outcomes)
    assert (q.jobs_inspected, q.passed_first_time, q.first_time_pass_rate) == (4, 2, 0.5)
    assert q.rework_count == 3 and q.jobs_handed_over == 3 and q.median_days_to_handover == 35.0
    # an even number of handovers: the mean of the middle two
    assert c.quality_record(outcomes[:2]).median_days_to_handover == 30.0


def test_quality_record_of_a_new_contractor() -> None:
    q = c.quality_record([])
    assert q.first_time_pass_rate is None and q.median_days_to_handover is None and q.rework_count == 0
