"""On real Kafka: an imported book's financings leave the loans service through its relay like any, the
disbursement as ``loans.FinancingImported`` (the internal events stay home); the reporting service,
consuming the topic, counts them as disbursed, and the sanitation service, consuming it too, orders no
job."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import orjson

from deploy.local.demo import key_for
from deploy.local.infra import KafkaHandle, PostgresHandle
from services.loans.app import create_app as loans_app
from services.loans.domain.loan_book import financing_id_for
from services.loans.settings import LoansSettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.sanitation.app import create_app as sanitation_app
from services.sanitation.reactions import TrancheOrdersJob
from services.sanitation.settings import SanitationSettings
from shared.kafka import namespaced
from shared.tenancy import Role
from tests.helpers import eventually, running_app
from tests.kernel.test_relay import read_topic
from tests.services.loans.support import define_product, known_member
from tests.services.reporting.scenario import BMI


def row(ref: str, member: str, paid: int) -> dict[str, Any]:
    dues = [date(2025, 2, 15) + timedelta(days=30 * i) for i in range(12)]
    return {"loan_ref": ref, "member_id": member, "product_id": "mikro-tata-sanitasi", "cost": 6_000_000,
            "margin": 720_000, "signed_on": "2025-01-15", "disbursed_on": "2025-01-20", "source_of_funds": "own_funds",
            "schedule": [{"due_on": d.isoformat(), "amount": 560_000} for d in dues],
            "payments": [{"receipt_number": f"{ref}-{i}", "paid_on": dues[i].isoformat(), "amount": 560_000}
                         for i in range(paid)]}


async def test_an_imported_book_travels_on_kafka(pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    await kafka.authorize(namespace)
    common = {"platform_database_url": platform_url, "kafka_namespace": namespace, "kafka_topic_partitions": 3}
    loans_settings = LoansSettings(database_url=await pg.create_database("loans"), event_source="none", **common,
                                   **kafka.settings_for("loans"))
    sanitation_settings = SanitationSettings(database_url=await pg.create_database("sanitation"), event_source="kafka",
                                             **common, **kafka.settings_for("sanitation"))
    reporting_settings = ReportingSettings(database_url=await pg.create_database("reporting"), event_source="kafka",
                                           build_poll_s=0.2, **common, **kafka.settings_for("reporting"))
    manager = {"X-API-Key": key_for(BMI, Role.MANAGER)}
    async with (running_app(loans_app(loans_settings)) as loans,
                running_app(sanitation_app(sanitation_settings)) as sanitation,
                running_app(reporting_app(reporting_settings)) as reporting):
        await define_product(loans)
        member = await known_member(loans)
        r = await loans.post("/imports", json=[row("K-1", member, 3), row("K-2", member, 12)], headers=manager)
        assert r.status_code == 200 and r.json()["imported"] == 2, r.text

        async def disbursed() -> dict[str, Any] | None:
            res = await reporting.get("/reports/cooperative", params={"as_of": "2025-06-30"}, headers=manager)
            assert res.status_code == 200, res.text
            f: dict[str, Any] = res.json()["financing"]
            return f if f["disbursed_count"] == 2 else None

        f = await eventually(disbursed, timeout=90, interval=0.5)
        assert f["disbursed_value"] == 12_000_000 and f["outstanding_count"] == 2  # K-2 is repaid in full by 2026
        records = await read_topic(kafka.admin, namespaced("washfin.loans.v1", namespace), 10, timeout=30)
        published = [orjson.loads(rec.value) for rec in records]
        imported = [p for p in published if p["type"] == "loans.FinancingImported"]
        assert sorted(p["stream_id"] for p in imported) == sorted([financing_id_for("K-1"), financing_id_for("K-2")])
        assert {p["payload"]["status"] for p in imported} == {"active", "settled"}
        types = {p["type"] for p in published}
        assert "loans.TrancheDisbursed" not in types
        assert not types & {"loans.DisbursementImported", "loans.TermsQuoted", "loans.WorkOrderRecorded"}  # internal

        # sanitation read the whole topic and ordered nothing
        assert sanitation.runtime.pool is not None

        async def read_all() -> bool:
            n = await sanitation.runtime.pool.fetchval(  # type: ignore[union-attr]
                "SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets WHERE consumer = $1", TrancheOrdersJob.name)
            return int(n) >= len(published)

        await eventually(read_all, timeout=60, interval=0.5)
        jobs = (await sanitation.get("/jobs", headers=manager)).json()
        assert jobs["total"] == 0
