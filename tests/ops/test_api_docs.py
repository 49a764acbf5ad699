"""The API documentation is usable without help: the pages render with nothing but the service (no CDN),
the API key is a security scheme (Swagger UI's Authorize button), and every error is documented as the
services really shape it. Each service's OpenAPI document passes openapi-spec-validator."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from deploy.local.demo import key_for
from deploy.local.infra import PostgresHandle
from shared.openapi import ASSETS_URL
from shared.tenancy import Role
from shared.web import current_principal
from tests.helpers import ServiceClient
from tests.services.conftest import BMI

SERVICES = ("members", "loans", "sanitation", "reporting")
WRITES = {"post", "put", "patch", "delete"}
HTTP_METHODS = WRITES | {"get", "head", "options", "trace"}


@pytest.fixture(scope="module")
async def apps(pg: PostgresHandle, platform_url: str) -> dict[str, FastAPI]:
    """The four apps as the tests build them (their lifespans not started: the documents need none)."""
    from services.loans.app import create_app as loans_app
    from services.loans.settings import LoansSettings
    from services.members.app import create_app as members_app
    from services.members.settings import MembersSettings
    from services.reporting.app import create_app as reporting_app
    from services.reporting.settings import ReportingSettings
    from services.sanitation.app import create_app as sanitation_app
    from services.sanitation.settings import SanitationSettings

    builders: dict[str, Any] = {"members": (members_app, MembersSettings), "loans": (loans_app, LoansSettings),
                                "sanitation": (sanitation_app, SanitationSettings),
                                "reporting": (reporting_app, ReportingSettings)}
    out = {}
    for service, (create_app, settings_cls) in builders.items():
        settings = settings_cls(database_url=await pg.create_database(f"docs_{service}"),
                                platform_database_url=platform_url, kafka_bootstrap_servers=None,
                                event_source="none")
        out[service] = create_app(settings)
    return out


def operations(api: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in api["paths"].items():
        for method, op in ops.items():
            if method in HTTP_METHODS:
                yield method, path, op


def _routes(app: FastAPI) -> Iterator[Any]:
    try:
        from fastapi.routing import iter_route_contexts  # nested routers (FastAPI >= 0.16x)
        yield from iter_route_contexts(app.routes)
    except ImportError:  # flat app.routes in earlier versions
        yield from app.routes


def _calls(dependant: Any) -> Iterator[Any]:
    for d in dependant.dependencies:
        yield d.call
        yield from _calls(d)


def needs_key(app: FastAPI) -> dict[tuple[str, str], bool]:
    """(method, path) of every documented operation -> whether it depends on ``current_principal``."""
    out = {}
    for route in _routes(app):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not getattr(route, "include_in_schema", False):
            continue
        for method in route.methods:
            out[(method.lower(), route.path)] = current_principal in set(_calls(dependant))
    return out


def resolve(api: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        *_, kind, name = obj["$ref"].split("/")
        obj = api["components"][kind][name]
    return obj


def conforms(api: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
    """``body`` is valid against ``schema`` (which may $ref the document's components)."""
    jsonschema.Draft202012Validator({**schema, "components": api["components"]}).validate(body)


def response_schema(api: dict[str, Any], op: dict[str, Any], status: int) -> dict[str, Any]:
    schema: dict[str, Any] = resolve(api, op["responses"][str(status)])["content"]["application/json"]["schema"]
    return schema


# -- the documents --------------------------------------------------------------------------------------------

def test_every_document_passes_the_openapi_spec_validator(apps: dict[str, FastAPI]) -> None:
    for service in SERVICES:
        api = apps[service].openapi()
        validate(api)
        ids = [op["operationId"] for _, _, op in operations(api)]
        assert len(ids) == len(set(ids)), f"{service}: operationIds repeat"
    dashboard = apps["reporting"].openapi()["paths"]["/dashboard"]
    assert dashboard["get"]["operationId"] != dashboard["head"]["operationId"]


def test_the_key_is_a_security_scheme_on_every_operation_that_needs_one(apps: dict[str, FastAPI]) -> None:
    for service in SERVICES:
        api = apps[service].openapi()
        schemes = api["components"]["securitySchemes"]
        assert schemes["ApiKey"] | {"description": ""} == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                                            "description": ""}
        assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
        expected = needs_key(apps[service])
        secured = 0
        for method, path, op in operations(api):
            names = {p["name"].lower() for p in op.get("parameters", [])}
            assert not names & {"x-api-key", "authorization"}, f"{service} {method} {path}: the key as a parameter"
            if expected[(method, path)]:
                secured += 1
                assert op["security"] == [{"ApiKey": []}, {"Bearer": []}], f"{service} {method} {path}"
            else:
                assert "security" not in op, f"{service} {method} {path} needs no key"
        assert secured >= 15, service
    public = {(m, p) for m, p, op in operations(apps["reporting"].openapi()) if "security" not in op}
    assert public == {("get", "/healthz"), ("get", "/readyz"), ("get", "/dashboard"), ("head", "/dashboard")}


def test_errors_are_documented_as_the_services_shape_them(apps: dict[str, FastAPI]) -> None:
    for service in SERVICES:
        api = apps[service].openapi()
        text = json.dumps(api)
        assert "HTTPValidationError" not in text and "#/components/schemas/ValidationError\"" not in text
        schemas = api["components"]["schemas"]
        assert schemas["ValidationErrorBody"]["required"] == ["error", "errors"]
        assert schemas["ErrorBody"]["required"] == ["error", "reason"] and "field" in schemas["ErrorBody"]["properties"]
        busy = api["components"]["responses"]["Busy"]
        assert "Retry-After" in busy["headers"]
        assert "WWW-Authenticate" in api["components"]["responses"]["Unauthorized"]["headers"]
        for method, path, op in operations(api):
            where = f"{service} {method.upper()} {path}"
            codes = set(op["responses"])
            assert "503" in codes, where
            params = op.get("parameters", [])
            # a refused key is throttled (429) only where a key is looked up
            assert ("429" in codes) == ("security" in op), where
            if "security" in op:
                assert {"401", "403", "422", "429"} <= codes, where
                for code in ("401", "403", "429"):
                    assert response_schema(api, op, int(code)) == {"$ref": "#/components/schemas/ErrorBody"}
                assert "Retry-After" in resolve(api, op["responses"]["429"])["headers"], where
            if any(p["in"] == "path" for p in params):
                assert "404" in codes, where
            if method in WRITES or any(p["name"] == "If-Match" for p in params):
                assert "409" in codes, where
            # over the body limit (shared.web.BodyLimit) only where the operation takes a body
            assert ("413" in codes) == ("requestBody" in op), where
            if "422" in codes:
                refs = {s["$ref"] for s in response_schema(api, op, 422)["anyOf"]}
                assert refs == {"#/components/schemas/ValidationErrorBody", "#/components/schemas/ErrorBody"}
            if "/healthz" not in path and "/readyz" not in path:
                assert op["responses"]["503"] == {"$ref": "#/components/responses/Busy"}, where
        # the documented shapes are the ones shared.web answers with
        conforms(api, {"$ref": "#/components/schemas/ErrorBody"}, {"error": "busy", "reason": "try again shortly"})
        conforms(api, {"$ref": "#/components/schemas/ValidationErrorBody"},
                 {"error": "invalid_request", "errors": [{"field": "limit", "reason": "too large"}]})
        with pytest.raises(jsonschema.ValidationError):
            conforms(api, {"$ref": "#/components/schemas/ErrorBody"}, {"detail": [{"loc": ["query"], "msg": "x"}]})


async def test_a_real_413_matches_its_documented_schema(members: ServiceClient) -> None:
    api = (await members.get("/openapi.json")).json()
    op = api["paths"]["/members"]["post"]
    key = key_for(BMI, Role.FIELD_OFFICER)
    limit = members.runtime.settings.max_request_bytes
    r = await members.post("/members", content=b"{" + b" " * limit + b"}",
                           headers={"X-API-Key": key, "Content-Type": "application/json"})
    assert r.status_code == 413
    conforms(api, response_schema(api, op, 413), r.json())


async def test_real_refusals_match_their_documented_schemas(members: ServiceClient) -> None:
    api = (await members.get("/openapi.json")).json()
    op = api["paths"]["/members/{member_id}"]["get"]
    missing = await members.get("/members")  # no key
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "ApiKey"
    assert missing.json() == {"error": "unauthorized", "reason": "missing API key: send it in the X-API-Key header"}
    conforms(api, response_schema(api, op, 401), missing.json())
    unknown = await members.get("/members", headers={"X-API-Key": "wf_nonsense"})
    assert unknown.status_code == 401 and unknown.json()["error"] == "unauthorized"
    key = key_for(BMI, Role.FIELD_OFFICER)
    assert (await members.get("/members", headers={"X-API-Key": key})).status_code == 200
    assert (await members.get("/members", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert (await members.get("/members", headers={"Authorization": f"Basic {key}"})).status_code == 401
    absent = await members.get("/members/00000000-0000-4000-8000-000000000000", headers={"X-API-Key": key})
    assert absent.status_code == 404
    conforms(api, response_schema(api, op, 404), absent.json())
    invalid = await members.get("/members", params={"limit": 100_000}, headers={"X-API-Key": key})
    assert invalid.status_code == 422
    conforms(api, response_schema(api, api["paths"]["/members"]["get"], 422), invalid.json())
    forbidden = await members.post("/centres", json={"centre_id": "c-docs", "name": "C"}, headers={"X-API-Key": key})
    assert forbidden.status_code == 403
    conforms(api, response_schema(api, api["paths"]["/centres"]["post"], 403), forbidden.json())


# -- the pages ------------------------------------------------------------------------------------------------

URL_ATTRIBUTE = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


def referenced(html: str) -> list[str]:
    return [a or b for a, b in URL_ATTRIBUTE.findall(html)]


@pytest.fixture
async def docs_client(apps: dict[str, FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=apps["reporting"])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_the_pages_load_everything_from_the_service_itself(docs_client: httpx.AsyncClient) -> None:
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
    for page, must in (("/docs", ["swagger-ui-bundle.js", "swagger-ui.css"]), ("/redoc", ["redoc.standalone.js"])):
        r = await docs_client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        assert "http://" not in html and "https://" not in html and "//cdn" not in html, html
        urls = referenced(html)
        assert "/openapi.json" in urls
        for name in must:
            assert f"{ASSETS_URL}/{name}" in urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), f"{page} refers to another origin: {url}"
            asset = await docs_client.get(url)
            assert asset.status_code == 200, url
            assert kinds[url[url.rindex("."):]] in asset.headers["content-type"], (url, asset.headers["content-type"])
            assert len(asset.content) > 100, url
    assert "SwaggerUIBundle" in (await docs_client.get(f"{ASSETS_URL}/swagger-ui-bundle.js")).text[:5000]
    assert (await docs_client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await docs_client.get(f"{ASSETS_URL}/../../pyproject.toml")).status_code == 404


async def test_the_pages_follow_a_root_path(apps: dict[str, FastAPI]) -> None:
    transport = httpx.ASGITransport(app=apps["members"], root_path="/api/members")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for page in ("/api/members/docs", "/api/members/redoc"):
            r = await client.get(page)
            assert r.status_code == 200, page
            assert all(u.startswith("/api/members/") for u in referenced(r.text)), referenced(r.text)


async def test_docs_and_metrics_exposure_follow_the_settings(pg: PostgresHandle, platform_url: str) -> None:
    """``<SVC>_API_DOCS=false`` and ``<SVC>_METRICS=false``: the pages, the document and the metrics answer
    404; the API itself still answers (a route of the service, with a key)."""
    from services.members.app import create_app
    from services.members.settings import MembersSettings
    from tests.helpers import running_app

    async def statuses(**flags: bool) -> dict[str, int]:
        settings = MembersSettings(database_url=await pg.create_database("exposure"), platform_database_url=platform_url,
                                   kafka_bootstrap_servers=None, event_source="none", **flags)
        async with running_app(create_app(settings)) as client:
            out = {p: (await client.get(p)).status_code for p in ("/docs", "/redoc", "/openapi.json", "/metrics")}
            out["api"] = (await client.get("/members", headers={"X-API-Key": key_for(BMI, Role.MANAGER)})).status_code
            return out

    assert await statuses() == {"/docs": 200, "/redoc": 200, "/openapi.json": 200, "/metrics": 200, "api": 200}
    assert await statuses(api_docs=False, metrics=False) == {"/docs": 404, "/redoc": 404, "/openapi.json": 404,
                                                             "/metrics": 404, "api": 200}
    assert await statuses(api_docs=False) == {"/docs": 404, "/redoc": 404, "/openapi.json": 404, "/metrics": 200,
                                              "api": 200}
