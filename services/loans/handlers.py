"""Command and query handlers: load the stream, decide with the domain, append with the expected version.

Every append also updates the read tables (``schema.py``) in its own transaction (``after=``), so a list
never disagrees with the streams and a refusal raised there writes nothing at all. The domain's refusals
(``shared/application.py``) reach the web layer as they are, which maps them to HTTP: a rule (422), a clash
with what was recorded (409), maker-checker (403).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import asyncpg

from services.loans import book, sums
from services.loans.api import schemas as api
from services.loans.domain import financing as fin
from services.loans.domain import product as prod
from services.loans.domain.commands import Apply, MemberFacts
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.events import ProductDefined, TenorMargin
from services.loans.book import StoredFact
from services.loans.domain.quality import (
    PortfolioAccumulator,
    PortfolioQuality,
    RepaymentRate,
    position,
    repayment_window_start,
)
from shared.application import CommandContext, TryLater, run_command
from shared.contracts.loans import LateChargePaid, RepaymentRecorded
from shared.db import Statement, array_statements
from shared.envelope import Envelope, Metadata, NewEvent
from shared.eventstore import AfterAppend, ConcurrencyError
from shared.logging import get_logger
from shared.runtime import CooperativeRuntime, ServiceRuntime
from shared.tenancy import Principal, tenant_of
from shared.web import Conflict, NotFound, Refusal

log = get_logger(__name__)

#: a decision on a financing, given its state and today's date
Decision = Callable[[fin.Financing, date], list[NewEvent]]


def today(rt: ServiceRuntime | CooperativeRuntime) -> date:
    """Today in the cooperatives' time zone (business dates are local dates)."""
    return rt.settings.business_today()


# -- read tables -------------------------------------------------------------------------------------------


FINANCING_COLUMNS = ("tenant_id", "financing_id", "member_id", "product_id", "purpose", "status", "amount",
                     "selling_price", "owed", "applied_on", "earliest_unpaid_due", "version", "instalments")


def financing_row(tenant: str, s: fin.Financing) -> tuple[Any, ...]:
    """The list row of a financing (``FINANCING_COLUMNS``)."""
    assert s.terms is not None and s.applied_on is not None and s.financing_id and s.member_id
    # what is owed and unpaid counts for eligibility also once written off (it stays collectable)
    owing = s.status in ("signed", "active", "written_off")
    unpaid = [i.due_on for i in s.instalments if i.owed > 0] if owing else []
    return (tenant, uuid.UUID(s.financing_id), uuid.UUID(s.member_id), s.terms.product_id, s.terms.purpose,
            s.status, s.amount, s.selling_price, s.owed, s.applied_on, min(unpaid) if unpaid else None, s.version,
            s.instalment_count)


async def upsert_financing_row(conn: asyncpg.Connection, tenant: str, s: fin.Financing) -> None:
    await conn.execute(
        """INSERT INTO loan_financings (tenant_id, financing_id, member_id, product_id, purpose, status, amount,
                                        selling_price, owed, applied_on, earliest_unpaid_due, version, instalments)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (tenant_id, financing_id) DO UPDATE SET
               status = EXCLUDED.status, amount = EXCLUDED.amount, selling_price = EXCLUDED.selling_price,
               owed = EXCLUDED.owed, earliest_unpaid_due = EXCLUDED.earliest_unpaid_due, version = EXCLUDED.version,
               instalments = EXCLUDED.instalments""",
        *financing_row(tenant, s),
    )


async def insert_read_rows(conn: asyncpg.Connection, financings: list[tuple[Any, ...]],
                           receipts: list[tuple[str, str, uuid.UUID]], rows: book.BookRows | None = None, *,
                           with_sums: bool = True) -> None:
    """Many list rows (``financing_row``), receipt numbers and book rows (``book.stream_rows``) at once.
    INSERT from arrays, not COPY: PostgreSQL refuses COPY FROM into a table behind row-level security."""
    for sql, args in read_row_statements(financings, receipts):
        await conn.execute(sql, *args)
    if rows is not None:
        await book.insert_book_rows(conn, rows, with_sums=with_sums)


_INSERT_FINANCINGS = f"""INSERT INTO loan_financings ({", ".join(FINANCING_COLUMNS)})
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                         $7::bigint[], $8::bigint[], $9::bigint[], $10::date[], $11::date[], $12::int[], $13::int[])"""
_INSERT_RECEIPTS = """INSERT INTO loan_receipts (tenant_id, receipt_number, financing_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])"""


def read_row_statements(financings: list[tuple[Any, ...]], receipts: list[tuple[str, str, uuid.UUID]],
                        rows: book.BookRows | None = None, elements: int | None = None) -> list[Statement]:
    """The statements of ``insert_read_rows`` (the sums aside): one a table, or with ``elements`` several of at
    most about that many array elements each (the import builds them in a thread: ``shared.db.array_statements``)."""
    out: list[Statement] = []
    if financings:
        out += array_statements(_INSERT_FINANCINGS, list(zip(*financings, strict=True)), elements=elements)
    if receipts:
        out += array_statements(_INSERT_RECEIPTS, list(zip(*receipts, strict=True)), elements=elements)
    if rows is not None:
        out += book.book_row_statements(rows, elements)
    return out


def keep_read_tables(tenant: str, before: fin.Financing) -> AfterAppend:
    """The ``after=`` of a financing append: its list row, its receipt numbers and its book rows (rewritten
    from the stream, new events included), in the same transaction."""

    async def after(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        state = before
        for env in envelopes:
            state = fin.evolve(state, env)
        await upsert_financing_row(conn, tenant, state)
        if envelopes:
            await book.replace_stream_rows(conn, tenant, envelopes[0].stream_id)
        for env in envelopes:
            # a late charge's receipt is one of the cooperative's receipts too: never reused for either
            if env.type not in (RepaymentRecorded.event_type, LateChargePaid.event_type):
                continue
            receipt = env.payload["receipt_number"]
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO loan_receipts (tenant_id, receipt_number, financing_id) VALUES ($1, $2, $3)",
                        tenant, receipt, uuid.UUID(env.stream_id))
            except asyncpg.UniqueViolationError:
                raise Conflict(f"receipt {receipt} is already recorded on another financing of this cooperative",
                               field="receipt_number") from None

    return after


# -- settings and products --------------------------------------------------------------------------------------


async def load_settings(rt: CooperativeRuntime, tenant: str) -> prod.LoanSettings:
    return prod.fold_settings(await rt.store.read_stream(tenant, prod.SETTINGS_STREAM_TYPE, prod.settings_stream_id()))


def settings_view(s: prod.LoanSettings) -> api.SettingsResponse:
    return api.SettingsResponse(sharia=s.sharia, substandard_over_days=s.substandard_over_days,
                                doubtful_over_days=s.doubtful_over_days, loss_over_days=s.loss_over_days,
                                version=s.version)


async def get_settings(rt: CooperativeRuntime, who: Principal) -> api.SettingsResponse:
    return settings_view(await load_settings(rt, tenant_of(who)))


async def change_settings(rt: CooperativeRuntime, who: Principal, body: api.SettingsBody,
                          ctx: CommandContext) -> api.SettingsResponse:
    await run_command(rt.store, ctx, stream_type=prod.SETTINGS_STREAM_TYPE, stream_id=prod.settings_stream_id(),
                      fold=prod.fold_settings,
                      decide=lambda state: prod.decide_change_settings(state, **body.model_dump(), on=ctx.today))
    return await get_settings(rt, who)


async def load_product(rt: CooperativeRuntime, tenant: str, product_id: str) -> prod.Product:
    return prod.fold_product(await rt.store.read_stream(tenant, prod.PRODUCT_STREAM_TYPE, prod.product_stream_id(product_id)))


def product_view(p: prod.Product) -> api.ProductResponse:
    return api.ProductResponse.model_validate(p.as_payload())


async def define_product(rt: CooperativeRuntime, who: Principal, body: api.DefineProductRequest,
                         ctx: CommandContext) -> api.ProductResponse:
    spec = ProductDefined(**body.model_dump(exclude={"tenors", "defined_on"}),
                          tenors=[TenorMargin(**t.model_dump()) for t in body.tenors],
                          defined_on=body.defined_on or ctx.today)

    async def decide(state: prod.Product) -> list[NewEvent]:
        return prod.decide_define_product(state, await load_settings(rt, ctx.tenant), spec, today=ctx.today)

    async def listed(conn: asyncpg.Connection, _: list[Envelope]) -> None:
        await conn.execute(
            """INSERT INTO loan_products (tenant_id, product_id, name, purpose, contract_type, defined_on)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            ctx.tenant, spec.product_id, spec.name, spec.purpose, spec.contract_type, spec.defined_on)

    done = await run_command(
        rt.store, ctx, stream_type=prod.PRODUCT_STREAM_TYPE, stream_id=prod.product_stream_id(body.product_id),
        fold=prod.fold_product, decide=decide,
        request={"define_product": body.model_dump(mode="json")}, response={"product_id": body.product_id},
        after=lambda _: listed)
    return await get_product(rt, who, done.response["product_id"])


async def get_product(rt: CooperativeRuntime, who: Principal, product_id: str) -> api.ProductResponse:
    p = await load_product(rt, tenant_of(who), product_id)
    if not p.exists:
        raise NotFound(f"no product {product_id} in this cooperative")
    return product_view(p)


async def list_products(rt: CooperativeRuntime, who: Principal, purpose: str | None) -> api.ProductList:
    tenant = tenant_of(who)
    rows = await rt.pool.fetch(
        """SELECT product_id FROM loan_products WHERE tenant_id = $1 AND ($2::text IS NULL OR purpose = $2)
           ORDER BY product_id LIMIT 500""", tenant, purpose)
    return api.ProductList(items=[product_view(await load_product(rt, tenant, r["product_id"])) for r in rows])


async def publish_products(rt: ServiceRuntime) -> int:
    """Publish the products defined before their public contract existed (``loans.ProductPublished``: a
    product's stream then holds its definition alone), so the other services learn their names too:
    ``prod.decide_publish_product`` appended to each such stream after its definition, as its cooperative
    (behind row-level security, on the reactions' pool). Finds them from ``loan_products`` as the owner
    (every cooperative) with one read of the log's stream index. A stream another replica published
    meanwhile is left alone (its expected version has moved). Returns how many were published."""
    products = await rt.pool.fetch("SELECT tenant_id, product_id FROM loan_products ORDER BY 1, 2")
    if not products:
        return 0
    tenants = [r["tenant_id"] for r in products]
    streams = [prod.product_stream_id(r["product_id"]) for r in products]
    published = {(r["tenant_id"], r["stream_id"]) for r in await rt.pool.fetch(
        """SELECT e.tenant_id, e.stream_id FROM events e
           JOIN unnest($1::text[], $2::text[]) AS p (tenant_id, stream_id)
             ON e.tenant_id = p.tenant_id AND e.stream_id = p.stream_id
           WHERE e.stream_type = $3 AND e.type = 'loans.ProductPublished'""", tenants, streams,
        prod.PRODUCT_STREAM_TYPE)}
    done = 0
    for tenant, stream_id in zip(tenants, streams, strict=True):
        if (tenant, stream_id) in published:
            continue
        store = rt.for_tenant(tenant, background=True).store
        history = await store.read_stream(tenant, prod.PRODUCT_STREAM_TYPE, stream_id)
        events = prod.decide_publish_product(history)
        if not events:
            continue
        try:
            await store.append(tenant, prod.PRODUCT_STREAM_TYPE, stream_id, history[-1].version, events,
                               meta=Metadata(actor="loans.publish-products"))
        except ConcurrencyError:
            continue
        done += 1
    if done:
        log.info("products_published", products=done)
    return done


async def relink_job(store: Any, tenant: str, financing_id: str, job_id: str, on: date,
                     passed: Envelope | None, *, actor: str, apply: bool) -> dict[str, Any]:
    """The operator's repair of a financing whose job the sanitation service ordered under another id than the
    derived one (``fin.decide_relink_job``): links the job and, when ``passed`` (its passed inspection) is
    given and a tranche waits for it, releases that tranche, in one append at the financing's version (a
    run racing another, or an officer's command, changes nothing and says so). ``store``: the loans event
    store, as the owner. With ``apply`` False nothing is written: the answer says what would be.
    Answers what was (or would be) done: ``relink`` and ``release`` (the tranche number), or ``refused``."""
    state = fin.fold(await store.read_stream(tenant, fin.STREAM_TYPE, financing_id))
    passed_on = date.fromisoformat(passed.payload["inspected_on"]) if passed is not None else None
    done: dict[str, Any] = {"tenant_id": tenant, "financing_id": financing_id, "job_id": job_id,
                            "previous_job_id": state.job_id,
                            "inspection": str(passed.event_id) if passed else None,
                            "relink": False, "release": None, "applied": False}
    try:
        events = fin.decide_relink_job(state, job_id, on, passed_on)
    except LoanRuleViolation as e:
        return {**done, "refused": e.message}
    done["relink"] = any(e.type == "loans.JobRelinked" for e in events)
    released = [e.payload["tranche_number"] for e in events if e.type == "loans.TrancheDisbursed"]
    done["release"] = released[0] if released else None
    if not events or not apply:
        return done
    # caused by the inspection whose release was refused, when there is one: the tranche's audit trail
    meta = (Metadata(correlation_id=passed.correlation_id, causation_id=passed.event_id, actor=actor)
            if passed is not None and released else Metadata(actor=actor))
    try:
        await store.append(tenant, fin.STREAM_TYPE, financing_id, state.version, events, meta=meta,
                           after=keep_read_tables(tenant, state))
    except ConcurrencyError:
        return {**done, "refused": "the financing changed meanwhile: run the repair again"}
    log.warning("job_relinked", tenant_id=tenant, financing_id=financing_id, job_id=job_id,
                previous_job_id=state.job_id, released_tranche=done["release"], actor=actor)
    return {**done, "applied": True}


# -- financings: views ----------------------------------------------------------------------------------------


def _instalment_status(i: fin.InstalmentState, on: date) -> str:
    if i.owed == 0:
        return "forgiven" if i.waived and i.paid < i.amount else "paid"
    if i.due_on < on:
        return "late"
    if i.due_on == on:
        return "due"
    return "partly_paid" if i.paid else "upcoming"


def _waiting_for(s: fin.Financing, t: fin.Tranche) -> str | None:
    if t.disbursed_on is not None:
        return None
    if t.trigger == "inspection_passed":
        return f"the SNI inspection of job {s.job_id} to pass (released automatically)"
    return "disbursement by a manager once the contract is signed"


def financing_view(s: fin.Financing, on: date, settings: prod.LoanSettings) -> api.FinancingResponse:
    assert s.terms is not None and s.financing_id and s.member_id and s.applied_on and s.status
    pos = position(s, on, settings)
    wo = s.work_order
    return api.FinancingResponse(
        financing_id=s.financing_id, member_id=s.member_id, status=s.status, product_id=s.terms.product_id,
        purpose=s.terms.purpose, contract_type=s.terms.contract_type, frequency=s.terms.frequency,
        instalments=s.instalment_count, margin_bp=s.terms.margin_bp, margin_idr=s.terms.margin_idr, amount=s.amount,
        applied_on=s.applied_on,
        approved_on=s.approved_on, rejected_on=s.rejected_on, rejection_reason=s.rejection_reason,
        work_order=api.WorkOrderView(work_order_ref=wo.ref, payee_type=wo.payee_type, payee_id=wo.payee_id,
                                     cost=wo.cost, ordered_on=wo.ordered_on) if wo else None,
        cost=s.cost, margin=s.margin, selling_price=s.selling_price, signed_on=s.signed_on,
        margin_discounted=s.margin_discounted, rebate=s.rebate, disbursed=s.disbursed,
        tranches=[api.TrancheView(number=t.number, amount=t.amount, trigger=t.trigger, disbursed_on=t.disbursed_on,
                                  source_of_funds=t.source_of_funds, job_id=t.job_id or (
                                      s.job_id if t.trigger == "inspection_passed" else None),
                                  waiting_for=_waiting_for(s, t)) for t in s.tranches],
        schedule=[api.InstalmentView(number=i.number, due_on=i.due_on, amount=i.amount, cost_part=i.cost_part,
                                     margin_part=i.amount - i.cost_part, paid=i.paid, waived=i.waived, owed=i.owed,
                                     status=_instalment_status(i, on)) for i in s.instalments],
        standing=api.StandingView(as_of=on, days_past_due=pos.days_past_due, arrears=pos.arrears, owed=pos.owed,
                                  principal_outstanding=pos.principal_outstanding,
                                  margin_outstanding=pos.margin_outstanding, category=pos.category),
        hardship_since=s.hardship_since, restructured=s.restructured,
        late_charges=[api.LateChargeView(instalment_number=c.instalment_number, amount=c.amount, status=c.status,
                                         proposed_on=c.proposed_on, decided_on=c.decided_on, imposed=c.imposed,
                                         paid=c.paid, outstanding=c.outstanding) for c in s.late_charges],
        written_off_on=s.written_off_on, write_off_reason=s.write_off_reason, recovered=s.recovered,
        closed_on=s.closed_on, close_reason=s.close_reason,
        notes=[api.NoteView(topic=n.topic, text=n.text, on=n.on, by=n.by) for n in s.notes], version=s.version,
    )


async def _load(rt: CooperativeRuntime, tenant: str, financing_id: str) -> list[Envelope]:
    return await rt.store.read_stream(tenant, fin.STREAM_TYPE, financing_id)


async def get_financing(rt: CooperativeRuntime, who: Principal, financing_id: str,
                        as_of: date | None = None) -> api.FinancingResponse:
    tenant = tenant_of(who)
    events = await _load(rt, tenant, financing_id)
    if not events:
        raise NotFound(f"no financing {financing_id} in this cooperative")
    on = as_of or today(rt)
    state = fin.fold_as_of(events, on) if as_of else fin.fold(events)
    if not state.exists:
        raise NotFound(f"financing {financing_id} did not exist yet on {on}")
    return financing_view(state, on, await load_settings(rt, tenant))


async def list_financings(rt: CooperativeRuntime, who: Principal, *, member_id: uuid.UUID | None = None,
                          status: str | None = None, product_id: str | None = None, limit: int = 50,
                          offset: int = 0, member_number: str | None = None) -> api.FinancingList:
    member_id = await resolve_member(rt, tenant_of(who), member_id, member_number, required=False)
    where = """tenant_id = $1 AND ($2::uuid IS NULL OR member_id = $2) AND ($3::text IS NULL OR status = $3)
               AND ($4::text IS NULL OR product_id = $4)"""
    args: list[Any] = [tenant_of(who), member_id, status, product_id]
    total = await rt.pool.fetchval(f"SELECT count(*) FROM loan_financings WHERE {where}", *args)
    rows = await rt.pool.fetch(
        f"""SELECT financing_id, member_id, product_id, purpose, status, amount, instalments, selling_price, owed,
                   applied_on, version FROM loan_financings WHERE {where}
            ORDER BY applied_on DESC, financing_id LIMIT $5 OFFSET $6""", *args, limit, offset)
    items = [api.FinancingSummary(**{**dict(r), "financing_id": str(r["financing_id"]),
                                     "member_id": str(r["member_id"])}) for r in rows]
    return api.FinancingList(items=items, limit=limit, offset=offset, total=total)


async def settlement_quote(rt: CooperativeRuntime, who: Principal, financing_id: str,
                           on: date | None) -> api.SettlementQuoteResponse:
    events = await _load(rt, tenant_of(who), financing_id)
    state = fin.fold(events)
    if not state.exists:
        raise NotFound(f"no financing {financing_id} in this cooperative")
    if state.status not in ("signed", "active"):
        raise Refusal(f"there is nothing to settle: the financing is {fin._describe(state)}")
    assert state.terms is not None
    q = fin.settlement_quote(state, on or today(rt))
    return api.SettlementQuoteResponse(financing_id=financing_id, on=q.on, owed=q.owed, margin_owed=q.margin_owed,
                                       unearned_margin=q.unearned_margin, rebate=q.rebate, to_pay=q.to_pay,
                                       method=state.terms.rebate_method)


# -- financings: commands -----------------------------------------------------------------------------------------


async def _member_facts(rt: CooperativeRuntime, tenant: str, member_id: uuid.UUID, on: date) -> MemberFacts:
    row = await rt.pool.fetchrow("SELECT joined_on, exited_on FROM loan_members WHERE tenant_id = $1 AND member_id = $2",
                                 tenant, member_id)
    earliest = await rt.pool.fetchval(
        "SELECT min(earliest_unpaid_due) FROM loan_financings WHERE tenant_id = $1 AND member_id = $2",
        tenant, member_id)
    worst = max(0, (on - earliest).days) if earliest else 0
    return MemberFacts(joined_on=row["joined_on"] if row else None, worst_days_past_due=worst,
                       exited_on=row["exited_on"] if row else None)


async def resolve_member(rt: CooperativeRuntime, tenant: str, member_id: uuid.UUID | None,
                         member_number: str | None, *, required: bool) -> uuid.UUID | None:
    """The member a request names, by id or by the cooperative's member number, looked up among this
    cooperative's members only (another cooperative's number is never resolved)."""
    if member_number is None:
        if member_id is None and required:
            raise Refusal("name the member: member_id or member_number", field="member_id")
        return member_id
    found = await rt.pool.fetchval(
        "SELECT member_id FROM loan_member_numbers WHERE tenant_id = $1 AND member_number = $2", tenant, member_number)
    if found is None:
        raise Refusal(f"no member number {member_number} in this cooperative (or not known here yet)",
                      field="member_number")
    if member_id is not None and member_id != found:
        raise Refusal(f"member number {member_number} is not member {member_id}", field="member_number")
    return found  # type: ignore[no-any-return]


async def apply(rt: CooperativeRuntime, who: Principal, body: api.ApplyRequest,
                ctx: CommandContext) -> api.FinancingResponse:
    """A member applies: the product's limits and the eligibility rules are checked; the terms are quoted."""
    meta = ctx.meta
    assert meta.actor is not None
    financing_id = str(uuid.uuid4())
    on = body.applied_on or ctx.today

    async def decide(state: fin.Financing) -> list[NewEvent]:
        member_id = await resolve_member(rt, ctx.tenant, body.member_id, body.member_number, required=True)
        assert member_id is not None
        product = await load_product(rt, ctx.tenant, body.product_id)
        member = await _member_facts(rt, ctx.tenant, member_id, on)
        cmd = Apply(financing_id, str(member_id), body.amount, body.instalments, on, meta.actor,
                    margin_bp=body.margin_bp, margin_idr=body.margin_idr)
        return fin.decide_apply(state, cmd, product, member, today=ctx.today)

    done = await run_command(
        rt.store, ctx, stream_type=fin.STREAM_TYPE, stream_id=financing_id, fold=fin.fold, new=True, decide=decide,
        request={"apply": body.model_dump(mode="json")}, response={"financing_id": financing_id},
        after=lambda state: keep_read_tables(ctx.tenant, state))
    return await get_financing(rt, who, done.response["financing_id"])


async def execute(rt: CooperativeRuntime, who: Principal, financing_id: str, decide: Decision,
                  ctx: CommandContext, *, command: str,
                  body: dict[str, Any] | None = None) -> tuple[api.FinancingResponse, bool]:
    """Run a command on a financing; returns its view and whether anything was recorded.

    ``ctx.expected_version`` (the request's If-Match): the version the client last saw; a financing changed
    since is refused with 409.
    """
    done = await run_command(
        rt.store, ctx, stream_type=fin.STREAM_TYPE, stream_id=financing_id, fold=fin.fold,
        decide=lambda state: decide(state, ctx.today), what="financing",
        request={"command": command, "financing_id": financing_id, "body": body or {}},
        response={"financing_id": financing_id}, missing=f"no financing {financing_id} in this cooperative",
        after=lambda state: keep_read_tables(ctx.tenant, state))
    return await get_financing(rt, who, financing_id), done.recorded


# -- read tables from the streams -----------------------------------------------------------------------------------


async def rebuild_read_tables(rt: ServiceRuntime, tenant: str) -> int:
    """Rebuild ``tenant``'s financing list, receipt numbers and book rows (``book.py``) from its streams
    (after an interrupted bulk import, or to check the tables); returns the number of financings."""
    count = 0
    async with rt.pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM loan_financings WHERE tenant_id = $1", tenant)
        await conn.execute("DELETE FROM loan_receipts WHERE tenant_id = $1", tenant)
        await book.delete_book_rows(conn, tenant, None)
        rows: list[tuple[Any, ...]] = []
        receipts: list[tuple[str, str, uuid.UUID]] = []
        facts = book.BookRows()
        changes = sums.Changes()
        chunk: list[list[StoredFact]] = []

        def derive(histories: list[list[StoredFact]]) -> None:
            nonlocal count
            for events in histories:
                derived, state = book.derive(tenant, events)
                if not state.exists:
                    continue
                assert state.financing_id is not None
                rows.append(financing_row(tenant, state))
                receipts.extend((tenant, r, uuid.UUID(state.financing_id))
                                for r in (*state.receipts, *state.charge_receipts))
                facts.extend(derived)
                sums.changes_of(derived, out=changes)
                count += 1

        # folding is CPU work: in a thread, a chunk of streams at a time, so the event loop goes on serving
        async for events in financing_histories(conn, tenant):
            chunk.append(events)
            if len(chunk) >= 200:
                await asyncio.to_thread(derive, chunk)
                chunk = []
        await asyncio.to_thread(derive, chunk)
        await insert_read_rows(conn, rows, receipts, facts, with_sums=False)
        await sums.apply(conn, tenant, changes)
        await conn.execute("DELETE FROM loan_portfolio_pending WHERE tenant_id = $1", tenant)
    await book.analyze(book.owner_pool(rt))
    return count


async def financing_histories(conn: asyncpg.Connection, tenant: str) -> AsyncIterator[list[StoredFact]]:
    """Every financing stream of ``tenant``, one at a time (a cursor: the book is never all in memory)."""
    current: list[StoredFact] = []
    async for r in conn.cursor(
            """SELECT stream_id, version, type, actor, occurred_at, payload
               FROM events WHERE tenant_id = $1 AND stream_type = $2 ORDER BY stream_id, version""",
            tenant, fin.STREAM_TYPE, prefetch=2000):
        if current and current[0].stream_id != r["stream_id"]:
            yield current
            current = []
        current.append(StoredFact(*r))
    if current:
        yield current


# -- portfolio ------------------------------------------------------------------------------------------------------


class BookRowsPending(TryLater):
    """The book's rows are still being written after an upgrade (``book.backfill``): retry shortly (503)."""

    code = "book_rows_pending"


async def portfolio(rt: CooperativeRuntime, who: Principal, as_of: date | None, start: date | None,
                    end: date | None) -> api.PortfolioResponse:
    """Portfolio quality of the cooperative as of a date, and the repayment rate over a period
    (default: the trailing 12 calendar months up to the date, ``quality.repayment_window_start``; no rate
    when nothing fell due in it): SQL over the book's rows (``book.py``), never a
    fold of the book. Only as of a past date, a financing whose rows cannot say (``fold_below``) is folded."""
    tenant = tenant_of(who)
    on = as_of or today(rt)
    end = end or on
    start = start or repayment_window_start(end)
    if start > end:
        raise Refusal("the period's start is after its end", field="start")
    settings = await load_settings(rt, tenant)
    thresholds = (settings.substandard_over_days, settings.doubtful_over_days, settings.loss_over_days)
    acc = PortfolioAccumulator(on, settings)
    rate = RepaymentRate(start, end)
    # one snapshot for the whole book (``rt.pool`` is the cooperative's ``TenantPool``)
    async with rt.pool.acquire(isolation="repeatable_read", readonly=True) as conn:
        missing = await book.rows_missing(conn, tenant)
        if missing:
            raise BookRowsPending(f"the book's rows are being written after an upgrade ({missing} financings to "
                                  "go); try again in a minute")
        folded: list[uuid.UUID] = []
        if as_of is not None:
            folded = sorted(set(await book.folded_only(conn, tenant, on)) | set(await book.folded_only(conn, tenant, end)))
        if await sums.pending(conn, tenant):
            # the sums are still being written after an upgrade (``sums.backfill``): the rows, as before
            acc.add_totals(await book.portfolio_totals(conn, tenant, on, thresholds, folded))
            rate.fallen_due, rate.paid_on_time = await book.repayment_totals(conn, tenant, start, end, folded)
        else:
            totals, fallen = await book.portfolio_sums(conn, tenant, on, thresholds, folded, start=start, end=end)
            acc.add_totals(totals)
            assert fallen is not None
            rate.fallen_due, rate.paid_on_time = fallen
        if folded:
            histories = await book.histories_of(conn, tenant, folded)

            def fold_few() -> None:
                for events in histories:
                    acc.add(fin.fold_as_of(events, on))
                    rate.add(fin.fold_as_of(events, end))

            await asyncio.to_thread(fold_few)
    return portfolio_view(acc.result(), rate)


def portfolio_view(q: PortfolioQuality, rate: RepaymentRate) -> api.PortfolioResponse:
    def ratio(r: Any) -> api.RatioView:
        return api.RatioView(at_risk=r.at_risk, gross=r.gross, percent=r.percent)

    return api.PortfolioResponse(
        as_of=q.on, financings=q.financings, gross_principal=q.gross_principal,
        margin_outstanding=q.margin_outstanding, arrears=q.arrears,
        par={f"par{n}": ratio(r) for n, r in q.par.items()},
        par_with_restructured={f"par{n}": ratio(r) for n, r in q.par_with_restructured.items()},
        restructured=ratio(q.restructured),
        categories={k: api.CategoryView(**v) for k, v in q.categories.items()}, written_off=q.written_off,
        written_off_principal=q.written_off_principal, recovered=q.recovered,
        late_charges_to_social_fund=q.late_charges_to_social_fund,
        social_fund=api.SocialFundView(imposed=q.late_charges_to_social_fund, received=q.social_fund_received,
                                       outstanding=q.late_charges_to_social_fund - q.social_fund_received),
        by_status=dict(sorted(q.by_status.items())),  # in one order, whatever the order the SQL grouped them in
        repayment_rate=api.RepaymentRateView(start=rate.start, end=rate.end, fallen_due=rate.fallen_due,
                                             paid_on_time=rate.paid_on_time, percent=rate.percent,
                                             not_applicable=not rate.applicable),
    )
