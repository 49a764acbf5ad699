"""The loans demo loads products and financings in several states for both cooperatives, idempotently."""

from __future__ import annotations

import httpx

from deploy.local.demo import key_for
from deploy.local.demos.loans import load_demo
from services.loans.domain.loan_book import financing_id_for
from shared.tenancy import Role
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import MANAGER, event_count, events, known_member

KEYS = {t: {"manager": key_for(t, Role.MANAGER), "field_officer": key_for(t, Role.FIELD_OFFICER)} for t in (BMI, BAIK)}


async def test_demo_loads_both_cooperatives_in_several_states_and_again_changes_nothing(loans: ServiceClient) -> None:
    members = {BMI: [await known_member(loans, BMI) for _ in range(5)],
               BAIK: [await known_member(loans, BAIK) for _ in range(4)]}
    transport = httpx.ASGITransport(app=loans._transport.app)  # type: ignore[attr-defined]
    written = await load_demo("http://test", KEYS, members, transport=transport)
    assert written > 30
    bmi = (await loans.get("/financings", headers=headers(BMI, MANAGER))).json()
    baik = (await loans.get("/financings", headers=headers(BAIK, MANAGER))).json()
    # the stories, and each cooperative's imported book (its oldest financing repaid in full)
    # the stories, a rupiah-margin financing, and each cooperative's imported book
    assert sorted(i["status"] for i in bmi["items"]) == ["active", "active", "active", "active", "active",
                                                           "applied", "settled", "settled"]
    assert sorted(i["status"] for i in baik["items"]) == ["active", "active", "active", "rejected", "settled",
                                                            "signed"]
    for tenant, refs in ((BMI, ["BMI-LAMA-0001", "BMI-LAMA-0002", "BMI-LAMA-0003"]), (BAIK, ["BAIK-LAMA-0001",
                                                                                            "BAIK-LAMA-0002"])):
        imported = [(await loans.get(f"/financings/{financing_id_for(ref)}", headers=headers(tenant, MANAGER))).json()
                    for ref in refs]
        assert [f["status"] for f in imported] == ["settled", "active", "active"][:len(refs)]
        assert all(f["disbursed"] == f["cost"] and f["standing"]["days_past_due"] == 0 for f in imported)
    assert not [e for e in await events(loans) if e.type == "loans.TrancheDisbursed"
                and e.stream_id in {financing_id_for(r) for r in ("BMI-LAMA-0001", "BAIK-LAMA-0001")}]
    assert len((await loans.get("/products", headers=headers(BMI, MANAGER))).json()["items"]) == 4
    assert len((await loans.get("/products", headers=headers(BAIK, MANAGER))).json()["items"]) == 3
    # one financing per cooperative repays a margin in rupiah: agreed on the application (BMI), stated by the
    # product's tenor (BAIK); its schedule splits cost + margin exactly, the remainder on the last instalment
    rupiah = ((BMI, bmi["items"], "sanitasi-margin-rupiah", 4_000_000, 555_555, 24),
              (BAIK, baik["items"], "paket-jamban", 3_500_000, 385_000, 12))
    for tenant, items, product, cost, margin, n in rupiah:
        [fid] = [i["financing_id"] for i in items if i["product_id"] == product]
        f = (await loans.get(f"/financings/{fid}", headers=headers(tenant, MANAGER))).json()
        assert f["status"] == "active" and f["margin_idr"] == margin and f["margin_bp"] is None
        assert f["cost"] == cost and f["margin"] == margin and f["selling_price"] == cost + margin
        base = (cost + margin) // n
        assert [i["amount"] for i in f["schedule"]] == [base] * (n - 1) + [cost + margin - base * (n - 1)]
        assert any(i["paid"] for i in f["schedule"])
    q = (await loans.get("/portfolio", headers=headers(BMI, MANAGER))).json()
    assert q["par"]["par30"]["at_risk"] > 0 and q["par"]["par90"]["at_risk"] == 0
    assert q["social_fund"] == {"imposed": 10_000, "received": 10_000, "outstanding": 0}  # a ta'zir, collected
    q = (await loans.get("/portfolio", headers=headers(BAIK, MANAGER))).json()
    assert q["restructured"]["at_risk"] > 0 and q["par"]["par30"]["at_risk"] == 0
    assert q["social_fund"] == {"imposed": 10_000, "received": 10_000, "outstanding": 0}
    settled = next(i for i in bmi["items"] if i["status"] == "settled")
    body = (await loans.get(f"/financings/{settled['financing_id']}", headers=headers(BMI, MANAGER))).json()
    assert body["close_reason"] == "settled_early" and body["rebate"] > 0
    n = await event_count(loans)
    assert await load_demo("http://test", KEYS, members, transport=transport) == 0
    assert await event_count(loans) == n
