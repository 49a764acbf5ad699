"""A read table's rebuild-hash order (``Table.key``) is the primary key its DDL declares: the keys every
family's tables had when each was written out beside its DDL are kept here as the oracle."""

from __future__ import annotations

import pytest

from services.reporting.projections.base import Table
from services.reporting.projections.catalog import FAMILIES

KEYS_AS_WRITTEN = {
    ("members", "member"): "tenant_id, member_id",
    ("members", "survey"): "tenant_id, survey_id",
    ("members", "session"): "tenant_id, session_id",
    ("members", "attendance"): "tenant_id, session_id, member_id",
    ("members", "lead"): "tenant_id, session_id, member_id, product",
    ("members", "seen"): "tenant_id, event_id",
    ("financing", "financing"): "tenant_id, financing_id",
    ("financing", "schedule"): "tenant_id, financing_id, seq",
    ("financing", "instalment"): "tenant_id, financing_id, seq, number",
    ("financing", "tranche"): "tenant_id, financing_id, tranche_number",
    ("financing", "repayment"): "tenant_id, financing_id, receipt_number",
    ("financing", "allocation"): "tenant_id, financing_id, receipt_number, number",
    ("financing", "late_charge"): "tenant_id, financing_id, seq",
    ("financing", "late_charge_payment"): "tenant_id, financing_id, seq",
    ("financing", "position"): "tenant_id, financing_id, start_on",
    ("financing", "pf_delta"): "tenant_id, on_date, category",
    ("financing", "pf_month"): "tenant_id, month_end, category",
    ("financing", "pf_year"): "tenant_id, year_end, category",
    ("financing", "pf_span"): "tenant_id",
    ("financing", "fx_delta"): "tenant_id, on_date, category",
    ("financing", "fx_month"): "tenant_id, month_end, category",
    ("financing", "fx_year"): "tenant_id, year_end, category",
    ("financing", "fx_span"): "tenant_id",
    ("financing", "rp_delta"): "tenant_id, on_date, due_on",
    ("financing", "rp_month"): "tenant_id, month_end, due_on",
    ("financing", "rp_year"): "tenant_id, year_end, due_on",
    ("financing", "rp_span"): "tenant_id",
    ("financing", "seen"): "tenant_id, event_id",
    ("sanitation", "job"): "tenant_id, job_id",
    ("sanitation", "job_step"): "tenant_id, job_id, seq",
    ("sanitation", "inspection"): "tenant_id, job_id, inspection_number",
    ("sanitation", "certification"): "tenant_id, contractor_id, certificate_number",
    ("sanitation", "due"): "tenant_id, job_id, seq",
    ("sanitation", "visit"): "tenant_id, visit_id",
    ("sanitation", "receipt"): "tenant_id, visit_id",
    ("sanitation", "seen"): "tenant_id, event_id",
    ("catalogue", "product"): "tenant_id, product_id",
    ("catalogue", "seen"): "tenant_id, event_id",
}


def test_every_tables_key_is_the_one_written_out_before() -> None:
    assert {(f.family, t.name): t.key for f in FAMILIES.values() for t in f.tables} == KEYS_AS_WRITTEN


def test_a_column_primary_key_and_a_given_key() -> None:
    assert Table("one", "CREATE TABLE {t} (tenant_id text PRIMARY KEY, n integer);").key == "tenant_id"
    # a key given (``projections.sums`` gives its own) is kept whatever the DDL says
    given = Table("two", "CREATE TABLE {t} (a text, b text, PRIMARY KEY (a, b));", "b, a")
    assert given.key == "b, a"


def test_a_table_without_a_primary_key_is_refused() -> None:
    with pytest.raises(ValueError, match="table 'loose' declares no primary key"):
        Table("loose", "CREATE TABLE {t} (tenant_id text NOT NULL);")
