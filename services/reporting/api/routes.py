"""Reporting routes: read-only reports as of any date, for the credential's cooperative, or for the
programme a programme officer's key stands for (its consenting cooperatives, summed and side by side).

The scope comes from the key alone; a cooperative that is not the caller's (or, for a programme, not a
consenting one) is answered 404. Every answer carries its freshness.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.reporting import export_labels as words
from services.reporting import exports as ex
from services.reporting import handlers as h
from services.reporting.api import schemas as s
from services.reporting.reports import TARGET_INDICATORS
from services.reporting.runtime import ReportingRuntime
from shared.rls import TenantPool, tenant_scope
from shared.schemas import BusinessDate
from shared.tenancy import Principal, Role
from shared.web import Limit, NotFound, Offset, Refusal, require_roles

router = APIRouter(prefix="/reports", tags=["reports"])

Reader = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.FIELD_OFFICER))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
Programme = Annotated[Principal, Depends(require_roles(Role.PROGRAMME_OFFICER))]
AnyReader = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.FIELD_OFFICER, Role.PROGRAMME_OFFICER))]
AsOf = Annotated[BusinessDate | None, Query(description="Report date (default: today, Asia/Jakarta); not in the future")]
Years = Annotated[int, Query(ge=1, le=10, description="Calendar-year periods of the indicator table")]

TABLES = ("reach", "sessions", "funnel", "access_ladder", "rung_movements", "usaid_counts", "financing",
          "financing_by_product", "financing_by_fund", "portfolio_quality", "write_offs", "construction",
          "construction_by_kind", "contractors", "desludging", "sludge_flow", "monthly", "targets", "indicators",
          "by_cooperative")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CsvDialect = Annotated[Literal["standard", "excel_id"], Query(
    description="`standard`: comma-separated, no byte-order mark, `.` decimals (for programs); `excel_id`: what "
                "Excel in an Indonesian locale opens by a double click: `;`-separated, UTF-8 byte-order mark, "
                "`,` decimals, and headers and codes in words in the request's language (`lang`)")]
ExportLang = Annotated[Literal["id", "en"] | None, Query(
    description="The language of the headers, sheet names and codes in words (XLSX and the `excel_id` CSV): "
                "`id` (Bahasa Indonesia) or `en`; by default the first of them in the Accept-Language header, "
                "else `id`. The `standard` CSV keeps field names and codes, for programs")]


def rt(request: Request) -> ReportingRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _json(body: Any) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body))


class Summary(BaseModel):
    tenant_id: str
    members: int
    women: int
    people: int
    last_event_at: datetime | None


@router.get("/summary", response_model=Summary, summary="Headline figures of your cooperative")
async def summary(principal: Reader, request: Request) -> Summary:
    assert principal.tenant_id is not None
    async with tenant_scope(rt(request).reader_pool, principal.tenant_id) as conn:  # type: ignore[arg-type]
        # row-level security is the second wall: the reader role sees this cooperative's row only
        row = await conn.fetchrow("SELECT members, women, people, last_event_at FROM coop_summary_v1")
    if row is None:
        return Summary(tenant_id=principal.tenant_id, members=0, women=0, people=0, last_event_at=None)
    return Summary(tenant_id=principal.tenant_id, **dict(row))


@router.get("/dashboard", response_model=s.Dashboard,
            summary="The dashboard's figures: your cooperative, or your programme's consenting cooperatives")
async def dashboard(principal: AnyReader, request: Request, as_of: AsOf = None) -> JSONResponse:
    body = await h.dashboard(rt(request), principal, as_of)
    s.Dashboard.model_validate(body)  # the contract, checked on every answer
    return _json(body)


@router.get("/cooperative", response_model=s.Report, summary="Your cooperative's whole report as of a date")
async def cooperative(principal: Reader, request: Request, as_of: AsOf = None) -> JSONResponse:
    return _json(await h.full_report(rt(request), await h.scope_of(rt(request), principal), as_of))


@router.get("/cooperatives/{tenant_id}", response_model=s.Report,
            summary="One cooperative's report: your own, or (programme officers) a consenting one")
async def one_cooperative(tenant_id: str, principal: AnyReader, request: Request, as_of: AsOf = None) -> JSONResponse:
    scope = await h.cooperative_scope(rt(request), principal, tenant_id)
    return _json(await h.full_report(rt(request), scope, as_of))


@router.get("/programme", response_model=s.Report,
            summary="Your programme: its consenting cooperatives summed, and each side by side (aggregates only)")
async def programme(principal: Programme, request: Request, as_of: AsOf = None) -> JSONResponse:
    return _json(await h.full_report(rt(request), await h.scope_of(rt(request), principal), as_of))


@router.get("/tables", response_model=s.TableList, summary="The report tables (for paging and export)")
async def table_list(principal: AnyReader) -> s.TableList:
    names = [t for t in TABLES if t != "by_cooperative" or principal.role == Role.PROGRAMME_OFFICER]
    return s.TableList(tables=names)


async def _table(request: Request, principal: Principal, table: str | None, as_of: date | None,
                 years: int = 3) -> tuple[h.Scope, date, dict[str, ex.Rows], dict[str, Any]]:
    """Every table of the caller's scope; ``table`` (None: the whole workbook) must be one of them (a path
    naming no table, ``all`` included, is 404: it answered 500 with a KeyError)."""
    if table is not None and table not in TABLES:
        raise NotFound(f"no report table {table!r}")
    scope = await h.scope_of(rt(request), principal)
    if table == "by_cooperative" and scope.kind != "programme":
        raise NotFound("by_cooperative is a programme table")
    on = h.as_of_date(rt(request), as_of)
    tables, fresh = await h.all_tables(rt(request), scope, on, years)
    return scope, on, tables, fresh


@router.get("/tables/{table}", response_model=s.TablePage, summary="One report table, paged")
async def table_page(table: str, principal: AnyReader, request: Request, as_of: AsOf = None, limit: Limit = 50,
                     offset: Offset = 0) -> JSONResponse:
    scope, on, tables, fresh = await _table(request, principal, table, as_of)
    rows = tables[table]
    return _json({"table": table, "as_of": on, "scope": scope.json(), "freshness": fresh,
                  "columns": ex.columns(rows), "items": rows[offset:offset + limit], "total": len(rows),
                  "limit": limit, "offset": offset})


def _file(content: bytes, name: str, media_type: str, on: date, fresh: dict[str, Any],
          lang: str | None = None) -> Response:
    return Response(content, media_type=media_type, headers={
        **({"Content-Language": lang} if lang else {}),
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Washfin-As-Of": on.isoformat(), "X-Washfin-Last-Event-At": fresh["last_event_at"] or "",
        "X-Washfin-Lag-Events": "" if fresh["lag_events"] is None else str(fresh["lag_events"]), "X-Washfin-As-Of-Position": fresh["as_of_position"]})


def _lang(request: Request, lang: str | None) -> words.Lang:
    return words.pick_language(lang, request.headers.get("accept-language"))


def _stem(scope: h.Scope, on: date) -> str:
    return f"washfin-{scope.kind}-{scope.id}-{on.isoformat()}"


@router.get("/exports/report.xlsx", summary="Every report table, one sheet each (XLSX)",
            response_class=Response, responses={200: {"content": {XLSX: {}}}})
async def export_xlsx(principal: AnyReader, request: Request, as_of: AsOf = None, years: Years = 3,
                      lang: ExportLang = None) -> Response:
    scope, on, tables, fresh = await _table(request, principal, None, as_of, years)
    language = _lang(request, lang)
    return _file(ex.to_xlsx(tables, f"washfin report {scope.name} {on}", language),
                 f"{_stem(scope, on)}.xlsx", XLSX, on, fresh, language)


@router.get("/exports/indicators.csv", summary="The donor indicator table: result -> indicator -> period (CSV)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def export_indicators(principal: AnyReader, request: Request, as_of: AsOf = None, years: Years = 3,
                            dialect: CsvDialect = "standard", lang: ExportLang = None) -> Response:
    scope, on, tables, fresh = await _table(request, principal, "indicators", as_of, years)
    language = _lang(request, lang) if dialect == "excel_id" else None
    return _file(ex.to_csv(tables["indicators"], dialect, language or "id", "indicators"),
                 f"{_stem(scope, on)}-indicators.csv", "text/csv; charset=utf-8", on, fresh, language)


@router.get("/exports/tables/{table}", summary="One report table as CSV or XLSX",
            response_class=Response, responses={200: {"content": {"text/csv": {}, XLSX: {}}}})
async def export_table(table: str, principal: AnyReader, request: Request, as_of: AsOf = None,
                       format: Literal["csv", "xlsx"] = "csv", years: Years = 3,
                       dialect: CsvDialect = "standard", lang: ExportLang = None) -> Response:
    scope, on, tables, fresh = await _table(request, principal, table, as_of, years)
    if format == "xlsx":
        language = _lang(request, lang)
        return _file(ex.to_xlsx({table: tables[table]}, lang=language), f"{_stem(scope, on)}-{table}.xlsx",
                     XLSX, on, fresh, language)
    language = _lang(request, lang) if dialect == "excel_id" else None
    return _file(ex.to_csv(tables[table], dialect, language or "id", table), f"{_stem(scope, on)}-{table}.csv",
                 "text/csv; charset=utf-8", on, fresh, language)


# -- targets ------------------------------------------------------------------------------------------------


@router.get("/targets", response_model=s.Targets, summary="Your cooperative's targets")
async def targets(principal: Reader, request: Request) -> s.Targets:
    assert principal.tenant_id is not None
    async with tenant_scope(rt(request).reader_pool, principal.tenant_id) as conn:  # type: ignore[arg-type]
        rows = await conn.fetch("SELECT indicator, target, due_on, baseline FROM cooperative_targets ORDER BY 1")
    return s.Targets(items=[s.TargetRow(**dict(r)) for r in rows], indicators=TARGET_INDICATORS)


def _as_cooperative(request: Request, principal: Principal) -> TenantPool:
    """Writes as the key's cooperative, behind row-level security (``washfin_app``)."""
    assert principal.tenant_id is not None
    return TenantPool(rt(request).request_pool, principal.tenant_id)


@router.put("/targets/{indicator}", response_model=s.TargetRow, summary="Set a target (managers)")
async def set_target(indicator: str, body: s.TargetBody, principal: Manager, request: Request) -> s.TargetRow:
    if indicator not in TARGET_INDICATORS:
        raise Refusal(f"no indicator {indicator!r}: one of {', '.join(TARGET_INDICATORS)}", field="indicator")
    assert principal.tenant_id is not None
    await _as_cooperative(request, principal).execute(
        """INSERT INTO cooperative_targets (tenant_id, indicator, target, due_on, baseline) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, indicator) DO UPDATE SET target = EXCLUDED.target, due_on = EXCLUDED.due_on,
               baseline = EXCLUDED.baseline""",
        principal.tenant_id, indicator, body.target, body.due_on, body.baseline)
    return s.TargetRow(indicator=indicator, target=body.target, due_on=body.due_on, baseline=body.baseline)


@router.delete("/targets/{indicator}", status_code=204, summary="Remove a target (managers)")
async def delete_target(indicator: str, principal: Manager, request: Request) -> Response:
    done = await _as_cooperative(request, principal).execute("DELETE FROM cooperative_targets WHERE tenant_id = $1 AND indicator = $2",
                              principal.tenant_id, indicator)
    if done.endswith(" 0"):
        raise NotFound(f"no target {indicator!r}")
    return Response(status_code=204)
