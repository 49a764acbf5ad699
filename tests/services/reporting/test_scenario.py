"""Issue 7's "Done when": the hand-built scenario (``scenario.py``) loaded through the four services' APIs,
and every report figure compared with a value worked out by hand, as of 2025-06-30 (D1) and 2025-12-31
(D2); a rebuild beside the live read models gives equal rows (hash) and the same figures; the programme
view equals the sum of the consenting cooperatives and leaves out the one that did not consent.

Reading guide for the arithmetic: a tank financing is 10 x Rp 550 000 (Rp 500 000 principal each), a
water financing 5 x Rp 440 000 (Rp 400 000 principal each). "P(D)" = members joined by D and not exited
by D. Percentages are rounded half up to one decimal.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from services.reporting import builds as registry
from services.reporting.projections.catalog import FAMILIES
from services.reporting.rebuild import rebuild
from shared.tenancy import Role
from tests.services.reporting.conftest import System, quiet, reporting_settings
from tests.services.reporting.scenario import (
    BAIK,
    BMI,
    CITRA,
    OPERATOR_KEY,
    PRODUCT_NAMES,
    PROGRAMME,
    Coop,
    key,
    load_baik,
    load_bmi,
    load_citra,
    prepare_citra,
)

D1, D2 = "2025-06-30", "2025-12-31"
PROGRAMME_KEY = "wf_progiuwash01_demoKeyNotForProductionUsePROG0001"


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (a subset: keys not named are not compared)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not a mapping"]
        out = []
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{path}.{k}: missing")
            else:
                out += differences(actual[k], v, f"{path}.{k}")
        return out
    if isinstance(expected, list) and expected and isinstance(expected[0], dict) and isinstance(actual, list):
        if len(actual) != len(expected):
            return [f"{path}: {len(actual)} items, expected {len(expected)}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected, strict=True)) for d in differences(a, e, f"{path}[{i}]")]
    return [] if actual == expected else [f"{path}: {actual!r} != expected {expected!r}"]


def check(actual: Any, expected: Any, what: str) -> None:
    diffs = differences(actual, expected)
    assert not diffs, f"{what}:\n  " + "\n  ".join(diffs)


def months(values: dict[str, tuple[int, int, float, int, int]], year_months: list[str]) -> list[dict[str, Any]]:
    """The dashboard's monthly rows: (disbursed, repaid, par30_pct, desludging_due, desludging_done)."""
    rows = []
    for m in year_months:
        d, r, p, due, done = values.get(m, (0, 0, 0.0, 0, 0))
        rows.append({"month": m, "disbursed": d, "repaid": r, "par30_pct": p, "desludging_due": due,
                     "desludging_done": done})
    return rows


TO_D1 = [f"2024-{m:02d}" for m in range(7, 13)] + [f"2025-{m:02d}" for m in range(1, 7)]
TO_D2 = [f"2025-{m:02d}" for m in range(1, 13)]


def ladder(*counts: int, water: bool) -> dict[str, int]:
    keys = ("safely_managed", "basic", "limited", "unimproved", "surface_water" if water else "open_defecation")
    return dict(zip(keys, counts, strict=True))


# -- Kopsyah BMI --------------------------------------------------------------------------------------------

BMI_D1 = {
    "headline": {
        # P(D1) = m1..m6 (m6 exits later): 6; women m1 m2 m3 m5 m6 = 5/6 = 83.3 %; B40 known for 5 (m5
        # unknown), B40 m1 m2 m4 = 3/5 = 60 %; area known for 5 (m6 unknown), urban m3 m4 = 2/5 = 40 %
        "members": 6, "households": 6, "women_pct": 83.3, "b40_pct": 60.0, "urban_pct": 40.0,
        # access improved by D1: m1 (tank J1: unimproved -> basic), m2 (tank J2: OD -> basic), m3 (water J3:
        # unimproved -> basic), m4 (water J4: unimproved -> basic), m5 (no baseline; tank T3 handed over
        # 2022), m6 (tank T1 emptied, IPLT receipt 03-03: basic -> safely managed): 5+4+6+3+7+2 = 27
        "people_reached": 27,
        # safely managed sanitation: m6 only (T1 + IPLT); m2's follow-up survey comes in September
        "safely_managed_sanitation_households": 1,
    },
    "access_ladder": {
        # with a baseline: m1 (basic W, unimproved S), m2 (limited, OD), m3 (unimproved, limited),
        # m4 (unimproved, basic), m6 (basic, basic)
        "water": {"baseline": ladder(0, 2, 1, 2, 0, water=True),
                  # now: m3 and m4 raised to basic by their connections
                  "now": ladder(0, 4, 1, 0, 0, water=True)},
        "sanitation": {"baseline": ladder(0, 2, 1, 1, 1, water=False),
                       # now: m1 basic, m2 basic, m3 limited, m4 basic, m6 safely managed
                       "now": ladder(1, 3, 1, 0, 0, water=False)},
    },
    "financing": {
        # applied F1..F6 = 6; approved F1..F5 = 5; disbursed F1 F2 F3 F4 = 5M + 5M + 2M + 2M = 14M
        "applied": 6, "approved": 5, "disbursed_count": 4, "disbursed_value": 14_000_000,
        # in portfolio: F1 (5 left x 500 000 = 2 500 000, on time), F2 (7 x 500 000 = 3 500 000, May 15
        # unpaid: 46 days), F3 (4 x 400 000 = 1 600 000, Mar 15 unpaid: 107 days); F4 settled 05-20
        "outstanding": 7_600_000,
        # PAR1 = PAR30 = (3.5M + 1.6M) / 7.6M = 67.105 %; PAR90 = 1.6M / 7.6M = 21.05 %
        "par1_pct": 67.1, "par30_pct": 67.1, "par90_pct": 21.1,
        # 2024-07-01..D1: fallen due F1 5 x 550k + F2 5 x 550k + F3 5 x 440k + F4 (Apr, May; the rest
        # due after its settlement) 2 x 440k = 8 580 000; on time F1 2 750 000 + F2 (Feb-Apr) 1 650 000 +
        # F3 (Feb) 440 000 + F4 (Apr; May paid 05-20) 440 000 = 5 280 000 -> 61.538 %
        "repayment_rate_pct": 61.5,
        "social_fund": 10_000,  # F2's ta'zir, recorded 06-02
        # of which Rp 4 000 paid on 06-20 (social fund money: no repayment, PAR or monthly figure above moves)
        "social_fund_imposed": 10_000, "social_fund_received": 4_000, "social_fund_outstanding": 6_000,
    },
    "construction": {
        # J1 J2 J3 J4 and the 2022 tanks T1 T2 T3 handed over; J5 not ordered yet
        "by_status": {"ordered": 0, "assigned": 0, "started": 0, "inspection_failed": 0, "inspection_passed": 0,
                      "completed": 7},
        # first inspections 7, passed 6 (J2 failed) = 85.714 %
        "first_time_pass_rate_pct": 85.7,
        # days: J3 12, J4 14, J1 19, T2 19, T3 20, T1 21, J2 35 -> median 19
        "median_days_order_to_handover": 19.0,
    },
    "desludging": {
        # tanks J1 J2 T1 T2 T3; due this month: T3 (2025-06-30); overdue: T2 (2025-03-20, emptied
        # 04-02 without an IPLT receipt, so still due); T1's next due date is 2028-03-03
        "due": 1, "overdue": 1,
        "emptied": 2, "m3_removed": 5.4, "m3_acknowledged": 2.35,  # T1 2.4 (2.35 received) + T2 3.0
        # of 5 tanks: emptied T1 T2 = 40 %, delivered T1 = 20 %, treated (no mismatch) T1 = 20 %
        "sludge_flow_pct": {"contained": 100.0, "emptied": 40.0, "delivered": 20.0, "treated": 20.0},
    },
    "monthly": months({
        # disbursed Jan: F1 2.5M + F1 2.5M (released 01-20) + F2 2.5M + F3 2M; Feb: F2 2.5M (02-05); Mar: F4
        # repaid Feb: F1 550k + F2 550k + F3 440k; Mar: F1 + F2; Apr: F1 + F2 + F4 440k; May: F1 + F4 1 640 000
        # PAR30 at month ends: Apr 30 F3 46 days late: 1.6M / (3.5 + 3.5 + 1.6 + 1.6)M = 15.7 %;
        # May 31: 1.6M / (3.0 + 3.5 + 1.6)M = 19.8 % (F2 only 16 days late); Jun 30: 67.1 %
        # desludging due: T1 (Jan), T2 (Mar), T3 (Jun); emptied: T1 (Mar), T2 (Apr)
        "2025-01": (9_500_000, 0, 0.0, 1, 0), "2025-02": (2_500_000, 1_540_000, 0.0, 0, 0),
        "2025-03": (2_000_000, 1_100_000, 0.0, 1, 1), "2025-04": (0, 1_540_000, 15.7, 0, 1),
        "2025-05": (0, 2_190_000, 19.8, 0, 0), "2025-06": (0, 550_000, 67.1, 1, 0),
    }, TO_D1),
}

BMI_D2 = {
    "headline": {
        # m6 exited 10-31: P(D2) = m1..m5; women 4/5; B40 3 of 4 known = 75 %; urban 2/5
        "members": 5, "households": 5, "women_pct": 80.0, "b40_pct": 75.0, "urban_pct": 40.0,
        "people_reached": 25,  # m1 5 + m2 4 + m3 6 + m4 3 + m5 7
        # m2 (follow-up survey: own tank never emptied, JMP safely managed) and m5 (T3 emptied, IPLT 09-03)
        "safely_managed_sanitation_households": 2,
    },
    "access_ladder": {
        "water": {"baseline": ladder(0, 1, 1, 2, 0, water=True), "now": ladder(0, 3, 1, 0, 0, water=True)},
        "sanitation": {"baseline": ladder(0, 1, 1, 1, 1, water=False),
                       "now": ladder(1, 2, 1, 0, 0, water=False)},
    },
    "financing": {
        "applied": 6, "approved": 5, "disbursed_count": 5, "disbursed_value": 19_000_000,  # + F5 5M
        # F1 settled, F3 written off, F4 settled; F2 rescheduled: 5 x 350 000 = 1 750 000 left, on time;
        # F5: 7 x 500 000 = 3 500 000, Nov 15 unpaid: 46 days
        "outstanding": 5_250_000,
        "par1_pct": 66.7, "par30_pct": 66.7, "par90_pct": 0.0,  # 3.5M / 5.25M
        # 2025: fallen due F1 5 500 000 + F2 (3 kept x 550k + Aug-Dec 5 x 385k) 3 575 000 + F3 (Feb-Jun,
        # written off 09-30) 2 200 000 + F4 880 000 + F5 (Aug-Dec) 2 750 000 = 14 905 000; on time
        # 5 500 000 + 3 575 000 + 440 000 + 440 000 + 1 650 000 = 11 605 000 -> 77.86 %
        "repayment_rate_pct": 77.9,
        "social_fund": 10_000,
        # + Rp 6 000 paid on 11-20: the charge is paid in full
        "social_fund_imposed": 10_000, "social_fund_received": 10_000, "social_fund_outstanding": 0,
    },
    "construction": {
        "by_status": {"ordered": 0, "assigned": 0, "started": 0, "inspection_failed": 0, "inspection_passed": 0,
                      "completed": 8},
        "first_time_pass_rate_pct": 87.5,  # 7 of 8
        "median_days_order_to_handover": 19.5,  # 12 14 19 19 | 20 21 23 35
    },
    "desludging": {
        # 6 tanks (+ J5); T3 emptied 09-02 (next due 2028); T2 still overdue
        "due": 0, "overdue": 1, "emptied": 3, "m3_removed": 7.4, "m3_acknowledged": 3.85,
        # emptied 3/6, delivered (T1, T3) 2/6, treated (T1; T3 received 1.5 of 2.0 m3) 1/6
        "sludge_flow_pct": {"contained": 100.0, "emptied": 50.0, "delivered": 33.3, "treated": 16.7},
    },
    "monthly": months({
        "2025-01": (9_500_000, 0, 0.0, 1, 0), "2025-02": (2_500_000, 1_540_000, 0.0, 0, 0),
        "2025-03": (2_000_000, 1_100_000, 0.0, 1, 1), "2025-04": (0, 1_540_000, 15.7, 0, 1),
        "2025-05": (0, 2_190_000, 19.8, 0, 0), "2025-06": (0, 550_000, 67.1, 1, 0),
        # Jul: F5 2.5M + 2.5M; repaid F1; PAR30 1.6M (F3) / (2.0 + 3.5 + 1.6 + 5.0)M = 13.2 %
        "2025-07": (5_000_000, 550_000, 13.2, 0, 0),
        # Aug: F1 + F2 385k + F5; PAR30 1.6M / (1.5 + 3.15 + 1.6 + 4.5)M = 14.9 %
        "2025-08": (0, 1_485_000, 14.9, 0, 0),
        "2025-09": (0, 1_485_000, 0.0, 0, 1),  # F3 written off 09-30; T3 emptied
        "2025-10": (0, 1_485_000, 0.0, 0, 0),
        "2025-11": (0, 1_375_000, 0.0, 0, 0),  # F1 + F2 + F3's recovery 440k; F5 15 days late
        "2025-12": (0, 385_000, 66.7, 0, 0),
    }, TO_D2),
}

# -- Koperasi BAIK ------------------------------------------------------------------------------------------

BAIK_D1 = {
    "headline": {
        # b5 joins 08-01: P(D1) = b1..b4, all women; B40 b1 b2 b4 = 75 %; urban b3 b4 = 50 %
        "members": 4, "households": 4, "women_pct": 100.0, "b40_pct": 75.0, "urban_pct": 50.0,
        "people_reached": 11,  # b1 (toilet: unimproved -> basic) 5 + b2 (toilet, OD -> basic) 6
        "safely_managed_sanitation_households": 0,
    },
    "access_ladder": {
        "water": {"baseline": ladder(1, 1, 0, 1, 1, water=True), "now": ladder(1, 1, 0, 1, 1, water=True)},
        "sanitation": {"baseline": ladder(0, 1, 1, 1, 1, water=False),
                       "now": ladder(0, 3, 1, 0, 0, water=False)},
    },
    "financing": {
        "applied": 2, "approved": 2, "disbursed_count": 2, "disbursed_value": 10_000_000,
        # G1 6 x 500k = 3M on time; G2 8 x 500k = 4M, May 10 unpaid: 51 days
        "outstanding": 7_000_000, "par1_pct": 57.1, "par30_pct": 57.1, "par90_pct": 0.0,
        # fallen due Mar-Jun: G1 2.2M + G2 2.2M; on time G1 2.2M + G2 Mar 550k (Apr paid 04-20) -> 62.5 %
        "repayment_rate_pct": 62.5, "social_fund": 0, "social_fund_received": 0, "social_fund_outstanding": 0,
    },
    "construction": {
        "by_status": {"ordered": 0, "assigned": 0, "started": 0, "inspection_failed": 0, "inspection_passed": 0,
                      "completed": 4},
        "first_time_pass_rate_pct": 75.0,  # J6 T4 T5 passed, J7 failed twice
        "median_days_order_to_handover": 20.0,  # J6 19, T4 19, T5 21, J7 37
    },
    "desludging": {
        # T4 due 2025-06-20 (overdue), T5 due 2025-12-31
        "due": 0, "overdue": 1, "emptied": 0, "m3_removed": 0.0, "m3_acknowledged": 0.0,
        "sludge_flow_pct": {"contained": 100.0, "emptied": 0.0, "delivered": 0.0, "treated": 0.0},
    },
    "monthly": months({
        "2025-02": (7_500_000, 0, 0.0, 0, 0), "2025-03": (2_500_000, 1_100_000, 0.0, 0, 0),
        "2025-04": (0, 1_100_000, 0.0, 0, 0), "2025-05": (0, 550_000, 0.0, 0, 0),
        "2025-06": (0, 550_000, 57.1, 1, 0),
    }, TO_D1),
}

BAIK_D2 = {
    "headline": {
        # P(D2) = b1..b5: women 4/5; B40 3/5; urban 2/5
        "members": 5, "households": 5, "women_pct": 80.0, "b40_pct": 60.0, "urban_pct": 40.0,
        "people_reached": 14,  # + b4 3 (T4 emptied, IPLT 07-02: basic -> safely managed)
        "safely_managed_sanitation_households": 1,
    },
    "access_ladder": {
        "water": {"baseline": ladder(1, 1, 1, 1, 1, water=True), "now": ladder(1, 1, 1, 1, 1, water=True)},
        "sanitation": {"baseline": ladder(0, 1, 1, 1, 2, water=False),
                       "now": ladder(1, 2, 1, 0, 1, water=False)},
    },
    "financing": {
        "applied": 3, "approved": 2, "disbursed_count": 2, "disbursed_value": 10_000_000,
        "outstanding": 4_000_000, "par1_pct": 100.0, "par30_pct": 100.0, "par90_pct": 100.0,  # G2, 235 days
        # fallen due 2025: G1 10 x 550k + G2 10 x 550k = 11M; on time 5.5M + 550k -> 55 %
        "repayment_rate_pct": 55.0, "social_fund": 0, "social_fund_received": 0, "social_fund_outstanding": 0,
    },
    "construction": {"first_time_pass_rate_pct": 75.0, "median_days_order_to_handover": 20.0},
    "desludging": {
        # T5 falls due on D2 itself (due, not overdue); T4 emptied 07-01, next due 2027-07-01
        "due": 1, "overdue": 0, "emptied": 1, "m3_removed": 2.5, "m3_acknowledged": 2.5,
        "sludge_flow_pct": {"contained": 100.0, "emptied": 50.0, "delivered": 50.0, "treated": 50.0},
    },
    "monthly": months({
        "2025-02": (7_500_000, 0, 0.0, 0, 0), "2025-03": (2_500_000, 1_100_000, 0.0, 0, 0),
        "2025-04": (0, 1_100_000, 0.0, 0, 0), "2025-05": (0, 550_000, 0.0, 0, 0),
        "2025-06": (0, 550_000, 57.1, 1, 0),
        # G1 left: 2.5M, 2M, 1.5M, 1M, 0.5M; G2 4M late -> 4/6.5, 4/6, 4/5.5, 4/5, 4/4.5, 4/4
        "2025-07": (0, 550_000, 61.5, 0, 1), "2025-08": (0, 550_000, 66.7, 0, 0),
        "2025-09": (0, 550_000, 72.7, 0, 0), "2025-10": (0, 550_000, 80.0, 0, 0),
        "2025-11": (0, 550_000, 88.9, 0, 0), "2025-12": (0, 550_000, 100.0, 1, 0),
    }, TO_D2),
}

# the full report's further figures
BMI_FULL = {
    D1: {
        "reach": {"sessions": 2, "session_attendances": 16, "funnel": {"attended": 6, "lead": 4, "applied": 4,
                                                                      "disbursed": 3}},
        "usaid": {"people_gaining_basic_sanitation": 9, "people_gaining_safely_managed_sanitation": 2,
                  "people_gaining_basic_water": 9},
        "financing": {"rejected": 1, "average_size": 3_500_000, "outstanding_count": 3, "outstanding_owed": 8_360_000,
                      "repaid": 6_920_000, "written_off_count": 0, "paid_on_time": 5_280_000,
                      "fallen_due": 8_580_000, "par30_principal": 5_100_000, "par90_principal": 1_600_000,
                      "restructured_pct": 0.0},
        "construction": {"reinspections": 1},
    },
    D2: {
        "reach": {"funnel": {"attended": 6, "lead": 4, "applied": 4, "disbursed": 4}},
        "usaid": {"people_gaining_basic_sanitation": 9, "people_gaining_safely_managed_sanitation": 4,
                  "people_gaining_basic_water": 9},
        "financing": {
            "average_size": 3_800_000, "repaid": 13_685_000, "written_off_count": 1,
            "written_off_principal": 1_600_000, "written_off_margin": 160_000, "recovered": 440_000,
            "paid_on_time": 11_605_000, "fallen_due": 14_905_000,
            # F2 rescheduled: with restructured every numerator gains its 1 750 000
            "par1_with_restructured_pct": 100.0, "par30_with_restructured_pct": 100.0,
            "par90_with_restructured_pct": 33.3, "restructured_pct": 33.3, "restructured_count": 1,
            "by_fund": [
                # tranches: water_org F1 + F5 10M, own F2 + F4 7M, donor working capital F3 2M; of 19M
                {"source_of_funds": "donor_working_capital", "financings": 1, "disbursed_value": 2_000_000,
                 "share_pct": 10.5, "leverage": 8.5},
                {"source_of_funds": "own_funds", "financings": 2, "disbursed_value": 7_000_000, "share_pct": 36.8,
                 "leverage": 1.71, "outstanding": 1_750_000},
                {"source_of_funds": "water_org", "financings": 2, "disbursed_value": 10_000_000, "share_pct": 52.6,
                 "leverage": 0.9, "outstanding": 3_500_000, "par30_pct": 100.0},
            ],
            "by_product": [
                {"product_name": "Sambungan Air PDAM", "product_id": "bmi-air", "applied": 2, "applied_value": 4_000_000, "disbursed": 2,
                 "disbursed_value": 4_000_000, "outstanding": 0},
                {"product_name": "Tangki Septik Sehat", "product_id": "bmi-tank", "applied": 4, "applied_value": 20_000_000, "approved": 3,
                 "approved_value": 15_000_000, "disbursed": 3, "disbursed_value": 15_000_000,
                 "average_size": 5_000_000, "outstanding_count": 2, "outstanding": 5_250_000, "par30_pct": 66.7},
            ],
            "write_offs": [{"reason": "uncollectable", "financings": 1, "principal": 1_600_000, "margin": 160_000}],
        },
        "desludging": {"tanks": 6, "iplt_receipts": 2, "visits_by_outcome": {"emptied": 3, "hose_cannot_reach": 1}},
    },
}


async def dashboard(system: System, api_key: str, on: str) -> dict[str, Any]:
    r = await system.reporting.get("/reports/dashboard", params={"as_of": on}, headers={"X-API-Key": api_key})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def full(system: System, api_key: str, on: str, path: str = "/reports/cooperative") -> dict[str, Any]:
    r = await system.reporting.get(path, params={"as_of": on}, headers={"X-API-Key": api_key})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _keys(value: Any) -> list[str]:
    """Every mapping key in ``value``, and every string of a list of strings (a table's columns)."""
    if isinstance(value, dict):
        return [k for k, v in value.items() for k in (k, *_keys(v))]
    if isinstance(value, list):
        return [x for v in value for x in ([v] if isinstance(v, str) else _keys(v))]
    return []


def contractors_by_label(body: dict[str, Any], coop: Coop) -> dict[str, dict[str, Any]]:
    label = {v: k for k, v in coop.ids.items()}
    return {label[c["contractor_id"]]: c for c in body["construction"]["by_contractor"]}


async def test_scenario_figures_rebuild_and_programme(system: System) -> None:
    await prepare_citra(system.platform_url)
    coops = {t: Coop(t, system.members, system.loans, system.sanitation) for t in (BMI, BAIK, CITRA)}
    await load_bmi(coops[BMI])
    await load_baik(coops[BAIK])
    await load_citra(coops[CITRA])
    for tenant, indicator, target, due in ((BMI, "people_reached", 50, "2026-12-31"),
                                           (BMI, "safely_managed_sanitation_households", 10, "2026-12-31"),
                                           (BAIK, "people_reached", 30, "2026-06-30")):
        r = await system.reporting.put(f"/reports/targets/{indicator}", json={"target": target, "due_on": due},
                                       headers={"X-API-Key": key(tenant, Role.MANAGER)})
        assert r.status_code == 200, r.text
    op = {"X-API-Key": OPERATOR_KEY}
    assert (await system.reporting.put(f"/programmes/{PROGRAMME}", json={"name": "USAID IUWASH PLUS"},
                                       headers=op)).status_code == 200
    for tenant in (BMI, BAIK):
        r = await system.reporting.put(f"/programmes/{PROGRAMME}/cooperatives/{tenant}",
                                       json={"consented_on": "2024-12-01"}, headers=op)
        assert r.status_code == 200, r.text
    await quiet(system)

    bmi, baik = key(BMI, Role.MANAGER), key(BAIK, Role.MANAGER)
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    for tenant, api_key, on, expected in ((BMI, bmi, D1, BMI_D1), (BMI, bmi, D2, BMI_D2),
                                          (BAIK, baik, D1, BAIK_D1), (BAIK, baik, D2, BAIK_D2)):
        body = await dashboard(system, api_key, on)
        check(body, {"scope": {"kind": "cooperative", "id": tenant, "cooperatives": [tenant]}, "as_of": on, **expected},
              f"{tenant} dashboard as of {on}")
        assert "by_cooperative" not in body
        answers[(tenant, on)] = body

    # targets: BMI people reached 27 (D1) and 25 (D2) of 50; safely managed 1 and 2 of 10; BAIK 11 and 14 of 30
    def targets(body: dict[str, Any]) -> dict[str, tuple[int, int, float]]:
        return {t["indicator"]: (t["target"], t["actual"], t["progress_pct"]) for t in body["targets"]}

    assert targets(answers[(BMI, D1)]) == {"people_reached": (50, 27, 54.0),
                                           "safely_managed_sanitation_households": (10, 1, 10.0)}
    assert targets(answers[(BMI, D2)]) == {"people_reached": (50, 25, 50.0),
                                           "safely_managed_sanitation_households": (10, 2, 20.0)}
    assert targets(answers[(BAIK, D1)]) == {"people_reached": (30, 11, 36.7)}
    assert targets(answers[(BAIK, D2)]) == {"people_reached": (30, 14, 46.7)}

    # the whole report: further figures, contractors, and the loans service's own portfolio figures
    for on in (D1, D2):
        report = await full(system, bmi, on)
        check(report, BMI_FULL[on], f"BMI report as of {on}")
        loans = (await system.loans.get("/portfolio", params={"as_of": on, "start": "2024-07-01" if on == D1
                                                              else "2025-01-01", "end": on},
                                        headers={"X-API-Key": bmi})).json()
        f = report["financing"]
        assert (f["outstanding"], f["par1_principal"], f["par30_principal"], f["par90_principal"]) == (
            loans["gross_principal"], loans["par"]["par1"]["at_risk"], loans["par"]["par30"]["at_risk"],
            loans["par"]["par90"]["at_risk"]), "reporting and the loans service disagree on PAR"
        assert (f["paid_on_time"], f["fallen_due"]) == (loans["repayment_rate"]["paid_on_time"],
                                                        loans["repayment_rate"]["fallen_due"])
        assert (f["social_fund_imposed"], f["social_fund_received"], f["social_fund_outstanding"]) == (
            loans["social_fund"]["imposed"], loans["social_fund"]["received"], loans["social_fund"]["outstanding"]), \
            "reporting and the loans service disagree on the social fund"
    # a rescheduled financing's instalment count (F2: 10 instalments, rescheduled on 2025-07-10 into 10 new ones
    # after the 3 it paid): the loans service's view and list give the schedule in force; reporting shows no
    # financing's instalment count in any report, table or export column (its rf_financing.instalments is the
    # number applied for and read by nothing), so there is none there to follow (reporting README)
    f2 = (await system.loans.get(f"/financings/{coops[BMI].ids['F2']}", headers={"X-API-Key": bmi})).json()
    assert f2["instalments"] == 13 and f2["instalments"] != 10, f2["instalments"]
    shown: list[Any] = [await dashboard(system, bmi, D2), await full(system, bmi, D2)]
    for table in (await system.reporting.get("/reports/tables", headers={"X-API-Key": bmi})).json()["tables"]:
        page = (await system.reporting.get(f"/reports/tables/{table}", params={"as_of": D2, "limit": 200},
                                           headers={"X-API-Key": bmi})).json()
        shown += [page["columns"], page["items"]]
    assert not [k for k in _keys(shown) if "instalments" in k or "tenor" in k]

    c1 = contractors_by_label(await full(system, bmi, D1), coops[BMI])
    check(c1, {"K1": {"jobs": 3, "completed": 3, "first_time_pass_rate_pct": 100.0, "certified": True,
                      "median_days_order_to_handover": 20.0},
               "K2": {"jobs": 2, "first_inspections": 2, "first_time_passes": 1, "first_time_pass_rate_pct": 50.0,
                      "reinspections": 1, "median_days_order_to_handover": 27.0},
               "K3": {"jobs": 2, "certified": False, "median_days_order_to_handover": 13.0}}, "BMI contractors D1")
    c2 = contractors_by_label(await full(system, bmi, D2), coops[BMI])
    check(c2, {"K1": {"jobs": 4, "median_days_order_to_handover": 20.5}}, "BMI contractors D2")
    ck = contractors_by_label(await full(system, baik, D2), coops[BAIK])
    check(ck, {"K4": {"jobs": 3, "first_time_pass_rate_pct": 66.7, "reinspections": 2},
               "K5": {"jobs": 1, "median_days_order_to_handover": 21.0}}, "BAIK contractors")

    # a cooperative's key never reaches another cooperative: 404
    r = await system.reporting.get(f"/reports/cooperatives/{BAIK}", headers={"X-API-Key": bmi})
    assert r.status_code == 404
    assert (await system.reporting.get(f"/reports/cooperatives/{BMI}", headers={"X-API-Key": bmi})).status_code == 200

    # -- the programme: BMI + BAIK, never Citra ------------------------------------------------------------
    prog = {"X-API-Key": PROGRAMME_KEY}
    for on in (D1, D2):
        body = await dashboard(system, PROGRAMME_KEY, on)
        assert body["scope"] == {"kind": "programme", "id": PROGRAMME, "name": "USAID IUWASH PLUS",
                                 "cooperatives": [BAIK, BMI]}
        each = {c["scope"]["id"]: c for c in body["by_cooperative"]}
        assert set(each) == {BMI, BAIK}
        for tenant in (BMI, BAIK):  # side by side: each equals the cooperative's own dashboard
            mine = answers[(tenant, on)]
            for section in ("headline", "access_ladder", "monthly", "financing", "construction", "desludging"):
                assert each[tenant][section] == mine[section], (tenant, on, section)
        b, k = answers[(BMI, on)], answers[(BAIK, on)]
        for field in ("members", "households", "people_reached", "safely_managed_sanitation_households"):
            assert body["headline"][field] == b["headline"][field] + k["headline"][field]
        for field in ("applied", "approved", "disbursed_count", "disbursed_value", "outstanding", "social_fund",
                      "social_fund_imposed", "social_fund_received", "social_fund_outstanding"):
            assert body["financing"][field] == b["financing"][field] + k["financing"][field]
        for field in ("due", "overdue", "emptied"):
            assert body["desludging"][field] == b["desludging"][field] + k["desludging"][field]
        for service in ("water", "sanitation"):
            for when in ("baseline", "now"):
                got = body["access_ladder"][service][when]
                assert got == {r: b["access_ladder"][service][when][r] + k["access_ladder"][service][when][r]
                               for r in got}
        for i, m in enumerate(body["monthly"]):
            for field in ("disbursed", "repaid", "desludging_due", "desludging_done"):
                assert m[field] == b["monthly"][i][field] + k["monthly"][i][field]
    # percentages from the summed parts (hand-worked), never averaged
    p1, p2 = await dashboard(system, PROGRAMME_KEY, D1), await dashboard(system, PROGRAMME_KEY, D2)
    check(p1, {
        # women 5 + 4 of 10; B40 3 + 3 of 5 + 4 known; urban 2 + 2 of 5 + 4 known
        "headline": {"members": 10, "women_pct": 90.0, "b40_pct": 66.7, "urban_pct": 44.4, "people_reached": 38},
        # PAR30 (5.1M + 4M) / (7.6M + 7M) = 62.3 %; PAR90 1.6M / 14.6M = 11.0 %; repayment
        # (5 280 000 + 2 750 000) / (8 580 000 + 4 400 000) = 61.9 %
        "financing": {"par30_pct": 62.3, "par90_pct": 11.0, "repayment_rate_pct": 61.9},
    }, "programme D1")
    check(p2, {
        "headline": {"members": 10, "women_pct": 80.0, "b40_pct": 66.7, "urban_pct": 40.0, "people_reached": 39,
                     "safely_managed_sanitation_households": 3},
        # PAR30 (3.5M + 4M) / 9.25M = 81.1 %; PAR90 4M / 9.25M = 43.2 %; repayment 17 655 000 / 25 905 000
        "financing": {"disbursed_value": 29_000_000, "par30_pct": 81.1, "par90_pct": 43.2, "repayment_rate_pct": 68.2},
        # first-time passes 7 + 3 of 8 + 4; median of the 12 jobs' days: (19 + 20) / 2
        "construction": {"first_time_pass_rate_pct": 83.3, "median_days_order_to_handover": 19.5},
        # 8 tanks: emptied 4, delivered 3, treated 2
        "desludging": {"m3_removed": 9.9, "m3_acknowledged": 6.35,
                       "sludge_flow_pct": {"contained": 100.0, "emptied": 50.0, "delivered": 37.5, "treated": 25.0}},
        # people reached 39 of 50 + 30 = 48.75 %; safely managed: only BMI set a target, so only BMI's
        # households count towards it: 2 of 10 (BAIK's 1 is in the headline's 3, not in BMI's target)
        "targets": [{"indicator": "people_reached", "target": 80, "actual": 39, "progress_pct": 48.8},
                    {"indicator": "safely_managed_sanitation_households", "target": 10, "actual": 2,
                     "progress_pct": 20.0}],
    }, "programme D2")
    programme = await full(system, PROGRAMME_KEY, D2, "/reports/programme")
    check(programme["usaid"], {"people_gaining_basic_sanitation": 9 + 11,
                               "people_gaining_safely_managed_sanitation": 4 + 3,
                               "people_gaining_basic_water": 9 + 0}, "programme USAID counts D2")
    assert {row["cooperative"] for row in programme["by_cooperative"]} == {BMI, BAIK}
    each_row = {row["cooperative"]: row for row in programme["by_cooperative"]}
    assert [(each_row[t]["social_fund"], each_row[t]["social_fund_received"], each_row[t]["social_fund_outstanding"])
            for t in (BMI, BAIK)] == [(10_000, 10_000, 0), (0, 0, 0)]
    # the donor indicator table gives the social fund received and outstanding too (BMI, 2025 to D1)
    r = await system.reporting.get("/reports/exports/indicators.csv", params={"as_of": D1, "years": 1},
                                   headers={"X-API-Key": bmi})
    assert r.status_code == 200, r.text
    fund = {row["indicator"]: row["actual"] for row in csv.DictReader(io.StringIO(r.text))
            if row["indicator"].startswith("social_fund")}
    assert fund == {"social_fund": "10000", "social_fund_received": "4000", "social_fund_outstanding": "6000"}
    water_org = next(f for f in programme["financing"]["by_fund"] if f["source_of_funds"] == "water_org")
    assert water_org["leverage"] == 1.9  # (29M - 10M) / 10M
    # nothing member-level in what a programme officer gets
    assert "member_id" not in str(programme) and coops[BMI].ids["m1"] not in str(programme)
    # Citra did not consent: 404 for its report, and its member and application are in no figure above
    assert (await system.reporting.get(f"/reports/cooperatives/{CITRA}", headers=prog)).status_code == 404
    assert (await system.reporting.get(f"/reports/cooperatives/{BAIK}", headers=prog)).status_code == 200
    citra = await dashboard(system, key(CITRA, Role.MANAGER), D2)
    assert (citra["headline"]["members"], citra["financing"]["applied"]) == (1, 1)

    # -- a rebuild beside the live read models: equal rows, then the same figures after the switch ----------
    settings = reporting_settings(system.urls, system.platform_url)
    pool = system.reporting.runtime.pool
    assert pool is not None
    for fam in FAMILIES:
        live = await registry.live_build(pool, fam)
        assert live is not None
        result = await rebuild(settings, fam, timeout=120)
        assert result.switched and result.events > 0 and result.build == f"{live.build}.r2"
        new = await registry.live_build(pool, fam)
        assert new is not None and new.build == result.build
        # the retired build's tables stay for the grace period: compare them row for row
        async with pool.acquire() as conn:
            assert await live.materialise().row_hash(conn) == await new.materialise().row_hash(conn), \
                f"{fam}: the rebuild's rows differ from the live ones"
            if fam == "catalogue":  # equal, and not empty: every cooperative's products, named
                got = await conn.fetch(f"SELECT tenant_id, product_id, name FROM {new.materialise().names['product']}")
                assert sorted(tuple(r) for r in got) == sorted(
                    (BMI if p.startswith("bmi") else BAIK if p.startswith("baik") else CITRA, p, n)
                    for p, n in PRODUCT_NAMES.items())
    await quiet(system)
    for (tenant, on), before in answers.items():
        after = await dashboard(system, key(tenant, Role.MANAGER), on)
        before.pop("freshness"), after.pop("freshness")
        assert after == before, f"{tenant} {on}: figures changed after the rebuild"
