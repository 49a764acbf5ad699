"""The words of the exports meant for people (the XLSX, and the ``excel_id`` CSV): every column header, and
every code a table holds as a value (indicators, ladder rungs, funnel steps, job kinds and statuses, visit
outcomes, sludge-flow stages), in Bahasa Indonesia and in English. The standard CSV, for programs, keeps
the field names and the codes.

One entry per term: ``(Indonesian, English)``. ``tests/services/reporting/test_exports_xlsx.py`` reads every
table of a real report's export in both languages and fails on a header or a code without words here.
"""

from __future__ import annotations

from typing import Any, Literal

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")

#: column headers (and the codes of figures: a key-value table's ``indicator`` column holds these too)
TERMS: dict[str, tuple[str, str]] = {
    # key-value tables and the donor indicator table
    "indicator": ("Indikator", "Indicator"),
    "value": ("Nilai", "Value"),
    "result": ("Hasil", "Result"),
    "unit": ("Satuan", "Unit"),
    "period": ("Periode", "Period"),
    "period_start": ("Awal periode", "Period start"),
    "period_end": ("Akhir periode", "Period end"),
    "baseline": ("Awal", "Baseline"),
    "target": ("Target", "Target"),
    "actual": ("Capaian", "Actual"),
    "progress_pct": ("Kemajuan %", "Progress %"),
    "due_on": ("Tenggat", "Due on"),
    "cooperatives": ("Koperasi yang dicakup", "Cooperatives covered"),
    # reach
    "members": ("Anggota", "Members"),
    "households": ("Rumah tangga", "Households"),
    "people_reached": ("Orang terjangkau", "People reached"),
    "people_in_member_households": ("Orang di rumah tangga anggota", "People in member households"),
    "women": ("Perempuan", "Women"),
    "women_pct": ("Perempuan %", "Women %"),
    "b40": ("B40 (40% terbawah)", "B40 (bottom 40%)"),
    "b40_known": ("B40 diketahui", "B40 known"),
    "b40_pct": ("B40 %", "B40 %"),
    "urban": ("Perkotaan", "Urban"),
    "area_known": ("Wilayah diketahui", "Area known"),
    "urban_pct": ("Perkotaan %", "Urban %"),
    "households_improved": ("Rumah tangga yang aksesnya membaik", "Households whose access improved"),
    "sessions": ("Sesi", "Sessions"),
    "session_attendances": ("Kehadiran sesi", "Session attendances"),
    "member_attendances": ("Kehadiran anggota", "Member attendances"),
    "other_attendees": ("Peserta bukan anggota", "Other attendees"),
    "kind": ("Jenis", "Kind"),
    # funnel
    "step": ("Tahap", "Step"),
    "attended": ("Menghadiri sesi", "Attended a session"),
    "lead": ("Calon peminjam", "Lead"),
    "applied": ("Mengajukan", "Applied"),
    "disbursed": ("Dicairkan", "Disbursed"),
    # access ladder
    "service": ("Layanan", "Service"),
    "rung": ("Tingkat", "Rung"),
    "now": ("Sekarang", "Now"),
    "safely_managed_sanitation_households": ("RT sanitasi aman", "Safely managed sanitation households"),
    "basic_sanitation_households": ("RT sanitasi minimal dasar", "Basic sanitation households"),
    "basic_water_households": ("RT air minum minimal dasar", "Basic water households"),
    "people_gaining_basic_sanitation": ("Orang yang mendapat sanitasi dasar", "People gaining basic sanitation"),
    "people_gaining_safely_managed_sanitation": ("Orang yang mendapat sanitasi aman",
                                                 "People gaining safely managed sanitation"),
    "people_gaining_basic_water": ("Orang yang mendapat air minum dasar", "People gaining basic water"),
    "households_gaining_basic_sanitation": ("RT yang mendapat sanitasi dasar", "Households gaining basic sanitation"),
    "households_gaining_safely_managed_sanitation": ("RT yang mendapat sanitasi aman",
                                                     "Households gaining safely managed sanitation"),
    "households_gaining_basic_water": ("RT yang mendapat air minum dasar", "Households gaining basic water"),
    # financing
    "applied_value": ("Nilai pengajuan (Rp)", "Value applied (IDR)"),
    "approved": ("Disetujui", "Approved"),
    "approved_value": ("Nilai disetujui (Rp)", "Value approved (IDR)"),
    "rejected": ("Ditolak", "Rejected"),
    "signed": ("Akad ditandatangani", "Contracts signed"),
    "signed_value": ("Nilai akad (Rp)", "Value signed (IDR)"),
    "disbursed_count": ("Pembiayaan dicairkan", "Financings disbursed"),
    "disbursed_value": ("Nilai dicairkan (Rp)", "Value disbursed (IDR)"),
    "average_size": ("Rata-rata pembiayaan (Rp)", "Average financing (IDR)"),
    "outstanding_count": ("Pembiayaan berjalan", "Financings outstanding"),
    "outstanding": ("Sisa pokok (Rp)", "Outstanding principal (IDR)"),
    "outstanding_owed": ("Sisa kewajiban (Rp)", "Outstanding owed (IDR)"),
    "par1_pct": ("PAR1 %", "PAR1 %"), "par7_pct": ("PAR7 %", "PAR7 %"), "par30_pct": ("PAR30 %", "PAR30 %"),
    "par60_pct": ("PAR60 %", "PAR60 %"), "par90_pct": ("PAR90 %", "PAR90 %"),
    "par1_with_restructured_pct": ("PAR1 termasuk restrukturisasi %", "PAR1 with restructured %"),
    "par7_with_restructured_pct": ("PAR7 termasuk restrukturisasi %", "PAR7 with restructured %"),
    "par30_with_restructured_pct": ("PAR30 termasuk restrukturisasi %", "PAR30 with restructured %"),
    "par60_with_restructured_pct": ("PAR60 termasuk restrukturisasi %", "PAR60 with restructured %"),
    "par90_with_restructured_pct": ("PAR90 termasuk restrukturisasi %", "PAR90 with restructured %"),
    "par1_principal": ("Pokok berisiko PAR1 (Rp)", "PAR1 principal (IDR)"),
    "par7_principal": ("Pokok berisiko PAR7 (Rp)", "PAR7 principal (IDR)"),
    "par30_principal": ("Pokok berisiko PAR30 (Rp)", "PAR30 principal (IDR)"),
    "par60_principal": ("Pokok berisiko PAR60 (Rp)", "PAR60 principal (IDR)"),
    "par90_principal": ("Pokok berisiko PAR90 (Rp)", "PAR90 principal (IDR)"),
    "restructured_count": ("Pembiayaan direstrukturisasi", "Financings restructured"),
    "restructured_principal": ("Pokok direstrukturisasi (Rp)", "Restructured principal (IDR)"),
    "restructured_pct": ("Direstrukturisasi %", "Restructured %"),
    "repayment_rate_pct": ("Tingkat pengembalian %", "Repayment rate %"),
    "repayment_rate_not_applicable": ("Tingkat pengembalian tidak berlaku", "Repayment rate not applicable"),
    "paid_on_time": ("Dibayar tepat waktu (Rp)", "Paid on time (IDR)"),
    "fallen_due": ("Jatuh tempo (Rp)", "Fallen due (IDR)"),
    "repayment_period_start": ("Awal periode pengembalian", "Repayment period start"),
    "repayment_period_end": ("Akhir periode pengembalian", "Repayment period end"),
    "repaid": ("Diangsur (Rp)", "Repaid (IDR)"),
    "written_off_count": ("Pembiayaan dihapusbukukan", "Financings written off"),
    "written_off_principal": ("Pokok dihapusbukukan (Rp)", "Principal written off (IDR)"),
    "written_off_margin": ("Margin dihapusbukukan (Rp)", "Margin written off (IDR)"),
    "recovered": ("Dipulihkan (Rp)", "Recovered (IDR)"),
    "late_charges": ("Denda (ta'zir) dicatat", "Late charges recorded"),
    "social_fund": ("Dana sosial dikenakan (Rp)", "Social fund imposed (IDR)"),
    "social_fund_imposed": ("Dana sosial dikenakan (Rp)", "Social fund imposed (IDR)"),
    "social_fund_received": ("Dana sosial diterima (Rp)", "Social fund received (IDR)"),
    "social_fund_outstanding": ("Dana sosial belum dibayar (Rp)", "Social fund outstanding (IDR)"),
    "financings_disbursed": ("Pembiayaan dicairkan", "Financings disbursed"),
    "product_name": ("Produk", "Product"),
    "product_id": ("Kode produk", "Product code"),
    "purpose": ("Tujuan", "Purpose"),
    "source_of_funds": ("Sumber dana", "Source of funds"),
    "financings": ("Pembiayaan", "Financings"),
    "share_pct": ("Porsi %", "Share %"),
    "leverage": ("Leverage", "Leverage"),
    "measure": ("Ukuran", "Measure"),
    "restructured": ("Restrukturisasi", "Restructured"),
    "principal_at_risk": ("Pokok berisiko (Rp)", "Principal at risk (IDR)"),
    "gross_principal": ("Pokok bruto (Rp)", "Gross principal (IDR)"),
    "pct": ("%", "%"),
    "reason": ("Alasan", "Reason"),
    "principal": ("Pokok (Rp)", "Principal (IDR)"),
    "margin": ("Margin (Rp)", "Margin (IDR)"),
    # construction
    "first_inspections": ("Inspeksi pertama", "First inspections"),
    "first_time_passes": ("Lulus pada inspeksi pertama", "First-time passes"),
    "first_time_pass_rate_pct": ("Lulus SNI pada inspeksi pertama %", "SNI first-time pass rate %"),
    "reinspections": ("Inspeksi ulang", "Re-inspections"),
    "median_days_order_to_handover": ("Median hari pesanan ke serah terima", "Median days order to handover"),
    "completed": ("Diserahterimakan", "Handed over"),
    "ordered": ("Dipesan", "Ordered"),
    "septic_tanks_completed": ("Tangki septik diserahterimakan", "Septic tanks handed over"),
    "water_connections_completed": ("Sambungan air diserahterimakan", "Water connections handed over"),
    "certificate_number": ("Kontraktor (nomor sertifikat SNI)", "Contractor (SNI certificate number)"),
    "contractor_id": ("ID kontraktor", "Contractor id"),
    "certified": ("Bersertifikat", "Certified"),
    "jobs": ("Pekerjaan", "Jobs"),
    # desludging
    "tanks": ("Tangki", "Tanks"),
    "due": ("Jatuh tempo bulan ini", "Due this month"),
    "overdue": ("Terlambat", "Overdue"),
    "emptied": ("Tangki dikosongkan", "Tanks emptied"),
    "emptyings": ("Pengosongan", "Emptyings"),
    "emptyings_in_window": ("Pengosongan dalam 12 bulan terakhir", "Emptyings in the last 12 months"),
    "last_emptied_on": ("Pengosongan terakhir", "Last emptied on"),
    "tanks_safely_emptied": ("Tangki dikosongkan dan lumpurnya diterima IPLT",
                             "Tanks emptied and delivered to the IPLT"),
    "iplt_receipts": ("Tanda terima IPLT", "IPLT receipts"),
    "m3_removed": ("Lumpur disedot (m³)", "Sludge removed (m³)"),
    "m3_acknowledged": ("Lumpur diterima IPLT (m³)", "Sludge acknowledged at the IPLT (m³)"),
    "m3_removed_in_acknowledged_loads": ("Lumpur disedot dalam muatan yang diterima (m³)",
                                         "Sludge removed in acknowledged loads (m³)"),
    "stage": ("Tahap", "Stage"),
    # monthly
    "month": ("Bulan", "Month"),
    "desludging_due": ("Penyedotan jatuh tempo", "Desludging due"),
    "desludging_done": ("Penyedotan selesai", "Desludging done"),
    # by cooperative
    "cooperative_name": ("Koperasi", "Cooperative"),
    "cooperative": ("ID koperasi", "Cooperative id"),
}

#: codes that appear as values (in the columns of ``CODE_COLUMNS``); a figure's code is looked up in TERMS
CODES: dict[str, tuple[str, str]] = {
    # ladder rungs and services
    "water": ("Air minum", "Drinking water"), "sanitation": ("Sanitasi", "Sanitation"),
    "safely_managed": ("Dikelola aman", "Safely managed"), "basic": ("Dasar", "Basic"),
    "limited": ("Terbatas", "Limited"), "unimproved": ("Tidak layak", "Unimproved"),
    "surface_water": ("Air permukaan", "Surface water"), "open_defecation": ("BAB sembarangan", "Open defecation"),
    # sludge flow
    "contained": ("Ditampung", "Contained"), "emptied": ("Dikosongkan", "Emptied"), "delivered": ("Diantar ke IPLT", "Delivered to the IPLT"),
    "treated": ("Diolah", "Treated"),
    # job kinds and statuses
    "septic_tank": ("Tangki septik", "Septic tank"), "toilet_upgrade": ("Perbaikan jamban", "Toilet upgrade"),
    "water_connection": ("Sambungan air", "Water connection"), "desludging": ("Penyedotan lumpur tinja", "Desludging"),
    "assigned": ("Kontraktor ditunjuk", "Contractor assigned"), "started": ("Dikerjakan", "Started"),
    "inspection_failed": ("Gagal inspeksi", "Failed inspection"),
    "inspection_passed": ("Lulus inspeksi", "Passed inspection"),
    # visit outcomes
    "hose_cannot_reach": ("Selang tidak menjangkau", "Hose cannot reach"),
    "household_absent": ("Penghuni tidak ada", "Household absent"), "cancelled": ("Dibatalkan", "Cancelled"),
    # portfolio quality
    "excluded": ("Tidak termasuk", "Excluded"), "included": ("Termasuk", "Included"), "only": ("Hanya", "Only"),
    "restructured portfolio": ("Portofolio direstrukturisasi", "Restructured portfolio"),
    **{f"PAR{n}": (f"PAR{n}", f"PAR{n}") for n in (1, 7, 30, 60, 90)},
    # units of the donor indicator table
    "people": ("orang", "people"), "septic tanks": ("tangki septik", "septic tanks"),
    "connections": ("sambungan", "connections"), "IDR": ("Rp", "IDR"), "m3": ("m³", "m³"), "%": ("%", "%"),
    # promotion sessions
    "promotion": ("Promosi", "Promotion"), "triggering": ("Pemicuan", "Triggering"),
    # write-off reasons
    "deceased": ("Meninggal dunia", "Deceased"), "disaster": ("Bencana", "Disaster"),
    "uncollectable": ("Tidak tertagih", "Uncollectable"), "fraud": ("Penipuan", "Fraud"), "other": ("Lainnya", "Other"),
}

#: the columns whose values are codes (translated when a word exists), not names or free text
CODE_COLUMNS = frozenset({"indicator", "step", "service", "rung", "stage", "measure", "restructured", "unit", "kind",
                          "purpose", "outcome", "status", "reason"})
#: rung_movements' baseline and now are rungs (access_ladder's are counts: numbers are never translated)
CODE_COLUMNS_BY_TABLE = {"rung_movements": frozenset({"baseline", "now"})}

#: key-value tables compose codes: "jobs <status>", "visits <outcome>"
PREFIXES = {"jobs": ("Pekerjaan", "Jobs"), "visits": ("Kunjungan", "Visits")}

#: the donor indicator table's results (its first column), in both languages
RESULTS = {
    "1. Cooperative members reached by WASH promotion and finance":
        "1. Anggota koperasi terjangkau promosi dan pembiayaan WASH",
    "2. Households gain basic and safely managed sanitation": "2. Rumah tangga mendapat sanitasi dasar dan aman",
    "3. Households gain basic drinking water": "3. Rumah tangga mendapat air minum dasar",
    "4. A sound WASH financing portfolio": "4. Portofolio pembiayaan WASH yang sehat",
    "5. Faecal sludge safely emptied and delivered for treatment":
        "5. Lumpur tinja dikosongkan dengan aman dan diantar untuk diolah",
}

#: sheet names (at most 31 characters)
SHEETS: dict[str, tuple[str, str]] = {
    "reach": ("Jangkauan", "Reach"), "sessions": ("Sesi promosi", "Promotion sessions"),
    "funnel": ("Corong anggota", "Member funnel"), "access_ladder": ("Tangga akses", "Access ladder"),
    "rung_movements": ("Perpindahan tingkat", "Rung movements"), "usaid_counts": ("Hitungan USAID", "USAID counts"),
    "financing": ("Pembiayaan", "Financing"), "financing_by_product": ("Pembiayaan per produk", "Financing by product"),
    "financing_by_fund": ("Pembiayaan per sumber dana", "Financing by fund"),
    "portfolio_quality": ("Kualitas portofolio", "Portfolio quality"), "write_offs": ("Hapus buku", "Write-offs"),
    "construction": ("Konstruksi", "Construction"), "construction_by_kind": ("Konstruksi per jenis", "Construction by kind"),
    "contractors": ("Kontraktor", "Contractors"), "desludging": ("Penyedotan", "Desludging"),
    "sludge_flow": ("Alur lumpur tinja", "Sludge flow"), "monthly": ("Bulanan", "Monthly"),
    "targets": ("Target", "Targets"), "indicators": ("Indikator donor", "Donor indicators"),
    "by_cooperative": ("Per koperasi", "By cooperative"),
}

NO_ROWS = ("(tidak ada baris)", "(no rows)")
YES_NO = (("ya", "tidak"), ("yes", "no"))


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "id" else pair[1]


def header(column: str, lang: Lang) -> str:
    """A column's header in words. A column without words here is a gap (the export test fails on it):
    it is shown as its field name so nothing is lost."""
    pair = TERMS.get(column)
    return _pick(pair, lang) if pair else column


def has_header(column: str) -> bool:
    return column in TERMS


def sheet_name(table: str, lang: Lang) -> str:
    pair = SHEETS.get(table)
    return (_pick(pair, lang) if pair else table)[:31]


def code(value: str, lang: Lang) -> str | None:
    """The words for a code shown as a value, or None when it has none (then the value is shown as is)."""
    if value in CODES:
        return _pick(CODES[value], lang)
    if value in TERMS:
        return _pick(TERMS[value], lang)
    if value in RESULTS:
        return RESULTS[value] if lang == "id" else value
    first, _, rest = value.partition(" ")
    if first in PREFIXES and rest:
        word = code(rest, lang)
        return f"{_pick(PREFIXES[first], lang)}: {word.lower() if lang == 'en' else word}" if word else None
    return None


def cell(table: str, column: str, value: Any, lang: Lang) -> Any:
    """A value as a person reads it: codes in words, booleans as yes / no; names, numbers and dates as they are."""
    if isinstance(value, bool):
        return YES_NO[0 if lang == "id" else 1][0 if value else 1]
    if isinstance(value, str) and (column in CODE_COLUMNS or column in CODE_COLUMNS_BY_TABLE.get(table, ())
                                   or column == "result"):
        words = code(value, lang)
        return value if words is None else words
    return value


def pick_language(query: str | None, accept_language: str | None) -> Lang:
    """The request's language: ``lang`` when given, else the first of Indonesian or English in
    Accept-Language (by its q weights), else Indonesian (the platform's language, as the dashboard's)."""
    if query in LANGS:
        return query  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, v = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and q > 0:
            ranked.append((-q, i, primary))
    return min(ranked)[2] if ranked else "id"  # type: ignore[return-value]


#: rupiah amounts: columns (and key-value rows' indicators) that hold whole rupiah
MONEY = frozenset({
    "applied_value", "approved_value", "signed_value", "disbursed_value", "average_size", "outstanding",
    "outstanding_owed", "paid_on_time", "fallen_due", "repaid", "written_off_principal", "written_off_margin",
    "recovered", "social_fund", "social_fund_imposed", "social_fund_received", "social_fund_outstanding",
    "principal_at_risk", "gross_principal", "principal", "margin", "restructured_principal",
    *(f"par{n}_principal" for n in (1, 7, 30, 60, 90))})
UNIT_KINDS = {"IDR": "money", "%": "pct", "m3": "m3"}


def number_kind(column: str, row: dict[str, Any]) -> str | None:
    """How a number is formatted: ``money`` (Rupiah), ``pct`` (a percentage, 0-100), ``m3``, or None (a
    count, or a plain number). A key-value table's ``value`` takes its row's indicator's kind; the donor
    table's baseline, target and actual take their row's unit."""
    key = column
    if column == "value" and isinstance(row.get("indicator"), str):
        key = row["indicator"]
    elif column in ("baseline", "target", "actual") and isinstance(row.get("unit"), str):
        return UNIT_KINDS.get(row["unit"])
    if key in MONEY:
        return "money"
    if key == "pct" or key.endswith("_pct"):
        return "pct"
    if key.startswith("m3"):
        return "m3"
    return None
