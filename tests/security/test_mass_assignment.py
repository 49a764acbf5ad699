"""Mass assignment: fields a client may not set, added to a valid body of every POST/PUT/PATCH route, are
refused with 422 naming the field, or (for a route that takes no body) ignored and never applied."""

from __future__ import annotations

from typing import Any


from services.loans.bulk_import import BookRow
from shared.tenancy import Role
from tests.security.catalog import (
    CATALOG,
    Kind,
    caller_role,
    classified,
    fill,
    resource_values,
    routes_of,
    unique,
)
from tests.security.conftest import SERVICES, A, B, System, h, own_cooperative

#: what an attacker would like to set, with values that stand out if they were ever applied
INJECTED: dict[str, Any] = {
    "tenant_id": B, "status": "written_off", "balance": 1, "approved_by": "key:attacker00", "version": 987654,
    "member_id": "00000000-0000-4000-8000-000000000666", "role": "operator", "is_admin": True, "owed": 0,
    "disbursed": 999_999_999, "personal_data_erased": True, "contractor_id": "00000000-0000-4000-8000-000000000667",
    "financing_id": "00000000-0000-4000-8000-000000000668", "actor": "attacker", "active": False,
    "created_by": "attacker", "id": "00000000-0000-4000-8000-000000000669",
}
WRITES = ("POST", "PUT", "PATCH")


def _schema_fields(system: System, service: str, method: str, path: str) -> set[str]:
    """The top-level fields a route's request body declares (from its OpenAPI schema)."""
    api = system.apps[service].openapi()
    op = api["paths"][path][method.lower()]
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    refs = [schema] + schema.get("anyOf", [])
    fields: set[str] = set()
    for s in refs:
        if "$ref" in s:
            fields |= set(api["components"]["schemas"][s["$ref"].split("/")[-1]].get("properties", {}))
    return fields


async def test_fields_a_client_may_not_set_are_refused_on_every_write(system: System) -> None:
    failures = []
    checked = 0
    for service in SERVICES:
        values = resource_values(service, system.ids[A])
        for method, template, spec in classified(service, system.apps[service]):
            if method not in WRITES or spec.kind == Kind.PUBLIC:
                continue
            if spec.body is None:
                continue  # takes no body: test_a_route_without_a_body_ignores_one
            # a loan book's rows are read by the import itself (no OpenAPI body): its row model says
            own = set(BookRow.model_fields) if template == "/imports" else _schema_fields(system, service, method,
                                                                                          template)
            path = fill(template, values)
            for name, value in INJECTED.items():
                if name in own:
                    continue  # the route's own field (e.g. the member an application is for)
                body = spec.body(system.ids[A])
                if isinstance(body, list):  # a loan book: the extra field in its row
                    body[0][name] = value
                else:
                    body[name] = value
                before = await system.event_count(service)
                r = await system[service].request(method, path, json=body, headers=system.headers(A, caller_role(spec)))
                checked += 1
                if template == "/imports":
                    report = r.json()
                    ok = (r.status_code == 422 and report["imported"] == 0
                          and any(reason.startswith(f"{name}:") for row in report["refused"] for reason in row["reasons"]))
                else:
                    fields = [e.get("field") for e in r.json().get("errors", [])] if r.status_code == 422 else []
                    ok = r.status_code == 422 and name in fields
                if not ok:
                    failures.append(f"{service} {method} {template} + {name}: {r.status_code} {r.text[:200]}")
                if await system.event_count(service) != before:
                    failures.append(f"{service} {method} {template} + {name}: something was written")
    assert checked > 400
    assert not failures, "\n".join(failures)


async def test_a_route_without_a_body_ignores_one(system: System) -> None:
    """The one write route that takes no body (reactivating a contractor) ignores a body full of fields
    it may not set: the contractor is reactivated in the caller's cooperative (one of the test's own) and
    nothing else changes."""
    coop, _ = await own_cooperative(system, "no-body")
    sa = system["sanitation"]
    r = await sa.post("/contractors", json={"name": unique("CV Reaktivasi")}, headers=coop.h())
    assert r.status_code == 201, r.text
    contractor = r.json()["contractor_id"]
    r = await sa.post(f"/contractors/{contractor}/deactivation", json={"reason": "paused"}, headers=coop.h())
    assert r.status_code == 200 and r.json()["active"] is False
    before = r.json()
    r = await sa.post(f"/contractors/{contractor}/reactivation", json={**INJECTED, "name": "Renamed by attacker",
                                                                       "certificate_number": "FORGED-1"},
                      headers=coop.h(Role.FIELD_OFFICER))
    assert r.status_code == 200, r.text
    after = (await sa.get(f"/contractors/{contractor}", headers=coop.h())).json()
    assert after == {**before, "active": True, "version": before["version"] + 1}
    assert (await sa.get(f"/contractors/{contractor}", headers=h(B))).status_code == 404
    no_body = [(s, m, p) for s in SERVICES for m, p, _ in routes_of(system.apps[s])
               if m in ("POST", "PUT", "PATCH") and (spec := CATALOG[s].get((m, p))) is not None
               and spec.kind != Kind.PUBLIC and spec.body is None]
    assert no_body == [("sanitation", "POST", "/contractors/{contractor_id}/reactivation")], no_body


async def test_nested_bodies_refuse_unknown_fields_too(system: System) -> None:
    """An extra field inside a nested object (a survey inside a registration, a tenor inside a product,
    the findings of an inspection) is refused as well."""
    m, lo, sa = system["members"], system["loans"], system["sanitation"]
    survey = {"surveyed_on": "2025-01-20", "water": {"source": "protected_dug_well", "tenant_id": B},
              "sanitation": {"facility": "flush_to_septic_tank"}, "hygiene": {"facility": "none"}}
    r = await m.post("/members", headers=h(A), json={
        "member_number": unique("N"), "name": "Nested", "sex": "female", "joined_on": "2021-01-04",
        "household_size": 2, "baseline_survey": survey})
    assert r.status_code == 422 and "baseline_survey.water.tenant_id" in str(r.json()), r.text
    r = await lo.post("/products", headers=h(A), json={
        "product_id": unique("n"), "name": "N", "purpose": "septic_tank", "contract_type": "murabahah",
        "frequency": "monthly", "min_amount": 1, "max_amount": 2, "funds": ["own_funds"],
        "tenors": [{"instalments": 12, "margin_bp": 0, "approved_by": "attacker"}]})
    assert r.status_code == 422 and "tenors.0.approved_by" in str(r.json()), r.text
    job = system.ids[A]["jobs"]["started"]
    r = await sa.post(f"/jobs/{job}/inspections", headers=h(A, Role.INSPECTOR),
                      json={"septic_tank": {"passed": True, "household_size": 5}})
    assert r.status_code == 422 and "septic_tank.passed" in str(r.json()), r.text
