"""Function-level authorisation: who may call each route, derived by calling it with every role's key and
compared with the declared table (tests/security/catalog.py); lower roles on manager routes get 403 and
write nothing; a contractor sees and updates only its own contractor's jobs.

Maker-checker (a manager never approves the application they took, nor a late charge they proposed) is
tested in tests/services/loans/test_financings_api.py::test_maker_checker_and_roles_on_approval.
"""

from __future__ import annotations

import uuid
from typing import Any


from shared.tenancy import Role
from tests.security.catalog import (
    CATALOG,
    MGR,
    OBSERVERS,
    OPER,
    Kind,
    caller_role,
    classified,
    fill,
    path_params,
    resource_values,
)
from tests.security.conftest import ROLES, SERVICES, A, B, SecurityTenant, System, h, own_cooperative

#: path values naming nothing: a probe may only learn whether the role passes, never change anything
NOWHERE = {"member_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "centre_id": "sec-nowhere",
           "group_id": "sec-nowhere", "product_id": "sec-nowhere", "financing_id": str(uuid.uuid4()),
           "instalment_number": "1", "contractor_id": str(uuid.uuid4()), "job_id": str(uuid.uuid4()),
           "visit_id": str(uuid.uuid4()), "name": "dashboard.js", "tenant_id": "sec-nowhere", "table": "reach",
           "indicator": "sec-nowhere", "programme_id": "sec-nowhere"}


async def test_the_roles_each_route_admits_are_the_declared_ones(system: System, roles_tenant: SecurityTenant) -> None:
    """Every route, called with a key of each of the six roles (and without a key): the roles that get past
    authorisation (anything but 401/403) are exactly the declared ones; public routes need no key. The
    probes name no existing resource and carry no body, so none of them writes anything."""
    before = await system.event_counts()
    mismatches = []
    probed = 0
    for service in SERVICES:
        for method, template, spec in classified(service, system.apps[service]):
            path = fill(template, NOWHERE)
            anonymous = await system[service].request(method, path)
            if spec.kind == Kind.PUBLIC:
                if anonymous.status_code in (401, 403) or anonymous.status_code >= 500:
                    mismatches.append(f"{service} {method} {template}: public, but {anonymous.status_code}")
                continue
            if anonymous.status_code != 401:
                mismatches.append(f"{service} {method} {template}: {anonymous.status_code} without a key")
            admitted = set()
            for role in ROLES:
                r = await system[service].request(method, path, headers=roles_tenant.h(role))
                probed += 1
                if r.status_code >= 500:
                    mismatches.append(f"{service} {method} {template} as {role}: {r.status_code}")
                if r.status_code not in (401, 403):
                    admitted.add(role)
                elif r.status_code == 403:
                    assert r.json()["error"] == "forbidden", r.text
            if admitted != set(spec.roles):
                mismatches.append(f"{service} {method} {template}: admits {sorted(admitted)}, "
                                  f"declared {sorted(spec.roles)}")
    assert probed > 400
    assert not mismatches, "\n".join(mismatches)
    assert await system.event_counts() == before, "a probe wrote something"


async def test_manager_and_operator_routes_refuse_every_other_role_with_403_and_change_nothing(
        system: System, roles_tenant: SecurityTenant) -> None:
    """Every manager-only and operator-only route, on a real resource of cooperative A with a valid body:
    every other role (A's field officer, inspector, contractor, and manager for the operator routes; a
    programme officer; an operator for the manager routes) gets 403, and A's data stays as it was."""
    failures = []
    checked = 0
    for service in SERVICES:
        values = resource_values(service, system.ids[A])
        for method, template, spec in classified(service, system.apps[service]):
            if spec.roles not in (frozenset({MGR}), frozenset({OPER})):
                continue
            checked += 1
            path = fill(template, values)
            observed = [(p, fill(p, values)) for param in path_params(template) for p in OBSERVERS[(service, param)]]
            before = await _snapshot(system, service, observed)
            body = spec.body(system.ids[A]) if spec.body else None
            for role in ROLES:
                if role in spec.roles:
                    continue
                kwargs: dict[str, Any] = {"headers": system.headers(A, role)}
                if body is not None:
                    kwargs["json"] = body
                r = await system[service].request(method, path, **kwargs)
                if r.status_code != 403:
                    failures.append(f"{service} {method} {template}: {r.status_code} for {role}")
            if await _snapshot(system, service, observed) != before:
                failures.append(f"{service} {method} {template}: A's data changed")
    assert checked >= 25
    assert not failures, "\n".join(failures)


async def _snapshot(system: System, service: str, paths: list[tuple[str, str]]) -> dict[str, Any]:
    """What the owner sees of a resource (each read with a role that may make it) and the event count."""
    out: dict[str, Any] = {"events": await system.event_count(service)}
    for template, path in paths:
        r = await system[service].get(path, headers=system.headers(A, caller_role(CATALOG[service][("GET", template)])))
        assert r.status_code == 200, f"{path}: {r.status_code}"
        out[path] = r.json()
    return out


async def test_a_contractor_sees_and_updates_only_its_own_contractors_jobs(system: System) -> None:
    """A contractor key (its subject is the contractor) lists, reads and updates the jobs assigned to its
    contractor only; another contractor's job, and every job of another cooperative, is not found; the
    contractor list, other contractors, assignment and inspection are not for it. In a cooperative of the
    test's own with two certified contractors (the key's and another)."""
    coop, ids = await own_cooperative(system, "contractor-key", world="contractors")
    sa = system["sanitation"]
    own = coop.contractor_id
    contractor = coop.h(Role.CONTRACTOR)
    officer = coop.h(Role.FIELD_OFFICER)
    other = next(c for c in ids["contractors"] if c != own)

    async def job_assigned_to(contractor_id: str) -> str:
        r = await sa.post("/jobs", json={"member_id": ids["members"][1], "kind": "toilet_upgrade"},
                          headers=officer)
        assert r.status_code == 201, r.text
        job = r.json()["job_id"]
        r = await sa.post(f"/jobs/{job}/assignment", json={"contractor_id": contractor_id}, headers=officer)
        assert r.status_code == 200, r.text
        return str(job)

    mine, theirs = await job_assigned_to(own), await job_assigned_to(other)
    listed = (await sa.get("/jobs?limit=200", headers=contractor)).json()["items"]
    assert listed and {j["contractor_id"] for j in listed} == {own} and mine in {j["job_id"] for j in listed}
    # asking for another contractor's jobs by filter finds none
    assert (await sa.get(f"/jobs?contractor_id={other}", headers=contractor)).json()["items"] == []
    assert (await sa.get(f"/jobs/{theirs}", headers=contractor)).status_code == 404
    assert (await sa.get(f"/jobs/{theirs}/inspections", headers=contractor)).status_code == 404
    before = (await sa.get(f"/jobs/{theirs}", headers=officer)).json()
    for action in ("start", "rework", "completion"):
        r = await sa.post(f"/jobs/{theirs}/{action}", json={}, headers=contractor)
        assert r.status_code == 404, f"{action}: {r.status_code} {r.text}"
    assert (await sa.get(f"/jobs/{theirs}", headers=officer)).json() == before
    # its own job: it may start it
    r = await sa.post(f"/jobs/{mine}/start", json={}, headers=contractor)
    assert r.status_code == 200 and r.json()["status"] == "started", r.text
    # its own record, never another's; no contractor list, no assignment, no inspection
    assert (await sa.get(f"/contractors/{own}", headers=contractor)).status_code == 200
    assert (await sa.get(f"/contractors/{other}", headers=contractor)).status_code == 404
    assert (await sa.get(f"/contractors/{other}/quality", headers=contractor)).status_code == 404
    assert (await sa.get("/contractors", headers=contractor)).status_code == 403
    r = await sa.post(f"/jobs/{theirs}/assignment", json={"contractor_id": own}, headers=contractor)
    assert r.status_code == 403
    r = await sa.post(f"/jobs/{mine}/inspections", json={"septic_tank": {}}, headers=contractor)
    assert r.status_code == 403
    # another cooperative's contractor key (B's) sees none of these jobs, nor any of A's
    assert (await sa.get(f"/jobs/{mine}", headers=h(B, Role.CONTRACTOR))).status_code == 404
    b_listed = (await sa.get("/jobs?limit=200", headers=h(B, Role.CONTRACTOR))).json()["items"]
    assert not {j["job_id"] for j in b_listed} & {mine, theirs, *system.ids[A]["all_jobs"]}
