"""Known-answer tests of the reporting indicator arithmetic (no infrastructure)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.indicators.maths import (
    AccessGroup,
    Portfolio,
    access,
    dpd_bucket,
    last_months,
    leverage,
    mean_rupiah,
    median,
    month_end,
    pct,
    repayment_rate,
    sanitation_now,
    sludge_flow,
    water_now,
)


def test_percentages_round_half_up_to_one_decimal() -> None:
    assert pct(1, 3) == 33.3
    assert pct(2, 3) == 66.7
    assert pct(1, 8) == 12.5          # exactly .5 at the second decimal? 12.5 stays
    assert pct(1, 16) == 6.3          # 6.25 -> 6.3 (half up, not banker's 6.2)
    assert pct(5, 0) == 0.0           # nothing to divide by
    assert pct(7, 7) == 100.0


def test_mean_in_whole_rupiah() -> None:
    assert mean_rupiah(10_000_001, 2) == 5_000_001  # 5 000 000.5 -> half up
    assert mean_rupiah(0, 0) == 0


def test_median_of_odd_even_and_weighted_values() -> None:
    assert median([40, 10, 30]) == 30.0
    assert median([10, 20, 30, 41]) == 25.0
    assert median({19: 2, 26: 1}) == 19.0      # 19, 19, 26
    assert median({19: 1, 26: 1}) == 22.5
    assert median([]) is None


def test_days_past_due_buckets_are_strictly_more_than_n() -> None:
    assert [dpd_bucket(d) for d in (0, 1, 2, 30, 31, 90, 91)] == [0, 0, 1, 1, 30, 30, 90]


def test_par_with_and_without_restructured() -> None:
    p = Portfolio()
    # (bucket, restructured, financings, principal, owed)
    p.add(0, False, 2, 6_000_000, 6_600_000)   # on time
    p.add(1, False, 1, 1_000_000, 1_100_000)   # 2-30 days late
    p.add(30, False, 1, 2_000_000, 2_200_000)  # 31-90 days late
    p.add(0, True, 1, 1_000_000, 1_050_000)    # rescheduled, on time now
    assert p.gross_principal == 10_000_000 and p.financings == 5
    # PAR1 = (1 + 2) / 10 million; PAR30 = 2 / 10; PAR90 = 0
    assert (p.par(1), p.par(30), p.par(90)) == (30.0, 20.0, 0.0)
    # with restructured: + 1 million in every numerator
    assert (p.par(1, True), p.par(30, True), p.par(90, True)) == (40.0, 30.0, 10.0)
    assert p.restructured_pct == 10.0 and p.restructured_financings == 1


def test_repayment_rate_is_paid_on_time_over_fallen_due() -> None:
    assert repayment_rate(2_750_000, 3_000_000) == 91.7
    assert repayment_rate(0, 0) is None  # nothing fell due: not applicable, never 100 %


def test_leverage_per_source_of_funds() -> None:
    lev = leverage({"own_funds": 3_000_000, "water_org": 1_000_000})
    assert lev["water_org"] == {"disbursed_value": 1_000_000, "share_pct": 25.0, "leverage": 3.0}
    assert lev["own_funds"]["leverage"] == 0.33 and lev["own_funds"]["share_pct"] == 75.0


def test_rung_now_is_the_survey_raised_by_the_chain_of_events() -> None:
    assert sanitation_now("unimproved", False, False) == "unimproved"
    assert sanitation_now("unimproved", True, False) == "basic"
    assert sanitation_now("limited", True, True) == "safely_managed"
    assert sanitation_now("safely_managed", False, False) == "safely_managed"
    assert sanitation_now(None, True, False) == "basic"
    assert sanitation_now(None, False, False) is None
    assert water_now("limited", True) == "basic"
    assert water_now("safely_managed", True) == "safely_managed"


def test_a_shared_facility_shows_no_more_than_limited_after_construction_or_emptying() -> None:
    """JMP: basic and safely managed need a facility not shared with other households. While the latest survey
    says the household shares its facility, a handover or an IPLT-acknowledged emptying shows "limited"."""
    assert sanitation_now("unimproved", True, False, surveyed_shared=True) == "limited"
    assert sanitation_now("unimproved", True, True, surveyed_shared=True) == "limited"
    assert sanitation_now("limited", True, True, surveyed_shared=True) == "limited"
    assert sanitation_now("open_defecation", False, False, surveyed_shared=True) == "open_defecation"
    assert sanitation_now("unimproved", True, False, surveyed_shared=False) == "basic"
    assert sanitation_now("unimproved", True, True, surveyed_shared=False) == "safely_managed"
    assert sanitation_now("unimproved", True, True, surveyed_shared=None) == "safely_managed"


def test_access_ladders_movements_reach_and_usaid_counts() -> None:
    groups = [
        # baseline unimproved sanitation, tank built and emptied to an IPLT: gains basic and safely managed
        AccessGroup("limited", "unimproved", "limited", "unimproved", True, True, False, 1, 5),
        # baseline open defecation, toilet done (no emptying yet); water connection: basic water too
        AccessGroup("unimproved", "open_defecation", "unimproved", "open_defecation", True, False, True, 2, 7),
        # no change
        AccessGroup("basic", "basic", "basic", "basic", False, False, False, 1, 4),
        # no baseline survey but a completed job: reached, not in the ladders, not "gaining"
        AccessGroup(None, None, None, None, True, False, False, 1, 3),
        # nothing known
        AccessGroup(None, None, None, None, False, False, False, 1, 6),
    ]
    a = access(groups)
    assert a.households_with_baseline == 4
    assert a.sanitation_baseline == {"safely_managed": 0, "basic": 1, "limited": 0, "unimproved": 1,
                                     "open_defecation": 2}
    assert a.sanitation_now == {"safely_managed": 1, "basic": 3, "limited": 0, "unimproved": 0, "open_defecation": 0}
    assert a.water_now == {"safely_managed": 0, "basic": 3, "limited": 1, "unimproved": 0, "surface_water": 0}
    assert a.movements[("sanitation", "open_defecation", "basic")] == 2
    assert a.households_improved == 1 + 2 + 1 and a.people_reached == 5 + 7 + 3
    assert a.people_gaining_basic_sanitation == 5 + 7
    assert a.people_gaining_safely_managed_sanitation == 5
    assert a.people_gaining_basic_water == 7
    assert a.safely_managed_sanitation_households == 1
    assert a.basic_sanitation_households == 1 + 2 + 1 + 1  # the no-baseline household with a toilet too


def test_sludge_flow_shares() -> None:
    assert sludge_flow(8, 4, 3, 2) == {"contained": 100.0, "emptied": 50.0, "delivered": 37.5, "treated": 25.0}
    assert sludge_flow(0, 0, 0, 0) == {"contained": 0.0, "emptied": 0.0, "delivered": 0.0, "treated": 0.0}


def test_months_up_to_a_date() -> None:
    assert month_end(date(2024, 2, 10)) == date(2024, 2, 29)
    months = last_months(date(2025, 3, 15), 3)
    assert months == [(date(2025, 1, 1), date(2025, 1, 31)), (date(2025, 2, 1), date(2025, 2, 28)),
                      (date(2025, 3, 1), date(2025, 3, 15))]
    assert last_months(date(2025, 1, 31), 2)[0] == (date(2024, 12, 1), date(2024, 12, 31))


@given(st.integers(min_value=1, max_value=10**12).flatmap(
    lambda whole: st.tuples(st.integers(min_value=0, max_value=whole), st.just(whole))))
def test_pct_is_between_0_and_100_for_parts(part_whole: tuple[int, int]) -> None:
    part, whole = part_whole
    assert 0.0 <= pct(part, whole) <= 100.0


@pytest.mark.parametrize("values", [[1], [1, 2], [5, 1, 9, 3], [2, 2, 2, 7]])
def test_weighted_median_equals_plain_median(values: list[int]) -> None:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    assert median(counts) == median(values)
