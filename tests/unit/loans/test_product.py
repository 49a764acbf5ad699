"""The product catalogue's rules, checked once when a product is defined."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.loans.domain.errors import LoanConflict, LoanRuleViolation
from services.loans.domain.events import ProductDefined, TenorMargin
from services.loans.domain.product import (
    LoanSettings,
    Product,
    decide_change_settings,
    decide_define_product,
    decide_publish_product,
    fold_product,
)
from tests.unit.loans.story import MANAGER, envelopes, product


def spec(**over: Any) -> ProductDefined:
    base: dict[str, Any] = dict(
        product_id="mikro-tata-air", name="Mikro Tata Air", purpose="water_connection", contract_type="murabahah",
        frequency="weekly", min_amount=1_000_000, max_amount=3_000_000,
        tenors=[TenorMargin(instalments=25, margin_bp=600), TenorMargin(instalments=50, margin_bp=1100)],
        tranche_percents=[100], late_charge=0, funds=["own_funds"], rebate_method="proportional",
        min_membership_months=12, max_days_overdue=30, defined_on=date(2025, 1, 1),
    )
    base.update(over)
    return ProductDefined(**base)


def test_a_product_is_defined_with_its_terms() -> None:
    events = decide_define_product(Product(), LoanSettings(), spec())
    p = fold_product(envelopes(events, "p", 0, MANAGER))
    assert p.exists and p.margin_bp(50) == 1100 and p.margin_bp(12) is None
    assert p.as_payload()["tenors"] == [{"instalments": 25, "margin_bp": 600, "margin_idr": None},
                                       {"instalments": 50, "margin_bp": 1100, "margin_idr": None}]


def test_a_product_id_is_used_once() -> None:
    with pytest.raises(LoanConflict, match="already exists"):
        decide_define_product(product(), LoanSettings(), spec(product_id="mikro-tata-sanitasi"))


@pytest.mark.parametrize(("over", "message", "field"), [
    ({"contract_type": "conventional_flat"}, "configured as sharia: a conventional flat-rate product", "contract_type"),
    ({"contract_type": "qard_hasan"}, "qard hasan is a benevolent loan: its margin must be 0", "tenors"),
    ({"contract_type": "istishna", "purpose": "desludging"}, "made-to-order sale", "contract_type"),
    ({"min_amount": 5_000_000}, "1 <= min_amount <= max_amount", "max_amount"),
    ({"tenors": []}, "at least one tenor", "tenors"),
    ({"tenors": [TenorMargin(instalments=25, margin_bp=1), TenorMargin(instalments=25, margin_bp=2)]},
     "listed once", "tenors"),
    ({"tranche_percents": [50, 40]}, "sum to 100", "tranche_percents"),
    ({"tranche_percents": [30, 30, 40]}, "one tranche of 100 %, or two", "tranche_percents"),
    ({"purpose": "desludging", "tranche_percents": [50, 50]}, "only construction purposes", "tranche_percents"),
    ({"funds": []}, "at least one source of funds", "funds"),
    ({"product_id": "Has Spaces"}, "lowercase letters", "product_id"),
    ({"min_amount": 10, "max_amount": 100}, "cannot be split into 25 instalments", "tenors"),
])
def test_product_rules(over: dict[str, Any], message: str, field: str) -> None:
    with pytest.raises(LoanRuleViolation, match=message) as e:
        decide_define_product(Product(), LoanSettings(), spec(**over))
    assert e.value.field == field


def test_a_non_sharia_cooperative_may_offer_a_conventional_flat_product() -> None:
    events = decide_define_product(Product(), LoanSettings(sharia=False), spec(contract_type="conventional_flat"))
    assert events[0].payload["contract_type"] == "conventional_flat"


def test_settings_thresholds_must_rise() -> None:
    with pytest.raises(LoanRuleViolation, match="must rise"):
        decide_change_settings(LoanSettings(), sharia=True, substandard_over_days=90, doubtful_over_days=60,
                               loss_over_days=180, on=date(2025, 1, 1))
    [e] = decide_change_settings(LoanSettings(), sharia=False, substandard_over_days=7, doubtful_over_days=30,
                                 loss_over_days=90, on=date(2025, 1, 1))
    assert e.type == "loans.LoanSettingsChanged" and e.payload["sharia"] is False


def test_a_product_defined_before_its_contract_existed_is_published_once() -> None:
    [definition, published] = decide_define_product(Product(), LoanSettings(), spec())
    old = envelopes([definition], "p", 0, MANAGER)  # a stream of that time: the definition alone
    [event] = decide_publish_product(old)
    assert (event.type, event.payload) == (published.type, published.payload)
    assert decide_publish_product(envelopes([definition, event], "p", 0, MANAGER)) == []
    assert decide_publish_product([]) == []
