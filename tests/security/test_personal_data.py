"""Personal data (names, NIK, phone numbers): masked in every response, absent from logs, from every
service's events and from Kafka; an exited member's personal data can be erased, and the erasure is
recorded as an event that carries nothing personal."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
import pytest

from deploy.local.demo import DEMO_MEMBERS
from deploy.local.infra import KafkaHandle, PostgresHandle
from deploy.local.demos.members import EXTRA_MEMBERS
from deploy.local.demos.sanitation import CONTRACTORS
from shared.db import connect
from shared.kafka import namespaced
from shared.tenancy import Role
from tests.helpers import ServiceClient, running_app
from tests.kernel.test_relay import read_topic
from tests.security.catalog import Kind, caller_role, classified, fill, resource_values
from tests.security.conftest import (
    SERVICES,
    A,
    B,
    SecurityTenant,
    System,
    all_events,
    h,
    make_tenant,
    readable,
)

PEOPLE = [p for t in (A, B) for p in (*DEMO_MEMBERS[t], *EXTRA_MEMBERS[t])]
NIKS = {p["nik"] for p in PEOPLE}
PHONES = {p["phone"] for p in PEOPLE}
NAMES = {p["name"] for p in PEOPLE}
#: a contractor's name and contact are personal too (kept in the sanitation service's table only)
CONTRACTOR_DETAILS = {x for cs in CONTRACTORS.values() for c in cs for x in (c.name, c.contact)}
MASKED = re.compile(r"^\*+[0-9]{4}$")


def found(text: str, needles: set[str]) -> list[str]:
    """The needles in ``text``: as written, and phone numbers also in their international form."""
    hits = [n for n in needles if n in text]
    hits += [n for n in needles if n.startswith("08") and ("62" + n[1:]) in text]
    return sorted(hits)


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


# -- responses --------------------------------------------------------------------------------------------


async def test_nik_and_phone_are_masked_in_every_response(system: System) -> None:
    """Every read of every service, for every member of both demo cooperatives (and every other resource
    the demo made): no NIK or phone number in the clear anywhere; the members service shows them masked
    to the last four digits; no service but members shows a member's name."""
    texts: list[tuple[str, str, str, bool]] = []
    for tenant in (A, B):
        ids = system.ids[tenant]
        for service in SERVICES:
            base = resource_values(service, ids)
            for method, template, spec in classified(service, system.apps[service]):
                if method != "GET" or spec.kind == Kind.PUBLIC:
                    continue
                variants = [base]
                if "{member_id}" in template:
                    variants = [{**base, "member_id": m} for m in ids["members"]]
                if "{job_id}" in template:
                    variants = [{**base, "job_id": j} for j in ids["all_jobs"]]
                for values in variants:
                    query = {**spec.extra.get("query", {}), **({"limit": 200} if "limit" in _params(system, service, template) else {})}
                    r = await system[service].get(fill(template, values), headers=system.headers(tenant, caller_role(spec)),
                                                  params=query)
                    assert r.status_code == 200, f"{service} {template}: {r.status_code} {r.text[:200]}"
                    texts.append((service, template, readable(r),
                                  r.headers.get("content-type", "").startswith("application/json")))
    assert len(texts) > 100
    masked_seen = 0
    for service, template, text, is_json in texts:
        assert not found(text, NIKS | PHONES), f"{service} GET {template} shows {found(text, NIKS | PHONES)}"
        if service != "members":
            assert not found(text, NAMES), f"{service} GET {template} shows {found(text, NAMES)}"
        for key, value in _walk(orjson.loads(text) if is_json else {}):
            if key in ("nik_masked", "phone_masked") and value is not None:
                assert MASKED.match(value), f"{service} {template}: {key}={value}"
                masked_seen += 1
            assert key not in ("nik", "phone"), f"{service} {template} has a field {key!r}"
    assert masked_seen >= 2 * len(PEOPLE)


def _params(system: System, service: str, template: str) -> set[str]:
    op = system.apps[service].openapi()["paths"].get(template, {}).get("get", {})
    return {p["name"] for p in op.get("parameters", [])}


# -- logs and events --------------------------------------------------------------------------------------


def _service_formatter() -> logging.Formatter:
    """The formatter of the services' own log handler (structlog's JSON renderer, on stdout)."""
    from structlog.stdlib import ProcessorFormatter

    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, ProcessorFormatter):
            return handler.formatter
    raise AssertionError("the services' JSON log handler is not installed")


async def _register_people(m: ServiceClient, tenant: SecurityTenant) -> list[str]:
    """The demo members of both cooperatives registered again (in the suite's own cooperative), one
    corrected, refused registrations with their personal data in the body, one exited and erased."""
    ids = []
    for person in PEOPLE:
        body = {**person, "member_number": f"PII-{person['member_number']}"}
        r = await m.post("/members", json=body, headers=tenant.h(Role.FIELD_OFFICER, **{"Idempotency-Key": str(uuid.uuid4())}))
        assert r.status_code == 201, r.text
        ids.append(r.json()["member_id"])
        # refused: the same number again (409), a malformed NIK and phone (422): the values are not echoed
        r = await m.post("/members", json=body, headers=tenant.h(Role.FIELD_OFFICER))
        assert r.status_code == 409 and not found(r.text, NIKS | PHONES | NAMES), r.text
        r = await m.post("/members", json={**body, "member_number": "X1", "nik": person["nik"] + "9",
                                           "phone": person["phone"] + "x"}, headers=tenant.h(Role.FIELD_OFFICER))
        assert r.status_code == 422 and not found(r.text, NIKS | PHONES), r.text
    # a correction onto a NIK another member holds is refused (409), without echoing it
    r = await m.patch(f"/members/{ids[0]}", json={"nik": PEOPLE[1]["nik"]}, headers=tenant.h(Role.FIELD_OFFICER))
    assert r.status_code == 409 and r.json()["field"] == "nik" and not found(r.text, NIKS | PHONES | NAMES), r.text
    r = await m.post(f"/members/{ids[-1]}/exit", json={"reason": "moved_away"}, headers=tenant.h(Role.FIELD_OFFICER))
    assert r.status_code == 200, r.text
    r = await m.delete(f"/members/{ids[-1]}/personal-data", headers=tenant.h(Role.MANAGER))
    assert r.status_code == 200, r.text
    # a correction of every personal field moves values another person had (all still demo values: the
    # erased member's NIK is free again)
    other = PEOPLE[-1]
    r = await m.patch(f"/members/{ids[0]}", json={"name": other["name"], "nik": other["nik"], "phone": other["phone"]},
                      headers=tenant.h(Role.FIELD_OFFICER))
    assert r.status_code == 200, r.text
    return ids


async def test_personal_data_never_reaches_the_logs(system: System, platform_url: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The log output (structlog JSON through stdlib logging, as the services write it to stdout) while
    the demo members are registered, corrected, refused, exited and erased: no name, NIK or phone."""
    tenant = await make_tenant(platform_url, "sec-pii-logs")
    caplog.set_level(logging.DEBUG)
    formatter = _service_formatter()
    ids = await _register_people(system["members"], tenant)
    lines = [formatter.format(r) for r in caplog.records]
    text = "\n".join(lines) + "\n" + caplog.text
    # the capture is real: the services' JSON lines, one per registration, naming members by id only
    registered = [orjson.loads(line) for line in lines if '"member_registered"' in line]
    assert {e["member_id"] for e in registered} >= set(ids) and all(e["tenant_id"] == "sec-pii-logs" for e in registered)
    assert any('"personal_data_erased"' in line for line in lines)
    leaked = found(text, NIKS | PHONES | NAMES)
    assert not leaked, f"personal data in the logs: {leaked}"


async def test_personal_data_is_in_no_services_events(system: System) -> None:
    """Every event of every service's store (the demo of both cooperatives and everything the suite did):
    no member's name, NIK or phone, no contractor's name or contact, in payloads or metadata."""
    total = 0
    for service in SERVICES:
        for e in await system.all_events(service):
            total += 1
            text = e.model_dump_json()
            leaked = found(text, NIKS | PHONES | NAMES | CONTRACTOR_DETAILS)
            assert not leaked, f"{service} event {e.type} carries {leaked}"
    assert total > 300


async def test_personal_data_never_reaches_kafka(pg: PostgresHandle, platform_url: str, kafka: KafkaHandle) -> None:
    """The members service on real Kafka: the demo members registered, corrected, exited and erased; every
    record the relay publishes to the members topic (value, key, headers) is free of personal data, and
    every publishable event arrived."""
    from services.members.app import create_app
    from services.members.settings import MembersSettings

    namespace = f"sec{uuid.uuid4().hex[:8]}"
    await kafka.authorize(namespace)
    settings = MembersSettings(database_url=await pg.create_database("sec_members_kafka"),
                               platform_database_url=platform_url, **kafka.settings_for("members"),
                               kafka_namespace=namespace, event_source="none", kafka_topic_partitions=2)
    async with running_app(create_app(settings)) as members:
        tenant = await make_tenant(platform_url, "sec-pii-kafka")
        ids = await _register_people(members, tenant)
        rt = members.runtime
        stored = [e for e in await all_events(members) if rt.registry.topic_of(e.type) == rt.topic]
        assert len(stored) >= len(PEOPLE) + 2
        records = await read_topic(kafka.admin, namespaced(rt.topic, namespace), len(stored), timeout=90)
    assert len(records) == len(stored), f"{len(records)} published of {len(stored)}"
    types = set()
    for rec in records:
        blob = rec.value.decode() + (rec.key or b"").decode() + str(rec.headers)
        leaked = found(blob, NIKS | PHONES | NAMES)
        assert not leaked, f"{dict(rec.headers).get('type')} on Kafka carries {leaked}"
        types.add(dict(rec.headers)["type"].decode())
    assert {"members.MemberRegistered", "members.MemberExited", "members.MemberPersonalDataErased"} <= types
    assert str(ids[-1]) in {orjson.loads(r.value)["stream_id"] for r in records}


# -- erasure ----------------------------------------------------------------------------------------------


async def test_erasure_of_an_exited_member_removes_the_personal_fields_and_is_recorded(
        system: System, platform_url: str) -> None:
    tenant = await make_tenant(platform_url, "sec-erasure")
    m = system["members"]
    person = {"member_number": "ERASE-1", "name": "Euis Dihapus", "sex": "female", "joined_on": "2020-03-02",
              "household_size": 4, "phone": "081311112222", "nik": "3201014501850099", "village": "Cibanteng"}
    survey = {"surveyed_on": "2024-09-16", "water": {"source": "protected_dug_well", "on_premises": True},
              "sanitation": {"facility": "pit_latrine_without_slab", "shared": False},
              "hygiene": {"facility": "none"}}
    r = await m.post("/members", json={**person, "baseline_survey": survey}, headers=tenant.h(Role.FIELD_OFFICER))
    assert r.status_code == 201, r.text
    member = r.json()
    member_id = member["member_id"]
    assert member["name"] == "Euis Dihapus" and member["nik_masked"] == "************0099"
    assert member["phone_masked"] == "********2222"

    # an active member's data is not erased; nobody but the cooperative's manager may erase
    r = await m.delete(f"/members/{member_id}/personal-data", headers=tenant.h(Role.MANAGER))
    assert r.status_code == 409 and "exit" in r.json()["reason"], r.text
    assert (await m.post(f"/members/{member_id}/exit", json={"reason": "voluntary"},
                         headers=tenant.h(Role.FIELD_OFFICER))).status_code == 200
    assert (await m.delete(f"/members/{member_id}/personal-data", headers=tenant.h(Role.FIELD_OFFICER))).status_code == 403
    assert (await m.delete(f"/members/{member_id}/personal-data", headers=h(B))).status_code == 404
    for role in (Role.INSPECTOR, Role.CONTRACTOR, Role.PROGRAMME_OFFICER, Role.OPERATOR):
        assert (await m.delete(f"/members/{member_id}/personal-data", headers=tenant.h(role))).status_code == 403

    r = await m.delete(f"/members/{member_id}/personal-data", headers=tenant.h(Role.MANAGER))
    assert r.status_code == 200, r.text
    erased = r.json()
    assert erased["name"] is None and erased["nik_masked"] is None and erased["phone_masked"] is None
    assert erased["personal_data_erased"] is True and erased["status"] == "exited"
    # the non-personal history stays
    assert erased["member_number"] == "ERASE-1" and erased["sex"] == "female" and erased["baseline_on"] == "2024-09-16"
    assert len((await m.get(f"/members/{member_id}/surveys", headers=tenant.h())).json()["items"]) == 1
    assert (await m.get(f"/members/{member_id}", headers=tenant.h())).json() == erased
    listed = (await m.get("/members?status=all", headers=tenant.h())).json()["items"]
    assert [(x["member_id"], x["name"]) for x in listed if x["member_id"] == member_id] == [(member_id, None)]
    # a second erasure is refused and changes nothing
    assert (await m.delete(f"/members/{member_id}/personal-data", headers=tenant.h(Role.MANAGER))).status_code == 409

    # stored nowhere any more: the personal-data row is gone, no table of the service holds the values
    conn = await connect(system.database_urls["members"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM member_personal_data WHERE member_id = $1",
                                   uuid.UUID(member_id)) == 0
        for table in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
            dump = str(await conn.fetch(f'SELECT * FROM "{table["tablename"]}"'))
            assert not found(dump, {"Euis Dihapus", "3201014501850099", "081311112222"}), table["tablename"]
    finally:
        await conn.close()
    # recorded as an event of the member's stream, with who did it, and nothing personal
    assert system["members"].runtime.store is not None
    stream = await system["members"].runtime.store.read_stream("sec-erasure", "member", member_id)
    erasures = [e for e in stream if e.type == "members.MemberPersonalDataErased"]
    assert len(erasures) == 1 and erasures[0].actor == f"staff:{tenant.key_ids[Role.MANAGER]}"
    assert set(erasures[0].payload) == {"member_id", "erased_on"}
