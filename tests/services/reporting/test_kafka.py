"""On real Kafka: the reporting projections consume the published topics (the scale-out path), and a
rebuild reads the topic from its beginning beside the live build, then switches reads to it with equal
rows."""

from __future__ import annotations

import uuid

from deploy.local.demo import DEMO_MEMBERS, key_for
from deploy.local.infra import KafkaHandle, PostgresHandle
from services.members.app import create_app as members_app
from services.members.settings import MembersSettings
from services.reporting import builds as registry
from services.reporting.app import create_app as reporting_app
from services.reporting.rebuild import rebuild
from services.reporting.settings import ReportingSettings
from shared.tenancy import Role
from tests.helpers import eventually, running_app
from tests.services.reporting.scenario import BAIK, BMI, S_OD, S_SAFE, W_BASIC, W_LIMITED


async def test_projections_and_rebuild_on_kafka(pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    await kafka.authorize(namespace)
    common = {"platform_database_url": platform_url, "kafka_namespace": namespace, "kafka_topic_partitions": 3}
    m = MembersSettings(database_url=await pg.create_database("members"), event_source="none", **common,
                        **kafka.settings_for("members"))
    r = ReportingSettings(database_url=await pg.create_database("reporting"), event_source="kafka", build_poll_s=0.2,
                          build_drop_grace_s=60, **common, **kafka.settings_for("reporting"))
    async with running_app(members_app(m)) as members, running_app(reporting_app(r)) as reporting:
        officer = {"X-API-Key": key_for(BMI, Role.FIELD_OFFICER)}
        ids = []
        for n in range(3):
            got = await members.post("/members", json=DEMO_MEMBERS[BMI][n], headers=officer)
            assert got.status_code == 201, got.text
            ids.append(got.json()["member_id"])
        survey = {"water": W_LIMITED, "sanitation": S_OD, "hygiene": {"facility": "none"}}
        await members.post(f"/members/{ids[0]}/surveys", json={"surveyed_on": "2025-01-02", **survey}, headers=officer)
        await members.post(f"/members/{ids[0]}/surveys", headers=officer, json={
            "surveyed_on": "2025-06-02", **survey, "water": W_BASIC, "sanitation": S_SAFE})
        got = await members.post("/members", json=DEMO_MEMBERS[BAIK][0],
                                 headers={"X-API-Key": key_for(BAIK, Role.FIELD_OFFICER)})
        assert got.status_code == 201

        async def dashboard() -> dict:  # type: ignore[type-arg]
            res = await reporting.get("/reports/dashboard", params={"as_of": "2025-12-31"},
                                      headers={"X-API-Key": key_for(BMI, Role.MANAGER)})
            assert res.status_code == 200, res.text
            return res.json()  # type: ignore[no-any-return]

        async def projected() -> bool:
            body = await dashboard()
            return body["headline"]["members"] == 3 and body["headline"]["safely_managed_sanitation_households"] == 1

        await eventually(projected, timeout=90, interval=0.5)
        before = await dashboard()
        # the first member's household (5 people): OD -> safely managed, limited -> basic water
        assert before["headline"]["people_reached"] == DEMO_MEMBERS[BMI][0]["household_size"]
        assert "reporting.members.v2@" in before["freshness"]["as_of_position"]

        pool = reporting.runtime.pool
        assert pool is not None
        old = await registry.live_build(pool, "members")
        assert old is not None
        result = await rebuild(r, "members", timeout=120)
        assert result.switched and result.build == "reporting.members.v2.r2" and result.events >= 6
        new = await registry.live_build(pool, "members")
        assert new is not None and new.build == result.build
        async with pool.acquire() as conn:
            assert await old.materialise().row_hash(conn) == await new.materialise().row_hash(conn)
        after = await dashboard()
        before.pop("freshness"), after.pop("freshness")
        assert after == before
