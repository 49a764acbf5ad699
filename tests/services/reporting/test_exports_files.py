"""The export files of a real report, read back with openpyxl and the csv module as an office reads them
(issue 15, item 5): the four services as separate processes loaded with the run command's demo data
(``test_dashboard``'s fixture), a manager's and a programme officer's key.

Every sheet of the full XLSX, in Bahasa Indonesia and in English: named in the language, a frozen header
row, a filter over every row and column, every header and every code in words (none left as a field name
or a snake_case code), every cell equal to the API's table (``GET /reports/tables/{table}``) with Rupiah,
percentages and dates formatted as such; cooperatives, contractors and products named. The language comes from
``lang`` or Accept-Language; the ``excel_id`` CSV has a byte-order mark, semicolons and the language's
words, the standard CSV field names and commas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import httpx
import openpyxl
import pytest

from services.reporting import export_labels as words
from tests.services.reporting.test_dashboard import (  # noqa: F401  (the module's fixture: the system with the demo)
    BAIK,
    BMI,
    MANAGER_KEY,
    PROGRAMME_KEY,
    reporting_url,
)

pytestmark = pytest.mark.timeout(600)

#: what the two languages call a few things, written out here (not read from the dictionary under test)
SPOT = {
    "id": {"sludge_flow": ("Alur lumpur tinja", ["Tahap", "Tangki", "%"], ["Ditampung", "Dikosongkan",
                                                                          "Diantar ke IPLT", "Diolah"]),
           "access_ladder": ("Tangga akses", ["Layanan", "Tingkat", "Awal", "Sekarang"], None),
           "funnel": ("Corong anggota", ["Tahap", "Anggota"], ["Menghadiri sesi", "Calon peminjam", "Mengajukan",
                                                                "Dicairkan"])},
    "en": {"sludge_flow": ("Sludge flow", ["Stage", "Tanks", "%"], ["Contained", "Emptied",
                                                                    "Delivered to the IPLT", "Treated"]),
           "access_ladder": ("Access ladder", ["Service", "Rung", "Baseline", "Now"], None),
           "funnel": ("Member funnel", ["Step", "Members"], ["Attended a session", "Lead", "Applied", "Disbursed"])},
}
FORMAT = {"money": '"Rp" #,##0', "pct": '0.0"%"'}


@pytest.fixture(scope="module")
def client(reporting_url: str) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=reporting_url, timeout=60) as c:
        yield c


def _get(client: httpx.Client, path: str, key: str, params: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    r = client.get(path, params=params, headers={"X-API-Key": key, **(headers or {})})
    assert r.status_code == 200, (path, params, r.text)
    return r


def _api_table(client: httpx.Client, key: str, table: str, as_of: str) -> tuple[list[str], list[dict[str, Any]]]:
    body = _get(client, f"/reports/tables/{table}", key, {"as_of": as_of, "limit": 200}).json()
    assert body["total"] <= 200
    return body["columns"], body["items"]


def _expected(value: Any) -> Any:
    """The JSON value as the XLSX cell holds it (dates as datetimes)."""
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            return value
    return value


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("who", ["manager", "programme"])
def test_every_sheet_in_words_frozen_filtered_formatted_and_equal_to_the_api(client: httpx.Client, lang: str,
                                                                             who: str) -> None:
    key = MANAGER_KEY if who == "manager" else PROGRAMME_KEY
    r = _get(client, "/reports/exports/report.xlsx", key, {"lang": lang})
    assert r.headers["content-language"] == lang
    as_of = r.headers["x-washfin-as-of"]
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    tables = _get(client, "/reports/tables", key).json()["tables"]
    assert book.sheetnames == [words.sheet_name(t, lang) for t in tables]  # type: ignore[arg-type]
    other = "en" if lang == "id" else "id"
    assert book.sheetnames != [words.sheet_name(t, other) for t in tables]  # type: ignore[arg-type]
    checked_money = checked_pct = checked_date = 0
    for table, ws in zip(tables, book.worksheets, strict=True):
        columns, items = _api_table(client, key, table, as_of)
        if not items:
            assert ws["A1"].value == ("(tidak ada baris)" if lang == "id" else "(no rows)")
            continue
        assert ws.freeze_panes == "A2", table
        last = openpyxl.utils.get_column_letter(len(columns))
        assert ws.auto_filter.ref == f"A1:{last}{len(items) + 1}", table
        heads = [c.value for c in ws[1]]
        assert all(words.has_header(c) for c in columns), [c for c in columns if not words.has_header(c)]
        assert heads == [words.header(c, lang) for c in columns], table  # type: ignore[arg-type]
        assert all(c.font.b for c in ws[1]), table
        assert not any("_" in h for h in heads), (table, heads)
        for i, item in enumerate(items, start=2):
            for j, column in enumerate(columns, start=1):
                cell, value = ws.cell(i, j), item.get(column)
                if value is None:
                    assert cell.value is None, (table, column, cell.value)
                elif isinstance(value, bool):
                    assert cell.value == ({True: "ya", False: "tidak"} if lang == "id"
                                          else {True: "yes", False: "no"})[value], (table, column)
                elif isinstance(value, int | float):
                    assert cell.value == value and cell.data_type == "n", (table, column, cell.value, value)
                    kind = words.number_kind(column, item)
                    if kind in FORMAT:
                        assert cell.number_format == FORMAT[kind], (table, column, cell.number_format)
                        checked_money += kind == "money"
                        checked_pct += kind == "pct"
                elif isinstance(_expected(value), datetime):
                    assert cell.value == _expected(value) and cell.is_date, (table, column, cell.value)
                    assert cell.number_format == "yyyy-mm-dd"
                    checked_date += 1
                elif column in words.CODE_COLUMNS or column in words.CODE_COLUMNS_BY_TABLE.get(table, ()):
                    # a code is shown in words: none is left as the API's code
                    translated = words.code(value, lang)  # type: ignore[arg-type]
                    assert translated is not None, f"{table}.{column}: no words for the code {value!r}"
                    assert cell.value == translated, (table, column, cell.value)
                    assert "_" not in cell.value, (table, column, cell.value)
                else:
                    assert cell.value == (words.code(value, lang) if column == "result" else value), (  # type: ignore[arg-type]
                        table, column, cell.value, value)
        if table in SPOT[lang]:
            name, head, first_column = SPOT[lang][table]
            assert ws.title == name and heads[:len(head)] == head, (table, ws.title, heads)
            if first_column:
                assert [row[0].value for row in ws.iter_rows(min_row=2)] == first_column
    assert checked_money and checked_pct and checked_date  # the formats were seen, not only assumed
    # names where a name exists: contractors by their SNI certificate, cooperatives by name
    contractors = book[words.sheet_name("contractors", lang)]  # type: ignore[arg-type]
    heads = [c.value for c in contractors[1]]
    certificate = heads.index(words.header("certificate_number", lang))  # type: ignore[arg-type]
    certified = heads.index(words.header("certified", lang))  # type: ignore[arg-type]
    rows = list(contractors.iter_rows(min_row=2, values_only=True))
    assert rows and all(r[certificate] for r in rows if r[certified] in ("ya", "yes")), rows
    # products by the names the cooperatives gave them in loans, beside their codes
    by_product = book[words.sheet_name("financing_by_product", lang)]  # type: ignore[arg-type]
    assert [c.value for c in by_product[1]][:2] == (["Produk", "Kode produk"] if lang == "id"
                                                    else ["Product", "Product code"])
    products = [r[:2] for r in by_product.iter_rows(min_row=2, values_only=True)]
    assert products and all(name and name != code for name, code in products), products
    assert ("Mikro Tata Sanitasi", "mikro-tata-sanitasi") in products, products
    if who == "programme":
        by = book[words.sheet_name("by_cooperative", lang)]  # type: ignore[arg-type]
        names = [r[0] for r in by.iter_rows(min_row=2, values_only=True)]
        assert sorted(names) == sorted(["Kopsyah BMI (Tangerang)", _name(client, BAIK)]), names
        assert [c.value for c in by[1]][:2] == (["Koperasi", "ID koperasi"] if lang == "id"
                                                else ["Cooperative", "Cooperative id"])


def _name(client: httpx.Client, tenant: str) -> str:
    body = _get(client, "/reports/dashboard", PROGRAMME_KEY).json()
    return next(c["scope"]["name"] for c in body["by_cooperative"] if c["scope"]["id"] == tenant)


@pytest.mark.parametrize(("params", "accept", "lang"), [
    ({}, None, "id"), ({}, "en-GB,en;q=0.9", "en"), ({}, "en;q=0.4, id;q=0.9", "id"), ({"lang": "en"}, "id", "en"),
    ({"lang": "id"}, "en", "id"),
], ids=["default", "accept-en", "accept-ranked", "query-en-wins", "query-id-wins"])
def test_the_language_comes_from_lang_or_accept_language(client: httpx.Client, params: dict[str, str],
                                                         accept: str | None, lang: str) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    r = _get(client, "/reports/exports/tables/sludge_flow", MANAGER_KEY, {"format": "xlsx", **params}, headers)
    assert r.headers["content-language"] == lang
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert ws.title == SPOT[lang]["sludge_flow"][0] and [c.value for c in ws[1]] == SPOT[lang]["sludge_flow"][1]


def test_an_unknown_language_is_refused_with_the_field(client: httpx.Client) -> None:
    r = client.get("/reports/exports/report.xlsx", params={"lang": "fr"}, headers={"X-API-Key": MANAGER_KEY})
    assert r.status_code == 422, r.text
    assert "lang" in r.text


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_excel_id_csv_has_a_bom_semicolons_and_the_languages_words(client: httpx.Client, lang: str) -> None:
    r = _get(client, "/reports/exports/tables/sludge_flow", MANAGER_KEY, {"dialect": "excel_id", "lang": lang})
    assert r.content.startswith(b"\xef\xbb\xbf") and r.headers["content-language"] == lang
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == SPOT[lang]["sludge_flow"][1]
    assert [row[0] for row in rows[1:]] == SPOT[lang]["sludge_flow"][2]
    api = {i["stage"]: i for i in _api_table(client, MANAGER_KEY, "sludge_flow", r.headers["x-washfin-as-of"])[1]}
    def shown(v: Any) -> str:  # ',' decimals
        return repr(v).replace(".", ",") if isinstance(v, float) else str(v)

    for row, stage in zip(rows[1:], ("contained", "emptied", "delivered", "treated"), strict=True):
        assert row[1:] == [shown(api[stage]["tanks"]), shown(api[stage]["pct"])], (row, api[stage])
    # the donor indicator table in the same dialect: the results and units in words
    r = _get(client, "/reports/exports/indicators.csv", MANAGER_KEY, {"dialect": "excel_id", "lang": lang})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == (["Hasil", "Indikator", "Satuan"] if lang == "id" else ["Result", "Indicator", "Unit"])
    assert rows[1][0] == ("1. Anggota koperasi terjangkau promosi dan pembiayaan WASH" if lang == "id"
                          else "1. Cooperative members reached by WASH promotion and finance")


def test_the_standard_csv_keeps_field_names_codes_and_commas(client: httpx.Client) -> None:
    r = _get(client, "/reports/exports/tables/sludge_flow", MANAGER_KEY, {"lang": "id"})
    assert not r.content.startswith(b"\xef\xbb\xbf") and "content-language" not in r.headers
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["stage", "tanks", "pct"]
    assert [row[0] for row in rows[1:]] == ["contained", "emptied", "delivered", "treated"]
