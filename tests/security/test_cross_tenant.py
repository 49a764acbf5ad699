"""Cross-tenant matrix: every route of every service, attacked by another cooperative.

Cooperative A (kopsyah-bmi) owns the resources, created by the services' demo loaders through their
APIs; cooperative B (koperasi-baik) attacks with its own keys, with a role the route admits and a valid
body, so the only thing between B and A's data is the tenant check. Every resource route must answer
404 to B and leave A's data exactly as it was (A's own view before and after, and the service's event
count). The routes are enumerated from the apps; ``test_every_route_is_classified`` makes sure none
escapes the matrix.

The kernel's guarantee that one stream id in two cooperatives is two streams is tested in
tests/kernel/test_eventstore_contract.py::test_same_stream_id_in_two_tenants_is_two_streams; here the
API-level cases where the client chooses the id (centre and group codes, product codes, contractor ids,
imported loan numbers, Idempotency-Keys).
"""

from __future__ import annotations

from typing import Any

from deploy.local.demo import DEMO_MEMBERS
from services.loans.domain.loan_book import financing_id_for
from deploy.local.demos.members import EXTRA_MEMBERS
from shared.tenancy import Role
from tests.security.catalog import (
    CATALOG,
    METHODS,
    OBSERVERS,
    Kind,
    caller_role,
    classified,
    fill,
    path_params,
    resource_values,
    routes_of,
    unique,
)
from tests.security.conftest import SERVICES, A, B, System, h, own_cooperative, readable

#: the API documentation: generated from the code alone (its examples are invented people, written like the
#: demo data), so it holds no cooperative's data by construction
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_every_route_is_classified(system: System) -> None:
    """Each service's routes, as its app serves them, are exactly the catalog's: a new route fails here
    until it is added to the matrix (with its roles and a valid body), and a removed one too."""
    problems = []
    for service in SERVICES:
        served = {(m, p) for m, p, _ in routes_of(system.apps[service])}
        declared = set(CATALOG[service])
        problems += [f"{service}: {m} {p} is not classified in tests/security/catalog.py"
                     for m, p in sorted(served - declared)]
        problems += [f"{service}: {m} {p} is classified but not served" for m, p in sorted(declared - served)]
    assert not problems, "\n".join(problems)


async def _snapshot(system: System, service: str, tenant: str, paths: list[str]) -> dict[str, Any]:
    client = system[service]
    out: dict[str, Any] = {"events": await system.event_count(service),
                           "tenant_events": await system.event_count(service, tenant)}
    for path in paths:
        r = await client.get(path, headers=h(tenant))
        out[path] = (r.status_code, r.json())
    return out


def _observers(service: str, path: str, values: dict[str, str]) -> list[str]:
    paths: list[str] = []
    for param in path_params(path):
        paths += [fill(p, values) for p in OBSERVERS[(service, param)]]
    return paths


async def _call(system: System, service: str, method: str, path: str, headers: dict[str, str],
                body: Any = None, params: dict[str, Any] | None = None) -> Any:
    kwargs: dict[str, Any] = {"headers": headers, "params": params}
    if body is not None:
        kwargs["json"] = body
    return await system[service].request(method, path, **kwargs)


async def test_another_cooperative_gets_404_on_every_resource_route_and_changes_nothing(system: System) -> None:
    await system.quiet()
    failures: list[str] = []
    tested = 0
    for service in SERVICES:
        values = resource_values(service, system.ids[A])
        served = {(m, p) for m, p, _ in routes_of(system.apps[service])}
        for method, template, spec in classified(service, system.apps[service]):
            if spec.kind not in (Kind.RESOURCE, Kind.FILTERED):  # unclassified: failed above
                continue
            path = fill(template, values)
            observed = _observers(service, template, values)
            before = await _snapshot(system, service, A, observed)
            body = spec.body(system.ids[B]) if spec.body else None
            r = await _call(system, service, method, path, system.headers(B, caller_role(spec)), body)
            tested += 1
            if spec.kind == Kind.RESOURCE and r.status_code != 404:
                failures.append(f"{service} {method} {template}: B got {r.status_code} {r.text[:200]}")
            if spec.kind == Kind.FILTERED:
                page = r.json()
                if r.status_code != 200 or page["items"] or page["total"]:
                    failures.append(f"{service} {method} {template}: B saw {r.status_code} {r.text[:200]}")
            after = await _snapshot(system, service, A, observed)
            if after != before:
                failures.append(f"{service} {method} {template}: A's data changed after B's call")
            # methods the route does not have are refused as such, never routed elsewhere
            for other in METHODS:
                if (other, template) in served:
                    continue
                r = await _call(system, service, other, path, h(B), {} if other != "GET" else None)
                if r.status_code != 405:
                    failures.append(f"{service} {other} {template}: {r.status_code} (expected 405)")
    expected = sum(1 for service in SERVICES for spec in CATALOG[service].values()
                   if spec.kind in (Kind.RESOURCE, Kind.FILTERED))
    assert tested == expected, f"{tested} resource routes attacked, {expected} classified"
    assert not failures, "\n".join(failures)


def _markers(system: System, tenant: str) -> set[str]:
    """Strings that belong to one cooperative only: its resources' ids, member numbers, names, NIKs and
    phone numbers, its codes."""
    ids = system.ids[tenant]
    people = [*DEMO_MEMBERS[tenant], *EXTRA_MEMBERS[tenant]]
    out = {*ids["members"], *ids["sessions"], *ids["all_financings"], *ids["all_jobs"], *ids["contractors"],
           *(v for v, _ in ids["visits"]), *ids["products"], *ids["centres"]}
    out |= {p["member_number"] for p in people} | {p["name"] for p in people}
    out |= {p["nik"] for p in people} | {p["phone"] for p in people}
    return out


async def test_lists_and_collections_show_only_the_callers_cooperative(system: System) -> None:
    """Every collection read, as B, holds none of A's resources (and A's own lists do hold them: the
    markers are real)."""
    a_markers = _markers(system, A) - _markers(system, B)
    failures = []
    for service in SERVICES:
        for method, path, spec in classified(service, system.apps[service]):
            if method != "GET" or path in DOCS or spec.kind not in (Kind.COLLECTION, Kind.FILTERED,
                                                                    Kind.PUBLIC):
                continue
            query = dict(spec.extra.get("query", {}))
            target = fill(path, resource_values(service, system.ids[A])) if "{" in path else path
            for role in sorted(spec.roles or {Role.MANAGER}, key=str):
                r = await system[service].get(target, headers=system.headers(B, role), params={**query})
                if r.status_code >= 500:
                    failures.append(f"{service} GET {path} as B {role}: {r.status_code}")
                leaked = sorted(m for m in a_markers if m in readable(r))
                if leaked:
                    failures.append(f"{service} GET {path} as B {role} shows A's {leaked[:5]}")
    assert not failures, "\n".join(failures)
    own = (await system["members"].get("/members?limit=200", headers=h(A))).text
    assert "BMI-TGR-0001" in own and system.ids[A]["members"][0] in own


async def test_ids_of_another_cooperative_in_a_body_are_refused(system: System) -> None:
    """B naming A's resources inside a request body (attendees, leads, the member of an application, the
    contractor of a job, the visit of a receipt) is refused and changes nothing."""
    a, b = system.ids[A], system.ids[B]
    a_member = a["members"][0]
    cases = [
        ("members", "POST", "/sessions", {"kind": "promotion", "held_on": "2025-02-11", "topics": ["water"],
                                          "facilitator_id": "FO-X", "attendee_member_ids": [a_member]}),
        ("members", "POST", f"/sessions/{b['sessions'][0]}/attendance", {"member_ids": [a_member]}),
        ("members", "POST", f"/sessions/{b['sessions'][0]}/leads", {"member_id": a_member, "product": "water"}),
        ("loans", "POST", "/financings", {"member_id": a_member, "product_id": b["products"][0],
                                          "amount": 2_000_000, "instalments": 12}),
        ("sanitation", "POST", f"/jobs/{b['jobs']['ordered']}/assignment", {"contractor_id": a["keyed_contractor"]}),
        ("sanitation", "POST", "/iplt-receipts", {"visit_id": a["open_visit"][0], "iplt_id": "iplt-x",
                                                  "manifest_number": unique("M"), "volume_received_m3": "1.0"}),
    ]
    failures = []
    for service, method, path, body in cases:
        before = await system.event_counts()
        r = await system[service].request(method, path, json=body, headers=h(B))
        if r.status_code not in (404, 422):
            failures.append(f"{service} {method} {path}: {r.status_code} {r.text[:200]}")
        if await system.event_counts() != before:
            failures.append(f"{service} {method} {path}: something was written")
    # a list filtered by A's ids finds nothing of A's
    for service, path in (("loans", f"/financings?member_id={a_member}"),
                          ("sanitation", f"/jobs?contractor_id={a['keyed_contractor']}"),
                          ("sanitation", f"/jobs?member_id={a_member}"),
                          ("members", "/members?member_number=BMI-TGR-0001&status=all")):
        r = await system[service].get(path, headers=h(B))
        assert r.status_code == 200 and r.json()["items"] == [], f"{path}: {r.text[:300]}"
    assert not failures, "\n".join(failures)


async def test_an_id_of_another_kind_of_resource_is_not_found_never_a_server_error(system: System) -> None:
    """Type confusion inside one cooperative: every resource route, read or command (with a valid body),
    given the id of another kind of stream (a session's id as a member's, a job's as a contractor's ...)
    answers 404 and writes nothing."""
    a = system.ids[A]
    foreign = [a["members"][0], a["sessions"][0], a["financings"]["active"], a["jobs"]["assigned"],
               a["keyed_contractor"], a["open_visit"][0]]
    failures = []
    for service in SERVICES:
        values = resource_values(service, a)
        for method, template, spec in classified(service, system.apps[service]):
            if spec.kind != Kind.RESOURCE:
                continue
            for param in path_params(template):
                for other in foreign:
                    if other == values[param]:
                        continue
                    before = await system.event_count(service)
                    body = spec.body(a) if spec.body else None
                    r = await _call(system, service, method, fill(template, {**values, param: other}),
                                    system.headers(A, caller_role(spec)), body)
                    if r.status_code not in (404, 422):
                        failures.append(f"{service} {method} {template} with {param}={other}: {r.status_code} "
                                        f"{r.text[:150]}")
                    if await system.event_count(service) != before:
                        failures.append(f"{service} {method} {template} with {param}={other}: wrote something")
    assert not failures, "\n".join(failures)


async def test_commands_of_another_cooperative_on_its_own_data_change_nothing_of_a(system: System) -> None:
    """Every collection command (create, settings, sweeps, imports), made by another cooperative (one of
    the test's own, with a resource of every kind) on its own data with a valid body, leaves every one of
    A's lists, settings and event counts exactly as they were."""
    other, ids = await own_cooperative(system, "commands", world="full")
    failures = []
    for service in SERVICES:
        # A's own reads (a programme officer's view is not A's: B consented to the suite's programme)
        reads = [(p, spec) for m, p, _ in routes_of(system.apps[service])
                 if m == "GET" and (spec := CATALOG[service].get((m, p))) is not None
                 and spec.kind == Kind.COLLECTION and caller_role(spec) in (Role.MANAGER, Role.FIELD_OFFICER)]

        async def view(service: str = service, reads: list[Any] = reads) -> dict[str, Any]:
            out: dict[str, Any] = {"events": await system.event_count(service, A)}
            for path, spec in reads:
                r = await system[service].get(path, headers=system.headers(A, caller_role(spec)),
                                              params={**spec.extra.get("query", {})})
                out[path] = (r.status_code, readable(r))
            return out

        for method, template, spec in classified(service, system.apps[service]):
            if method == "GET" or spec.kind != Kind.COLLECTION:
                continue
            before = await view()
            body = spec.body(ids) if spec.body else None
            path = fill(template, resource_values(service, ids))
            r = await _call(system, service, method, path, other.h(caller_role(spec)), body)
            if r.status_code >= 500:
                failures.append(f"{service} {method} {template} by {other.tenant_id}: {r.status_code}")
            await system.quiet()  # its reactions (in its cooperative) have run
            after = await view()
            if after != before:
                changed = [k for k in before if before[k] != after[k]]
                failures.append(f"{service} {method} {template} by {other.tenant_id} changed what A sees: "
                                f"{changed}")
    assert not failures, "\n".join(failures)


async def test_public_routes_hold_no_cooperatives_data(system: System) -> None:
    markers = _markers(system, A) | _markers(system, B)
    markers |= {A, B}
    for service in SERVICES:
        for method, path, spec in classified(service, system.apps[service]):
            if spec.kind != Kind.PUBLIC or path in DOCS:
                continue
            r = await system[service].get(fill(path, resource_values(service, {})) if "{" in path else path,
                                          follow_redirects=False)
            assert r.status_code < 500, f"{service} {path}: {r.status_code}"
            leaked = sorted(m for m in markers if m in r.text)
            assert not leaked, f"{service} {path} shows {leaked[:5]}"
    # the dashboard's assets are an allow-list: nothing else on disk can be asked for
    for name in ("..%2Froutes.py", "%2E%2E%2F__init__.py", "index.html", "../../app.py"):
        r = await system["reporting"].get(f"/dashboard/static/{name}")
        assert r.status_code == 404, f"{name}: {r.status_code}"


# -- one id, two cooperatives ---------------------------------------------------------------------------


async def test_ids_chosen_by_the_client_are_separate_per_cooperative(system: System) -> None:
    """Centre and group codes, product codes, contractor ids and imported loan numbers are chosen by the
    client: the same one in two cooperatives (the test's own, first and second) makes two resources (two
    streams), and the second's changes stay in the second."""
    first, first_ids = await own_cooperative(system, "ids-first", world="members")
    second, second_ids = await own_cooperative(system, "ids-second", world="members")
    x, y = first.tenant_id, second.tenant_id
    mgr = {x: first.h(), y: second.h()}
    member = {x: first_ids["members"][0], y: second_ids["members"][0]}
    m, lo, sa = system["members"], system["loans"], system["sanitation"]
    centre, group, product = unique("dup-centre"), unique("dup-group"), unique("dup-product")
    contractor = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    loan_ref = unique("DUP-LOAN")
    for tenant, label in ((x, "Owned by the first"), (y, "Owned by the second")):
        assert (await m.post("/centres", json={"centre_id": centre, "name": label},
                             headers=mgr[tenant])).status_code == 201
        assert (await m.post("/groups", json={"group_id": group, "name": label},
                             headers=mgr[tenant])).status_code == 201
        r = await lo.post("/products", headers=mgr[tenant], json={
            "product_id": product, "name": label, "purpose": "septic_tank", "contract_type": "murabahah",
            "frequency": "monthly", "min_amount": 1_000_000, "max_amount": 10_000_000,
            "tenors": [{"instalments": 12, "margin_bp": 1200}], "funds": ["own_funds"], "defined_on": "2020-01-01"})
        assert r.status_code == 201, r.text
        r = await sa.post("/contractors", json={"contractor_id": contractor, "name": label},
                          headers=mgr[tenant])
        assert r.status_code == 201, r.text
        r = await lo.post("/imports", headers=mgr[tenant], json=[{
            "loan_ref": loan_ref, "member_id": member[tenant], "product_id": product, "cost": 3_000_000,
            "margin": 300_000, "signed_on": "2024-01-15", "schedule": [{"due_on": "2024-02-15", "amount": 3_300_000}]}])
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    # the second changes its own; the first's stay as they were
    changed = {"name": "Changed by the second"}
    assert (await m.patch(f"/centres/{centre}", json=changed, headers=mgr[y])).status_code == 200
    assert (await m.patch(f"/groups/{group}", json=changed, headers=mgr[y])).status_code == 200
    r = await sa.post(f"/contractors/{contractor}/deactivation", json={"reason": "the second's decision"},
                      headers=mgr[y])
    assert r.status_code == 200, r.text
    financing = financing_id_for(loan_ref)  # derived from the loan number: the same id in both
    r = await lo.post(f"/financings/{financing}/repayments", json={"receipt_number": unique("KW"), "amount": 3_300_000},
                      headers=mgr[y])
    assert r.status_code == 201, r.text
    assert (await m.get(f"/centres/{centre}", headers=mgr[x])).json()["name"] == "Owned by the first"
    assert (await m.get(f"/groups/{group}", headers=mgr[x])).json()["name"] == "Owned by the first"
    assert (await lo.get(f"/products/{product}", headers=mgr[x])).json()["name"] == "Owned by the first"
    assert (await sa.get(f"/contractors/{contractor}", headers=mgr[x])).json()["active"] is True
    assert (await sa.get(f"/contractors/{contractor}", headers=mgr[x])).json()["name"] == "Owned by the first"
    mine = (await lo.get(f"/financings/{financing}", headers=mgr[x])).json()
    theirs = (await lo.get(f"/financings/{financing}", headers=mgr[y])).json()
    assert mine["member_id"] == member[x] and theirs["member_id"] == member[y]
    assert mine["status"] == "active" and theirs["status"] == "settled"
    for service, kind, stream in (("sanitation", "contractor", contractor), ("loans", "financing", financing)):
        store = system[service].runtime.store
        assert store is not None
        ours, others = await store.read_stream(x, kind, stream), await store.read_stream(y, kind, stream)
        assert ours and others and {e.tenant_id for e in ours} == {x} and {e.tenant_id for e in others} == {y}
        assert len(others) > len(ours)  # the second's change is in its stream only


async def test_idempotency_keys_are_per_cooperative(system: System) -> None:
    """The demo loaders' Idempotency-Keys are predictable; another cooperative (the test's own) reusing one
    of A's gets its own new resource, never A's first response."""
    other, ids = await own_cooperative(system, "idempotency", world="members")
    a_member = system.ids[A]["members"][0]
    cases = [
        ("members", "/members", {"member_number": unique("B-IDEM"), "name": "Budi", "sex": "male",
                                 "joined_on": "2021-01-04", "household_size": 3}, "demo-BMI-TGR-0001", "member_id",
         "/members/{}"),
        ("sanitation", "/jobs", {"member_id": ids["members"][0], "kind": "toilet_upgrade"},
         f"demo:{A}:job:ordered", "job_id", "/jobs/{}"),
        ("sanitation", "/contractors", {"name": "CV Budi"}, f"demo:{A}:contractor:tirta", "contractor_id",
         "/contractors/{}"),
    ]
    for service, path, body, key, id_field, read in cases:
        r = await system[service].post(path, json=body, headers={**other.h(), "Idempotency-Key": key})
        assert r.status_code == 201, r.text
        created = r.json()[id_field]
        assert created != a_member and created not in str(system.ids[A])
        assert (await system[service].get(read.format(created), headers=other.h())).status_code == 200
        assert (await system[service].get(read.format(created), headers=h(A))).status_code == 404


async def test_a_job_is_never_ordered_for_another_cooperatives_member(system: System) -> None:
    """B's real member id (sanitation knows them, in B) and an invented id, sent by A's officer to
    ``POST /jobs``: 422 on member_id ("no member <id> in this cooperative"), with or without an
    Idempotency-Key, and nothing written: no event in any service, no job row in A or B."""
    await system.quiet()
    sa = system["sanitation"]
    theirs, invented = system.ids[B]["members"][0], "3c1d2e4f-0a9b-4c8d-9e7f-6a5b4c3d2e1f"
    assert theirs not in system.ids[A]["members"]
    before = await system.event_counts()
    async def jobs() -> dict[str, int]:
        return {t: (await sa.get("/jobs", params={"limit": 1}, headers=h(t))).json()["total"] for t in (A, B)}

    listed = await jobs()
    for member_id in (theirs, invented):
        for extra in ({}, {"Idempotency-Key": unique("attack-job")}):
            r = await sa.post("/jobs", json={"member_id": member_id, "kind": "septic_tank"},
                              headers={**h(A, Role.FIELD_OFFICER), **extra})
            assert r.status_code == 422, r.text
            assert r.json()["field"] == "member_id", r.text
            assert f"no member {member_id} in this cooperative" in r.json()["reason"], r.text
    await system.quiet()
    assert await system.event_counts() == before
    assert await jobs() == listed
    r = await sa.get("/jobs", params={"member_id": theirs}, headers=h(A))
    assert r.status_code == 200 and r.json()["total"] == 0, r.text


async def test_a_cooperative_named_in_a_query_header_or_body_is_never_trusted(system: System) -> None:
    """Only the key says whose request it is: a tenant in the query string or in made-up headers is
    ignored (the member is made in the key's cooperative, one of the test's own, and B never sees it), and
    one in the body is refused."""
    own, _ = await own_cooperative(system, "named-tenant")
    body = {"member_number": unique("OWN-ONLY"), "name": "Ani", "sex": "female", "joined_on": "2021-01-04",
            "household_size": 3}
    before = await system.event_count("members", B)
    r = await system["members"].post("/members", json=body, params={"tenant_id": B, "tenant": B},
                                     headers={**own.h(), "X-Tenant-Id": B, "X-Tenant": B, "X-Cooperative": B})
    assert r.status_code == 201, r.text
    member_id = r.json()["member_id"]
    assert (await system["members"].get(f"/members/{member_id}", headers=own.h())).status_code == 200
    assert (await system["members"].get(f"/members/{member_id}", headers=h(B))).status_code == 404
    assert await system.event_count("members", own.tenant_id) == 1
    assert await system.event_count("members", B) == before
    r = await system["members"].post("/members", json={**body, "member_number": unique("X"), "tenant_id": B},
                                     headers=own.h())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tenant_id"
    assert await system.event_count("members", own.tenant_id) == 1


# -- programmes -----------------------------------------------------------------------------------------


async def test_a_programme_officer_reads_only_its_consenting_cooperatives(system: System) -> None:
    """The suite's programme has B's consent only: its officer reads B's figures and the programme's
    aggregates, never A's (404 for A's report, nothing of A's in any programme table or export); once B
    withdraws, B's report is closed to it too. A programme with no consenting cooperative shows nothing."""
    rp = system["reporting"]
    officer = system.headers(B, Role.PROGRAMME_OFFICER)
    assert (await rp.get(f"/reports/cooperatives/{A}", headers=officer)).status_code == 404
    assert (await rp.get(f"/reports/cooperatives/{B}", headers=officer)).status_code == 200
    a_markers = (_markers(system, A) - _markers(system, B)) | {A}
    for path in ("/reports/programme", "/reports/dashboard", "/reports/tables/by_cooperative",
                 "/reports/exports/report.xlsx", "/reports/exports/indicators.csv",
                 "/reports/exports/tables/by_cooperative"):
        r = await rp.get(path, headers=officer)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:200]}"
        leaked = sorted(m for m in a_markers if m in readable(r))
        assert not leaked, f"{path} shows A's {leaked[:5]}"
    by_cooperative = (await rp.get("/reports/tables/by_cooperative?limit=200", headers=officer)).json()
    assert B in str(by_cooperative["items"]) and A not in str(by_cooperative["items"])
    # the demo's Water.org programme officer (Koperasi BAIK consented, Kopsyah BMI did not) likewise
    water_org = h(B, Role.PROGRAMME_OFFICER)
    assert (await rp.get(f"/reports/cooperatives/{A}", headers=water_org)).status_code == 404
    assert (await rp.get(f"/reports/cooperatives/{B}", headers=water_org)).status_code == 200
    assert A not in (await rp.get("/reports/tables/by_cooperative?limit=200", headers=water_org)).text
    # no business data of any service besides aggregates
    for service, path in (("members", "/members"), ("loans", "/financings"), ("sanitation", "/jobs")):
        assert (await system[service].get(path, headers=officer)).status_code == 403
    # a programme without consenting cooperatives sees nobody's figures
    assert system.sec is not None
    lonely = system.sec.h(Role.PROGRAMME_OFFICER)
    r = await rp.get("/reports/tables/by_cooperative?limit=200", headers=lonely)
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    assert (await rp.get(f"/reports/cooperatives/{B}", headers=lonely)).status_code == 404
    # consent withdrawn: B's report is closed to the officer at once
    operator = system.headers(A, Role.OPERATOR)
    programme = "/programmes/sec-programme"
    assert (await rp.delete(f"{programme}/cooperatives/{B}", headers=operator)).status_code == 204
    try:
        assert (await rp.get(f"/reports/cooperatives/{B}", headers=officer)).status_code == 404
    finally:
        r = await rp.put(f"{programme}/cooperatives/{B}", json={"consented_on": "2024-01-15"}, headers=operator)
        assert r.status_code == 200, r.text


async def test_an_operator_reads_no_business_data(system: System) -> None:
    """An operator key manages cooperatives, keys and programmes; every business read is 403 to it."""
    operator = system.headers(A, Role.OPERATOR)
    failures = []
    for service in SERVICES:
        for method, template, spec in classified(service, system.apps[service]):
            if method != "GET" or spec.kind in (Kind.PUBLIC, Kind.PLATFORM):
                continue
            path = fill(template, resource_values(service, system.ids[A]))
            r = await system[service].get(path, headers=operator, params={**spec.extra.get("query", {})})
            if r.status_code != 403:
                failures.append(f"{service} GET {template}: {r.status_code}")
    assert not failures, "\n".join(failures)
    # what it does see of a programme is membership, not figures
    body = (await system["reporting"].get("/programmes/sec-programme", headers=operator)).json()
    assert set(body) == {"programme_id", "name", "cooperatives"}, body
