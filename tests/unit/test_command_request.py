"""The one dependency that gives a command route its context (``shared/web.py`` ``command_request``).

A route documents exactly the command headers its dependency takes, with their rules; ``CommandRequest
.context()`` gives ``run_command`` the cooperative, the metadata, the business day, the key and the version
If-Match names, by the one parsing rule.
"""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace

import pytest
from fastapi import FastAPI

from shared.application import RuleViolation
from shared.envelope import Metadata
from shared.tenancy import Principal, Role
from shared.web import (
    IF_MATCH_MAX,
    CommandRequest,
    KeyedOfficerCommand,
    KeyedVersionedManagerCommand,
    ManagerCommand,
    VersionedOfficerCommand,
    command_request,
    command_type,
)


def _headers(app: FastAPI, path: str) -> dict[str, dict[str, object]]:
    op = app.openapi()["paths"][path]["post"]
    return {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "header"}


def test_a_route_documents_exactly_the_command_headers_its_dependency_takes() -> None:
    app = FastAPI()

    @app.post("/none")
    async def none(cmd: ManagerCommand) -> None: ...

    @app.post("/keyed")
    async def keyed(cmd: KeyedOfficerCommand) -> None: ...

    @app.post("/versioned")
    async def versioned(cmd: VersionedOfficerCommand) -> None: ...

    @app.post("/both")
    async def both(cmd: KeyedVersionedManagerCommand) -> None: ...

    assert _headers(app, "/none") == {}
    assert set(_headers(app, "/keyed")) == {"Idempotency-Key"}
    assert set(_headers(app, "/versioned")) == {"If-Match"}
    both_headers = _headers(app, "/both")
    assert list(both_headers) == ["Idempotency-Key", "If-Match"]
    # the rules are the shared ones, documented: a key of at most 200 characters, an If-Match of IF_MATCH_MAX
    assert both_headers["Idempotency-Key"]["anyOf"][0]["maxLength"] == 200
    assert both_headers["If-Match"]["anyOf"][0]["maxLength"] == IF_MATCH_MAX
    # the caller's key is the security scheme, never a parameter of its own
    assert app.openapi()["paths"]["/both"]["post"]["security"] == [{"ApiKey": []}]


def test_the_same_roles_and_headers_give_the_same_dependency() -> None:
    assert command_request(Role.MANAGER, if_match=True) is command_request(Role.MANAGER, if_match=True)
    assert command_request(Role.MANAGER) is not command_request(Role.MANAGER, if_match=True)
    assert command_type(Role.INSPECTOR, idempotency_key=True) == command_type(Role.INSPECTOR, idempotency_key=True)


def _request(if_match: str | None, key: str | None = None) -> CommandRequest:
    settings = SimpleNamespace(business_today=lambda: date(2026, 3, 4))
    view = SimpleNamespace(tenant_id="koperasi-a", settings=settings)
    who = Principal(tenant_id="koperasi-a", role=Role.MANAGER, key_id="k1", staff_id="s1")
    meta = Metadata(correlation_id=uuid.uuid4(), actor=who.actor)
    return CommandRequest(who, view, meta, key, if_match)  # type: ignore[arg-type]


@pytest.mark.parametrize(("header", "version"), [(None, None), ("7", 7), ('"7"', 7), ('W/"12"', 12), (" 3 ", 3)])
def test_the_context_carries_the_version_if_match_names(header: str | None, version: int | None) -> None:
    cmd = _request(header, key="retry-1")
    ctx = cmd.context()
    assert (ctx.tenant, ctx.today, ctx.idempotency_key, ctx.expected_version) == (
        "koperasi-a", date(2026, 3, 4), "retry-1", version)
    assert ctx.meta is cmd.meta and cmd.actor == "staff:s1" == ctx.meta.actor


@pytest.mark.parametrize("header", ["seven", 'W/"x"', "", "7.5"])
def test_a_malformed_if_match_is_refused_on_its_field_when_the_command_runs(header: str) -> None:
    cmd = _request(header)  # the request is built; reading If-Match is the context's
    with pytest.raises(RuleViolation) as refused:
        cmd.context()
    assert refused.value.field == "If-Match"
