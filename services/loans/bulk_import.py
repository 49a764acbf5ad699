"""Bulk import of an existing loan book from CSV or JSON: validated row by row, appended in batches.

Formats (one financing per row / object):

JSON: ``[{"loan_ref": "BMI-2019-00042", "member_id": "<uuid>", "product_id": "mikro-tata-sanitasi",
"cost": 6000000, "margin": 720000, "signed_on": "2024-01-15", "disbursed_on": "2024-01-16",
"source_of_funds": "own_funds", "payee_type": "contractor", "payee_id": "cv-tirta",
"schedule": [{"due_on": "2024-02-15", "amount": 560000}, ...],
"payments": [{"receipt_number": "KW-1", "paid_on": "2024-02-15", "amount": 560000}, ...]}, ...]``

CSV: the same columns, with ``schedule`` written ``2024-02-15=560000;2024-03-15=560000`` and ``payments``
written ``KW-1@2024-02-15=560000;KW-2@2024-03-16=560000``.

Every refused row is reported with its row number, loan number and reasons; the others are imported.
A loan number imported before is refused ("already imported"), so running an import twice imports
nothing twice. Events go in with ``append_batch`` (one statement per batch); the read tables follow in
their own transaction right after each batch (``handlers.rebuild_read_tables`` repairs them should the
process die in between).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.loans import book
from services.loans.domain import financing as fin
from services.loans.domain import product as prod
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.loan_book import (
    BookEntry,
    BookPayment,
    Imported,
    financing_id_for,
    import_financing,
)
from services.loans.handlers import financing_row, insert_read_rows
from shared.envelope import Metadata
from shared.eventstore import NO_STREAM, StreamAppend
from shared.runtime import ServiceRuntime

Progress = Callable[[int, int], None]


class ScheduleLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    due_on: date
    amount: int = Field(ge=1)


class PaymentLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt_number: str = Field(min_length=1, max_length=80)
    paid_on: date
    amount: int = Field(ge=1)


class BookRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loan_ref: str = Field(min_length=1, max_length=80)
    member_id: uuid.UUID
    product_id: str = Field(min_length=1, max_length=40)
    cost: int = Field(ge=1)
    margin: int = Field(ge=0)
    signed_on: date
    disbursed_on: date | None = None
    source_of_funds: str | None = Field(default=None, max_length=80)
    payee_type: str = Field(default="contractor", pattern=r"^(contractor|pdam|supplier|member)$")
    payee_id: str = Field(default="imported", min_length=1, max_length=80)
    schedule: list[ScheduleLine] = Field(min_length=1, max_length=1000)
    payments: list[PaymentLine] = Field(default=[], max_length=2000)

    def entry(self) -> BookEntry:
        return BookEntry(
            loan_ref=self.loan_ref, member_id=str(self.member_id), product_id=self.product_id, cost=self.cost,
            margin=self.margin, signed_on=self.signed_on, disbursed_on=self.disbursed_on,
            source_of_funds=self.source_of_funds, payee_type=self.payee_type, payee_id=self.payee_id,
            schedule=[(s.due_on, s.amount) for s in self.schedule],
            payments=[BookPayment(p.receipt_number, p.paid_on, p.amount) for p in self.payments])


@dataclass
class RefusedRow:
    row: int
    loan_ref: str | None
    reasons: list[str]


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    events: int = 0
    payments: int = 0
    seconds: float = 0.0
    refused: list[RefusedRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": self.imported, "refused_rows": len(self.refused),
                "events": self.events, "payments": self.payments, "seconds": round(self.seconds, 2),
                "refused": [{"row": r.row, "loan_ref": r.loan_ref, "reasons": r.reasons} for r in self.refused]}


# -- parsing -----------------------------------------------------------------------------------------------


def _compact(text: str, payments: bool) -> list[dict[str, Any]]:
    out = []
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        head, _, amount = part.rpartition("=")
        if payments:
            receipt, _, day = head.partition("@")
            out.append({"receipt_number": receipt, "paid_on": day, "amount": amount})
        else:
            out.append({"due_on": head, "amount": amount})
    return out


def parse_csv(text: str) -> list[dict[str, Any]]:
    """CSV rows as dicts of the JSON shape (the compact schedule and payments columns expanded)."""
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
        row = {k: v for k, v in row.items() if v not in ("", None)}
        row["schedule"] = _compact(row.get("schedule", ""), payments=False)
        row["payments"] = _compact(row.get("payments", ""), payments=True)
        rows.append(row)
    return rows


def parse(data: bytes | str, fmt: str) -> list[dict[str, Any]]:
    """Rows of a CSV or JSON loan book. Raises ``ValueError`` when the file itself cannot be read."""
    if fmt == "json":
        rows = orjson.loads(data)
        if not isinstance(rows, list):
            raise ValueError("a JSON loan book is a list of financings")
        return rows
    if fmt == "csv":
        return parse_csv(data.decode() if isinstance(data, bytes) else data)
    raise ValueError(f"unknown format {fmt!r}: csv or json")


def _errors(e: ValidationError) -> list[str]:
    return [f"{'.'.join(str(x) for x in err['loc']) or 'row'}: {err['msg']}" for err in e.errors()]


# -- importing ----------------------------------------------------------------------------------------------


async def import_loan_book(rt: ServiceRuntime, tenant: str, rows: Iterable[dict[str, Any]], *, actor: str,
                           today: date, batch_size: int = 500, progress: Progress | None = None) -> ImportReport:
    """Import ``rows`` into ``tenant``'s book; returns the report (every refused row with its reasons)."""
    assert rt.store is not None and rt.pool is not None
    started = time.perf_counter()
    rows = list(rows)
    report = ImportReport(rows=len(rows))
    products: dict[str, prod.Product] = {}
    meta = Metadata(correlation_id=uuid.uuid4(), actor=actor)
    seen_refs: set[str] = set()
    seen_receipts: set[str] = set()
    pending: list[tuple[int, Imported]] = []

    async def flush() -> None:
        await _write(rt, tenant, pending, meta, report)
        pending.clear()
        if progress:
            progress(min(done, report.rows), report.rows)

    for done, raw in enumerate(rows, start=1):
        ref = raw.get("loan_ref") if isinstance(raw, dict) else None
        try:
            row = BookRow.model_validate(raw)
        except ValidationError as e:
            report.refused.append(RefusedRow(done, ref, _errors(e)))
            continue
        if row.loan_ref in seen_refs:
            report.refused.append(RefusedRow(done, row.loan_ref, ["loan_ref: appears twice in the file"]))
            continue
        seen_refs.add(row.loan_ref)
        if row.product_id not in products:
            products[row.product_id] = await _product(rt, tenant, row.product_id)
        try:
            imported = import_financing(row.entry(), products[row.product_id], today=today, actor=actor)
        except LoanRuleViolation as e:
            report.refused.append(RefusedRow(done, row.loan_ref, [f"{e.field or 'row'}: {e.message}"]))
            continue
        clash = seen_receipts.intersection(imported.receipts)
        if clash:
            report.refused.append(RefusedRow(done, row.loan_ref, [
                f"payments: receipt {sorted(clash)[0]} is already used by another row of the file"]))
            continue
        seen_receipts.update(imported.receipts)
        pending.append((done, imported))
        if len(pending) >= batch_size:
            await flush()
    done = report.rows
    await flush()
    if report.imported:
        # thousands of rows at once: fresh statistics for the portfolio's plans (as the tables' owner)
        await book.analyze(book.owner_pool(rt))
    report.seconds = time.perf_counter() - started
    return report


async def _product(rt: ServiceRuntime, tenant: str, product_id: str) -> prod.Product:
    assert rt.store is not None
    return prod.fold_product(await rt.store.read_stream(tenant, prod.product_stream_id(product_id)))


async def _write(rt: ServiceRuntime, tenant: str, batch: list[tuple[int, Imported]], meta: Metadata,
                 report: ImportReport) -> None:
    """Append one batch: rows whose loan number or receipts exist already are refused first."""
    if not batch:
        return
    assert rt.store is not None and rt.pool is not None
    ids = [uuid.UUID(i.financing_id) for _, i in batch]
    existing = {str(r["stream_id"]) for r in await rt.pool.fetch(
        "SELECT stream_id FROM events WHERE tenant_id = $1 AND stream_id = ANY($2::text[]) AND version = 1",
        tenant, [str(x) for x in ids])}
    receipts = [r for _, i in batch for r in i.receipts]
    used = {r["receipt_number"] for r in await rt.pool.fetch(
        "SELECT receipt_number FROM loan_receipts WHERE tenant_id = $1 AND receipt_number = ANY($2::text[])",
        tenant, receipts)}
    accepted: list[Imported] = []
    for row, imp in batch:
        if imp.financing_id in existing:
            report.refused.append(RefusedRow(row, _ref(imp), ["loan_ref: already imported"]))
        elif used.intersection(imp.receipts):
            report.refused.append(RefusedRow(row, _ref(imp), [
                f"payments: receipt {sorted(used.intersection(imp.receipts))[0]} is already recorded in this "
                "cooperative"]))
        else:
            accepted.append(imp)
    if not accepted:
        return
    await rt.store.append_batch([StreamAppend(tenant, fin.STREAM_TYPE, i.financing_id, NO_STREAM, i.events, meta)
                                 for i in accepted])
    # the book rows from the import's own fold (``Imported.state``): nothing folded twice
    facts = await asyncio.to_thread(_book_rows, tenant, accepted, meta.actor)
    async with rt.pool.acquire() as conn, conn.transaction():
        await insert_read_rows(conn, [financing_row(tenant, i.state) for i in accepted],
                               [(tenant, r, uuid.UUID(i.financing_id)) for i in accepted for r in i.receipts], facts)
    report.imported += len(accepted)
    report.events += sum(len(i.events) for i in accepted)
    report.payments += sum(len(i.receipts) for i in accepted)


def _book_rows(tenant: str, accepted: list[Imported], actor: str | None) -> book.BookRows:
    rows = book.BookRows()
    for imp in accepted:
        rows.extend(book.imported_rows(tenant, imp.events, imp.state, actor))
    return rows


def _ref(imp: Imported) -> str | None:
    for e in imp.events:
        if e.type == "loans.DisbursementImported":
            return str(e.payload["loan_ref"])
    return None


__all__ = ["BookRow", "ImportReport", "financing_id_for", "import_loan_book", "parse"]


# -- command line -------------------------------------------------------------------------------------------------


def _bar(done: int, total: int) -> None:
    import sys

    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} financings")
    sys.stderr.flush()


def cli(argv: list[str]) -> int:
    """``python -m services.loans import FILE --tenant T``: import a loan book, with a progress bar."""
    import argparse
    import asyncio
    import sys
    from pathlib import Path

    from services.loans.app import build_runtime
    from services.loans.handlers import today
    from services.loans.settings import LoansSettings

    parser = argparse.ArgumentParser(prog="python -m services.loans import")
    parser.add_argument("file", type=Path)
    parser.add_argument("--tenant", required=True, help="the cooperative whose book this is")
    parser.add_argument("--format", choices=["csv", "json"], help="default: by the file's extension")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--actor", default="import:operator", help="recorded as the events' actor")
    args = parser.parse_args(argv)
    fmt = args.format or ("csv" if args.file.suffix.lower() == ".csv" else "json")
    try:
        rows = parse(args.file.read_bytes(), fmt)
    except (OSError, ValueError) as e:
        print(f"error: cannot read {args.file}: {e}", file=sys.stderr)
        return 2

    async def run() -> ImportReport:
        rt = build_runtime(LoansSettings())
        await rt.start(background=False)
        try:
            # as the cooperative itself: behind row-level security like a request
            return await import_loan_book(rt.for_tenant(args.tenant), args.tenant, rows, actor=args.actor,
                                          today=today(rt), batch_size=args.batch_size, progress=_bar)
        finally:
            await rt.stop()

    report = asyncio.run(run())
    sys.stderr.write("\n")
    print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    return 0 if not report.refused else 1
