"""What every service's API documentation shares: the pages, served offline, and an OpenAPI document that
tells the truth about keys and errors.

- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts and styles from the service itself
  (``/docs/assets/``, the files the ``fastapi-offline`` package ships): no CDN, so the pages work on a
  network without internet.
- The document declares the API key as a security scheme (``X-API-Key``, or the same key as
  ``Authorization: Bearer``), so Swagger UI has an Authorize button, and each operation that needs a key
  carries the requirement (FastAPI derives it from ``shared.web.current_principal``).
- Errors are documented as ``shared.web`` shapes them, once for every operation, never per route:
  ``ValidationErrorBody`` (``{"error": "invalid_request", "errors": [{"field", "reason"}]}``) and
  ``ErrorBody`` (``{"error": code, "reason", "field"?}``) in place of FastAPI's ``HTTPValidationError``,
  with 401/403 and 429 (refused keys throttled, with ``Retry-After``) where a key is needed, 404 where the
  path names a resource, 409 where a write can conflict, 413 where the operation takes a body (the
  ``BodyLimit`` middleware's limit; ``POST /imports`` has its own), and 503 (busy, with ``Retry-After``)
  everywhere.
- Every request body has at least one example, shown by the pages as named examples of its media type
  (``examples``: each the body model's ``json_schema_extra`` examples, in order), and each one is accepted by
  the demo system (``make run``): ``tests/ops/test_api_examples.py`` replays them all, in workflow order.
  An id an example needs is one of ``EXAMPLE_IDS`` (the same made-up id everywhere): the step that gives
  the real one is named in each path parameter's description (``PATH_PARAMETERS``) and in the body field's.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: where the documentation pages' scripts and styles are served from (a mount, not an API route)
ASSETS_URL = "/docs/assets"
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"

API_KEY_SCHEME, BEARER_SCHEME = "ApiKey", "Bearer"
WRITES = {"post", "put", "patch", "delete"}
METHODS = WRITES | {"get", "head", "options", "trace"}
#: the probes answer 503 in their own shape ({"status": ...}), never the busy refusal
PROBE_TAG = "health"

_REF = "#/components/schemas/{}"

#: the made-up ids the examples use, each standing for one an earlier step answered with (the replay test
#: substitutes the real ones), with that step
EXAMPLE_IDS: dict[str, tuple[str, str]] = {
    "member_id": ("5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85",
                  "`member_id` in the answer of members `POST /members` (or an item of `GET /members`)"),
    "other_member_id": ("9c41e7a0-2b6d-4f1e-8a3c-5d7f9e1b2c60",
                        "`member_id` of another member, from members `POST /members` (its second example)"),
    "financing_id": ("7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                     "`financing_id` in the answer of loans `POST /financings` (or an item of `GET /financings`)"),
    "contractor_id": ("c0a7f1e2-6b1d-4c3e-9a5f-0b1c2d3e4f99",
                      "`contractor_id` in the answer of sanitation `POST /contractors`"),
    "job_id": ("3e8b1f5c-7a2d-4e9f-b6c1-0d4a8e2f7b13",
               "`job_id` in the answer of sanitation `POST /jobs`, or of the job a financing's first tranche "
               "ordered (`GET /jobs?member_id=...`, its `financing_id`)"),
    "visit_id": ("a6f2c9d4-1e7b-4b3a-9c8d-2f5e7a1b3c46",
                 "`visit_id` in the answer of sanitation `POST /jobs/{job_id}/desludging/visits`"),
    "session_id": ("e2b7d4f9-8c1a-4d6e-b3f5-7a9c1e2d4b68",
                   "`session_id` in the answer of members `POST /sessions`"),
}

#: what each path parameter is and which step gives it, with its example (set where a route gave none)
PATH_PARAMETERS: dict[str, tuple[str, Any]] = {
    **{name: (f"From an earlier step: {where}.", example) for name, (example, where) in EXAMPLE_IDS.items()},
    "centre_id": ("The centre's code, as given to members `POST /centres`.", "pusat-cikupa-01"),
    "group_id": ("The group's code, as given to members `POST /groups`.", "majelis-15"),
    "product_id": ("The product's code, as given to loans `POST /products`.", "mikro-tata-sanitasi"),
    "instalment_number": ("The instalment the late charge is for: `instalment_number` as proposed to "
                          "`POST /financings/{financing_id}/late-charges`.", 2),
    "indicator": ("One of the indicators `GET /reports/targets` lists (`indicators`).",
                  "basic_sanitation_households"),
    "programme_id": ("The programme's id (2-63 lowercase letters, digits and dashes), as created by "
                     "`PUT /programmes/{programme_id}`.", "iuwash-tangguh"),
    "tenant_id": ("A cooperative's id on the platform (the demo's: `kopsyah-bmi`, `koperasi-baik`).", "kopsyah-bmi"),
    "table": ("One of the tables `GET /reports/tables` lists.", "reach"),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name)}


SCHEMAS: dict[str, dict[str, Any]] = {
    "FieldError": {
        "title": "FieldError",
        "type": "object",
        "description": "One field the request got wrong.",
        "properties": {
            "field": {"type": "string", "examples": ["household_size"],
                      "description": "The field, dotted for nested ones (e.g. `tenors.0.instalments`); `body` for "
                                     "the body as a whole"},
            "reason": {"type": "string", "description": "What is wrong with it", "examples": [
                "Input should be greater than or equal to 1"]},
        },
        "required": ["field", "reason"],
    },
    "ValidationErrorBody": {
        "title": "ValidationErrorBody",
        "type": "object",
        "description": "The request does not have the shape the operation takes: every field at fault, with the "
                       "reason. Nothing was done.",
        "properties": {
            "error": {"type": "string", "enum": ["invalid_request"]},
            "errors": {"type": "array", "items": _ref("FieldError"), "minItems": 1},
        },
        "required": ["error", "errors"],
        "examples": [{"error": "invalid_request", "errors": [
            {"field": "household_size", "reason": "Input should be greater than or equal to 1"}]}],
    },
    "ErrorBody": {
        "title": "ErrorBody",
        "type": "object",
        "description": "A refusal: a machine-readable code, a reason for people, and the field at fault where "
                       "there is one. Nothing was written.",
        "properties": {
            "error": {"type": "string", "description": "The code, e.g. `unauthorized`, `forbidden`, `not_found`, "
                      "`conflict`, `rule_violation`, `invalid_text`, `idempotency_key_reused`, "
                      "`payload_too_large`, `busy`", "examples": ["rule_violation"]},
            "reason": {"type": "string", "description": "Why, in words", "examples": [
                "the member has an active financing"]},
            "field": {"type": "string", "examples": ["If-Match"],
                      "description": "The field or header at fault, when the refusal is about one"},
        },
        "required": ["error", "reason"],
        "examples": [{"error": "rule_violation", "reason": "the member has an active financing"}],
    },
    "ProbeStatus": {
        "title": "ProbeStatus",
        "type": "object",
        "description": "A probe's answer: `status`, and what failed when the process is not live or ready.",
        "properties": {"status": {"type": "string", "examples": ["ok", "ready", "not ready", "stuck"]}},
        "required": ["status"],
    },
}


def _json(schema: dict[str, Any], example: dict[str, Any] | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def _refusal(description: str, code: str, reason: str, **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": _json(_ref("ErrorBody"), {"error": code, "reason": reason})}
    if headers:
        response["headers"] = headers
    return response


RESPONSES: dict[str, dict[str, Any]] = {
    "Unauthorized": _refusal(
        "No API key, or one that is unknown, expired or revoked; to the holder of a right key, also that its "
        "cooperative is suspended or its staff member has left (the reason says which).", "unauthorized",
        "missing API key: send it in the X-API-Key header",
        **{"WWW-Authenticate": {"description": "`ApiKey`", "schema": {"type": "string"}}}),
    "Forbidden": _refusal("The key's role may not do this.", "forbidden",
                          "this needs one of the roles: manager"),
    "NotFound": _refusal("Nothing by that id in your cooperative.", "not_found", "no member 5b0f..."),
    "Conflict": _refusal(
        "Someone else changed it first (If-Match names an older version, or a concurrent write won), or the "
        "request conflicts with what exists. Reload and try again.", "conflict",
        "version 3 expected, found 4 - someone else changed it first; reload and try again"),
    "PayloadTooLarge": _refusal("The request body is over the service's limit.", "payload_too_large",
                                "request body over 20971520 bytes"),
    "TooManyFailedAttempts": _refusal(
        "Too many requests with a refused API key from this address, or at this key id, in the window: the key "
        "was not even looked up; try again after Retry-After seconds.", "too_many_failed_attempts",
        "too many requests with a refused API key; try again in 12 s",
        **{"Retry-After": {"description": "Seconds until the window has room again",
                           "schema": {"type": "integer", "minimum": 1}}}),
    "Unprocessable": {
        "description": "The request is malformed (`ValidationErrorBody`: every field at fault), or the business "
                       "rules refuse it (`ErrorBody`, e.g. `rule_violation`, `invalid_text`, "
                       "`idempotency_key_reused`). Nothing was written.",
        "content": _json({"anyOf": [_ref("ValidationErrorBody"), _ref("ErrorBody")]}, {
            "error": "invalid_request",
            "errors": [{"field": "household_size", "reason": "Input should be greater than or equal to 1"}]}),
    },
    "Busy": _refusal(
        "The service is busy (every database connection in use, or the request ran too long): nothing was "
        "done; try again after Retry-After seconds.", "busy",
        "the service is busy (no database connection free after 2.0s); try again shortly",
        **{"Retry-After": {"description": "Seconds to wait before trying again",
                           "schema": {"type": "integer", "minimum": 1}}}),
    "NotLive": {"description": "Not live or not ready: what failed, by check.",
                "content": _json(_ref("ProbeStatus"))},
}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _requires_key(op: dict[str, Any]) -> bool:
    return any(API_KEY_SCHEME in requirement for requirement in op.get("security", []))


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a FastAPI-generated document (in place) to declare the API key and the real error shapes."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(SCHEMAS)
    components.setdefault("responses", {}).update(RESPONSES)
    schemes = components.setdefault("securitySchemes", {})
    if API_KEY_SCHEME in schemes:
        schemes[BEARER_SCHEME] = {"type": "http", "scheme": "bearer",
                                  "description": "The same API key, as `Authorization: Bearer <key>`."}
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            _document_operation(method, op)
            if "requestBody" in op:
                _name_examples(schema, op["requestBody"])
    # FastAPI's 422 body ({"detail": [...]}), which no operation answers with any more
    used = json.dumps(schema["paths"])
    for fastapi_own in ("HTTPValidationError", "ValidationError"):
        if _REF.format(fastapi_own) not in used and fastapi_own in schemas:
            del schemas[fastapi_own]
    return schema


def _document_operation(method: str, op: dict[str, Any]) -> None:
    responses = op.setdefault("responses", {})
    params = op.get("parameters", [])
    probe = PROBE_TAG in op.get("tags", [])
    secured = _requires_key(op)
    if secured:
        op["security"] = [r for r in op["security"] if BEARER_SCHEME not in r] + [{BEARER_SCHEME: []}]
        responses.setdefault("401", _response("Unauthorized"))
        responses.setdefault("403", _response("Forbidden"))
        responses.setdefault("429", _response("TooManyFailedAttempts"))
    for p in params:
        if p.get("in") == "path" and p.get("name") in PATH_PARAMETERS:
            description, example = PATH_PARAMETERS[p["name"]]
            p.setdefault("description", description)
            if "example" not in p and "examples" not in p:
                p["example"] = example
    if any(p.get("in") == "path" for p in params):
        responses.setdefault("404", _response("NotFound"))
    if_match = any(p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in params)
    if method in WRITES or if_match:
        responses.setdefault("409", _response("Conflict"))
    if "requestBody" in op:
        responses.setdefault("413", _response("PayloadTooLarge"))
    if "422" in responses or secured or params or "requestBody" in op:
        responses["422"] = _response("Unprocessable")  # replaces FastAPI's HTTPValidationError
    responses.setdefault("503", _response("NotLive" if probe else "Busy"))
    op["responses"] = dict(sorted(responses.items()))  # by status code, as the pages list them


def _body_model(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The body's own schema: through a ``$ref``, and past ``anyOf [model, null]`` (an optional body)."""
    alternatives = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(alternatives) == 1:
        schema = alternatives[0]
    while "$ref" in schema:
        *_, kind, name = schema["$ref"].split("/")
        schema = document["components"][kind][name]
    return schema


def _name_examples(document: dict[str, Any], body: dict[str, Any]) -> None:
    """Each media type of a request body lists its examples as named ``examples`` (the model's own, from its
    ``json_schema_extra``), where Swagger UI and ReDoc offer them, also for an optional body (``anyOf``)."""
    for media in body.get("content", {}).values():
        if "examples" in media:
            continue
        model = _body_model(document, media.get("schema", {}))
        found = list(model.get("examples", []))
        if "example" in media:
            found = [media.pop("example"), *found]
        if found:
            media["examples"] = {f"example-{i}": {"summary": _summary(model, value, i), "value": value}
                                 for i, value in enumerate(found, start=1)}


def _summary(model: dict[str, Any], value: Any, i: int) -> str:
    summaries = model.get("x-example-summaries") or []
    return str(summaries[i - 1]) if i <= len(summaries) else f"example {i}"


def inline_schema(model: Any) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place (a body FastAPI does not derive, declared in
    a route's ``openapi_extra``, cannot refer to the document's components; the models are not recursive)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"$ref"} and node["$ref"].startswith("#/$defs/"):
                return expand(defs[node["$ref"].rsplit("/", 1)[1]])
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return node

    return expand(schema)  # type: ignore[no-any-return]


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi`` (and so ``/openapi.json``) the document ``document_errors`` rewrites, once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())  # FastAPI's own generation caches the dict it returns
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_api_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with their assets served by the app (build the app with
    ``docs_url=None, redoc_url=None``: these replace FastAPI's CDN-loading pages at the same URLs)."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=f"{base}{OAUTH2_REDIRECT_URL}",
            # the key survives a reload of the page; no spec validator badge (it would call out to the internet)
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None,
                                   **(app.swagger_ui_parameters or {})})

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(openapi_url=f"{base}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{base}{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{base}{ASSETS_URL}/favicon.png", with_google_fonts=False)

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
