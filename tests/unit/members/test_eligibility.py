"""Eligibility for WASH financing: tenure, active membership and days overdue, at their boundaries."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest
from hypothesis import given as hgiven
from hypothesis import strategies as st

from services.members.domain import member as m
from services.members.domain.eligibility import (
    FinancingRecord,
    Instalment,
    Payment,
    Schedule,
    add_months,
    assess,
    overdue,
    whole_months,
)
from services.members.domain.settings import DEFAULT, CooperativeSettings
from tests.unit.members.helpers import given

F = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SIGNED = date(2025, 4, 2)
# 12 monthly instalments of Rp 560,000 due on the 2nd, from 2 May 2025
PLAN = tuple(Instalment(n, add_months(date(2025, 5, 2), n - 1), 560_000) for n in range(1, 13))


def financing(*payments: Payment, schedules: tuple[Schedule, ...] | None = None, closed_on: date | None = None,
              close_reason: str | None = None) -> FinancingRecord:
    return FinancingRecord(F, schedules if schedules is not None else (Schedule(4, SIGNED, PLAN),), payments,
                           closed_on, close_reason)


def pay(instalment: int, amount: int, on: date, seq: int = 10) -> Payment:
    return Payment(seq, instalment, amount, on)


def member(joined_on: date = date(2021, 3, 15), exited_on: date | None = None) -> m.Member:
    member_id = str(uuid4())
    details = {"member_number": "BMI-1", "sex": "female", "joined_on": joined_on, "household_size": 4,
               "programme_consent": True}
    history = [m.register(m.Member(), member_id, details, date(2030, 1, 1))]
    if exited_on:
        history.append(m.exit_member(given(m.fold, member_id, *history), exited_on, "voluntary", date(2030, 1, 1)))
    return given(m.fold, member_id, *history)


def check(result, rule: str):  # type: ignore[no-untyped-def]
    return next(c for c in result.checks if c.rule == rule)


# -- calendar months -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2024, 3, 15), 12, date(2025, 3, 15)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2023, 1, 31), 1, date(2023, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 12, 31), 2, date(2025, 2, 28)),
    (date(2024, 8, 31), 1, date(2024, 9, 30)),
])
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@hgiven(st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 1, 1)),
        st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 1, 1)))
def test_whole_months_is_the_largest_n_reached(since: date, until: date) -> None:
    n = whole_months(since, until)
    assert n >= 0
    if until >= since:
        assert add_months(since, n) <= until < add_months(since, n + 1)
    else:
        assert n == 0


# -- tenure --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("joined", "as_of", "passed"), [
    (date(2024, 3, 15), date(2025, 3, 14), False),  # 11 months and 27 days
    (date(2024, 3, 15), date(2025, 3, 15), True),  # exactly 12 months
    (date(2024, 1, 31), date(2025, 1, 30), False),
    (date(2024, 1, 31), date(2025, 1, 31), True),
    (date(2024, 2, 29), date(2025, 2, 28), True),  # no 29 February in 2025: the month's last day
    (date(2024, 2, 29), date(2025, 2, 27), False),
])
def test_minimum_tenure_boundary(joined: date, as_of: date, passed: bool) -> None:
    result = assess(member(joined), DEFAULT, [], as_of)
    assert check(result, "minimum_tenure").passed is passed and result.eligible is passed


def test_tenure_reason_says_when_it_will_be_reached() -> None:
    result = assess(member(date(2024, 9, 15)), DEFAULT, [], date(2025, 6, 10))
    assert check(result, "minimum_tenure").reason == \
        "a member for 8 whole months; at least 12 needed (reached on 2025-09-15)"


def test_the_minimum_tenure_is_the_cooperatives_setting() -> None:
    six = CooperativeSettings(min_tenure_months=6)
    assert assess(member(date(2024, 12, 10)), six, [], date(2025, 6, 10)).eligible
    assert not assess(member(date(2024, 12, 11)), six, [], date(2025, 6, 10)).eligible


# -- active membership ---------------------------------------------------------------------------------------


def test_an_exited_member_is_not_eligible_from_the_exit_day() -> None:
    gone = member(exited_on=date(2025, 5, 31))
    assert assess(gone, DEFAULT, [], date(2025, 5, 30)).eligible
    result = assess(gone, DEFAULT, [], date(2025, 5, 31))
    assert not result.eligible and check(result, "active_member").reason == "left the cooperative on 2025-05-31"


def test_not_a_member_yet() -> None:
    result = assess(member(date(2025, 7, 1)), DEFAULT, [], date(2025, 6, 10))
    assert not check(result, "active_member").passed and "not a member yet" in check(result, "active_member").reason


# -- days overdue --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("as_of", "days"), [
    (date(2025, 5, 1), None),  # before the first due date
    (date(2025, 5, 2), None),  # on the due date: not overdue yet
    (date(2025, 5, 3), 1),
    (date(2025, 6, 1), 30),
    (date(2025, 6, 2), 31),
])
def test_days_overdue_count_from_the_earliest_unpaid_due_date(as_of: date, days: int | None) -> None:
    o = overdue(financing(), as_of)
    assert (o.days if o else None) == days
    if o:
        assert o.instalment == 1 and o.due_on == date(2025, 5, 2) and o.unpaid == 560_000


@pytest.mark.parametrize(("as_of", "eligible"), [(date(2025, 6, 1), True), (date(2025, 6, 2), False)])
def test_thirty_days_overdue_is_allowed_thirty_one_is_not(as_of: date, eligible: bool) -> None:
    result = assess(member(), DEFAULT, [financing()], as_of)
    assert result.eligible is eligible
    rule = check(result, "no_financing_overdue")
    assert rule.passed is eligible
    assert f"is {30 if eligible else 31} days overdue (instalment 1, due 2025-05-02, Rp 560,000 unpaid)" in rule.reason


def test_a_partly_paid_instalment_is_still_unpaid() -> None:
    o = overdue(financing(pay(1, 300_000, date(2025, 5, 2))), date(2025, 6, 10))
    assert o is not None and o.instalment == 1 and o.unpaid == 260_000 and o.days == 39


def test_once_paid_in_full_the_next_unpaid_instalment_counts() -> None:
    f = financing(pay(1, 300_000, date(2025, 5, 2)), pay(1, 260_000, date(2025, 5, 20), seq=11))
    o = overdue(f, date(2025, 7, 10))
    assert o is not None and o.instalment == 2 and o.days == 38  # due 2 June


def test_repayments_after_the_day_asked_about_do_not_count() -> None:
    f = financing(pay(1, 560_000, date(2025, 5, 25)))
    assert overdue(f, date(2025, 5, 24)).days == 22  # type: ignore[union-attr]
    assert overdue(f, date(2025, 5, 25)) is None


def test_an_advance_payment_covers_later_instalments() -> None:
    f = financing(*(pay(n, 560_000, date(2025, 4, 30), seq=10 + n) for n in (1, 2, 3)))
    assert overdue(f, date(2025, 7, 30)) is None
    assert overdue(f, date(2025, 8, 3)).instalment == 4  # type: ignore[union-attr]


def test_not_owed_before_signing_nor_after_settling() -> None:
    assert overdue(financing(), date(2025, 4, 1)) is None
    settled = financing(closed_on=date(2025, 6, 5), close_reason="settled_early")
    assert overdue(settled, date(2025, 6, 4)).days == 33  # type: ignore[union-attr]
    assert overdue(settled, date(2025, 6, 5)) is None


def test_a_written_off_financing_stays_overdue() -> None:
    written_off = financing(closed_on=date(2025, 6, 5), close_reason="written_off")
    assert overdue(written_off, date(2025, 9, 1)).days == 122  # type: ignore[union-attr]


def test_only_repayments_known_no_schedule_yet() -> None:
    assert overdue(financing(pay(1, 100, date(2025, 5, 2)), schedules=()), date(2025, 9, 1)) is None


def test_a_reschedule_replaces_the_schedule_from_its_day() -> None:
    # instalment 1 unpaid; rescheduled on 10 June: the balance in 6 instalments from 10 July
    new = tuple(Instalment(n, add_months(date(2025, 7, 10), n - 1), 1_120_000) for n in range(1, 7))
    f = financing(pay(1, 1_120_000, date(2025, 7, 10), seq=12),
                  schedules=(Schedule(4, SIGNED, PLAN), Schedule(11, date(2025, 6, 10), new)))
    assert overdue(f, date(2025, 6, 9)).days == 38  # type: ignore[union-attr]  # old schedule
    assert overdue(f, date(2025, 6, 10)) is None  # new schedule: nothing due yet
    assert overdue(f, date(2025, 8, 11)).instalment == 2  # type: ignore[union-attr]  # new no. 1 paid, no. 2 a day late
    # a payment recorded before the reschedule counts for the old schedule only
    old_payment = pay(2, 560_000, date(2025, 6, 1), seq=9)
    f2 = FinancingRecord(F, f.schedules, (old_payment,))
    assert overdue(f2, date(2025, 7, 11)).instalment == 1  # type: ignore[union-attr]


def test_the_worst_financing_decides_and_all_are_listed() -> None:
    other = FinancingRecord("other", (Schedule(3, date(2025, 5, 1), (Instalment(1, date(2025, 6, 1), 100_000),)),))
    result = assess(member(), DEFAULT, [other, financing()], date(2025, 6, 10))
    assert [o.financing_id for o in result.overdue] == [F, "other"]
    assert not result.eligible and F in check(result, "no_financing_overdue").reason


def test_the_overdue_threshold_is_the_cooperatives_setting() -> None:
    strict = CooperativeSettings(max_days_overdue=0)
    assert not assess(member(), strict, [financing()], date(2025, 5, 3)).eligible
    assert assess(member(), strict, [financing()], date(2025, 5, 2)).eligible


def test_an_eligible_member_gets_a_reason_for_each_rule() -> None:
    result = assess(member(), DEFAULT, [], date(2025, 6, 10))
    assert result.eligible
    assert [(c.rule, c.passed) for c in result.checks] == [
        ("active_member", True), ("minimum_tenure", True), ("no_financing_overdue", True)]
    assert all(c.reason for c in result.checks)


@hgiven(st.lists(st.integers(min_value=0, max_value=700_000), min_size=12, max_size=12),
        st.integers(min_value=0, max_value=500))
def test_overdue_matches_a_day_by_day_definition(paid: list[int], offset: int) -> None:
    as_of = date(2025, 5, 1) + timedelta(days=offset)
    f = financing(*(pay(n + 1, amount, date(2025, 4, 2), seq=10 + n) for n, amount in enumerate(paid) if amount))
    late = [i for i in PLAN if i.due_on < as_of and paid[i.number - 1] < i.amount]
    o = overdue(f, as_of)
    if not late:
        assert o is None
    else:
        assert o is not None and o.instalment == late[0].number and o.days == (as_of - late[0].due_on).days
