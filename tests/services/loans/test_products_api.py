"""Products and loan settings through the API: definition, refusals, roles, tenant isolation."""

from __future__ import annotations

from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.loans.support import (
    MANAGER,
    OFFICER,
    SANITATION_PRODUCT,
    define_product,
    event_count,
    events,
)


async def test_define_get_and_list_products(loans: ServiceClient) -> None:
    body = await define_product(loans)
    assert body["product_id"] == "mikro-tata-sanitasi" and body["tranche_percents"] == [50, 50]
    assert body["tenors"] == [{"instalments": 12, "margin_bp": 1200, "margin_idr": None},
                              {"instalments": 24, "margin_bp": 2400, "margin_idr": None}]
    assert body["defined_on"] == "2020-01-01"
    assert body["rebate_method"] == "proportional" and body["min_membership_months"] == 12
    got = await loans.get("/products/mikro-tata-sanitasi", headers=headers(BMI, OFFICER))
    assert got.status_code == 200 and got.json() == body
    await define_product(loans, product_id="mikro-tata-air", name="Mikro Tata Air", purpose="water_connection",
                         tranche_percents=[100])
    listed = await loans.get("/products", headers=headers(BMI, OFFICER))
    assert [p["product_id"] for p in listed.json()["items"]] == ["mikro-tata-air", "mikro-tata-sanitasi"]
    water = await loans.get("/products?purpose=water_connection", headers=headers(BMI, OFFICER))
    assert [p["product_id"] for p in water.json()["items"]] == ["mikro-tata-air"]


async def test_products_are_per_cooperative(loans: ServiceClient) -> None:
    await define_product(loans, BMI)
    assert (await loans.get("/products/mikro-tata-sanitasi", headers=headers(BAIK, MANAGER))).status_code == 404
    assert (await loans.get("/products", headers=headers(BAIK, MANAGER))).json()["items"] == []
    # the same code in another cooperative is another product
    await define_product(loans, BAIK, max_amount=5_000_000)
    baik = await loans.get("/products/mikro-tata-sanitasi", headers=headers(BAIK, MANAGER))
    assert baik.json()["max_amount"] == 5_000_000
    bmi = await loans.get("/products/mikro-tata-sanitasi", headers=headers(BMI, MANAGER))
    assert bmi.json()["max_amount"] == 200_000_000


async def test_product_refusals_write_nothing(loans: ServiceClient) -> None:
    await define_product(loans)
    n = await event_count(loans)
    r = await loans.post("/products", json=SANITATION_PRODUCT, headers=headers(BMI, MANAGER))
    assert r.status_code == 409 and r.json()["field"] == "product_id"
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "konv", "contract_type":
                                            "conventional_flat"}, headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and "configured as sharia" in r.json()["reason"]
    assert r.json()["field"] == "contract_type"
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "qard", "contract_type": "qard_hasan"},
                         headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and "margin must be 0" in r.json()["reason"]
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "x2", "tranche_percents": [60, 60]},
                         headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["field"] == "tranche_percents"
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "x3", "tenant_id": BAIK,
                                            "version": 3}, headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"tenant_id", "version"}
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "x4", "min_amount": 1.5},
                         headers=headers(BMI, MANAGER))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "min_amount"
    r = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "x5"}, headers=headers(BMI, OFFICER))
    assert r.status_code == 403
    assert await event_count(loans) == n


async def test_define_product_is_idempotent_with_a_key(loans: ServiceClient) -> None:
    h = headers(BMI, MANAGER, **{"Idempotency-Key": "prod-1"})
    first = await loans.post("/products", json=SANITATION_PRODUCT, headers=h)
    again = await loans.post("/products", json=SANITATION_PRODUCT, headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = await loans.post("/products", json={**SANITATION_PRODUCT, "product_id": "other"}, headers=h)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    # one definition (internal, with the terms) and its public contract, in the product's stream, once
    defined, published = await events(loans)
    assert (defined.type, published.type) == ("loans.ProductDefined", "loans.ProductPublished")
    assert defined.stream_id == published.stream_id and (defined.version, published.version) == (1, 2)
    assert published.tenant_id == BMI and published.payload == {
        "product_id": SANITATION_PRODUCT["product_id"], "product_name": SANITATION_PRODUCT["name"],
        "purpose": SANITATION_PRODUCT["purpose"], "contract_type": SANITATION_PRODUCT["contract_type"],
        "frequency": SANITATION_PRODUCT["frequency"], "defined_on": first.json()["defined_on"]}


async def test_settings_a_non_sharia_cooperative_may_offer_a_conventional_product(loans: ServiceClient) -> None:
    got = await loans.get("/settings", headers=headers(BAIK, OFFICER))
    assert got.json() == {"sharia": True, "substandard_over_days": 30, "doubtful_over_days": 90,
                          "loss_over_days": 180, "version": 0}
    new = {"sharia": False, "substandard_over_days": 30, "doubtful_over_days": 90, "loss_over_days": 180}
    assert (await loans.put("/settings", json=new, headers=headers(BAIK, OFFICER))).status_code == 403
    r = await loans.put("/settings", json=new, headers=headers(BAIK, MANAGER))
    assert r.status_code == 200 and r.json()["sharia"] is False and r.json()["version"] == 1
    await define_product(loans, BAIK, product_id="flat-air", contract_type="conventional_flat")
    # the other cooperative's settings are untouched
    assert (await loans.get("/settings", headers=headers(BMI, MANAGER))).json()["sharia"] is True
    bad = {**new, "doubtful_over_days": 20}
    r = await loans.put("/settings", json=bad, headers=headers(BAIK, MANAGER))
    assert r.status_code == 422 and "must rise" in r.json()["reason"]
