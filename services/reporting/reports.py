"""Reports as of a date: gathered by ``queries`` inside a row-level-security scope, turned into indicators
by ``indicators.maths``, and laid out as the API's JSON, the dashboard's JSON and the export tables.

A cooperative's figures are gathered as a ``Part`` (``compute_part``, in its tenant scope), a form that
adds up exactly; a programme's report is the sum of its consenting cooperatives' parts (``combine``):
counts and sums added, medians from the added distributions, every percentage computed from the summed
numerators and denominators, never averaged. ``compute`` gives the report of whatever scope the
connection sees (one cooperative, or the union of several) the same way. ``compute_parts`` gives several
cooperatives' parts at once (``bulk``: each query one statement for all of them, grouped by cooperative),
each equal to its ``compute_part``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.reporting import bulk
from services.reporting import queries as q
from services.reporting.indicators.maths import (
    PAR_DAYS,
    SANITATION_RUNGS,
    WATER_RUNGS,
    Access,
    AccessGroup,
    Portfolio,
    access,
    last_months,
    leverage,
    mean_rupiah,
    median,
    month_end,
    pct,
    repayment_rate,
    sludge_flow,
)

JOB_STATUSES = ("ordered", "assigned", "started", "inspection_failed", "inspection_passed", "completed")

#: target indicators a cooperative may set, and what each counts (see ``indicator_values``)
TARGET_INDICATORS = {
    "members": "active members",
    "households": "households of active members",
    "people_reached": "people in households whose access improved",
    "basic_sanitation_households": "households with at least basic sanitation",
    "safely_managed_sanitation_households": "households with safely managed sanitation",
    "basic_water_households": "households with at least basic drinking water",
    "people_gaining_basic_sanitation": "people gaining basic sanitation",
    "people_gaining_safely_managed_sanitation": "people gaining safely managed sanitation",
    "people_gaining_basic_water": "people gaining basic drinking water",
    "financings_disbursed": "financings disbursed",
    "disbursed_value": "rupiah disbursed",
    "septic_tanks_completed": "septic tanks handed over",
    "water_connections_completed": "water connections handed over",
    "tanks_safely_emptied": "septic tanks emptied with the sludge acknowledged at an IPLT",
}


@dataclass
class Report:
    as_of: date
    reach: dict[str, int]
    sessions: list[dict[str, Any]]
    funnel: dict[str, int]
    access: Access
    by_product: list[dict[str, Any]]
    by_fund: list[dict[str, Any]]
    portfolio: dict[date, dict[str, Any]]
    repayment_period: tuple[date, date]
    repayment: tuple[int, int]
    money: dict[str, int]
    write_offs: list[dict[str, Any]]
    construction: dict[str, Any]
    contractors: list[dict[str, Any]]
    desludging: dict[str, Any]
    monthly: list[dict[str, Any]]
    targets: list[dict[str, Any]] = field(default_factory=list)
    #: product id -> its name, of the products in scope (``queries.product_names``; read with the targets,
    #: never kept with the figures); a product without one is shown by its id
    product_names: dict[str, str] = field(default_factory=dict)

    @property
    def quality(self) -> Portfolio:
        return self.portfolio[self.as_of]["all"]  # type: ignore[no-any-return]


async def compute(conn: asyncpg.Connection, t: q.T, as_of: date, months: int = 12,
                  repayment_from: date | None = None, consent: bool = False) -> Report:
    """Every figure as of ``as_of`` (``compute_figures``) with the targets in scope (``add_targets``)."""
    return await add_targets(conn, await compute_figures(conn, t, as_of, months, repayment_from, consent), t)


async def compute_figures(conn: asyncpg.Connection, t: q.T, as_of: date, months: int = 12,
                          repayment_from: date | None = None, consent: bool = False) -> Report:
    """Every figure as of ``as_of`` for the cooperatives the connection's scope lets it see: the monthly
    series covers the ``months`` calendar months up to ``as_of``, and so does the repayment rate unless
    ``repayment_from`` starts its period elsewhere. ``consent``: programme figures, which leave out the
    members who have not consented to programme-level reporting (``queries``, "Programme figures").

    The scope's ``Part``, laid out (``combine``); the programme report adds its cooperatives' parts instead
    (``handlers.report``), each computed in its own cooperative's scope."""
    return combine([await compute_part(conn, t, as_of, months, repayment_from, consent)], as_of, months,
                   repayment_from)


# -- parts: a cooperative's figures in a form that adds up exactly --------------------------------------------


@dataclass
class Part:
    """What the report's queries give for the cooperatives a connection sees (one cooperative, as the
    programme view computes it), kept in a form that adds to other cooperatives' parts exactly: counts and
    sums as they are; medians as distributions (days -> jobs, per contractor too); means and ratios
    (average size, PAR, repayment rate, every percentage) as their numerators and denominators (contract
    cost and count of disbursed financings, the portfolio's principal per lateness bucket, paid on time
    and fallen due, the counts the percentages divide); the access ladders as the member groups they are
    counted from; rows by category unfiltered (a category empty in one cooperative may not be in the sum).
    ``combine`` adds parts and lays the sum out as a ``Report``: the figures the same queries give over
    the union of the parts' cooperatives (``tests/services/reporting/test_programme_parts.py``)."""

    reach: dict[str, int]
    sessions: list[dict[str, Any]]
    funnel: dict[str, int]
    access_groups: list[AccessGroup]
    by_product: list[dict[str, Any]]
    by_fund: list[dict[str, Any]]
    portfolio: dict[date, dict[str, Any]]
    repayment: tuple[int, int]
    money: dict[str, int]
    write_offs: list[dict[str, Any]]
    construction: dict[str, Any]
    contractors: list[dict[str, Any]]
    desludging: dict[str, Any]
    money_by_month: dict[date, dict[str, int]]
    sludge_by_month: dict[date, dict[str, int]]


async def compute_part(conn: asyncpg.Connection, t: q.T, as_of: date, months: int = 12,
                       repayment_from: date | None = None, consent: bool = False) -> Part:
    """The part of the cooperatives the connection's scope sees (``compute_figures``' arguments)."""
    window = last_months(as_of, months)
    ends = [end for _, end in window]
    start = window[0][0]
    repaid_from = repayment_from or start
    minus = await q.withheld(conn, t) if consent else None
    return Part(
        money_by_month=await q.monthly_money(conn, t, start, as_of, minus),
        sludge_by_month=await q.monthly_desludging(conn, t, start, month_end(as_of), as_of, consent),
        portfolio=await q.portfolio(conn, t, sorted({*ends, as_of}), minus),
        reach=await q.reach(conn, t, as_of, consent),
        sessions=await q.sessions(conn, t, as_of, consent),
        funnel=await q.funnel(conn, t, as_of, consent),
        access_groups=await q.access_groups(conn, t, as_of, consent),
        by_product=await q.financing_by_product(conn, t, as_of, minus, keep_empty=True),
        by_fund=await q.disbursed_by_fund(conn, t, as_of, minus, keep_empty=True),
        repayment=await q.repayment(conn, t, repaid_from, as_of, minus),
        money=await q.money_facts(conn, t, as_of, minus),
        write_offs=await q.write_offs(conn, t, as_of, minus, keep_empty=True),
        construction=await q.construction(conn, t, as_of, consent),
        contractors=await q.contractors(conn, t, as_of, consent),
        desludging=await q.desludging(conn, t, as_of, month_end(as_of), consent),
    )


async def compute_parts(conn: asyncpg.Connection, t: q.T, tenants: Sequence[str], as_of: date, months: int = 12,
                        repayment_from: date | None = None, consent: bool = False) -> dict[str, Part]:
    """The part of each cooperative of ``tenants`` (``compute_part``'s arguments), all at once: each of the
    part's queries is one statement over every cooperative the connection sees, grouped by cooperative
    (``bulk``). The connection's scope must be exactly ``tenants`` (``shared.rls.programme_scope``); each
    part equals ``compute_part`` in that cooperative's own scope
    (``tests/services/reporting/test_programme_bulk.py``)."""
    window = last_months(as_of, months)
    ends = [end for _, end in window]
    start = window[0][0]
    repaid_from = repayment_from or start
    x = list(tenants)
    minus = await bulk.withheld(conn, t) if consent else None
    money_by_month = await bulk.monthly_money(conn, t, x, start, as_of, minus)
    sludge_by_month = await bulk.monthly_desludging(conn, t, x, start, month_end(as_of), as_of, consent)
    portfolio = await bulk.portfolio(conn, t, x, sorted({*ends, as_of}), minus)
    reach = await bulk.reach(conn, t, x, as_of, consent)
    sessions = await bulk.sessions(conn, t, x, as_of, consent)
    funnel = await bulk.funnel(conn, t, x, as_of, consent)
    access_groups = await bulk.access_groups(conn, t, x, as_of, consent)
    by_product = await bulk.financing_by_product(conn, t, x, as_of, minus)
    by_fund = await bulk.disbursed_by_fund(conn, t, x, as_of, minus)
    repayment = await bulk.repayment(conn, t, x, repaid_from, as_of, minus)
    money = await bulk.money_facts(conn, t, x, as_of, minus)
    write_offs = await bulk.write_offs(conn, t, x, as_of, minus)
    construction = await bulk.construction(conn, t, x, as_of, consent)
    contractors = await bulk.contractors(conn, t, x, as_of, consent)
    desludging = await bulk.desludging(conn, t, x, as_of, month_end(as_of), consent)
    return {k: Part(money_by_month=money_by_month[k], sludge_by_month=sludge_by_month[k], portfolio=portfolio[k],
                    reach=reach[k], sessions=sessions[k], funnel=funnel[k], access_groups=access_groups[k],
                    by_product=by_product[k], by_fund=by_fund[k], repayment=repayment[k], money=money[k],
                    write_offs=write_offs[k], construction=construction[k], contractors=contractors[k],
                    desludging=desludging[k])
            for k in x}


REACH_KEYS = ("members", "women", "b40_known", "b40", "area_known", "urban", "people_in_households")
FUNNEL_KEYS = ("attended", "lead", "applied", "disbursed")
MONEY_KEYS = ("repaid", "late_charges", "social_fund", "social_fund_received", "recovered")
DESLUDGING_COUNTS = ("tanks", "due", "overdue", "tanks_emptied", "emptyings", "tanks_delivered", "tanks_treated",
                     "receipts")
DESLUDGING_M3 = ("m3_removed", "m3_acknowledged", "m3_removed_acknowledged_loads")


def _order(*key: Any) -> tuple[Any, ...]:
    """SQL's ascending order of text keys, NULLs last, under the collations the deployments' databases
    have (``C.UTF-8``, which ``deploy/local`` initialises, and the Alpine image's, musl's: both order by code
    point). One part keeps the order its query gave, whatever the collation."""
    return tuple((k is None, "" if k is None else k) for k in key)


def _add(into: dict[Any, int], items: Any) -> None:
    for k, v in items:
        into[k] = into.get(k, 0) + v


def _rows(parts: list[dict[str, Any]], key: tuple[str, ...], many: bool = True) -> list[dict[str, Any]]:
    """Rows by ``key`` added up (every other field is a count or a sum), in SQL's order of the key
    (``many``: rows of several parts; else those of one, in its order)."""
    by: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in parts:
        k = tuple(row[f] for f in key)
        got = by.get(k)
        if got is None:
            by[k] = dict(row)
        else:
            for f, v in row.items():
                if f not in key:
                    got[f] += v
    return [by[k] for k in (sorted(by, key=lambda k: _order(*k)) if many else by)]


def _plus(into: Portfolio, p: Portfolio) -> None:
    """``p`` added to ``into`` (a sum of the request's own: a part's portfolios are never changed)."""
    into.financings += p.financings
    into.gross_principal += p.gross_principal
    into.owed += p.owed
    for n in PAR_DAYS:
        into.at_risk[n] += p.at_risk[n]
        into.at_risk_with_restructured[n] += p.at_risk_with_restructured[n]
    into.restructured_principal += p.restructured_principal
    into.restructured_financings += p.restructured_financings


def _portfolios(parts: list[Part], dates: list[date]) -> dict[date, dict[str, Any]]:
    out: dict[date, dict[str, Any]] = {d: {"all": Portfolio(), "product": {}, "fund": {}} for d in dates}
    for p in parts:
        for d in dates:
            mine, slot = p.portfolio[d], out[d]
            _plus(slot["all"], mine["all"])
            for what in ("product", "fund"):
                sums = slot[what]
                for k, v in mine[what].items():
                    into = sums.get(k)
                    if into is None:
                        into = sums[k] = Portfolio()
                    _plus(into, v)
    return out


def combine(parts: list[Part], as_of: date, months: int = 12, repayment_from: date | None = None) -> Report:
    """The report of the cooperatives of ``parts`` (each computed with the same ``as_of``, ``months``,
    ``repayment_from`` and consent): every count and sum added, every median, mean and percentage
    computed from the added distributions, numerators and denominators (never averaged), rows by
    category filtered and ordered as the queries do."""
    window = last_months(as_of, months)
    ends = [end for _, end in window]
    repaid_from = repayment_from or window[0][0]
    many = len(parts) > 1
    quality = _portfolios(parts, sorted({*ends, as_of}))
    money_by_month: dict[date, dict[str, int]] = {}
    sludge_by_month: dict[date, dict[str, int]] = {}
    for p in parts:
        for into, mine in ((money_by_month, p.money_by_month), (sludge_by_month, p.sludge_by_month)):
            for m, x in mine.items():
                _add(into.setdefault(m, {}), x.items())
    monthly = []
    for first, end in window:
        money, sludge = money_by_month.get(first, {}), sludge_by_month.get(first, {})
        monthly.append({"month": first.strftime("%Y-%m"), "disbursed": money.get("disbursed", 0),
                        "repaid": money.get("repaid", 0), "par30_pct": quality[end]["all"].par(30),
                        "desludging_due": sludge.get("due", 0), "desludging_done": sludge.get("done", 0)})
    reach = {k: sum(p.reach[k] for p in parts) for k in REACH_KEYS}
    funnel = {k: sum(p.funnel[k] for p in parts) for k in FUNNEL_KEYS}
    money_facts = {k: sum(p.money[k] for p in parts) for k in MONEY_KEYS}
    by_product = [r for r in _rows([r for p in parts for r in p.by_product], ("product_id", "purpose"), many)
                  if r["applied"] or r["signed"] or r["disbursed"]]
    by_fund = [r for r in _rows([r for p in parts for r in p.by_fund], ("source_of_funds",), many) if r["financings"]]
    write_offs = [r for r in _rows([r for p in parts for r in p.write_offs], ("reason",), many) if r["financings"]]
    by_status: dict[str, int] = {}
    days: dict[int, int] = {}
    for p in parts:
        _add(by_status, p.construction["by_status"].items())
        _add(days, p.construction["days_order_to_handover"].items())
    construction = {
        "by_status": by_status,
        "by_kind": [r for r in _rows([r for p in parts for r in p.construction["by_kind"]], ("kind",), many)
                    if r["ordered"] or r["completed"]],
        **{k: sum(p.construction[k] for p in parts) for k in ("first_inspections", "first_passed", "reinspections")},
        "days_order_to_handover": days,
    }
    desludging: dict[str, Any] = {k: sum(p.desludging[k] for p in parts) for k in DESLUDGING_COUNTS}
    last = [p.desludging["last_emptied_on"] for p in parts if p.desludging["last_emptied_on"] is not None]
    desludging["last_emptied_on"] = max(last) if last else None
    desludging.update({k: sum((p.desludging[k] for p in parts), Decimal(0)) for k in DESLUDGING_M3})
    outcomes: dict[str, int] = {}
    for p in parts:
        _add(outcomes, p.desludging["visits_by_outcome"].items())
    desludging["visits_by_outcome"] = {k: outcomes[k] for k in (sorted(outcomes) if many else outcomes)}
    return Report(
        as_of=as_of,
        reach=reach,
        sessions=_rows([r for p in parts for r in p.sessions], ("kind",), many),
        funnel=funnel,
        access=access(g for p in parts for g in p.access_groups),
        by_product=by_product,
        by_fund=by_fund,
        portfolio=quality,
        repayment_period=(repaid_from, as_of),
        repayment=(sum(p.repayment[0] for p in parts), sum(p.repayment[1] for p in parts)),
        money=money_facts,
        write_offs=write_offs,
        construction=construction,
        contractors=sorted((c for p in parts for c in p.contractors),
                           key=lambda c: (c["tenant_id"], c["contractor_id"])),
        desludging=desludging,
        monthly=monthly,
    )


async def add_targets(conn: asyncpg.Connection, report: Report, t: q.T | None = None) -> Report:
    """The report with the targets in scope and each one's progress (targets change without events, so
    they are read every time, never cached with the figures), and (``t``) the names of its products."""
    names = await q.product_names(conn, t) if t is not None else None
    return with_targets(report, await q.targets(conn), names)


def with_targets(report: Report, targets: list[dict[str, Any]],
                 names: dict[str, str] | None = None) -> Report:
    """The report with ``targets`` (``queries.targets``' rows of its scope) and each one's progress, and
    (``names``) the names of its products (``queries.product_names``)."""
    values = indicator_values(report)
    report.targets = [
        {"indicator": g["indicator"], "target": g["target"], "baseline": g["baseline"],
         **progress(g["indicator"], g["target"], values), "due_on": g["due_on"]}
        for g in targets]
    if names is not None:
        report.product_names = names
    return report


def progress(indicator: str, target: Any, values: dict[str, int]) -> dict[str, Any]:
    """A target's actual figure among ``values`` (``indicator_values``) and its progress."""
    actual = values.get(indicator, 0)
    return {"actual": actual, "progress_pct": pct(actual, target)}


# -- figures ------------------------------------------------------------------------------------------------


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(int(r[key]) for r in rows)


def financing_figures(r: Report) -> dict[str, Any]:
    p, (on_time, fallen_due) = r.quality, r.repayment
    disbursed = _sum(r.by_product, "disbursed")
    return {
        "applied": _sum(r.by_product, "applied"), "applied_value": _sum(r.by_product, "applied_value"),
        "approved": _sum(r.by_product, "approved"), "approved_value": _sum(r.by_product, "approved_value"),
        "rejected": _sum(r.by_product, "rejected"),
        "signed": _sum(r.by_product, "signed"), "signed_value": _sum(r.by_product, "signed_cost"),
        "disbursed_count": disbursed, "disbursed_value": _sum(r.by_product, "disbursed_value"),
        "average_size": mean_rupiah(_sum(r.by_product, "disbursed_cost"), disbursed),
        "outstanding_count": p.financings, "outstanding": p.gross_principal, "outstanding_owed": p.owed,
        **{f"par{n}_pct": p.par(n) for n in PAR_DAYS},
        **{f"par{n}_with_restructured_pct": p.par(n, True) for n in PAR_DAYS},
        **{f"par{n}_principal": p.at_risk[n] for n in PAR_DAYS},
        "restructured_count": p.restructured_financings, "restructured_principal": p.restructured_principal,
        "restructured_pct": p.restructured_pct,
        "repayment_rate_pct": repayment_rate(on_time, fallen_due), "repayment_rate_not_applicable": not fallen_due,
        "paid_on_time": on_time, "fallen_due": fallen_due,
        "repayment_period_start": r.repayment_period[0], "repayment_period_end": r.repayment_period[1],
        "repaid": r.money["repaid"],
        "written_off_count": _sum(r.write_offs, "financings"), "written_off_principal": _sum(r.write_offs, "principal"),
        "written_off_margin": _sum(r.write_offs, "margin"), "recovered": r.money["recovered"],
        "late_charges": r.money["late_charges"], "social_fund": r.money["social_fund"],
        # the social fund (ta'zir): imposed (= social_fund, charges approved), received (paid against them),
        # outstanding (still owed by members); none of it is repaid, margin or income
        "social_fund_imposed": r.money["social_fund"], "social_fund_received": r.money["social_fund_received"],
        "social_fund_outstanding": r.money["social_fund"] - r.money["social_fund_received"],
    }


def reach_figures(r: Report) -> dict[str, Any]:
    x = r.reach
    return {
        "members": x["members"], "households": x["members"], "people_reached": r.access.people_reached,
        "people_in_member_households": x["people_in_households"],
        "women": x["women"], "women_pct": pct(x["women"], x["members"]),
        "b40": x["b40"], "b40_known": x["b40_known"], "b40_pct": pct(x["b40"], x["b40_known"]),
        "urban": x["urban"], "area_known": x["area_known"], "urban_pct": pct(x["urban"], x["area_known"]),
        "households_improved": r.access.households_improved,
        "sessions": _sum(r.sessions, "sessions"),
        "session_attendances": _sum(r.sessions, "member_attendances") + _sum(r.sessions, "other_attendees"),
        "member_attendances": _sum(r.sessions, "member_attendances"),
        "other_attendees": _sum(r.sessions, "other_attendees"),
    }


def construction_figures(r: Report) -> dict[str, Any]:
    c = r.construction
    return {
        "by_status": {s: c["by_status"].get(s, 0) for s in JOB_STATUSES},
        "first_inspections": c["first_inspections"], "first_time_passes": c["first_passed"],
        "first_time_pass_rate_pct": pct(c["first_passed"], c["first_inspections"]),
        "reinspections": c["reinspections"],
        "median_days_order_to_handover": median(c["days_order_to_handover"]),
        "completed": sum(c["days_order_to_handover"].values()),
    }


def _m3(v: Decimal) -> float:
    return float(Decimal(v).quantize(Decimal("0.001")))


def desludging_figures(r: Report) -> dict[str, Any]:
    d = r.desludging
    return {
        "tanks": d["tanks"], "due": d["due"], "overdue": d["overdue"], "emptied": d["tanks_emptied"],
        "emptyings": d["emptyings"], "last_emptied_on": d["last_emptied_on"],
        "emptyings_in_window": sum(m["desludging_done"] for m in r.monthly),
        "tanks_safely_emptied": d["tanks_delivered"], "iplt_receipts": d["receipts"],
        "m3_removed": _m3(d["m3_removed"]), "m3_acknowledged": _m3(d["m3_acknowledged"]),
        "m3_removed_in_acknowledged_loads": _m3(d["m3_removed_acknowledged_loads"]),
        "visits_by_outcome": d["visits_by_outcome"],
        "sludge_flow_pct": sludge_flow(d["tanks"], d["tanks_emptied"], d["tanks_delivered"], d["tanks_treated"]),
        "sludge_flow_tanks": {"contained": d["tanks"], "emptied": d["tanks_emptied"],
                              "delivered": d["tanks_delivered"], "treated": d["tanks_treated"]},
    }


def access_figures(r: Report) -> dict[str, Any]:
    a = r.access
    return {
        "households_with_baseline": a.households_with_baseline,
        "ladder": {"water": {"baseline": dict(a.water_baseline), "now": dict(a.water_now)},
                   "sanitation": {"baseline": dict(a.sanitation_baseline), "now": dict(a.sanitation_now)}},
        "movements": [{"service": s, "baseline": b, "now": n, "households": h}
                      for (s, b, n), h in sorted(a.movements.items())],
        "safely_managed_sanitation_households": a.safely_managed_sanitation_households,
        "basic_sanitation_households": a.basic_sanitation_households,
        "basic_water_households": a.basic_water_households,
        "households_improved": a.households_improved, "people_reached": a.people_reached,
    }


def usaid_figures(r: Report) -> dict[str, int]:
    a = r.access
    return {
        "people_gaining_basic_sanitation": a.people_gaining_basic_sanitation,
        "people_gaining_safely_managed_sanitation": a.people_gaining_safely_managed_sanitation,
        "people_gaining_basic_water": a.people_gaining_basic_water,
        "households_gaining_basic_sanitation": a.households_gaining_basic_sanitation,
        "households_gaining_safely_managed_sanitation": a.households_gaining_safely_managed_sanitation,
        "households_gaining_basic_water": a.households_gaining_basic_water,
    }


def indicator_values(r: Report) -> dict[str, int]:
    """The figures a target can be set on (``TARGET_INDICATORS``)."""
    kinds = {k["kind"]: k for k in r.construction["by_kind"]}
    return {
        "members": r.reach["members"], "households": r.reach["members"], "people_reached": r.access.people_reached,
        "basic_sanitation_households": r.access.basic_sanitation_households,
        "safely_managed_sanitation_households": r.access.safely_managed_sanitation_households,
        "basic_water_households": r.access.basic_water_households,
        **usaid_figures(r),
        "financings_disbursed": _sum(r.by_product, "disbursed"), "disbursed_value": _sum(r.by_product, "disbursed_value"),
        "septic_tanks_completed": kinds.get("septic_tank", {}).get("completed", 0),
        "water_connections_completed": kinds.get("water_connection", {}).get("completed", 0),
        "tanks_safely_emptied": r.desludging["tanks_delivered"],
    }


def by_product_rows(r: Report) -> list[dict[str, Any]]:
    quality = r.portfolio[r.as_of]["product"]
    out = []
    for p in r.by_product:
        pq: Portfolio = quality.get((p["product_id"], p["purpose"]), Portfolio())
        out.append({"product_name": r.product_names.get(p["product_id"]) or p["product_id"],
                    "product_id": p["product_id"], "purpose": p["purpose"], "applied": p["applied"],
                    "applied_value": p["applied_value"], "approved": p["approved"],
                    "approved_value": p["approved_value"], "disbursed": p["disbursed"],
                    "disbursed_value": p["disbursed_value"],
                    "average_size": mean_rupiah(p["disbursed_cost"], p["disbursed"]),
                    "outstanding_count": pq.financings, "outstanding": pq.gross_principal,
                    "par30_pct": pq.par(30)})
    return out


def by_fund_rows(r: Report) -> list[dict[str, Any]]:
    quality = r.portfolio[r.as_of]["fund"]
    lev = leverage({f["source_of_funds"]: f["disbursed_value"] for f in r.by_fund})
    out = []
    for f in r.by_fund:
        pq: Portfolio = quality.get(f["source_of_funds"], Portfolio())
        out.append({"source_of_funds": f["source_of_funds"], "financings": f["financings"],
                    "disbursed_value": f["disbursed_value"], "share_pct": lev[f["source_of_funds"]]["share_pct"],
                    "leverage": lev[f["source_of_funds"]]["leverage"], "outstanding": pq.gross_principal,
                    "par30_pct": pq.par(30)})
    return out


def contractor_rows(r: Report) -> list[dict[str, Any]]:
    return [{"certificate_number": c.get("certificate_number"), "contractor_id": c["contractor_id"],
             "certified": c["certified"], "jobs": c["jobs"],
             "completed": c["completed"], "first_inspections": c["first_inspections"],
             "first_time_passes": c["first_time_passes"],
             "first_time_pass_rate_pct": pct(c["first_time_passes"], c["first_inspections"]),
             "reinspections": c["reinspections"], "median_days_order_to_handover": median(c["days"])}
            for c in r.contractors]


# -- layouts --------------------------------------------------------------------------------------------------


def full(r: Report) -> dict[str, Any]:
    """The whole report (the API's ``/reports/cooperative`` and ``/reports/programme`` bodies)."""
    return {
        "as_of": r.as_of,
        "reach": {**reach_figures(r), "sessions_by_kind": r.sessions, "funnel": r.funnel},
        "access": access_figures(r),
        "usaid": usaid_figures(r),
        "financing": {**financing_figures(r), "by_product": by_product_rows(r), "by_fund": by_fund_rows(r),
                      "write_offs": r.write_offs},
        "construction": {**construction_figures(r), "by_kind": r.construction["by_kind"],
                         "by_contractor": contractor_rows(r)},
        "desludging": desludging_figures(r),
        "monthly": r.monthly,
        "targets": r.targets,
    }


def dashboard(r: Report) -> dict[str, Any]:
    """The figures of ``GET /reports/dashboard`` (docs: the dashboard data contract)."""
    reach, fin, con, des = reach_figures(r), financing_figures(r), construction_figures(r), desludging_figures(r)
    a = access_figures(r)["ladder"]
    return {
        "headline": {k: reach[k] for k in ("members", "households", "people_reached", "women_pct", "b40_pct",
                                           "urban_pct")}
        | {"safely_managed_sanitation_households": r.access.safely_managed_sanitation_households},
        "targets": [{"indicator": g["indicator"], "target": g["target"], "actual": g["actual"],
                     "progress_pct": g["progress_pct"], "due_on": g["due_on"].isoformat() if g["due_on"] else None,
                     "cooperatives": list(g.get("cooperatives", ()))}
                    for g in r.targets],
        "access_ladder": a,
        "monthly": r.monthly,
        "financing": {k: fin[k] for k in ("applied", "approved", "disbursed_count", "disbursed_value", "outstanding",
                                          "par1_pct", "par30_pct", "par90_pct", "repayment_rate_pct",
                                          "repayment_rate_not_applicable", "social_fund", "social_fund_imposed",
                                          "social_fund_received", "social_fund_outstanding")},
        "construction": {k: con[k] for k in ("by_status", "first_time_pass_rate_pct", "median_days_order_to_handover")},
        "desludging": {k: des[k] for k in ("due", "overdue", "emptied", "emptyings_in_window", "m3_removed",
                                           "m3_acknowledged", "sludge_flow_pct")}
        | {"last_emptied_on": des["last_emptied_on"].isoformat() if des["last_emptied_on"] else None},
    }


def ladder_rows(r: Report) -> list[dict[str, Any]]:
    a = r.access
    rows = []
    for service, rungs, base, now in (("water", WATER_RUNGS, a.water_baseline, a.water_now),
                                      ("sanitation", SANITATION_RUNGS, a.sanitation_baseline, a.sanitation_now)):
        for rung in reversed(rungs):
            rows.append({"service": service, "rung": rung, "baseline": base[rung], "now": now[rung]})
    return rows
