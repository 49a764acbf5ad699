"""Properties of the arithmetic under the money: calendar months at month ends and leap days, due dates, the
repayment-rate window, rounding (always whole rupiah, always in the member's favour, percentages half up), and
the import of an existing loan book."""

from __future__ import annotations

import calendar
import itertools
import random
from datetime import date, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.loans.domain import financing as fin
from services.loans.domain import quality
from services.loans.domain import schedule as maths
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.loan_book import BookEntry, BookPayment, import_financing
from services.members.domain import eligibility as members
from services.reporting.indicators.maths import pct
from tests.unit.loans.histories import PRODUCTS, days

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
any_day = days(date(1999, 1, 1), date(2101, 12, 31))


def _month(d: date) -> int:
    return d.year * 12 + d.month - 1


def _last(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


# -- calendar months -------------------------------------------------------------------------------------------


@SETTINGS
@given(d=any_day, months=st.integers(-30, 400), day=st.one_of(st.none(), st.integers(1, 31)))
@example(d=date(2024, 1, 31), months=1, day=None)  # 29 Feb in a leap year
@example(d=date(2024, 2, 29), months=12, day=None)  # 28 Feb the year after
@example(d=date(2024, 2, 29), months=48, day=None)  # 29 Feb again
def test_add_months_moves_whole_months_and_clamps_to_the_month_end(d: date, months: int, day: int | None) -> None:
    r = maths.add_months(d, months, day)
    assert _month(r) == _month(d) + months
    assert r.day == min(day or d.day, _last(r.year, r.month))
    # the members service's calendar months (tenure) are the same months
    if day is None:
        assert members.add_months(d, months) == r


@SETTINGS
@given(d=any_day, a=st.integers(0, 200), b=st.integers(0, 200))
def test_months_counted_on_a_day_of_the_month_never_drift(d: date, a: int, b: int) -> None:
    """31 Jan + 1 month is 29 Feb, and + 1 more month on the 31st is 31 Mar, as + 2 months is."""
    assert maths.add_months(maths.add_months(d, a, d.day), b, d.day) == maths.add_months(d, a + b, d.day)


@SETTINGS
@given(first=any_day, count=st.integers(1, 150), frequency=st.sampled_from(["weekly", "monthly"]),
       day=st.one_of(st.none(), st.sampled_from([28, 29, 30, 31]), st.integers(1, 31)))
@example(first=date(2024, 2, 29), count=13, frequency="monthly", day=31)
def test_due_dates_rise_one_period_apart(first: date, count: int, frequency: str, day: int | None) -> None:
    dues = maths.due_dates(first, count, frequency, day)  # type: ignore[arg-type]
    assert len(dues) == count and dues[0] == (first if frequency == "weekly" else maths.add_months(first, 0, day))
    assert all(a < b for a, b in itertools.pairwise(dues))
    if frequency == "weekly":
        assert all((b - a).days == 7 for a, b in itertools.pairwise(dues))
    else:
        assert [_month(d) for d in dues] == list(range(_month(first), _month(first) + count))
        assert all(d.day == min(day or first.day, _last(d.year, d.month)) for d in dues)


@SETTINGS
@given(end=any_day, months=st.integers(1, 36))
@example(end=date(2024, 2, 29), months=12)
@example(end=date(2025, 1, 31), months=12)
def test_the_repayment_rate_window_is_whole_calendar_months_up_to_its_end(end: date, months: int) -> None:
    start = quality.repayment_window_start(end, months)
    assert start.day == 1 and start <= end
    assert _month(end) - _month(start) == months - 1


@SETTINGS
@given(signed=days(date(2024, 1, 5), date(2026, 6, 30)), instalments=st.sampled_from([1, 12, 24]))
@example(signed=date(2024, 1, 31), instalments=12)
@example(signed=date(2024, 2, 29), instalments=24)
def test_a_contract_falls_due_on_its_signing_day_of_the_month(signed: date, instalments: int) -> None:
    """Signed on 31 January: 29 February (28 in a common year), 31 March, 30 April, ... never drifting."""
    from services.loans.domain.commands import Apply, Approve, MemberFacts, RecordWorkOrder, SignContract
    from tests.unit.loans.histories import History

    prod = PRODUCTS["monthly"]
    h = History(prod)
    h.do("apply", fin.decide_apply, Apply(h.fid, h.member_id, 2_000_000, instalments, signed, "o"), prod,
         MemberFacts(joined_on=date(2020, 1, 1)), today=signed, by="o")
    h.do("approve", fin.decide_approve, Approve(signed, "m"), today=signed)
    h.do("wo", fin.decide_record_work_order, RecordWorkOrder("W", "contractor", "c", 2_000_000, signed),
         today=signed)
    assert h.do("sign", fin.decide_sign_contract, SignContract(signed), today=signed), h.done
    dues = [i.due_on for i in h.state.instalments]
    assert [_month(d) for d in dues] == list(range(_month(signed) + 1, _month(signed) + 1 + instalments))
    assert all(d.day == min(signed.day, _last(d.year, d.month)) for d in dues)


# -- rounding --------------------------------------------------------------------------------------------------

rupiah = st.integers(0, 10**13)


@SETTINGS
@given(cost=rupiah, margin_bp=st.integers(0, 10_000))
def test_a_margin_is_rounded_down_to_the_rupiah(cost: int, margin_bp: int) -> None:
    exact = Fraction(cost * margin_bp, maths.BASIS_POINTS)
    m = maths.margin_for(cost, margin_bp)
    assert m <= exact < m + 1


@SETTINGS
@given(total=st.integers(1, 10**13), data=st.data())
def test_an_even_split_is_equal_parts_with_the_remainder_on_the_last(total: int, data: st.DataObject) -> None:
    count = data.draw(st.integers(1, min(total, 600)))
    parts = maths.split_evenly(total, count)
    assert sum(parts) == total and len(parts) == count
    assert len(set(parts[:-1])) <= 1 and all(p == total // count for p in parts[:-1])
    assert 0 <= parts[-1] - total // count < count


@SETTINGS
@given(cost=st.integers(1, 10**13), percents=st.sampled_from([[100], [50, 50], [40, 60], [1, 99], [33, 67]]))
def test_tranches_are_rounded_down_but_the_last_and_sum_to_the_cost(cost: int, percents: list[int]) -> None:
    parts = maths.tranche_amounts(cost, percents)
    assert sum(parts) == cost
    assert all(p == cost * q // 100 for p, q in zip(parts[:-1], percents[:-1], strict=False))


@SETTINGS
@given(margin=rupiah, total=st.integers(1, 400), data=st.data(), method=st.sampled_from(["proportional", "daily"]))
def test_unearned_margin_rounds_in_the_members_favour(margin: int, total: int, data: st.DataObject,
                                                      method: str) -> None:
    elapsed = data.draw(st.integers(-5, total + 5))
    kw = {"periods_total": total, "periods_elapsed": elapsed, "days_total": total, "days_elapsed": elapsed}
    unearned = maths.unearned_margin(margin, method, **kw)  # type: ignore[arg-type]
    exact = margin - Fraction(margin * max(0, min(elapsed, total)), total)
    assert exact <= unearned < exact + 1


def _half_up(x: Fraction, places: int) -> Fraction:
    scale = 10**places
    return Fraction(int(x * scale + Fraction(1, 2)), scale)


@SETTINGS
@given(whole=st.integers(1, 10**12), data=st.data())
@example(whole=800, data=None)  # 1/800 = 0.125 %: half up to 0.13
@example(whole=8_000, data=None)
def test_percentages_are_rounded_half_up(whole: int, data: st.DataObject | None) -> None:
    part = data.draw(st.integers(0, whole)) if data is not None else 1
    exact = Fraction(100 * part, whole)
    assert pct(part, whole) == float(_half_up(exact, 1))  # reporting: one decimal
    assert quality.Ratio(part, whole).percent == float(_half_up(exact, 2))  # loans: two decimals
    rate = quality.RepaymentRate(date(2025, 1, 1), date(2025, 12, 31), fallen_due=whole, paid_on_time=part)
    assert rate.percent == float(_half_up(exact, 2))


# -- the import of a loan book ---------------------------------------------------------------------------------


@st.composite
def book_entries(draw: st.DrawFn) -> BookEntry:
    prod = PRODUCTS[draw(st.sampled_from(["monthly", "weekly"]))]
    signed = draw(days(date(2020, 1, 1), date(2025, 6, 30)))
    n = draw(st.integers(1, 30))
    cost = draw(st.integers(n, 50_000_000))  # at least Rp 1 an instalment
    margin = draw(st.sampled_from([0, cost * 12 // 100, draw(st.integers(0, cost))]))
    total = cost + margin
    if draw(st.booleans()):  # the cooperative's own schedule: monthly on the signing day, rounding on the last
        dues = [maths.add_months(signed, k + 1, signed.day) for k in range(n)]
        amounts = maths.split_evenly(total, n)
    else:  # or any rising dates and uneven amounts
        gaps = draw(st.lists(st.integers(1, 70), min_size=n, max_size=n))
        dues = [signed + timedelta(days=sum(gaps[: k + 1])) for k in range(n)]
        cuts = sorted(draw(st.sets(st.integers(1, max(1, total - 1)), min_size=n - 1, max_size=n - 1)))
        amounts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    payments, paid = [], 0
    for k, (offset, share) in enumerate(draw(st.lists(st.tuples(st.integers(0, 900), st.floats(0, 1)),
                                                      max_size=8))):
        amount = max(1, int((total - paid) * share))
        if paid + amount > total:
            break
        payments.append(BookPayment(f"P-{k}", signed + timedelta(days=offset), amount))
        paid += amount
    if draw(st.booleans()) and paid < total:
        payments.append(BookPayment("P-last", signed + timedelta(days=draw(st.integers(0, 900))), total - paid))
    return BookEntry("L-1", "6f1c9a7e-1d2b-4c3d-8e4f-5a6b7c8d9e0f", prod.product_id or "", cost, margin, signed,
                     list(zip(dues, amounts, strict=True)), payments)


TODAY = date(2028, 1, 1)


#: found by the property: a cost too small for the product's tranches (Rp 1 in 50/50) made a tranche of Rp 0,
#: which the published event refuses (a pydantic error, not a refusal naming the field)
TOO_SMALL_FOR_TRANCHES = BookEntry("L-1", "6f1c9a7e-1d2b-4c3d-8e4f-5a6b7c8d9e0f", "tank-monthly", 1, 0,
                                   date(2024, 1, 31), [(date(2024, 2, 29), 1)], [])


@SETTINGS
@given(entry=book_entries(), seed=st.randoms(use_true_random=False))
@example(entry=TOO_SMALL_FOR_TRANCHES, seed=random.Random(0))
def test_an_imported_book_is_its_payments_allocated_oldest_first_whatever_their_order(entry: BookEntry,
                                                                                     seed: random.Random) -> None:
    prod = PRODUCTS["monthly" if entry.product_id == PRODUCTS["monthly"].product_id else "weekly"]
    try:
        imported = import_financing(entry, prod, today=TODAY)
    except LoanRuleViolation as refused:
        # refused only for what the domain refuses: the schedule (not summing, a single catch-all here) or
        # nothing else the strategy makes
        # refused only for a cost too small for the product's tranches (the strategy makes no other fault)
        assert refused.field == "cost" and min(maths.tranche_amounts(entry.cost, prod.tranche_percents)) < 1, (
            refused.message)
        return
    s = imported.state
    total = entry.cost + entry.margin
    assert s.selling_price == total == sum(i.amount for i in s.instalments)
    assert s.paid == sum(p.amount for p in entry.payments) and s.owed == total - s.paid
    assert s.status == ("settled" if s.owed == 0 else "active")
    assert sum(i.cost_part for i in s.instalments) == entry.cost
    # the history it brings, dated by its business dates, says the same on every day
    from tests.unit.loans.story import envelopes

    envs = envelopes(imported.events, imported.financing_id, 0, "import")
    assert fin.fold(envs).instalments == s.instalments
    for p in [*entry.payments, BookPayment("signing", entry.signed_on, 0)]:
        for on in (p.paid_on - timedelta(days=1), p.paid_on):
            then = fin.fold_as_of(envs, on)
            assert then.paid == sum(q.amount for q in entry.payments if q.paid_on <= on)
            unpaid_seen = False
            for i in then.instalments:  # oldest first: nothing paid on an instalment after one still owed
                assert not (unpaid_seen and i.paid)
                unpaid_seen = unpaid_seen or i.owed > 0
    # the order the payments are listed in changes nothing
    shuffled = list(entry.payments)
    seed.shuffle(shuffled)
    again = import_financing(BookEntry(**{**entry.__dict__, "payments": shuffled}), prod, today=TODAY).state
    assert again.instalments == s.instalments


@SETTINGS
@given(entry=book_entries(), extra=st.integers(1, 10**6))
@example(entry=TOO_SMALL_FOR_TRANCHES, extra=1)
def test_an_import_refuses_a_schedule_off_the_selling_price_and_an_over_payment(entry: BookEntry, extra: int) -> None:
    prod = PRODUCTS["monthly" if entry.product_id == PRODUCTS["monthly"].product_id else "weekly"]
    (d, a), *rest = entry.schedule
    off = BookEntry(**{**entry.__dict__, "schedule": [(d, a + extra), *rest]})
    small = min(maths.tranche_amounts(entry.cost, prod.tranche_percents)) < 1
    try:
        import_financing(off, prod, today=TODAY)
        raise AssertionError("a schedule summing to more than cost + margin was imported")
    except LoanRuleViolation as refused:
        assert refused.field == ("cost" if small else "schedule"), refused.message
    over = BookEntry(**{**entry.__dict__, "payments": [*entry.payments,
                                                       BookPayment("P-over", entry.signed_on, entry.cost + entry.margin
                                                                   - sum(p.amount for p in entry.payments) + extra)]})
    try:
        import_financing(over, prod, today=TODAY)
        raise AssertionError("a book paying more than it owes was imported")
    except LoanRuleViolation as refused:
        assert refused.field == ("cost" if small else "payments"), refused.message
