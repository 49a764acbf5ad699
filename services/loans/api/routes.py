"""Loans routes: thin. The rules live in ``domain``, the flow in ``handlers``.

Who may do what: field officers take applications, record repayments and early settlements, flag
hardship, propose late charges and record their payments; managers do all that and approve or reject (never an application
they took themselves), record work orders, sign, disburse, reschedule, discount, write off, decide late
charges (never one they proposed), define products and read the portfolio.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from services.loans import bulk_import, handlers
from services.loans.api import schemas as s
from services.loans.domain import commands as c
from services.loans.domain import financing as fin
from shared.runtime import CooperativeRuntime
from shared.schemas import BusinessDate
from shared.web import (
    CommandRequest,
    KeyedManagerCommand,
    KeyedOfficerCommand,
    KeyedVersionedManagerCommand,
    KeyedVersionedOfficerCommand,
    Limit,
    Manager,
    ManagerCommand,
    Offset,
    Officer,
    Refusal,
    VersionedOfficerCommand,
    cooperative_runtime,
)

# security: bounded like the sanitation lists; unbounded, an offset past 2**63 failed in the database
# driver (500), and any deep offset makes PostgreSQL walk and discard that many rows
Status = Literal["applied", "approved", "rejected", "work_ordered", "signed", "active", "settled", "written_off"]

products = APIRouter(prefix="/products", tags=["products"])
settings = APIRouter(prefix="/settings", tags=["settings"])
financings = APIRouter(prefix="/financings", tags=["financings"])
members = APIRouter(prefix="/members", tags=["financings"])
portfolio = APIRouter(prefix="/portfolio", tags=["portfolio"])


def _rt(request: Request) -> CooperativeRuntime:
    return cooperative_runtime(request)  # the key's cooperative, behind row-level security


# -- products and settings ----------------------------------------------------------------------------------------


@products.post("", status_code=201, response_model=s.ProductResponse,
               summary="Define a product (each tenor's margin in basis points or in rupiah)")
async def define_product(body: s.DefineProductRequest, cmd: KeyedManagerCommand) -> s.ProductResponse:
    return await handlers.define_product(cmd.runtime, cmd.principal, body, cmd.context())


@products.get("", response_model=s.ProductList, summary="The cooperative's products")
async def list_products(principal: Officer, request: Request, purpose: str | None = None) -> s.ProductList:
    return await handlers.list_products(_rt(request), principal, purpose)


@products.get("/{product_id}", response_model=s.ProductResponse, summary="One product")
async def get_product(product_id: str, principal: Officer, request: Request) -> s.ProductResponse:
    return await handlers.get_product(_rt(request), principal, product_id)


@settings.get("", response_model=s.SettingsResponse, summary="The cooperative's loan settings")
async def get_settings(principal: Officer, request: Request) -> s.SettingsResponse:
    return await handlers.get_settings(_rt(request), principal)


@settings.put("", response_model=s.SettingsResponse, summary="Change the loan settings (sharia, provisioning)")
async def change_settings(body: s.SettingsBody, cmd: ManagerCommand) -> s.SettingsResponse:
    return await handlers.change_settings(cmd.runtime, cmd.principal, body, cmd.context())


# -- financings: queries -------------------------------------------------------------------------------------------


@financings.get("", response_model=s.FinancingList, summary="Financings, newest application first")
async def list_financings(principal: Officer, request: Request, member_id: UUID | None = None,
                          member_number: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
                          status: Status | None = None, product_id: str | None = None, limit: Limit = 50,
                          offset: Offset = 0) -> s.FinancingList:
    return await handlers.list_financings(_rt(request), principal, member_id=member_id, member_number=member_number,
                                          status=status, product_id=product_id, limit=limit, offset=offset)


@members.get("/{member_id}/financings", response_model=s.FinancingList, summary="A member's financings")
async def member_financings(member_id: UUID, principal: Officer, request: Request, limit: Limit = 50,
                            offset: Offset = 0) -> s.FinancingList:
    return await handlers.list_financings(_rt(request), principal, member_id=member_id, limit=limit, offset=offset)


@financings.get("/{financing_id}", response_model=s.FinancingResponse,
                summary="A financing with its schedule and its standing as of a date (default today)")
async def get_financing(financing_id: UUID, principal: Officer, request: Request,
                        as_of: BusinessDate | None = None) -> s.FinancingResponse:
    return await handlers.get_financing(_rt(request), principal, str(financing_id), as_of)


@financings.get("/{financing_id}/settlement-quote", response_model=s.SettlementQuoteResponse,
                summary="What settling in full on a date takes (owed less the rebate of unearned margin)")
async def settlement_quote(financing_id: UUID, principal: Officer, request: Request,
                           on: date | None = None) -> s.SettlementQuoteResponse:
    return await handlers.settlement_quote(_rt(request), principal, str(financing_id), on)


# -- financings: commands -------------------------------------------------------------------------------------------


@financings.post("", status_code=201, response_model=s.FinancingResponse,
                 summary="Take a member's application (margin: the product's, or one agreed in bp or rupiah)")
async def apply(body: s.ApplyRequest, cmd: KeyedOfficerCommand) -> s.FinancingResponse:
    return await handlers.apply(cmd.runtime, cmd.principal, body, cmd.context())


async def _run(cmd: CommandRequest, financing_id: UUID, command: str, body: object, decide: handlers.Decision,
               response: Response | None = None) -> s.FinancingResponse:
    view, recorded = await handlers.execute(
        cmd.runtime, cmd.principal, str(financing_id), decide, cmd.context(), command=command,
        body=body.model_dump(mode="json") if hasattr(body, "model_dump") else {})
    if response is not None:
        response.status_code = 201 if recorded else 200
    return view


@financings.post("/{financing_id}/approve", response_model=s.FinancingResponse,
                 summary="Approve (maker-checker: not the officer who took the application)")
async def approve(financing_id: UUID,
                  cmd: KeyedVersionedManagerCommand,
                  body: s.ApproveRequest | None = None) -> s.FinancingResponse:
    b, by = body or s.ApproveRequest(), cmd.actor
    return await _run(cmd, financing_id, "approve", b,
                      lambda st, t: fin.decide_approve(st, c.Approve(b.approved_on or t, by), today=t))


@financings.post("/{financing_id}/reject", response_model=s.FinancingResponse, summary="Reject with a reason")
async def reject(financing_id: UUID, body: s.RejectRequest,
                 cmd: KeyedVersionedManagerCommand) -> s.FinancingResponse:
    by = cmd.actor
    return await _run(cmd, financing_id, "reject", body,
                      lambda st, t: fin.decide_reject(st, c.Reject(body.reason, body.rejected_on or t, by, body.note),
                                                      today=t))


@financings.post("/{financing_id}/work-order", response_model=s.FinancingResponse,
                 summary="Record the purchase or work order (before the contract)")
async def record_work_order(financing_id: UUID, body: s.WorkOrderRequest,
                            cmd: KeyedVersionedManagerCommand) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "work_order", body, lambda st, t: fin.decide_record_work_order(
        st, c.RecordWorkOrder(body.work_order_ref, body.payee_type, body.payee_id, body.cost, body.ordered_on or t),
        today=t))


@financings.post("/{financing_id}/contract", response_model=s.FinancingResponse,
                 summary="Sign the contract: cost, margin, selling price and schedule are fixed")
async def sign_contract(financing_id: UUID,
                        cmd: KeyedVersionedManagerCommand,
                        body: s.SignRequest | None = None) -> s.FinancingResponse:
    b = body or s.SignRequest()
    return await _run(cmd, financing_id, "sign", b, lambda st, t: fin.decide_sign_contract(
        st, c.SignContract(b.signed_on or t, b.first_due_on), today=t))


@financings.post("/{financing_id}/disbursements", response_model=s.FinancingResponse,
                 summary="Disburse the first tranche to the payee (later tranches wait for the SNI inspection)")
async def disburse(financing_id: UUID,
                   cmd: KeyedVersionedManagerCommand,
                   body: s.DisburseRequest | None = None) -> s.FinancingResponse:
    b = body or s.DisburseRequest()
    return await _run(cmd, financing_id, "disburse", b, lambda st, t: fin.decide_disburse(
        st, c.DisburseTranche(b.disbursed_on or t, b.source_of_funds), today=t))


@financings.post("/{financing_id}/repayments", status_code=201, response_model=s.FinancingResponse,
                 summary="Record a repayment (201); a receipt number recorded before changes nothing (200)")
async def record_repayment(financing_id: UUID, body: s.RepaymentRequest, cmd: VersionedOfficerCommand,
                           response: Response) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "repayment", body, lambda st, t: fin.decide_record_repayment(
        st, c.RecordRepayment(body.receipt_number, body.amount, body.paid_on or t), today=t), response)


@financings.post("/{financing_id}/early-settlement", status_code=201, response_model=s.FinancingResponse,
                 summary="Settle in full early: pay the settlement quote; unearned margin is rebated")
async def settle_early(financing_id: UUID, body: s.EarlySettlementRequest, cmd: VersionedOfficerCommand,
                       response: Response) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "settle_early", body, lambda st, t: fin.decide_settle_early(
        st, c.SettleEarly(body.receipt_number, body.amount, body.settled_on or t), today=t), response)


@financings.post("/{financing_id}/reschedule", response_model=s.FinancingResponse,
                 summary="Spread the unpaid balance over a new schedule (never raises the total owed)")
async def reschedule(financing_id: UUID, body: s.RescheduleRequest,
                     cmd: KeyedVersionedManagerCommand) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "reschedule", body, lambda st, t: fin.decide_reschedule(
        st, c.Reschedule(body.instalments, body.rescheduled_on or t, body.reason, body.first_due_on, body.note),
        today=t))


@financings.post("/{financing_id}/discount", response_model=s.FinancingResponse,
                 summary="Forgive part of the unpaid margin")
async def discount(financing_id: UUID, body: s.DiscountRequest,
                   cmd: KeyedVersionedManagerCommand) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "discount", body, lambda st, t: fin.decide_discount_margin(
        st, c.DiscountMargin(body.amount, body.discounted_on or t, body.reason, body.note), today=t))


@financings.post("/{financing_id}/write-off", response_model=s.FinancingResponse,
                 summary="Write off with a reason (the member still owes it: repayments are recoveries)")
async def write_off(financing_id: UUID, body: s.WriteOffRequest,
                    cmd: KeyedVersionedManagerCommand) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "write_off", body, lambda st, t: fin.decide_write_off(
        st, c.WriteOff(body.written_off_on or t, body.reason, body.note), today=t))


@financings.post("/{financing_id}/hardship", response_model=s.FinancingResponse,
                 summary="Flag hardship: no late charge while it is set")
async def flag_hardship(financing_id: UUID, body: s.HardshipRequest,
                        cmd: KeyedVersionedOfficerCommand) -> s.FinancingResponse:
    return await _run(cmd, financing_id, "flag_hardship", body, lambda st, t: fin.decide_flag_hardship(
        st, c.FlagHardship(body.flagged_on or t, body.note), today=t))


@financings.post("/{financing_id}/hardship/clear", response_model=s.FinancingResponse, summary="Clear hardship")
async def clear_hardship(financing_id: UUID, cmd: KeyedVersionedOfficerCommand,
                         body: s.ClearHardshipRequest | None = None) -> s.FinancingResponse:
    b = body or s.ClearHardshipRequest()
    return await _run(cmd, financing_id, "clear_hardship", b, lambda st, t: fin.decide_clear_hardship(
        st, c.ClearHardship(b.cleared_on or t), today=t))


@financings.post("/{financing_id}/late-charges", status_code=201, response_model=s.FinancingResponse,
                 summary="Propose the product's late charge (ta'zir) for a late instalment; a second person decides")
async def propose_late_charge(financing_id: UUID, body: s.LateChargeRequest,
                              cmd: KeyedVersionedOfficerCommand) -> s.FinancingResponse:
    by = cmd.actor
    return await _run(cmd, financing_id, "propose_late_charge", body,
                      lambda st, t: fin.decide_propose_late_charge(
                          st, c.ProposeLateCharge(body.instalment_number, body.proposed_on or t, body.note, by),
                          today=t))


@financings.post("/{financing_id}/late-charges/{instalment_number}/approve", response_model=s.FinancingResponse,
                 summary="Approve a proposed late charge (not by its proposer); it goes to the social fund")
async def approve_late_charge(financing_id: UUID, instalment_number: int, cmd: KeyedVersionedManagerCommand,
                              body: s.LateChargeDecision | None = None) -> s.FinancingResponse:
    b, by = body or s.LateChargeDecision(), cmd.actor
    return await _run(cmd, financing_id, f"approve_late_charge:{instalment_number}", b,
                      lambda st, t: fin.decide_approve_late_charge(
                          st, c.ApproveLateCharge(instalment_number, b.decided_on or t, by), today=t))


@financings.post("/{financing_id}/late-charges/{instalment_number}/decline", response_model=s.FinancingResponse,
                 summary="Decline a proposed late charge")
async def decline_late_charge(financing_id: UUID, instalment_number: int, cmd: KeyedVersionedManagerCommand,
                              body: s.LateChargeDecision | None = None) -> s.FinancingResponse:
    b, by = body or s.LateChargeDecision(), cmd.actor
    return await _run(cmd, financing_id, f"decline_late_charge:{instalment_number}", b,
                      lambda st, t: fin.decide_decline_late_charge(
                          st, c.DeclineLateCharge(instalment_number, b.decided_on or t, by), today=t))


@financings.post("/{financing_id}/late-charges/{instalment_number}/payments", status_code=201,
                 response_model=s.FinancingResponse,
                 summary="Record money received against an approved late charge, to the social fund, never an "
                         "instalment (201); a retry with the same Idempotency-Key records nothing (200)")
async def pay_late_charge(financing_id: UUID, instalment_number: int, body: s.LateChargePaymentRequest,
                          cmd: KeyedVersionedOfficerCommand, response: Response) -> s.FinancingResponse:
    return await _run(cmd, financing_id, f"pay_late_charge:{instalment_number}", body,
                      lambda st, t: fin.decide_pay_late_charge(
                          st, c.PayLateCharge(instalment_number, body.receipt_number, body.amount, body.paid_on or t),
                          today=t), response)


# -- portfolio ----------------------------------------------------------------------------------------------------


@portfolio.get("", response_model=s.PortfolioResponse,
               summary="Portfolio quality as of a date: PAR1/30/90, provisioning, arrears, repayment rate")
async def portfolio_summary(
        principal: Manager, request: Request, as_of: BusinessDate | None = None,
        start: Annotated[date | None, Query(description=(
            "First day of the repayment-rate period (default: the trailing 12 calendar months up to end, i.e. "
            "the first of the month 11 months before end's month: the reporting dashboard's window)"))] = None,
        end: Annotated[date | None, Query(description="Last day of the repayment-rate period (default: as_of)")] = None,
) -> s.PortfolioResponse:
    return await handlers.portfolio(_rt(request), principal, as_of, start, end)


# -- bulk import ----------------------------------------------------------------------------------------------------

imports = APIRouter(prefix="/imports", tags=["imports"])


def _loan_book_body() -> dict[str, object]:
    """``POST /imports``' body as the document shows it: the route reads the stream itself (its own byte and
    row limits, CSV or JSON), so FastAPI cannot derive it; the JSON rows are ``bulk_import.BookRow``'s."""
    from shared.openapi import inline_schema

    row = inline_schema(bulk_import.BookRow)
    limits = (f"At most {bulk_import.MAX_ROWS:,} rows and {bulk_import.MAX_BYTES:,} bytes (413 beyond). A file "
              "with a refused row imports nothing (422 with every refused row and its reasons); a loan number "
              "imported before is refused, so a second run imports nothing twice.")
    return {"requestBody": {"required": True, "description": (
        "The loan book, one financing per row: JSON (a list of rows) or CSV (the same columns, `schedule` and "
        "`payments` written compactly). Each row's member is a `member_id` from members `POST /members`. "
        + limits), "content": {
        "application/json": {"schema": {"type": "array", "items": row, "maxItems": bulk_import.MAX_ROWS},
                             "examples": {"example-1": {"summary": "a financing repaid in full",
                                                        "value": s.LOAN_BOOK_EXAMPLE}}},
        "text/csv": {"schema": {"type": "string", "description": (
            "A header line with the JSON rows' field names, then one financing per line; `schedule` is "
            "`due_on=amount;...` and `payments` `receipt_number@paid_on=amount;...`. Send `Content-Type: text/csv` "
            "or `?format=csv`.")},
                     "examples": {"example-1": {"summary": "a financing repaid in full, as CSV",
                                                "value": s.LOAN_BOOK_CSV_EXAMPLE}}}}}}


@imports.post("", response_model=s.ImportReportResponse, openapi_extra=_loan_book_body(),
              summary="Import a loan book (CSV or JSON): every refused row is reported with its reasons")
async def import_loan_book(principal: Manager, request: Request,
                           format: Literal["csv", "json"] | None = None) -> s.ImportReportResponse:
    fmt = format or ("csv" if "csv" in request.headers.get("content-type", "") else "json")
    rows = await bulk_import.read_rows(request, fmt)  # 413 over the row or byte limit, 422 unreadable
    rt = _rt(request)
    assert principal.tenant_id is not None
    report = await bulk_import.import_loan_book(rt, principal.tenant_id, rows, actor=principal.actor,
                                                today=handlers.today(rt), wait_for_members=5.0)
    await bulk_import.release(rows)  # the parsed file: freed out of the event loop
    if report.refused:  # all or nothing: a refused row imports nothing
        return JSONResponse(bulk_import.refused_body(report), status_code=422)  # type: ignore[return-value]
    return s.ImportReportResponse.model_validate(report.as_dict())


routers = [products, settings, financings, members, portfolio, imports]
