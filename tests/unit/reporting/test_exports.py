"""The export files as offices use them (issue 15, item 5), read back with openpyxl as a spreadsheet program
reads them: headers and codes in words in the request's language (Bahasa Indonesia or English), a frozen
header row, a filter, Rupiah, percentages and dates formatted as such; an Indonesian Excel opens the
``excel_id`` CSV by a double click (``;``, a UTF-8 byte-order mark, ``,`` decimals); the standard CSV keeps
field names and codes for programs."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import openpyxl
import pytest

from services.reporting.export_labels import pick_language
from services.reporting.exports import label, to_csv, to_xlsx

ROWS = [{"cooperative_name": "Koperasi Syariah Bina Mandiri Ibu", "disbursed_value": 12_500_000, "par30_pct": 4.25,
         "period_end": date(2025, 12, 31), "service": "sanitation", "certified": True, "note": None},
        {"cooperative_name": "Koperasi Baik", "disbursed_value": 0, "par30_pct": 0.5, "period_end": date(2026, 1, 31),
         "service": "water", "certified": False, "note": "Désa Sukamaju"}]
KV = [{"indicator": "outstanding", "value": 17_083_349}, {"indicator": "par30_pct", "value": 39.0},
      {"indicator": "members", "value": 8}, {"indicator": "jobs completed", "value": 10}]


def test_the_standard_csv_keeps_field_names_and_codes_for_programs() -> None:
    data = to_csv(ROWS, lang="en")
    assert not data.startswith(b"\xef\xbb\xbf")
    text = data.decode()
    assert text.splitlines()[0] == "cooperative_name,disbursed_value,par30_pct,period_end,service,certified,note"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"cooperative_name": "Koperasi Syariah Bina Mandiri Ibu", "disbursed_value": "12500000",
                       "par30_pct": "4.25", "period_end": "2025-12-31", "service": "sanitation", "certified": "True",
                       "note": ""}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_excel_id_csv_has_a_bom_semicolons_decimal_commas_and_words(lang: str) -> None:
    data = to_csv(ROWS, "excel_id", lang)  # type: ignore[arg-type]
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    header = {"id": "Koperasi;Nilai dicairkan (Rp);PAR30 %;Akhir periode;Layanan;Bersertifikat;note",
              "en": "Cooperative;Value disbursed (IDR);PAR30 %;Period end;Service;Certified;note"}[lang]
    assert text.splitlines()[0] == header
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))[1:]
    assert [r[2] for r in rows] == ["4,25", "0,5"]
    assert [r[1] for r in rows] == ["12500000", "0"]
    assert [r[4] for r in rows] == (["Sanitasi", "Air minum"] if lang == "id" else ["Sanitation", "Drinking water"])
    assert [r[5] for r in rows] == (["ya", "tidak"] if lang == "id" else ["yes", "no"])
    assert rows[1][6] == "Désa Sukamaju"


def test_labels_are_words_in_both_languages() -> None:
    assert label("disbursed_value", "en") == "Value disbursed (IDR)"
    assert label("disbursed_value", "id") == "Nilai dicairkan (Rp)"
    assert label("par30_pct", "id") == "PAR30 %"
    assert label("tanks_safely_emptied", "id") == "Tangki dikosongkan dan lumpurnya diterima IPLT"


def _book(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def test_the_xlsx_freezes_the_header_filters_and_formats_rupiah_percent_and_dates() -> None:
    book = _book(to_xlsx({"by_cooperative": ROWS, "financing": KV}, "test", "id"))
    assert book.sheetnames == ["Per koperasi", "Pembiayaan"]
    ws = book["Per koperasi"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:G3"
    assert [c.value for c in ws[1]] == ["Koperasi", "Nilai dicairkan (Rp)", "PAR30 %", "Akhir periode", "Layanan",
                                        "Bersertifikat", "note"]
    assert all(c.font.b for c in ws[1])
    amount, share, day = ws["B2"], ws["C2"], ws["D2"]
    assert (amount.value, amount.number_format) == (12_500_000, '"Rp" #,##0')
    assert (share.value, share.number_format) == (4.25, '0.0"%"')
    assert (day.value, day.number_format) == (datetime(2025, 12, 31), "yyyy-mm-dd") and day.is_date
    assert (ws["E2"].value, ws["F2"].value, ws["F3"].value) == ("Sanitasi", "ya", "tidak")
    assert ws["G2"].value is None  # an empty cell stays empty
    # a key-value table: each value formatted by its indicator, the indicators in words
    kv = book["Pembiayaan"]
    assert [c.value for c in kv[1]] == ["Indikator", "Nilai"]
    assert [(r[0].value, r[1].value, r[1].number_format) for r in kv.iter_rows(min_row=2)] == [
        ("Sisa pokok (Rp)", 17_083_349, '"Rp" #,##0'), ("PAR30 %", 39.0, '0.0"%"'), ("Anggota", 8, "#,##0"),
        ("Pekerjaan: Diserahterimakan", 10, "#,##0")]


def test_the_xlsx_in_english() -> None:
    book = _book(to_xlsx({"by_cooperative": ROWS, "financing": KV}, "test", "en"))
    assert book.sheetnames == ["By cooperative", "Financing"]
    assert [c.value for c in book["By cooperative"][1]][:3] == ["Cooperative", "Value disbursed (IDR)", "PAR30 %"]
    assert [r[0].value for r in book["Financing"].iter_rows(min_row=2)] == [
        "Outstanding principal (IDR)", "PAR30 %", "Members", "Jobs: handed over"]


def test_an_empty_table_still_makes_a_sheet() -> None:
    book = _book(to_xlsx({"write_offs": []}, lang="id"))
    ws = book["Hapus buku"]
    assert ws["A1"].value == "(tidak ada baris)" and ws.auto_filter.ref is None


@pytest.mark.parametrize(("query", "header", "lang"), [
    (None, None, "id"), (None, "en-GB,en;q=0.9", "en"), (None, "fr-FR, en;q=0.5, id;q=0.8", "id"),
    (None, "de, fr", "id"), ("en", "id", "en"), ("id", "en-US", "id"), (None, "en;q=0, id;q=0.1", "id"),
    (None, "en;q=abc", "id"),
], ids=["default", "english-header", "ranked-by-q", "neither", "query-wins-en", "query-wins-id", "q-zero",
        "bad-q"])
def test_the_request_language(query: str | None, header: str | None, lang: str) -> None:
    assert pick_language(query, header) == lang
