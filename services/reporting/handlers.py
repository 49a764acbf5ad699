"""What the reporting routes do: resolve the caller's scope from the credential, run the reports in the
matching row-level-security scope, and add freshness.

Scopes:
- a manager or field officer key: its own cooperative (``tenant_scope``);
- a programme officer key (``Principal.subject`` = the programme id; the key's own tenant is only the
  programme's lead cooperative, which ``shared.tenancy.issue_key`` requires): the cooperatives that
  consented to the programme (``programme_scope``), summed, and each one side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.reporting import exports as ex
from services.reporting import queries as q
from services.reporting import reports as rp
from services.reporting.runtime import ReportingRuntime
from shared.rls import programme_scope, tenant_scope
from shared.tenancy import Principal, Role
from shared.web import NotFound, Refusal

EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Scope:
    kind: str  # "cooperative" | "programme"
    id: str
    name: str
    cooperatives: tuple[str, ...]
    #: programme figures: only the members who consented to programme-level reporting count (every
    #: scope a programme officer reads, a consenting cooperative's own included); a cooperative's staff
    #: read their own books whole
    consent: bool = False

    def json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "cooperatives": list(self.cooperatives)}


def today(rt: ReportingRuntime) -> date:
    return rt.settings.business_today()


def as_of_date(rt: ReportingRuntime, as_of: date | None) -> date:
    """The report date: today (the cooperatives' time zone) by default; never in the future."""
    now = today(rt)
    if as_of is None:
        return now
    if as_of > now:
        raise Refusal(f"as_of {as_of} is in the future (today is {now})", field="as_of")
    if as_of < EARLIEST:
        raise Refusal(f"as_of {as_of} is before {EARLIEST}", field="as_of")
    return as_of


async def _tenant_names(rt: ReportingRuntime, tenants: list[str]) -> dict[str, str]:
    rows = await rt.platform_pool.fetch("SELECT tenant_id, name FROM tenants WHERE tenant_id = ANY($1::text[])",
                                        tenants)
    return {r["tenant_id"]: r["name"] for r in rows}


async def consenting(rt: ReportingRuntime, programme_id: str) -> list[str]:
    rows = await rt.pool.fetch(
        "SELECT tenant_id FROM programme_cooperatives WHERE programme_id = $1 ORDER BY tenant_id", programme_id)
    return [r["tenant_id"] for r in rows]


async def scope_of(rt: ReportingRuntime, who: Principal) -> Scope:
    if who.role == Role.PROGRAMME_OFFICER:
        programme = who.subject or ""
        name = await rt.pool.fetchval("SELECT name FROM programmes WHERE programme_id = $1", programme)
        return Scope("programme", programme, name or programme, tuple(await consenting(rt, programme)), True)
    assert who.tenant_id is not None
    names = await _tenant_names(rt, [who.tenant_id])
    return Scope("cooperative", who.tenant_id, names.get(who.tenant_id, who.tenant_id), (who.tenant_id,))


async def cooperative_scope(rt: ReportingRuntime, who: Principal, tenant_id: str) -> Scope:
    """One cooperative the caller may read: its own (staff), or one that consented to the caller's
    programme (programme officer). Anything else is answered as if it did not exist."""
    programme = who.role == Role.PROGRAMME_OFFICER
    if programme:
        allowed = tenant_id in await consenting(rt, who.subject or "")
    else:
        allowed = tenant_id == who.tenant_id
    if not allowed:
        raise NotFound(f"no cooperative {tenant_id!r} in your reports")
    names = await _tenant_names(rt, [tenant_id])
    return Scope("cooperative", tenant_id, names.get(tenant_id, tenant_id), (tenant_id,), programme)


@asynccontextmanager
async def reading(rt: ReportingRuntime, scope: Scope) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction that sees the scope's cooperatives only (row-level security)."""
    if scope.kind == "cooperative":
        async with tenant_scope(rt.reader_pool, scope.cooperatives[0]) as conn:
            yield conn
    else:
        async with programme_scope(rt.reader_pool, scope.cooperatives) as conn:
            yield conn


def tables(rt: ReportingRuntime) -> q.T:
    t = rt.live_names()
    missing = {"members", "financing", "sanitation"} - set(t)
    if missing:
        raise Refusal(f"the read models are not ready yet ({', '.join(sorted(missing))}): try again shortly")
    return t


def _freshness(builds: list[str], pending: dict[str, int] | None, applied: dict[str, dict[str, int]],
               tenants: tuple[str, ...]) -> dict[str, Any]:
    """The freshness figures of the cooperatives ``tenants``, from the per-cooperative counts."""
    return {"lag_events": None if pending is None else sum(pending.get(t, 0) for t in tenants),
            "as_of_position": ";".join(f"{b}@{sum(applied.get(t, {}).get(b, 0) for t in tenants)}" for b in builds)}


async def outside_each(rt: ReportingRuntime, tenants: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The freshness figures of the scope ``tenants`` and of each of its cooperatives, read once, before
    any scope's connection is taken: no request holds one pooled connection while it waits for another
    (with every connection held that way, the pool would wedge for good). Only the scope's cooperatives
    count: another cooperative's activity never shows in them."""
    builds = rt.live_build_names()
    pending = await rt.pending_by_tenant(tenants)
    applied = await rt.applied_by_tenant(tenants)
    return (_freshness(builds, pending, applied, tenants),
            {t: _freshness(builds, pending, applied, (t,)) for t in tenants})


async def outside_scope(rt: ReportingRuntime, tenants: tuple[str, ...]) -> dict[str, Any]:
    """The scope's freshness figures (``outside_each``)."""
    return (await outside_each(rt, tenants))[0]


#: a request's cooperatives' parts, by cooperative and what was asked of it (``parts``)
Memo = dict[tuple[Any, ...], rp.Part]


async def parts(rt: ReportingRuntime, tenants: tuple[str, ...], consent: bool, on: date, months: int = 12,
                repayment_from: date | None = None, memo: Memo | None = None) -> list[rp.Part]:
    """Each cooperative's part (``reports.Part``, in ``tenants``' order), computed as that cooperative (its
    own row-level-security scope; ``consent``: the programme's part, without the members who refused
    programme-level reporting, distinct from the cooperative's own books).

    A part is a function of the cooperative's read models, so it is kept (``rt.report_cache``) keyed on
    the live builds and on how many batches of that cooperative's events they have applied
    (``consumer_tenants``): an event of one cooperative leaves every other cooperative's part warm, and a
    programme's report after it computes that cooperative's part only. ``memo`` keeps the request's parts
    whatever the cache's size, so a request computes each cooperative once (the programme's sum, its
    target subsets and its by-cooperative column), and asks for the change counts only of the cooperatives
    it has no part of yet: a request's parts are all of one moment.

    Several programme parts missing from the cache are computed at once (``reports.compute_parts``: each
    query one statement for all of them, grouped by cooperative, in the programme scope of exactly those
    cooperatives), and kept each under its own cooperative's key as if computed alone: they are equal
    (``tests/services/reporting/test_programme_bulk.py``). One missing part, and a cooperative's own
    books (no consent filter), take the single path (``reports.compute_part``, in its own scope)."""
    memo = {} if memo is None else memo
    asked = (consent, on, months, repayment_from)
    missing = tuple(x for x in tenants if (x, *asked) not in memo)
    if missing:
        t = tables(rt)
        builds = tuple(b.name for _, b in sorted(rt.live.items()))
        changes = await rt.tenant_changes(missing)  # before the snapshots: figures never older than them
        keys = {tenant: ("part", tenant, *asked, builds, n) for tenant, n in zip(missing, changes, strict=True)}
        cold = []
        for tenant, key in keys.items():
            part = rt.report_cache.get(key)
            if part is None:
                cold.append(tenant)
            else:
                memo[(tenant, *asked)] = part
        if len(cold) > 1 and consent:
            # a programme's cooperatives, all consenting to it: their parts at once, in the programme scope
            # of exactly those cooperatives (what their own scopes see together, no more)
            async with programme_scope(rt.reader_pool, cold) as conn:
                computed = await rp.compute_parts(conn, t, cold, on, months, repayment_from, consent)
        else:
            computed = {}
            for tenant in cold:
                async with tenant_scope(rt.reader_pool, tenant) as conn:
                    computed[tenant] = await rp.compute_part(conn, t, on, months, repayment_from, consent)
        for tenant in cold:
            rt.report_cache.put(keys[tenant], computed[tenant])
            memo[(tenant, *asked)] = computed[tenant]
    return [memo[(x, *asked)] for x in tenants]


@dataclass(frozen=True)
class Beside:
    """What a request's reports show beside their figures, read once per request for every cooperative of
    its scope (three statements, in the scope's own row-level-security scope): each cooperative's last
    event time, its targets and its products' names. A scope's (the programme's, one cooperative's, a
    target's subset) come from its cooperatives' rows: the latest time, the targets summed per indicator,
    every name (``queries.last_events``, ``scope_targets``, ``scope_setters``, ``scope_product_names``), so
    a programme report reads them once, not once more for each cooperative of its by-cooperative column."""

    last: dict[str, Any]
    targets: list[dict[str, Any]]
    names: list[tuple[str, str, str]]

    def last_event_at(self, tenants: Sequence[str]) -> Any:
        at = [self.last[x] for x in tenants if self.last.get(x) is not None]
        return max(at) if at else None


async def beside(rt: ReportingRuntime, scope: Scope) -> Beside:
    """``Beside`` of the scope's cooperatives, read in the scope."""
    t = tables(rt)
    async with reading(rt, scope) as conn:
        return Beside(await q.last_events(conn, t, scope.cooperatives), await q.targets_by_tenant(conn),
                      await q.product_names_by_tenant(conn, t))


async def report(rt: ReportingRuntime, scope: Scope, on: date, months: int = 12,
                 repayment_from: date | None = None, outside: dict[str, Any] | None = None,
                 memo: Memo | None = None, around: Beside | None = None) -> tuple[rp.Report, dict[str, Any]]:
    """The scope's report as of ``on``, and its freshness (the last event applied for the scope, the
    events not applied yet, the position read to).

    The figures are the sum of the scope's cooperatives' parts (``parts``, ``reports.combine``), each
    computed once and kept per cooperative. Targets are read every time (``around``: already read in this
    request, for a scope holding this one's cooperatives; else read after the parts)."""
    each = await parts(rt, scope.cooperatives, scope.consent, on, months, repayment_from, memo)
    outside = outside if outside is not None else await outside_scope(rt, scope.cooperatives)
    around = around if around is not None else await beside(rt, scope)
    last = around.last_event_at(scope.cooperatives)
    result = rp.with_targets(rp.combine(each, on, months, repayment_from),
                             q.scope_targets(around.targets, scope.cooperatives),
                             q.scope_product_names(around.names, scope.cooperatives))
    setters = q.scope_setters(around.targets, scope.cooperatives) if scope.kind == "programme" else {}
    fresh = {"last_event_at": last.isoformat() if last else None, **outside}
    # a programme's target is the sum of the targets its cooperatives set, so its progress counts only
    # those cooperatives (else one cooperative's target would be measured against everyone's figures):
    # the sum of their parts (the target itself is already theirs alone: only they set it)
    # (each target says which cooperatives it covers: the ones that set it)
    by_tenant = dict(zip(scope.cooperatives, each, strict=True))
    for i, g in enumerate(result.targets):
        who = setters.get(g["indicator"], scope.cooperatives)
        if set(who) != set(scope.cooperatives):
            sub = rp.combine([by_tenant[c] for c in who], on, months, repayment_from)
            result.targets[i] = {**g, **rp.progress(g["indicator"], g["target"], rp.indicator_values(sub))}
        result.targets[i] = {**result.targets[i], "cooperatives": list(who)}
    return result, fresh


async def per_cooperative(rt: ReportingRuntime, scope: Scope, on: date,
                          each: dict[str, dict[str, Any]] | None = None,
                          memo: Memo | None = None,
                          around: Beside | None = None) -> dict[str, tuple[rp.Report, dict[str, Any]]]:
    """Each cooperative's report, with its own freshness (``each``, from ``outside_each``; the programme's
    would count the others'); its figures are its part (``memo``: the programme's, already computed), its
    targets, names and last event time its own rows of the programme's ``around`` (read once)."""
    names = await _tenant_names(rt, list(scope.cooperatives))
    each = each if each is not None else (await outside_each(rt, scope.cooperatives))[1]
    around = around if around is not None else await beside(rt, scope)
    out = {}
    for tenant in scope.cooperatives:
        mine = Scope("cooperative", tenant, names.get(tenant, tenant), (tenant,), scope.consent)
        out[tenant] = await report(rt, mine, on, outside=each[tenant], memo=memo, around=around)
    return out


async def dashboard(rt: ReportingRuntime, who: Principal, as_of: date | None) -> dict[str, Any]:
    """``GET /reports/dashboard`` exactly as the dashboard data contract says."""
    on = as_of_date(rt, as_of)
    scope = await scope_of(rt, who)
    outside, each_fresh = await outside_each(rt, scope.cooperatives)
    memo: Memo = {}
    await parts(rt, scope.cooperatives, scope.consent, on, memo=memo)
    around = await beside(rt, scope)
    r, fresh = await report(rt, scope, on, outside=outside, memo=memo, around=around)
    body: dict[str, Any] = {"scope": scope.json(), "as_of": on.isoformat(), "freshness": fresh, **rp.dashboard(r)}
    if scope.kind == "programme":
        names = await _tenant_names(rt, list(scope.cooperatives))
        body["by_cooperative"] = [
            {"scope": Scope("cooperative", t, names.get(t, t), (t,)).json(), "as_of": on.isoformat(),
             "freshness": f, **rp.dashboard(cr)}
            for t, (cr, f) in (await per_cooperative(rt, scope, on, each_fresh, memo, around)).items()]
    return body


async def full_report(rt: ReportingRuntime, scope: Scope, as_of: date | None) -> dict[str, Any]:
    on = as_of_date(rt, as_of)
    outside, each_fresh = await outside_each(rt, scope.cooperatives)
    memo: Memo = {}
    await parts(rt, scope.cooperatives, scope.consent, on, memo=memo)
    around = await beside(rt, scope)
    r, fresh = await report(rt, scope, on, outside=outside, memo=memo, around=around)
    body = {"scope": scope.json(), "freshness": fresh, **rp.full(r)}
    if scope.kind == "programme":
        each = await per_cooperative(rt, scope, on, each_fresh, memo, around)
        body["by_cooperative"] = ex.by_cooperative_rows({t: cr for t, (cr, _) in each.items()},
                                                        await _tenant_names(rt, list(scope.cooperatives)))
    return body


async def all_tables(rt: ReportingRuntime, scope: Scope, on: date, years: int = 3) -> tuple[dict[str, ex.Rows], dict[str, Any]]:
    """Every table of the scope's report, the donor indicator table, and (programmes) the cooperatives side
    by side. Bounded: no table may exceed ``export_max_rows``."""
    outside, each_fresh = await outside_each(rt, scope.cooperatives)
    memo: Memo = {}
    await parts(rt, scope.cooperatives, scope.consent, on, memo=memo)
    around = await beside(rt, scope)
    r, fresh = await report(rt, scope, on, outside=outside, memo=memo, around=around)
    out = ex.report_tables(r)
    out["indicators"] = await indicators(rt, scope, on, years, outside, memo, around)
    if scope.kind == "programme":
        each = await per_cooperative(rt, scope, on, each_fresh, memo, around)
        out["by_cooperative"] = ex.by_cooperative_rows({t: cr for t, (cr, _) in each.items()},
                                                       await _tenant_names(rt, list(scope.cooperatives)))
    for name, rows in out.items():
        if len(rows) > rt.settings.export_max_rows:
            raise Refusal(f"table {name} has {len(rows)} rows, more than the {rt.settings.export_max_rows} an export "
                          "may hold")
    return out, fresh


async def indicators(rt: ReportingRuntime, scope: Scope, on: date, years: int,
                     outside: dict[str, Any] | None = None, memo: Memo | None = None,
                     around: Beside | None = None) -> ex.Rows:
    if not 1 <= years <= 10:
        raise Refusal("years must be between 1 and 10", field="years")
    ps = ex.periods(on, years)
    before = date.fromordinal(ps[0][1].toordinal() - 1)
    outside = outside if outside is not None else await outside_scope(rt, scope.cooperatives)
    memo = memo if memo is not None else {}
    around = around if around is not None else await beside(rt, scope)
    baseline, _ = await report(rt, scope, before, months=1, repayment_from=date(before.year, 1, 1),
                               outside=outside, memo=memo, around=around)
    by_period = []
    for name, start, end in ps:
        by_period.append((name, start, end, (await report(rt, scope, end, months=1, repayment_from=start,
                                                          outside=outside, memo=memo, around=around))[0]))
    return ex.indicator_table(baseline, by_period, q.scope_targets(around.targets, scope.cooperatives))
