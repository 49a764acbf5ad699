"""Portfolio quality as of a date: days past due, arrears, provisioning, PAR (CGAP), repayment rate."""

from __future__ import annotations

from datetime import date

from services.loans.domain import financing as fin
from services.loans.domain.commands import RecordRepayment, Reschedule, WriteOff
from services.loans.domain.product import LoanSettings
from services.loans.domain.quality import portfolio, position, repayment_rate
from tests.unit.loans.story import Story

DEFAULT = LoanSettings()


def active(amount: int = 12_000_000) -> Story:
    return Story().contract(amount=amount).disbursed()  # 12 monthly instalments from 15 Feb 2025


def pay(s: Story, count: int) -> None:
    for i in s.state.instalments[:count]:
        s.when(fin.decide_record_repayment, RecordRepayment(f"R-{i.number}", i.amount, i.due_on))


def test_known_answer_par30_one_of_three_financings_31_days_late_counts_whole() -> None:
    on = date(2025, 4, 15)
    current, late, late_other = active(12_000_000), active(6_000_000), active(9_000_000)
    pay(current, 3)  # paid up to and including 15 Apr
    pay(late, 1)  # instalment 2 (due 15 Mar) unpaid: 31 days late on 15 Apr
    pay(late_other, 2)  # instalment 3 due today: 0 days late
    states = [fin.fold_as_of(s.events, on) for s in (current, late, late_other)]
    positions = [position(st, on, DEFAULT) for st in states]
    assert [p.days_past_due for p in positions] == [0, 31, 0]
    q = portfolio(states, on, DEFAULT)
    late_principal = states[1].cost_owed
    # the whole outstanding principal of the late financing, not just its arrears
    assert late_principal == 6_000_000 - 500_000 and positions[1].arrears == 560_000  # instalment 3 is due today, not late
    assert q.gross_principal == sum(st.cost_owed for st in states) == 9_000_000 + 5_500_000 + 7_500_000
    assert (q.par[30].at_risk, q.par[30].gross) == (5_500_000, 22_000_000)
    assert q.par[30].percent == 25.0
    assert q.par[90].at_risk == 0 and q.par[1].at_risk == 5_500_000
    # one day later the third financing is 1 day late: not "more than 1 day" yet
    q2 = portfolio([fin.fold_as_of(s.events, date(2025, 4, 16)) for s in (current, late, late_other)],
                   date(2025, 4, 16), DEFAULT)
    assert q2.par[1].at_risk == 5_500_000
    q3 = portfolio([fin.fold_as_of(s.events, date(2025, 4, 17)) for s in (current, late, late_other)],
                   date(2025, 4, 17), DEFAULT)
    assert q3.par[1].at_risk == 5_500_000 + 7_500_000


def test_days_past_due_count_from_the_earliest_unpaid_instalment_and_partial_payment_does_not_reset() -> None:
    s = active()
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 500_000, date(2025, 2, 15)))
    on = date(2025, 5, 1)
    p = position(fin.fold_as_of(s.events, on), on, DEFAULT)
    assert p.days_past_due == (on - date(2025, 2, 15)).days == 75
    assert p.arrears == 3 * 1_120_000 - 500_000
    assert p.category == "substandard"
    assert DEFAULT.category(30) == "standard" and DEFAULT.category(91) == "doubtful"
    assert DEFAULT.category(181) == "loss"
    strict = LoanSettings(substandard_over_days=7, doubtful_over_days=30, loss_over_days=60)
    assert position(fin.fold_as_of(s.events, on), on, strict).category == "loss"


def test_as_of_a_past_date_ignores_later_payments() -> None:
    s = active()
    s.when(fin.decide_record_repayment, RecordRepayment("R-1", 1_120_000, date(2025, 3, 20)))
    before = position(fin.fold_as_of(s.events, date(2025, 3, 1)), date(2025, 3, 1), DEFAULT)
    after = position(fin.fold_as_of(s.events, date(2025, 3, 20)), date(2025, 3, 20), DEFAULT)
    assert before.days_past_due == 14 and after.days_past_due == 5


def test_restructured_financings_with_and_without() -> None:
    on = date(2025, 6, 1)
    plain, restructured = active(), active()
    restructured.when(fin.decide_reschedule, Reschedule(24, date(2025, 2, 1), "hardship"))
    states = [fin.fold_as_of(s.events, on) for s in (plain, restructured)]
    q = portfolio(states, on, DEFAULT)
    # the plain one is late (nothing paid since 15 Feb); the restructured one is current (first due 1 Mar... )
    pos = [position(st, on, DEFAULT) for st in states]
    assert pos[0].days_past_due == (on - date(2025, 2, 15)).days and pos[1].days_past_due == (on - date(2025, 3, 1)).days
    restructured_principal = states[1].cost_owed
    assert q.restructured.at_risk == restructured_principal
    assert q.par_with_restructured[90].at_risk == states[0].cost_owed + restructured_principal
    assert q.par[90].at_risk == states[0].cost_owed + restructured_principal  # both are > 90 days late
    # with nothing late, only "including restructured" counts the restructured one
    early = date(2025, 2, 10)
    q2 = portfolio([fin.fold_as_of(s.events, early) for s in (plain, restructured)], early, DEFAULT)
    assert q2.par[1].at_risk == 0
    assert q2.par_with_restructured[1].at_risk == q2.restructured.at_risk > 0


def test_written_off_leaves_the_portfolio_and_is_reported_apart() -> None:
    on = date(2025, 12, 1)
    s = active()
    s.when(fin.decide_write_off, WriteOff(date(2025, 10, 1), "uncollectable"))
    s.when(fin.decide_record_repayment, RecordRepayment("REC", 100_000, date(2025, 11, 1)))
    q = portfolio([fin.fold_as_of(s.events, on)], on, DEFAULT)
    assert q.financings == 0 and q.gross_principal == 0 and q.par[30].gross == 0
    assert q.written_off == 1 and q.written_off_principal == 12_000_000 and q.recovered == 100_000


def test_repayment_rate_is_paid_on_time_over_fallen_due() -> None:
    s = active()
    pay(s, 2)  # instalments 1 and 2 on their due dates
    s.when(fin.decide_record_repayment, RecordRepayment("late-3", 1_120_000, date(2025, 4, 20)))  # 3 late
    states = [fin.fold_as_of(s.events, date(2025, 4, 30))]
    r = repayment_rate(states, date(2025, 2, 1), date(2025, 4, 30))
    assert (r.paid_on_time, r.fallen_due) == (2 * 1_120_000, 3 * 1_120_000)
    assert r.percent == 66.67
    none_due = repayment_rate([], date(2025, 1, 1), date(2025, 1, 31))  # nothing fell due: no rate, not 100 %
    assert none_due.percent is None and not none_due.applicable
