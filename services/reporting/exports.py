"""Every report table as rows with fixed columns, written as CSV or XLSX, and the donor indicator table
(result -> indicator -> period, with baseline, target and actual), IATI-like.

No table holds a member-level row: every row is a count, a sum or a ratio over a cooperative (or a
programme), or one contractor's quality figures. Contractors are named by their SNI certificate number
(a contractor's name and contacts stay in the sanitation service, never in events), cooperatives by name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import xlsxwriter

from services.reporting import export_labels as words
from services.reporting import reports as rp
from services.reporting.export_labels import Lang
from services.reporting.reports import Report

Rows = list[dict[str, Any]]


def _kv(figures: dict[str, Any], skip: Sequence[str] = ()) -> Rows:
    return [{"indicator": k, "value": v} for k, v in figures.items() if k not in skip and not isinstance(v, dict | list)]


def report_tables(r: Report) -> dict[str, Rows]:
    """Every table of a report, in a stable order (the XLSX's sheets, the CSV files)."""
    reach, fin = rp.reach_figures(r), rp.financing_figures(r)
    con, des = rp.construction_figures(r), rp.desludging_figures(r)
    p = r.quality
    return {
        "reach": _kv(reach),
        "sessions": [dict(s) for s in r.sessions],
        "funnel": [{"step": k, "members": v} for k, v in r.funnel.items()],
        "access_ladder": rp.ladder_rows(r),
        "rung_movements": rp.access_figures(r)["movements"],
        "usaid_counts": _kv(rp.usaid_figures(r)),
        "financing": _kv(fin),
        "financing_by_product": rp.by_product_rows(r),
        "financing_by_fund": rp.by_fund_rows(r),
        "portfolio_quality": [
            *({"measure": f"PAR{n}", "restructured": "excluded", "principal_at_risk": p.at_risk[n],
               "gross_principal": p.gross_principal, "pct": p.par(n)} for n in rp.PAR_DAYS),
            *({"measure": f"PAR{n}", "restructured": "included", "principal_at_risk": p.at_risk_with_restructured[n],
               "gross_principal": p.gross_principal, "pct": p.par(n, True)} for n in rp.PAR_DAYS),
            {"measure": "restructured portfolio", "restructured": "only", "principal_at_risk": p.restructured_principal,
             "gross_principal": p.gross_principal, "pct": p.restructured_pct},
        ],
        "write_offs": [dict(w) for w in r.write_offs],
        "construction": _kv(con) + [{"indicator": f"jobs {s}", "value": n} for s, n in con["by_status"].items()],
        "construction_by_kind": [dict(k) for k in r.construction["by_kind"]],
        "contractors": rp.contractor_rows(r),
        "desludging": _kv(des) + [{"indicator": f"visits {o}", "value": n} for o, n in des["visits_by_outcome"].items()],
        "sludge_flow": [{"stage": s, "tanks": des["sludge_flow_tanks"][s], "pct": des["sludge_flow_pct"][s]}
                        for s in ("contained", "emptied", "delivered", "treated")],
        "monthly": [dict(m) for m in r.monthly],
        "targets": [{**g, "cooperatives": "; ".join(g.get("cooperatives", ()))} for g in r.targets],
    }


def by_cooperative_rows(reports: dict[str, Report], names: dict[str, str] | None = None) -> Rows:
    """A programme's cooperatives side by side (aggregates of each, no member-level data), each named
    (``names``; its id when it has no name) beside its id."""
    rows = []
    for tenant, r in sorted(reports.items()):
        reach, fin, des = rp.reach_figures(r), rp.financing_figures(r), rp.desludging_figures(r)
        rows.append({
            "cooperative_name": (names or {}).get(tenant) or tenant, "cooperative": tenant,
            "members": reach["members"], "people_reached": reach["people_reached"],
            "women_pct": reach["women_pct"], "b40_pct": reach["b40_pct"],
            "safely_managed_sanitation_households": r.access.safely_managed_sanitation_households,
            **rp.usaid_figures(r),
            "disbursed_count": fin["disbursed_count"], "disbursed_value": fin["disbursed_value"],
            "outstanding": fin["outstanding"], "par30_pct": fin["par30_pct"],
            "repayment_rate_pct": fin["repayment_rate_pct"], "social_fund": fin["social_fund"],
            "social_fund_received": fin["social_fund_received"], "social_fund_outstanding": fin["social_fund_outstanding"],
            "tanks_safely_emptied": des["tanks_safely_emptied"], "m3_acknowledged": des["m3_acknowledged"],
        })
    return rows


# -- donor indicator table -----------------------------------------------------------------------------------

RESULTS: list[tuple[str, list[tuple[str, str]]]] = [
    ("1. Cooperative members reached by WASH promotion and finance", [
        ("members", "members"), ("people_reached", "people"), ("women_pct", "%"), ("b40_pct", "%"),
        ("sessions", "sessions")]),
    ("2. Households gain basic and safely managed sanitation", [
        ("people_gaining_basic_sanitation", "people"), ("people_gaining_safely_managed_sanitation", "people"),
        ("safely_managed_sanitation_households", "households"), ("septic_tanks_completed", "septic tanks")]),
    ("3. Households gain basic drinking water", [
        ("people_gaining_basic_water", "people"), ("basic_water_households", "households"),
        ("water_connections_completed", "connections")]),
    ("4. A sound WASH financing portfolio", [
        ("financings_disbursed", "financings"), ("disbursed_value", "IDR"), ("par30_pct", "%"),
        ("repayment_rate_pct", "%"), ("social_fund", "IDR"), ("social_fund_received", "IDR"),
        ("social_fund_outstanding", "IDR")]),
    ("5. Faecal sludge safely emptied and delivered for treatment", [
        ("tanks_safely_emptied", "septic tanks"), ("m3_acknowledged", "m3")]),
]


def indicator_values(r: Report) -> dict[str, Any]:
    reach, fin, des = rp.reach_figures(r), rp.financing_figures(r), rp.desludging_figures(r)
    return {**rp.indicator_values(r), "women_pct": reach["women_pct"], "b40_pct": reach["b40_pct"],
            "sessions": reach["sessions"], "par30_pct": fin["par30_pct"],
            "repayment_rate_pct": fin["repayment_rate_pct"], "social_fund": fin["social_fund"],
            "social_fund_received": fin["social_fund_received"], "social_fund_outstanding": fin["social_fund_outstanding"],
            "m3_acknowledged": des["m3_acknowledged"]}


def periods(as_of: date, years: int) -> list[tuple[str, date, date]]:
    """Calendar-year periods ending with the year of ``as_of`` (its period ends on ``as_of``)."""
    out = []
    for y in range(as_of.year - years + 1, as_of.year + 1):
        out.append((str(y), date(y, 1, 1), min(date(y, 12, 31), as_of)))
    return out


def indicator_table(baseline: Report, by_period: list[tuple[str, date, date, Report]],
                    targets: list[dict[str, Any]]) -> Rows:
    """result -> indicator -> period rows. Baseline: the value the day before the first period; actual: the
    value at the period's end; target: the cooperatives' target for the indicator in the period its due
    date falls in (the last period when it has none or it lies later)."""
    base = indicator_values(baseline)
    actual = [(name, start, end, indicator_values(r)) for name, start, end, r in by_period]
    by_indicator = {g["indicator"]: g for g in targets}
    rows = []
    for result, indicators in RESULTS:
        for key, unit in indicators:
            g = by_indicator.get(key)
            for i, (name, start, end, values) in enumerate(actual):
                target = None
                if g is not None:
                    due = g["due_on"]
                    last = i == len(actual) - 1
                    if (due is not None and start <= due <= end) or (last and (due is None or due > end)):
                        target = g["target"]
                rows.append({"result": result, "indicator": key, "unit": unit, "period": name,
                             "period_start": start, "period_end": end, "baseline": base[key],
                             "target": target, "actual": values[key]})
    return rows


# -- files ------------------------------------------------------------------------------------------------


def columns(rows: Rows) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _cell(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict | list):
        return str(v)
    return v


#: ``standard``: comma-separated UTF-8 without a byte-order mark, ``.`` decimals, field names and codes as
#: the API has them (for programs); ``excel_id``: what Excel in an Indonesian locale opens by a double
#: click: ``;``-separated, a UTF-8 byte-order mark (so names with accents survive), ``,`` decimals, and
#: headers and codes in words in the request's language (``export_labels``)
CSV_DIALECTS = ("standard", "excel_id")


def _csv_cell(v: Any, dialect: str) -> Any:
    if v is None:
        return ""
    if dialect == "excel_id" and isinstance(v, float):
        return repr(v).replace(".", ",")
    return _cell(v)


def to_csv(rows: Rows, dialect: str = "standard", lang: Lang = "id", table: str = "") -> bytes:
    buf = io.StringIO()
    cols = columns(rows)
    w = csv.writer(buf, lineterminator="\r\n", delimiter=";" if dialect == "excel_id" else ",")
    if dialect == "excel_id":
        w.writerow([words.header(c, lang) for c in cols])
        for r in rows:
            w.writerow([_csv_cell(words.cell(table, c, r.get(c), lang), dialect) for c in cols])
    else:
        w.writerow(cols)
        for r in rows:
            w.writerow([_csv_cell(r.get(c), dialect) for c in cols])
    text = buf.getvalue()
    return ("\ufeff" + text if dialect == "excel_id" else text).encode("utf-8")


def label(column: str, lang: Lang = "en") -> str:
    """A column's header in a spreadsheet: words in ``lang``, not a field name (``disbursed_value`` ->
    "Value disbursed (IDR)" / "Nilai dicairkan (Rp)")."""
    return words.header(column, lang)


#: number formats: Rupiah with the thousands separator, percentages (the figures are 0-100) with one decimal,
#: cubic metres with one to three decimals, counts whole, dates as dates (Excel shows the separators and the
#: date order of the reader's locale)
FORMATS = {"money": '"Rp" #,##0', "pct": '0.0"%"', "m3": "#,##0.0##", "int": "#,##0", "float": "#,##0.0##",
           "date": "yyyy-mm-dd"}


def to_xlsx(tables: dict[str, Rows], title: str = "", lang: Lang = "id") -> bytes:
    """One sheet per table (named in ``lang``, at most 31 characters), as an office opens it: a bold header
    row in words in ``lang`` that stays in view when scrolling (frozen), a filter on every column, codes in
    words, Rupiah, percentages and cubic metres formatted as such, counts with thousands separators, dates
    as dates, columns as wide as their content. The standard CSV keeps the field names and codes."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                     "strings_to_urls": False})
    header = book.add_format({"bold": True, "bg_color": "#E8EEF4", "border": 1, "text_wrap": True, "valign": "top"})
    fmt = {k: book.add_format({"num_format": v}) for k, v in FORMATS.items()}
    if title:
        book.set_properties({"title": title, "author": "washfin reporting"})
    for name, rows in tables.items():
        sheet = book.add_worksheet(words.sheet_name(name, lang))
        cols = columns(rows)
        if not cols:
            sheet.write_row(0, 0, [words.NO_ROWS[0 if lang == "id" else 1]], header)
            continue
        heads = [words.header(c, lang) for c in cols]
        sheet.write_row(0, 0, heads, header)
        widths = [max(10, min(40, len(h) + 2)) for h in heads]
        for i, r in enumerate(rows, start=1):
            for j, c in enumerate(cols):
                v = words.cell(name, c, r.get(c), lang)
                if v is None:
                    continue
                if isinstance(v, bool):
                    sheet.write_boolean(i, j, v)
                elif isinstance(v, int | float):
                    kind = words.number_kind(c, r) or ("int" if isinstance(v, int) else "float")
                    sheet.write_number(i, j, v, fmt[kind])
                elif isinstance(v, date):
                    sheet.write_datetime(i, j, datetime.combine(v, datetime.min.time()), fmt["date"])
                else:
                    sheet.write_string(i, j, str(_cell(v)))
                widths[j] = max(widths[j], min(60, len(str(_cell(v))) + 2))
        for j, w in enumerate(widths):
            sheet.set_column(j, j, w)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(rows), len(cols) - 1)
    book.close()
    return buf.getvalue()
