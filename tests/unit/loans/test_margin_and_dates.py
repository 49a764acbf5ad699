"""Applications dated before the product or the membership, and the instalment count of a rescheduled
financing: given events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import date

import pytest

from services.loans.domain import financing as fin
from services.loans.domain.commands import (
    Apply,
    DisburseTranche,
    FlagHardship,
    MemberFacts,
    RecordRepayment,
    Reschedule,
)
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.product import Product
from tests.unit.loans.story import OFFICER, Story, product

JOINED = MemberFacts(joined_on=date(2020, 1, 1))


def apply(s: Story, amount: int, instalments: int, prod: Product | None = None, *, on: date = date(2025, 1, 6),
          member: MemberFacts = JOINED) -> list:  # type: ignore[type-arg]
    return s.when(fin.decide_apply, Apply(s.financing_id, s.member_id, amount, instalments, on, OFFICER),
                  prod or product(), member, by=OFFICER)


# -- dates before the product or the membership ------------------------------------------------------------------


def test_an_application_dated_before_the_product_or_the_membership_is_refused() -> None:
    s = Story()
    with pytest.raises(LoanRuleViolation, match=r"applied_on 2023-12-31 is before Mikro Tata Sanitasi was defined "
                                                r"\(2024-01-01\)") as e:
        apply(s, 4_000_000, 12, on=date(2023, 12, 31))
    assert e.value.field == "applied_on"
    anytime = product(min_membership_months=0)
    with pytest.raises(LoanRuleViolation, match=r"before the member joined the cooperative \(2025-01-10\)") as e:
        apply(s, 4_000_000, 12, anytime, member=MemberFacts(joined_on=date(2025, 1, 10)))
    assert e.value.field == "applied_on"
    assert not s.events
    apply(s, 4_000_000, 12, anytime, on=date(2025, 1, 10), member=MemberFacts(joined_on=date(2025, 1, 10)))


def test_hardship_is_never_flagged_before_the_application() -> None:
    s = Story().contract()
    with pytest.raises(LoanRuleViolation, match=r"flagged_on 2025-01-05 is before the application") as e:
        s.when(fin.decide_flag_hardship, FlagHardship(date(2025, 1, 5), "flood"))
    assert e.value.field == "flagged_on"


# -- the instalment count of the schedule in force -----------------------------------------------------------------


def test_the_instalment_count_follows_the_schedule_in_force() -> None:
    s = Story().applied(amount=100_000_000, instalments=12)
    assert s.state.instalment_count == 12
    s.approved().work_ordered().signed()
    s.when(fin.decide_disburse, DisburseTranche(date(2025, 1, 16)))
    assert s.state.instalment_count == 12
    for n, paid_on in enumerate((date(2025, 2, 15), date(2025, 3, 15), date(2025, 4, 15)), start=1):
        s.when(fin.decide_record_repayment, RecordRepayment(f"R-{n}", 9_333_333, paid_on))
    s.when(fin.decide_reschedule, Reschedule(15, date(2025, 4, 20), "disaster"))
    st = s.state
    assert st.instalment_count == 18 and st.terms is not None and st.terms.instalments == 12
    assert [i.number for i in st.instalments] == list(range(1, 19))
    assert fin.fold_as_of(s.events, date(2025, 4, 19)).instalment_count == 12
