"""Operator routes: donor programmes and the cooperatives that consented to be aggregated in them.

Only an operator key (no cooperative) may call them; operators see programme membership, never
business figures. A programme officer's key names its programme in ``subject`` (see the README).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.reporting.api import schemas as s
from services.reporting.handlers import today
from services.reporting.runtime import ReportingRuntime
from shared.tenancy import Principal, Role
from shared.web import Forbidden, NotFound, PrincipalDep, Refusal

router = APIRouter(prefix="/programmes", tags=["programmes (operators)"])

PROGRAMME_ID = r"^[a-z0-9][a-z0-9-]{1,62}$"


async def require_operator(principal: PrincipalDep) -> Principal:
    if principal.role != Role.OPERATOR or principal.tenant_id is not None:
        raise Forbidden("this needs an operator key")
    return principal


Operator = Annotated[Principal, Depends(require_operator)]


def rt(request: Request) -> ReportingRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def _programme(request: Request, programme_id: str) -> s.ProgrammeOut:
    pool = rt(request).pool
    assert pool is not None
    name = await pool.fetchval("SELECT name FROM programmes WHERE programme_id = $1", programme_id)
    if name is None:
        raise NotFound(f"no programme {programme_id!r}")
    rows = await pool.fetch(
        "SELECT tenant_id, consented_on FROM programme_cooperatives WHERE programme_id = $1 ORDER BY tenant_id",
        programme_id)
    return s.ProgrammeOut(programme_id=programme_id, name=name,
                          cooperatives=[{"tenant_id": r["tenant_id"], "consented_on": r["consented_on"]} for r in rows])


@router.get("", response_model=s.Programmes, summary="Programmes and their consenting cooperatives")
async def list_programmes(principal: Operator, request: Request) -> s.Programmes:
    pool = rt(request).pool
    assert pool is not None
    ids = [r["programme_id"] for r in await pool.fetch("SELECT programme_id FROM programmes ORDER BY 1")]
    return s.Programmes(items=[await _programme(request, p) for p in ids])


@router.get("/{programme_id}", response_model=s.ProgrammeOut, summary="One programme")
async def get_programme(programme_id: str, principal: Operator, request: Request) -> s.ProgrammeOut:
    return await _programme(request, programme_id)


@router.put("/{programme_id}", response_model=s.ProgrammeOut, summary="Create or rename a programme")
async def put_programme(programme_id: str, body: s.ProgrammeBody, principal: Operator,
                        request: Request) -> s.ProgrammeOut:
    import re

    if not re.match(PROGRAMME_ID, programme_id):
        raise Refusal("a programme id is 2-63 lowercase letters, digits and dashes", field="programme_id")
    pool = rt(request).pool
    assert pool is not None
    await pool.execute("""INSERT INTO programmes (programme_id, name) VALUES ($1, $2)
                          ON CONFLICT (programme_id) DO UPDATE SET name = EXCLUDED.name""", programme_id, body.name)
    return await _programme(request, programme_id)


@router.put("/{programme_id}/cooperatives/{tenant_id}", response_model=s.ProgrammeOut,
            summary="Record that a cooperative consented to the programme")
async def add_cooperative(programme_id: str, tenant_id: str, principal: Operator, request: Request,
                          body: s.ConsentBody | None = None) -> s.ProgrammeOut:
    runtime = rt(request)
    await _programme(request, programme_id)
    if not await runtime.platform_pool.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id):
        raise NotFound(f"no cooperative {tenant_id!r}")
    consented_on = (body.consented_on if body else None) or today(runtime)
    await runtime.pool.execute(
        """INSERT INTO programme_cooperatives (tenant_id, programme_id, consented_on) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, programme_id) DO UPDATE SET consented_on = EXCLUDED.consented_on""",
        tenant_id, programme_id, consented_on)
    return await _programme(request, programme_id)


@router.delete("/{programme_id}/cooperatives/{tenant_id}", status_code=204,
               summary="Withdraw a cooperative from the programme (its consent ended)")
async def remove_cooperative(programme_id: str, tenant_id: str, principal: Operator, request: Request) -> Response:
    pool = rt(request).pool
    assert pool is not None
    done = await pool.execute("DELETE FROM programme_cooperatives WHERE programme_id = $1 AND tenant_id = $2",
                              programme_id, tenant_id)
    if done.endswith(" 0"):
        raise NotFound(f"cooperative {tenant_id!r} is not in programme {programme_id!r}")
    return Response(status_code=204)
