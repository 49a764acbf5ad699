"""On real Kafka and PostgreSQL: a product defined in loans reaches reporting as ``loans.ProductPublished``
(through the loans relay and the topic) and is named beside its id in the report JSON and in every export
of the financing-by-product table (XLSX read with openpyxl, the Indonesian-Excel CSV and the standard one);
a product whose definition never came (defined before the contract existed, so its stream has no
``ProductPublished``) is shown by its id, until the loans service's upgrade backfill publishes it. Each cooperative sees its own products' names only, also when
another cooperative uses the same product code; a programme over both gets both names for that code."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import openpyxl
import orjson

from deploy.local.demo import key_for
from deploy.local.infra import KafkaHandle, PostgresHandle
from services.loans.app import create_app as loans_app
from services.loans.domain.events import ProductDefined, TenorMargin
from services.loans.domain.product import (
    PRODUCT_STREAM_TYPE,
    LoanSettings,
    Product,
    decide_define_product,
    product_stream_id,
)
from services.loans.handlers import publish_products
from services.loans.settings import LoansSettings
from services.reporting import queries as q
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.eventstore import NO_STREAM
from shared.kafka import namespaced
from shared.rls import programme_scope, tenant_scope
from shared.tenancy import Role
from tests.helpers import ServiceClient, eventually, running_app
from tests.kernel.test_relay import read_topic_until
from tests.services.conftest import BAIK, BMI
from tests.services.loans.support import SANITATION_PRODUCT, define_product, known_member
from tests.services.reporting.test_imported_book_kafka import row

AS_OF = "2025-06-30"
LEGACY = "sanitasi-lama"


def legacy_definition() -> ProductDefined:
    """A product as loans stored it before ``ProductPublished`` existed: its definition alone."""
    return ProductDefined(
        product_id=LEGACY, name="Sanitasi Lama", purpose="septic_tank", contract_type="murabahah",
        frequency="monthly", min_amount=1_000_000, max_amount=200_000_000,
        tenors=[TenorMargin(instalments=12, margin_bp=1200)], tranche_percents=[100], late_charge=0,
        funds=["own_funds"], rebate_method="proportional", min_membership_months=12, max_days_overdue=30,
        defined_on=SANITATION_PRODUCT["defined_on"])


async def _import(loans: ServiceClient, tenant: str, *rows: dict[str, Any]) -> None:
    r = await loans.post("/imports", json=list(rows), headers={"X-API-Key": key_for(tenant, Role.MANAGER)})
    assert r.status_code == 200 and r.json()["imported"] == len(rows), r.text


async def _by_product(reporting: ServiceClient, tenant: str) -> list[dict[str, Any]]:
    res = await reporting.get("/reports/cooperative", params={"as_of": AS_OF},
                              headers={"X-API-Key": key_for(tenant, Role.MANAGER)})
    assert res.status_code == 200, res.text
    return res.json()["financing"]["by_product"]  # type: ignore[no-any-return]


async def test_a_product_defined_in_loans_is_named_in_reportings_exports(
        pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    await kafka.authorize(namespace)
    common = {"platform_database_url": platform_url, "kafka_namespace": namespace, "kafka_topic_partitions": 3}
    loans_settings = LoansSettings(database_url=await pg.create_database("loans"), event_source="none", **common,
                                   **kafka.settings_for("loans"))
    reporting_settings = ReportingSettings(database_url=await pg.create_database("reporting"), event_source="kafka",
                                           build_poll_s=0.2, **common, **kafka.settings_for("reporting"))
    async with (running_app(loans_app(loans_settings)) as loans,
                running_app(reporting_app(reporting_settings)) as reporting):
        # BMI: a product defined through the API, and one stored before the contract existed
        await define_product(loans)
        store = loans.runtime.store
        assert store is not None
        old = legacy_definition()
        [definition] = decide_define_product(Product(), LoanSettings(), old)[:1]
        await store.append(BMI, "loan_product", product_stream_id(LEGACY), NO_STREAM, [definition])
        assert loans.runtime.pool is not None
        await loans.runtime.pool.execute(  # as the handler of that time listed it
            """INSERT INTO loan_products (tenant_id, product_id, name, purpose, contract_type, defined_on)
               VALUES ($1, $2, $3, $4, $5, $6)""", BMI, LEGACY, old.name, old.purpose, old.contract_type,
            old.defined_on)
        # Baik uses the same product code for a product of its own name
        await define_product(loans, BAIK, name="Jamban Sehat Baik")
        bmi_member, baik_member = await known_member(loans), await known_member(loans, BAIK)
        legacy_row = {**row("K-2", bmi_member, 0), "product_id": LEGACY}
        await _import(loans, BMI, row("K-1", bmi_member, 3), legacy_row)
        await _import(loans, BAIK, row("B-1", baik_member, 1))

        # the product travels on the loans topic as its public contract; its definition stays home
        records = await read_topic_until(
            kafka.admin, namespaced("washfin.loans.v1", namespace),
            lambda recs: sum(orjson.loads(r.value)["type"] == "loans.ProductPublished" for r in recs) == 2)
        published = [orjson.loads(r.value) for r in records]
        assert "loans.ProductDefined" not in {p["type"] for p in published}
        assert sorted((p["tenant_id"], p["payload"]["product_name"]) for p in published
                      if p["type"] == "loans.ProductPublished") == [
            (BAIK, "Jamban Sehat Baik"), (BMI, "Mikro Tata Sanitasi")]

        async def named() -> list[dict[str, Any]] | None:
            rows = await _by_product(reporting, BMI)
            ok = {r["product_id"]: r["disbursed"] for r in rows} == {"mikro-tata-sanitasi": 1, LEGACY: 1}
            return rows if ok and any(r["product_name"] != r["product_id"] for r in rows) else None

        rows = await eventually(named, timeout=90, interval=0.5)
        # the name beside the id; the legacy product, whose name never came, by its id
        assert [(r["product_name"], r["product_id"]) for r in rows] == [
            ("Mikro Tata Sanitasi", "mikro-tata-sanitasi"), (LEGACY, LEGACY)]
        baik = await eventually(lambda: _baik_named(reporting), timeout=60, interval=0.5)
        assert [(r["product_name"], r["product_id"]) for r in baik] == [("Jamban Sehat Baik", "mikro-tata-sanitasi")]

        for tenant, expected in ((BMI, [["Mikro Tata Sanitasi", "mikro-tata-sanitasi"], [LEGACY, LEGACY]]),
                                 (BAIK, [["Jamban Sehat Baik", "mikro-tata-sanitasi"]])):
            headers = {"X-API-Key": key_for(tenant, Role.MANAGER)}
            path = "/reports/exports/tables/financing_by_product"
            # XLSX, both languages: the name's column, then the code's, headers in words
            for lang, heads in (("id", ["Produk", "Kode produk"]), ("en", ["Product", "Product code"])):
                x = await reporting.get(path, params={"format": "xlsx", "lang": lang, "as_of": AS_OF}, headers=headers)
                assert x.status_code == 200, x.text
                ws = openpyxl.load_workbook(io.BytesIO(x.content)).active
                assert [c.value for c in ws[1]][:2] == heads
                assert [list(r[:2]) for r in ws.iter_rows(min_row=2, values_only=True)] == expected
            # the Indonesian-Excel CSV and the standard one
            c = await reporting.get(path, params={"dialect": "excel_id", "lang": "id", "as_of": AS_OF}, headers=headers)
            lines = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig")), delimiter=";"))
            assert lines[0][:2] == ["Produk", "Kode produk"] and [r[:2] for r in lines[1:]] == expected
            s = await reporting.get(path, params={"as_of": AS_OF}, headers=headers)
            lines = list(csv.reader(io.StringIO(s.text)))
            assert lines[0][:2] == ["product_name", "product_id"] and [r[:2] for r in lines[1:]] == expected
            # a cooperative never sees another's product names, not even the same code's
            whole = (await reporting.get("/reports/exports/report.xlsx", params={"as_of": AS_OF}, headers=headers)).content
            other = "Mikro Tata Sanitasi" if tenant == BAIK else "Jamban Sehat Baik"
            book = openpyxl.load_workbook(io.BytesIO(whole))
            assert not any(other in str(v) for ws in book.worksheets for r in ws.iter_rows(values_only=True) for v in r)

        # and below the API: each cooperative's scope reads its own rows of the catalogue only
        rt = reporting.runtime
        table = rt.live_names()["catalogue"]["product"]
        for tenant, names in ((BMI, ["Mikro Tata Sanitasi"]), (BAIK, ["Jamban Sehat Baik"])):
            async with tenant_scope(rt.reader_pool, tenant) as conn:
                got = await conn.fetch(f"SELECT tenant_id, name FROM {table} ORDER BY name")
            assert [(r["tenant_id"], r["name"]) for r in got] == [(tenant, n) for n in names]
        # the upgrade's backfill (at the loans service's start) publishes the old product, once; its name comes
        assert await publish_products(loans.runtime) == 1 and await publish_products(loans.runtime) == 0

        async def legacy_named() -> list[dict[str, Any]] | None:
            rows = await _by_product(reporting, BMI)
            return rows if all(r["product_name"] != r["product_id"] for r in rows) else None

        rows = await eventually(legacy_named, timeout=60, interval=0.5)
        assert [(r["product_name"], r["product_id"]) for r in rows] == [
            ("Mikro Tata Sanitasi", "mikro-tata-sanitasi"), ("Sanitasi Lama", LEGACY)]
        legacy = [e for e in await store.read_stream(BMI, PRODUCT_STREAM_TYPE, product_stream_id(LEGACY))]
        assert [(e.type, e.version) for e in legacy] == [("loans.ProductDefined", 1), ("loans.ProductPublished", 2)]
        # a programme over both: the code both use carries both names
        async with programme_scope(rt.reader_pool, [BMI, BAIK]) as conn:
            assert await q.product_names(conn, rt.live_names()) == {
                "mikro-tata-sanitasi": "Jamban Sehat Baik / Mikro Tata Sanitasi", LEGACY: "Sanitasi Lama"}


async def _baik_named(reporting: ServiceClient) -> list[dict[str, Any]] | None:
    rows = await _by_product(reporting, BAIK)
    return rows if rows and all(r["product_name"] != r["product_id"] for r in rows) else None
