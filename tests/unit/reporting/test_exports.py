"""The export files as offices use them (issue 15, item 5): an Indonesian Excel opens the ``excel_id`` CSV
by a double click (``;``, a UTF-8 byte-order mark, ``,`` decimals); the XLSX has headers in words that stay
in view, a filter, thousands separators, one-decimal percentages and real dates."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date

from services.reporting.exports import label, to_csv, to_xlsx

ROWS = [{"cooperative": "Koperasi Syariah Bina Mandiri Ibu", "disbursed_value": 12_500_000, "par30_pct": 4.25,
         "period_end": date(2025, 12, 31), "note": None},
        {"cooperative": "Koperasi Baik", "disbursed_value": 0, "par30_pct": 0.5, "period_end": date(2026, 1, 31),
         "note": "Désa Sukamaju"}]


def test_the_standard_csv_is_unchanged_for_programs() -> None:
    data = to_csv(ROWS)
    assert not data.startswith(b"\xef\xbb\xbf")
    text = data.decode()
    assert text.splitlines()[0] == "cooperative,disbursed_value,par30_pct,period_end,note"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"cooperative": "Koperasi Syariah Bina Mandiri Ibu", "disbursed_value": "12500000",
                       "par30_pct": "4.25", "period_end": "2025-12-31", "note": ""}


def test_the_excel_id_csv_has_a_bom_semicolons_and_decimal_commas() -> None:
    data = to_csv(ROWS, "excel_id")
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0] == "cooperative;disbursed_value;par30_pct;period_end;note"
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert [r["par30_pct"] for r in rows] == ["4,25", "0,5"]
    assert [r["disbursed_value"] for r in rows] == ["12500000", "0"]
    assert rows[1]["note"] == "Désa Sukamaju"


def test_labels_are_words() -> None:
    assert label("disbursed_value") == "Disbursed value"
    assert label("par30_pct") == "PAR30 %"
    assert label("b40_pct") == "B40 %"
    assert label("tanks_safely_emptied") == "Tanks safely emptied"


def _sheet(data: bytes) -> tuple[str, str, str]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return (z.read("xl/worksheets/sheet1.xml").decode(), z.read("xl/styles.xml").decode(),
            z.read("xl/sharedStrings.xml").decode())


def test_the_xlsx_freezes_the_header_filters_and_formats_numbers_and_dates() -> None:
    sheet, styles, strings = _sheet(to_xlsx({"by_cooperative": ROWS}, "test"))
    assert re.search(r'<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>', sheet), sheet
    assert '<autoFilter ref="A1:E3"/>' in sheet
    assert "Disbursed value" in strings and "PAR30 %" in strings and "disbursed_value" not in strings
    assert 'formatCode="#,##0"' in styles and 'formatCode="#,##0.0"' in styles and 'formatCode="yyyy-mm-dd"' in styles
    # numbers are numbers (no t="s" on the amount cells), dates are serial numbers: 2025-12-31 is 46022
    assert re.search(r'<c r="B2" s="\d+"><v>12500000</v></c>', sheet), sheet
    assert re.search(r'<c r="D2" s="\d+"><v>46022</v></c>', sheet), sheet
    # an empty cell stays empty
    assert 'r="E2"' not in sheet


def test_an_empty_table_still_makes_a_sheet() -> None:
    sheet, _, strings = _sheet(to_xlsx({"write_offs": []}))
    assert "(no rows)" in strings and "autoFilter" not in sheet
