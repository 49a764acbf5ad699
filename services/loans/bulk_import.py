"""Bulk import of an existing loan book from CSV or JSON: validated row by row, appended in batches.

Formats (one financing per row / object):

JSON: ``[{"loan_ref": "BMI-2019-00042", "member_id": "<uuid>", "product_id": "mikro-tata-sanitasi",
"cost": 6000000, "margin": 720000, "signed_on": "2024-01-15", "disbursed_on": "2024-01-16",
"source_of_funds": "own_funds", "payee_type": "contractor", "payee_id": "cv-tirta",
"schedule": [{"due_on": "2024-02-15", "amount": 560000}, ...],
"payments": [{"receipt_number": "KW-1", "paid_on": "2024-02-15", "amount": 560000}, ...]}, ...]``

CSV: the same columns, with ``schedule`` written ``2024-02-15=560000;2024-03-15=560000`` and ``payments``
written ``KW-1@2024-02-15=560000;KW-2@2024-03-16=560000``.

The whole file is checked before anything is written: every field bounded (amounts up to
``MAX_RUPIAH``, business dates in [``EARLIEST_DATE``, ``LATEST_DATE``]), every member one the loans
service knows in the cooperative, every row by the domain's rules (none signed before its member joined
or before its product's ``defined_on``). A file with a refused row imports
nothing (``POST /imports`` answers 422 with every refused row, its number, loan number and reasons);
otherwise every event and read row goes in one transaction. The whole import runs off the service's
event loop, on a thread, loop and connection of its own (``off_the_loop``, ``ImportView``). A loan number
imported before is refused ("already imported"), so running an import twice imports nothing twice.
``POST /imports`` takes at most ``MAX_ROWS`` rows and ``MAX_BYTES`` bytes (413 beyond, nothing read
further).

The events of an imported financing are published like those of any (``domain.loan_book``): its
disbursement as ``loans.FinancingImported``, which the sanitation service does not turn into a
construction job.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import io
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, NamedTuple, TypeVar, cast

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.loans import book, sums
from services.loans.domain import financing as fin
from services.loans.domain import product as prod
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.loan_book import (
    BookEntry,
    BookPayment,
    Imported,
    earlier_import_published,
    financing_id_for,
    import_financing,
)
from services.loans.api.schemas import MAX_RUPIAH
from services.loans.handlers import financing_row, read_row_statements
from shared.application import Conflict, TooLarge
from shared.db import Statement, array_statements, chunks, create_pool
from shared.envelope import Metadata, utcnow
from shared.eventstore import ConcurrencyError
from shared.rls import TenantPool
from shared.runtime import CooperativeRuntime, request_server_settings
from shared.web import Refusal

Progress = Callable[[int, int], None]

#: a statement's array elements that the import sends at most (``array_statements``; ``shared.db``'s
#: ``ELEMENTS_PER_STATEMENT`` is 10,000): asyncpg encodes a statement's arrays in one call into its compiled
#: code, which holds the interpreter throughout (about 0.4 us an element) even on the import's own thread,
#: so the service's event loop waits for it; 2,000 keep each wait under a millisecond on a quiet machine
ELEMENTS_PER_STATEMENT = 2_000


#: what one request may import (``POST /imports``: 413 beyond; a larger book goes in several files, or by the
#: command line, which has no row limit)
MAX_ROWS = 5_000
MAX_BYTES = 16 * 1024 * 1024
#: business dates of an imported book lie in this window (a loan book of the platform's era; year 9999 is a typo)
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2100, 12, 31)
BusinessDate = Annotated[date, Field(ge=EARLIEST_DATE, le=LATEST_DATE)]
#: every amount as the live commands bound it (``api.schemas.MAX_RUPIAH``): a bigint holds any sum of them
Amount = Annotated[int, Field(ge=1, le=MAX_RUPIAH)]


class ScheduleLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    due_on: BusinessDate
    amount: Amount


class PaymentLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt_number: str = Field(min_length=1, max_length=80)
    paid_on: BusinessDate
    amount: Amount


class BookRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loan_ref: str = Field(min_length=1, max_length=80, description=(
        "The cooperative's own loan number, unique: the financing's id is derived from it, so a loan imported "
        "before is refused"))
    member_id: uuid.UUID = Field(description="A member the loans service knows (members `POST /members`)")
    product_id: str = Field(min_length=1, max_length=40, description="One of the cooperative's products")
    cost: Amount = Field(description="Cost financed, rupiah")
    margin: int = Field(ge=0, le=MAX_RUPIAH, description="Margin, rupiah: the schedule sums to cost + margin")
    signed_on: BusinessDate = Field(description=(
        "Contract signed; not before the member joined, nor before the product's defined_on"))
    disbursed_on: BusinessDate | None = Field(default=None, description="Default: signed_on")
    source_of_funds: str | None = Field(default=None, max_length=80, description="Default: the product's first")
    payee_type: str = Field(default="contractor", pattern=r"^(contractor|pdam|supplier|member)$")
    payee_id: str = Field(default="imported", min_length=1, max_length=80)
    schedule: list[ScheduleLine] = Field(min_length=1, max_length=1000, description=(
        "Instalments, due dates rising, none zero, summing to cost + margin"))
    payments: list[PaymentLine] = Field(default=[], max_length=2000, description=(
        "Repayments received, each receipt number once; at most what the schedule asks"))

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


class ImportTooLarge(TooLarge):
    code = "import_too_large"


async def read_rows(request: Any, fmt: str) -> list[Any]:
    """The rows of a ``POST /imports`` body: at most ``MAX_BYTES`` read (413 beyond, by the declared length
    or by counting) and at most ``MAX_ROWS`` rows (413 beyond); parsed in a thread. 422 when unreadable."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise ImportTooLarge(f"an import takes at most {MAX_BYTES:,} bytes per request ({int(declared):,} sent); "
                             "split the book into several files; nothing was imported", field="body")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise ImportTooLarge(f"an import takes at most {MAX_BYTES:,} bytes per request; split the book into "
                                 "several files; nothing was imported", field="body")
    try:
        rows = await asyncio.to_thread(parse, bytes(body), fmt)
    except ValueError as e:  # orjson's and UnicodeDecodeError are ValueErrors too
        raise Refusal(f"the file cannot be read as {fmt}: {e}", field="body") from None
    if len(rows) > MAX_ROWS:
        raise ImportTooLarge(f"an import takes at most {MAX_ROWS:,} rows per request ({len(rows):,} sent); split "
                             "the book into several files; nothing was imported", field="body")
    return rows


def refused_body(report: ImportReport) -> dict[str, Any]:
    """The 422 body of a file with refused rows (nothing imported): the first refusal as ``field`` and
    ``reason``, and the report with every refused row."""
    first = report.refused[0]
    name = first.reasons[0].split(":", 1)[0] if first.reasons else "row"
    return {"error": "import_refused", "field": f"rows[{first.row}].{name}",
            "reason": f"{len(report.refused)} of {report.rows} rows refused, nothing was imported; row {first.row}"
                      f"{f' ({first.loan_ref})' if first.loan_ref else ''}: {first.reasons[0] if first.reasons else ''}",
            **report.as_dict()}


def _errors(e: ValidationError) -> list[str]:
    return [f"{'.'.join(str(x) for x in err['loc']) or 'row'}: {err['msg']}" for err in e.errors()]


# -- importing ----------------------------------------------------------------------------------------------


async def import_loan_book(rt: CooperativeRuntime, tenant: str, rows: Iterable[dict[str, Any]], *, actor: str,
                           today: date, batch_size: int = 500, progress: Progress | None = None,
                           wait_for_members: float = 0.0) -> ImportReport:
    """Import ``rows`` into ``tenant``'s book, all or nothing; returns the report.

    The whole file is checked first (every row's fields and bounds, its product, its member, the domain's
    rules, loan numbers and receipts against the file and the cooperative); a file with any refused row
    imports nothing (``report.refused`` says why, row by row). Then every event and every read row go in
    one transaction, ``batch_size`` financings a statement.

    The whole import runs off the service's event loop (``off_the_loop``): on a thread of its own, with an
    event loop and a database connection of its own (``ImportView``), so neither its CPU work (validation,
    the domain's fold, building the rows) nor the encoding of its statements' arrays (asyncpg does that in
    the loop that runs the statement) holds the loop that answers requests, and it takes no connection from
    the request pool. At most ``LoansSettings.import_concurrency`` imports run at once in a process; more
    wait their turn.

    ``wait_for_members``: seconds to wait for members the loans service has not heard of yet (registered a
    moment ago, their event still on its way) before refusing their rows."""
    started = time.perf_counter()
    rows = list(rows)
    report = ImportReport(rows=len(rows))
    meta = Metadata(correlation_id=uuid.uuid4(), actor=actor)
    gc.freeze()  # the parsed file: out of the collector's sight (``_settle``)
    try:
        async with _turn(rt):
            view = ImportView(rt)

            async def work() -> bool:
                async with view.opened():
                    await _import(view, tenant, rows, report, meta, actor=actor, today=today,
                                  batch_size=batch_size, progress=progress, wait_for_members=wait_for_members)
                return report.imported > 0

            wrote = await off_the_loop(work)
    finally:
        gc.unfreeze()
    # back on the service's loop: wake its readers of the log, then fresh statistics for the portfolio's
    # plans after thousands of rows at once (as the tables' owner, on the service's own pool)
    rt.store.notify_committed(cast(Any, view.committed))
    if wrote:
        await book.analyze(book.owner_pool(rt))
    report.seconds = time.perf_counter() - started
    return report


T = TypeVar("T")


async def off_the_loop(work: Callable[[], Awaitable[T]]) -> T:
    """``work()`` run to its end on a thread of its own, in an event loop of its own (``asyncio.run``);
    the caller's loop only waits for its result (or its exception). If the caller is cancelled meanwhile,
    ``work`` still runs to its end (an import commits all or nothing either way)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (asyncio.run(work()), None)
        except BaseException as e:  # noqa: BLE001 -- handed to the waiting loop, raised there
            outcome = (None, e)
        with contextlib.suppress(RuntimeError):  # the caller's loop closed meanwhile (the service stopped)
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="loans-import", daemon=True).start()
    return await done


@dataclass
class _Turns:
    """A service's imports at once: at most ``LoansSettings.import_concurrency`` run, ``waiting`` wait."""

    running: asyncio.Semaphore
    waiting: int = 0


#: per service runtime, its imports' turns
_TURNS: weakref.WeakKeyDictionary[Any, _Turns] = weakref.WeakKeyDictionary()


def _turns(service: Any) -> _Turns:
    turns = _TURNS.get(service)
    if turns is None:
        limit = max(1, int(getattr(service.settings, "import_concurrency", 1)))
        turns = _TURNS[service] = _Turns(asyncio.Semaphore(limit))
    return turns


def waiting_imports(service: Any) -> int:
    """How many imports of ``service`` (a ``ServiceRuntime``) wait for their turn now."""
    return _turns(service).waiting


@contextlib.asynccontextmanager
async def _turn(rt: CooperativeRuntime) -> AsyncIterator[None]:
    """The block once it is this import's turn (``_Turns``)."""
    turns = _turns(rt.runtime)
    turns.waiting += 1
    try:
        await turns.running.acquire()
    finally:
        turns.waiting -= 1
    try:
        yield
    finally:
        turns.running.release()


class ImportView:
    """What an import uses of a cooperative's runtime (``CooperativeRuntime``: ``tenant_id``, ``pool``,
    ``store``), on the import's own thread and event loop (``off_the_loop``): ``pool`` runs every statement
    on a connection of the import's own, logged in as the service's request login with the cooperative
    named (``shared.rls.TenantPool``, as a request's), never one of the request pool's; ``store`` reads
    streams through it. The events it commits are kept in ``committed`` for the service's loop to announce
    (``PostgresEventStore.notify_committed``) once the import is back there."""

    def __init__(self, rt: CooperativeRuntime) -> None:
        self._rt = rt
        self.tenant_id = rt.tenant_id
        self.runtime = None  # nothing of the service's own runtime: its pools belong to its loop
        self.committed: list[Any] = []
        self.pool: TenantPool | None = None
        self.store: Any = None

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[ImportView]:
        """The view with its connection (a pool of one, on the running loop), closed at the block's end."""
        service = self._rt.runtime
        pool = await create_pool(service.request_login_url(), 1, 1, acquire_timeout=60.0,
                                 server_settings=request_server_settings(service.settings))
        pool.context_key = service.context_key  # type: ignore[attr-defined]
        try:
            self.pool = TenantPool(pool, self.tenant_id)
            self.store = self._rt.store.scoped(self.pool)  # a copy of the service's store, on ``pool``
            self.store.notify_committed = self.committed.extend  # announced from the service's loop
            yield self
        finally:
            await pool.close()


async def _import(rt: Any, tenant: str, rows: list[Any], report: ImportReport,
                  meta: Metadata, *, actor: str, today: date, batch_size: int, progress: Progress | None,
                  wait_for_members: float) -> ImportReport:
    """``import_loan_book``'s work, on ``rt`` (an ``ImportView``, on the import's own loop)."""
    checked = await asyncio.to_thread(_check_rows, rows, report)
    products = {pid: await _product(rt, tenant, pid) for pid in sorted({r.product_id for _, r in checked})}
    known = await _known_members(rt, tenant, {r.member_id for _, r in checked}, wait_for_members)
    accepted = await asyncio.to_thread(_decide, checked, products, known, today, actor, report)
    accepted = await _not_recorded(rt, tenant, accepted, report)
    report.refused.sort(key=lambda r: r.row)
    if not report.refused and accepted:
        await _write(rt, tenant, [i for _, i in accepted], meta, batch_size, progress)
        report.imported = len(accepted)
        report.events = sum(len(i.events) for _, i in accepted)
        report.payments = sum(len(i.receipts) for _, i in accepted)
    await release(checked, accepted)  # the file's models and events, freed out of the event loop
    return report


def _settle(n: int) -> None:
    """Every ``_SETTLE`` rows: what the import has built so far is moved out of the garbage collector's
    sight (``gc.freeze``). A book is millions of objects, all alive until the import ends: without this,
    each full collection walks all of them again, holding the interpreter (and the event loop) for up to a
    second at a time. ``import_loan_book`` unfreezes them when it ends."""
    if n % _SETTLE == 0:
        gc.freeze()


_SETTLE = 256


def _check_rows(rows: list[Any], report: ImportReport) -> list[tuple[int, BookRow]]:
    """Each row against the row model (fields, bounds, no other field) and loan numbers against the file."""
    out: list[tuple[int, BookRow]] = []
    seen_refs: set[str] = set()
    for n, raw in enumerate(rows, start=1):
        _settle(n)
        ref = raw.get("loan_ref") if isinstance(raw, dict) else None
        try:
            row = BookRow.model_validate(raw)
        except ValidationError as e:
            report.refused.append(RefusedRow(n, ref if isinstance(ref, str) else None, _errors(e)))
            continue
        if row.loan_ref in seen_refs:
            report.refused.append(RefusedRow(n, row.loan_ref, ["loan_ref: appears twice in the file"]))
            continue
        seen_refs.add(row.loan_ref)
        out.append((n, row))
    return out


async def _known_members(rt: CooperativeRuntime, tenant: str, ids: set[uuid.UUID],
                         wait: float) -> dict[uuid.UUID, date | None]:
    """Those of ``ids`` the loans service knows as members of ``tenant`` (``loan_members``, fed by the members
    service's events), with the day each joined, waiting up to ``wait`` seconds for the others."""
    deadline = time.monotonic() + wait
    known: dict[uuid.UUID, date | None] = {}
    while True:
        missing = list(ids - known.keys())
        if missing:
            known |= {r["member_id"]: r["joined_on"] for r in await rt.pool.fetch(
                "SELECT member_id, joined_on FROM loan_members WHERE tenant_id = $1 AND member_id = ANY($2::uuid[])",
                tenant, missing)}
        if known.keys() >= ids or time.monotonic() >= deadline:
            return known
        await asyncio.sleep(0.2)


def _decide(checked: list[tuple[int, BookRow]], products: dict[str, prod.Product],
            members: dict[uuid.UUID, date | None], today: date, actor: str,
            report: ImportReport) -> list[tuple[int, Imported]]:
    """Each checked row's events by the domain's rules (its member, its product, its schedule ...).

    A financing cannot have been signed before its member joined the cooperative, nor before its product was
    defined (``defined_on``), as for a live application: such a row is refused with both dates. A migrated
    book predates the platform, so its products are defined with ``defined_on`` dated back to the day the
    cooperative first offered them (``POST /products`` allows it)."""
    out: list[tuple[int, Imported]] = []
    seen_receipts: set[str] = set()
    for n, row in checked:
        _settle(n)
        if row.member_id not in members:
            report.refused.append(RefusedRow(n, row.loan_ref, [
                f"member_id: no member {row.member_id} in this cooperative"]))
            continue
        joined = members[row.member_id]
        if joined is not None and row.signed_on < joined:
            report.refused.append(RefusedRow(n, row.loan_ref, [
                f"signed_on: {row.signed_on} is before member {row.member_id} joined the cooperative ({joined})"]))
            continue
        product = products[row.product_id]
        if product.exists and product.defined_on is not None and row.signed_on < product.defined_on:
            report.refused.append(RefusedRow(n, row.loan_ref, [
                f"signed_on: {row.signed_on} is before {product.name} was defined ({product.defined_on}): no "
                "financing from it can be dated earlier (a product offered before the platform is defined with "
                "defined_on dated back)"]))
            continue
        try:
            imported = import_financing(row.entry(), product, today=today, actor=actor)
        except LoanRuleViolation as e:
            report.refused.append(RefusedRow(n, row.loan_ref, [f"{e.field or 'row'}: {e.message}"]))
            continue
        clash = seen_receipts.intersection(imported.receipts)
        if clash:
            report.refused.append(RefusedRow(n, row.loan_ref, [
                f"payments: receipt {sorted(clash)[0]} is already used by another row of the file"]))
            continue
        seen_receipts.update(imported.receipts)
        out.append((n, imported))
    return out


async def _product(rt: CooperativeRuntime, tenant: str, product_id: str) -> prod.Product:
    return prod.fold_product(await rt.store.read_stream(tenant, prod.PRODUCT_STREAM_TYPE, prod.product_stream_id(product_id)))


async def _not_recorded(rt: CooperativeRuntime, tenant: str, batch: list[tuple[int, Imported]],
                        report: ImportReport) -> list[tuple[int, Imported]]:
    """``batch`` but the rows whose loan number or receipts the cooperative has recorded already (refused)."""
    if not batch:
        return []
    existing: set[str] = set()
    used: set[str] = set()
    ids = [i.financing_id for _, i in batch]
    receipts = [r for _, i in batch for r in i.receipts]
    # at most ELEMENTS_PER_STATEMENT of them a query: asyncpg encodes the array holding the interpreter
    for part in chunks(ids, ELEMENTS_PER_STATEMENT):
        existing |= {str(r["stream_id"]) for r in await rt.pool.fetch(
            "SELECT stream_id FROM events WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = ANY($3::text[]) "
            "AND version = 1", tenant, fin.STREAM_TYPE, part)}
    for part in chunks(receipts, ELEMENTS_PER_STATEMENT):
        used |= {r["receipt_number"] for r in await rt.pool.fetch(
            "SELECT receipt_number FROM loan_receipts WHERE tenant_id = $1 AND receipt_number = ANY($2::text[])",
            tenant, part)}
    accepted: list[tuple[int, Imported]] = []
    for row, imp in batch:
        if imp.financing_id in existing:
            report.refused.append(RefusedRow(row, _ref(imp), ["loan_ref: already imported"]))
        elif used.intersection(imp.receipts):
            report.refused.append(RefusedRow(row, _ref(imp), [
                f"payments: receipt {sorted(used.intersection(imp.receipts))[0]} is already recorded in this "
                "cooperative"]))
        else:
            accepted.append((row, imp))
    return accepted


#: the events of a batch, from arrays; the payloads as JSON text (encoded in a thread, not in the event loop)
_INSERT_EVENTS = """
INSERT INTO events (event_id, tenant_id, stream_type, stream_id, version, type, schema_version,
                    occurred_at, correlation_id, causation_id, actor, traceparent, payload)
SELECT e, t, st, s, v, ty, sv, o, c, ca, a, tp, p::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::int[],
            $8::timestamptz[], $9::uuid[], $10::uuid[], $11::text[], $12::text[], $13::text[])
     AS u(e, t, st, s, v, ty, sv, o, c, ca, a, tp, p)
"""


@dataclass
class _Batch:
    """One batch of financings as statements of at most ``ELEMENTS_PER_STATEMENT`` array elements each:
    asyncpg encodes a statement's arrays in the event loop, so no statement holds it long."""
    events: list[Statement]
    rows: list[Statement]
    appended: list[_Appended]
    changes: sums.Changes


class _Appended(NamedTuple):
    type: str


def _prepare(tenant: str, chunk: Sequence[Imported], meta: Metadata, spent: list[Any]) -> _Batch:
    """``chunk``'s statements (CPU work, in a thread); first drops ``spent``, the statements already executed
    (freeing a batch's hundreds of thousands of objects is CPU work too, kept out of the event loop)."""
    spent.clear()
    cols: list[list[Any]] = [[] for _ in range(13)]
    now = utcnow()
    gc.freeze()
    for imp in chunk:
        for v, e in enumerate(imp.events, start=1):
            for col, val in zip(cols, (
                    uuid.uuid4(), tenant, fin.STREAM_TYPE, imp.financing_id, v, e.type, e.schema_version,
                    e.occurred_at or now, meta.correlation_id, meta.causation_id, meta.actor, meta.traceparent,
                    orjson.dumps(e.payload).decode()), strict=True):
                col.append(val)
    rows = _book_rows(tenant, chunk, meta.actor)
    return _Batch(array_statements(_INSERT_EVENTS, cols, elements=ELEMENTS_PER_STATEMENT),
                  read_row_statements([financing_row(tenant, i.state) for i in chunk],
                                      [(tenant, r, uuid.UUID(i.financing_id)) for i in chunk for r in i.receipts],
                                      rows, ELEMENTS_PER_STATEMENT),
                  [_Appended(t) for t in cols[5]], sums.changes_of(rows))


def _add_changes(changes: sums.Changes, batch: _Batch, spent: list[Any]) -> None:
    spent.clear()
    changes.add(batch.changes)


async def _write(rt: CooperativeRuntime, tenant: str, accepted: list[Imported], meta: Metadata,
                 batch_size: int, progress: Progress | None) -> None:
    """Every event and read row of ``accepted`` in one transaction (all or nothing), ``batch_size`` financings
    a batch, each batch prepared in a thread and written in statements of at most ``ELEMENTS_PER_STATEMENT``
    array elements: the event loop is never held long, and free between statements. The events go in first:
    an append is the first write of its transaction (``shared.eventstore``)."""
    parts = chunks(accepted, batch_size)
    appended: list[_Appended] = []
    spent: list[Any] = []
    prepared: list[_Batch] = []
    async with rt.pool.acquire() as conn:
        try:
            async with conn.transaction():
                for k, chunk in enumerate(parts):
                    batch = await asyncio.to_thread(_prepare, tenant, chunk, meta, spent)
                    for sql, args in batch.events:
                        await conn.execute(sql, *args)
                    spent, batch.events = [batch.events], []
                    prepared.append(batch)
                    if progress:
                        progress((k + 1) * batch_size // 2 if k + 1 < len(parts) else len(accepted) // 2,
                                 len(accepted))
                changes = sums.Changes()
                for k, batch in enumerate(prepared):
                    for sql, args in batch.rows:
                        await conn.execute(sql, *args)
                    appended += batch.appended
                    spent, batch.rows = [spent, batch.rows], []
                    await asyncio.to_thread(_add_changes, changes, batch, spent)
                    if progress:
                        progress(min(len(accepted), len(accepted) // 2 + (k + 1) * batch_size // 2), len(accepted))
                # the portfolio sums, once for the whole file (one statement a table: its rows locked in order)
                await sums.apply(conn, tenant, changes, ELEMENTS_PER_STATEMENT)
        except asyncpg.UniqueViolationError as e:
            # another import of the same loans or receipts committed first: nothing of this one was written
            if e.constraint_name == "events_stream_version":
                raise ConcurrencyError(tenant, "(import)", -1) from None
            raise ImportRace(f"another request recorded some of these financings or receipts meanwhile ({e.constraint_name}); "
                             "nothing was imported: import the file again") from None
    await release(spent, prepared, parts)
    rt.store.notify_committed(cast(Any, appended))


async def release(*lists: list[Any]) -> None:
    """Empty ``lists`` in a thread: when they hold the last references to a file's objects (millions of them
    for a few thousand financings), freeing them is CPU work of tens of milliseconds, out of the event loop
    there. One element at a time (the lists within them likewise): freeing a whole list is one call into
    the interpreter's C code, which holds the interpreter throughout (59 ms for a file of 1,000 financings,
    in S5N), while between elements it switches back to the event loop's thread every
    ``sys.getswitchinterval()``."""

    def free(xs: list[Any]) -> None:
        while xs:
            x = xs.pop()
            if type(x) is list:
                free(x)

    def clear() -> None:
        for xs in lists:
            free(xs)

    await asyncio.to_thread(clear)


class ImportRace(Conflict):
    pass


async def publish_earlier_imports(rt: CooperativeRuntime, tenant: str, *,
                                  actor: str = "import:publish") -> int:
    """Publish the disbursements of ``tenant``'s financings imported before ``loans.FinancingImported``
    existed: each such stream gets, as a new fact at its end, the ``FinancingImported`` its import would
    append today (``loan_book.earlier_import_published``), with its read rows in the same transaction.
    A financing that has one is left alone, so running this again appends nothing. Returns how many were
    published."""
    from services.loans.handlers import keep_read_tables

    streams = [r["stream_id"] for r in await rt.pool.fetch(
        """SELECT DISTINCT stream_id FROM events e WHERE tenant_id = $1 AND stream_type = $2
             AND type = 'loans.DisbursementImported'
             AND NOT EXISTS (SELECT 1 FROM events x WHERE x.tenant_id = e.tenant_id AND x.stream_type = e.stream_type
                                                       AND x.stream_id = e.stream_id
                                                       AND x.type = 'loans.FinancingImported')
           ORDER BY stream_id""", tenant, fin.STREAM_TYPE)]
    published = 0
    for stream_id in streams:
        events = await rt.store.read_stream(tenant, fin.STREAM_TYPE, stream_id)
        event = earlier_import_published(events)
        if event is None:
            continue
        state = fin.fold(events)
        try:
            await rt.store.append(tenant, fin.STREAM_TYPE, stream_id, state.version, [event],
                                  meta=Metadata(correlation_id=uuid.uuid4(), actor=actor),
                                  after=keep_read_tables(tenant, state))
        except ConcurrencyError:
            continue  # the financing moved meanwhile (or another run published it): the next run sees it
        published += 1
    return published


def _book_rows(tenant: str, accepted: Sequence[Imported], actor: str | None) -> book.BookRows:
    rows = book.BookRows()
    for imp in accepted:
        rows.extend(book.imported_rows(tenant, imp.events, imp.state, actor))
    return rows


def _ref(imp: Imported) -> str | None:
    for e in imp.events:
        if e.type in ("loans.FinancingImported", "loans.DisbursementImported"):
            return str(e.payload["loan_ref"])
    return None


__all__ = ["BookRow", "ImportReport", "financing_id_for", "import_loan_book", "parse", "publish_earlier_imports"]


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

    if argv[:1] == ["--publish-earlier"]:
        return _publish_cli(argv[1:])
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


def _publish_cli(argv: list[str]) -> int:
    """``python -m services.loans import --publish-earlier --tenant T``: ``publish_earlier_imports``."""
    import argparse

    from services.loans.app import build_runtime
    from services.loans.settings import LoansSettings

    parser = argparse.ArgumentParser(prog="python -m services.loans import --publish-earlier")
    parser.add_argument("--tenant", required=True, help="the cooperative whose earlier imports to publish")
    args = parser.parse_args(argv)

    async def run() -> int:
        rt = build_runtime(LoansSettings())
        await rt.start(background=False)
        try:
            return await publish_earlier_imports(rt.for_tenant(args.tenant), args.tenant)
        finally:
            await rt.stop()

    print(orjson.dumps({"published": asyncio.run(run())}).decode())
    return 0
