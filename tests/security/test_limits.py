"""Resource limits: every list route caps its page (a huge ``limit`` is refused or capped), a huge offset
or a forged cursor is refused rather than reaching the database, and the lists that take no page size
are bounded by what they list. Routes are found from each service's OpenAPI document."""

from __future__ import annotations

from typing import Any

from tests.security.catalog import CATALOG, caller_role, fill, resource_values
from tests.security.conftest import SERVICES, A, System, h

MAX_PAGE = 200

#: list routes without a page size, and why their size is bounded (checked: at most ``bound`` items)
UNPAGED: dict[tuple[str, str], tuple[int, str]] = {
    ("members", "/members/{member_id}/surveys"): (1000, "one household's surveys"),
    ("loans", "/products"): (500, "a cooperative's products, at most 500 (LIMIT in the query)"),
    ("sanitation", "/jobs/{job_id}/inspections"): (1000, "one job's inspections"),
    ("sanitation", "/desludging/due-summary"): (100_000, "months x villages, at most 60 months at once"),
    ("reporting", "/reports/targets"): (50, "one per target indicator"),
    ("reporting", "/programmes"): (10_000, "donor programmes, created by operators only"),
}


def _is_list(api: dict[str, Any], op: dict[str, Any]) -> bool:
    schema = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("type") == "array":
        return True
    if "$ref" in schema:
        props = api["components"]["schemas"][schema["$ref"].split("/")[-1]].get("properties", {})
        return props.get("items", {}).get("type") == "array"
    return False


def list_routes(system: System) -> list[tuple[str, str, set[str]]]:
    out = []
    for service in SERVICES:
        api = system.apps[service].openapi()
        for path, ops in api["paths"].items():
            op = ops.get("get")
            if op is not None and _is_list(api, op):
                out.append((service, path, {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}))
    return out


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else body["items"]


async def test_every_list_caps_its_page_and_refuses_absurd_paging(system: System) -> None:
    routes = list_routes(system)
    assert len(routes) >= 15, routes
    failures = []
    for service, template, params in routes:
        spec = CATALOG[service].get(("GET", template))
        if spec is None:
            continue  # unclassified: test_every_route_is_classified fails
        path = fill(template, resource_values(service, system.ids[A]))
        headers = system.headers(A, caller_role(spec))
        base = dict(spec.extra.get("query", {}))
        client = system[service]
        if "limit" not in params:
            bound = UNPAGED.get((service, template))
            if bound is None:
                failures.append(f"{service} GET {template}: a list without a page size, not declared bounded")
                continue
            r = await client.get(path, headers=headers, params={**base, "limit": 100_000})
            if r.status_code != 200 or len(_items(r.json())) > bound[0]:
                failures.append(f"{service} GET {template}: {r.status_code}, {len(r.text)} bytes")
            continue
        r = await client.get(path, headers=headers, params={**base, "limit": 100_000})
        if r.status_code == 200:
            if len(_items(r.json())) > MAX_PAGE:
                failures.append(f"{service} GET {template}: limit=100000 gave {len(_items(r.json()))} items")
        elif r.status_code != 422 or r.json()["errors"][0]["field"] != "limit":
            failures.append(f"{service} GET {template}?limit=100000: {r.status_code} {r.text[:200]}")
        r = await client.get(path, headers=headers, params={**base, "limit": MAX_PAGE})
        if r.status_code != 200 or len(_items(r.json())) > MAX_PAGE:
            failures.append(f"{service} GET {template}?limit={MAX_PAGE}: {r.status_code}")
        for bad in ({"limit": 0}, {"limit": -1}, {"limit": 2**64}):
            r = await client.get(path, headers=headers, params={**base, **bad})
            if r.status_code != 422:
                failures.append(f"{service} GET {template}?{bad}: {r.status_code} {r.text[:200]}")
        if "offset" in params:
            for offset in (2**31, 2**63, 10**30, -1):
                r = await client.get(path, headers=headers, params={**base, "offset": offset})
                if r.status_code >= 500 or (r.status_code == 200 and _items(r.json())):
                    failures.append(f"{service} GET {template}?offset={offset}: {r.status_code} {r.text[:200]}")
        if "cursor" in params:
            for cursor in ("not-a-cursor", "W10", "%00", "A" * 400, "eyJhIjoxfQ"):
                r = await client.get(path, headers=headers, params={**base, "cursor": cursor})
                if r.status_code != 422:
                    failures.append(f"{service} GET {template}?cursor={cursor[:20]}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


async def test_exports_are_bounded(system: System) -> None:
    """Every export answers a file for the caller's scope, and refuses (422) once a table would exceed the
    service's export_max_rows rather than building an unbounded file."""
    exports = [(s, p) for s in SERVICES for (m, p), spec in CATALOG[s].items() if spec.extra.get("export")]
    assert len(exports) >= 3, exports
    rp = system["reporting"]
    settings = rp.runtime.settings
    limit = settings.export_max_rows  # type: ignore[attr-defined]
    for service, template in exports:
        path = fill(template, resource_values(service, system.ids[A]))
        r = await system[service].get(path, headers=h(A))
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"], f"{path}: {r.status_code}"
        assert len(r.content) < 10_000_000
    try:
        settings.export_max_rows = 1  # type: ignore[attr-defined]
        for service, template in exports:
            path = fill(template, resource_values(service, system.ids[A]))
            r = await system[service].get(path, headers=h(A))
            assert r.status_code == 422 and "export may hold" in r.json()["reason"], f"{path}: {r.status_code} {r.text}"
    finally:
        settings.export_max_rows = limit  # type: ignore[attr-defined]
    for years in (0, 11, 10**9):
        r = await rp.get("/reports/exports/indicators.csv", params={"years": years}, headers=h(A))
        assert r.status_code == 422, r.text
