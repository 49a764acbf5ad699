"""Portfolio quality from the reporting read model equals the loans service's own definition, on random
financing histories: payments on time, late, partial and missed, reschedules, margin discounts, early
settlements and write-offs with recoveries, asked as of many dates.

The histories are decided by the loans service's pure domain (so they obey its rules), stored in an event
log like the loans service's, and projected by ``reporting.financing`` from that log. The oracle is the
loans domain's fold "as of" a date with its ``quality.portfolio`` and ``repayment_rate``.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from deploy.local.infra import PostgresHandle
from services.loans.domain import financing as fin
from services.loans.domain import quality
from services.loans.domain.commands import (
    Apply,
    Approve,
    DisburseTranche,
    DiscountMargin,
    MemberFacts,
    RecordRepayment,
    RecordWorkOrder,
    Reschedule,
    SettleEarly,
    SignContract,
    WriteOff,
)
from services.loans.domain.errors import LoanRuleViolation
from services.loans.domain.product import LoanSettings, Product
from services.reporting import queries as q
from services.reporting.indicators.maths import PAR_DAYS
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from shared.consumer import TRACKING_MIGRATIONS
from shared.consumer.log_source import EventLogSource
from shared.contracts import load_all
from shared.db import create_pool, migrate
from shared.envelope import Envelope, NewEvent, utcnow
from shared.eventstore import StreamAppend
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore, PostgresLogReader
from shared.rls import tenant_scope

TODAY = date(2026, 6, 30)
TENANT = "oracle-coop"
PRODUCTS = [
    Product(product_id="tank", name="tank", purpose="septic_tank", contract_type="murabahah", frequency="monthly",
            min_amount=1_000_000, max_amount=10_000_000, tenors=((10, 1000), (12, 1200)), tranche_percents=(50, 50),
            late_charge=10_000, funds=("own_funds", "water_org"), min_membership_months=0),
    Product(product_id="air", name="air", purpose="water_connection", contract_type="murabahah", frequency="weekly",
            min_amount=1_000_000, max_amount=3_000_000, tenors=((8, 800),), tranche_percents=(100,),
            funds=("own_funds",), min_membership_months=0),
]


class History:
    """One financing decided command by command; keeps its events as the store would."""

    def __init__(self) -> None:
        self.state = fin.Financing()
        self.events: list[NewEvent] = []
        self.envelopes: list[Envelope] = []
        self.fid = str(uuid.uuid4())

    def do(self, decide: Any, cmd: Any, actor: str = "officer") -> bool:
        try:
            new = decide(self.state, cmd, today=TODAY)
        except LoanRuleViolation:
            return False
        for e in new:
            env = Envelope(event_id=uuid.uuid4(), tenant_id=TENANT, stream_type="financing", stream_id=self.fid,
                           version=len(self.envelopes) + 1, type=e.type, schema_version=1, occurred_at=utcnow(),
                           recorded_at=utcnow(), actor=actor, payload=e.payload)
            self.state = fin.evolve(self.state, Envelope.model_validate_json(env.to_json()))
            self.envelopes.append(env)
            self.events.append(e)
        return True


def random_history(rng: random.Random) -> History:
    h = History()
    product = rng.choice(PRODUCTS)
    tenor, _ = rng.choice(product.tenors)
    start = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 300))
    amount = rng.randrange(product.min_amount, product.max_amount + 1, 1000) + rng.randrange(0, 7)
    h.do(lambda s, c, today: fin.decide_apply(s, c, product, MemberFacts(joined_on=date(2020, 1, 1)), today=today),
         Apply(h.fid, str(uuid.uuid4()), amount, tenor, start, "officer"))
    h.do(fin.decide_approve, Approve(start + timedelta(days=1), "manager"), "manager")
    payee = "contractor" if product.purpose == "septic_tank" else "pdam"
    h.do(fin.decide_record_work_order, RecordWorkOrder("WO", payee, "p", amount, start + timedelta(days=2)))
    h.do(fin.decide_sign_contract, SignContract(start + timedelta(days=3)))
    h.do(fin.decide_disburse, DisburseTranche(start + timedelta(days=4), rng.choice(product.funds)))
    if len(product.tranche_percents) == 2 and rng.random() < 0.8:
        h.do(fin.decide_disburse, DisburseTranche(start + timedelta(days=rng.randrange(5, 40))))
    day = start + timedelta(days=5)
    receipt = 0
    while day < TODAY and h.state.status in ("signed", "active", "written_off") and h.state.owed > 0:
        unpaid = [i for i in h.state.instalments if i.owed > 0]
        nxt = unpaid[0]
        roll = rng.random()
        receipt += 1
        if roll < 0.55:  # pays the next instalment, on time or a little late
            on = max(day, nxt.due_on + timedelta(days=rng.choice([0, 0, 0, -3, 2, 9, 40])))
            h.do(fin.decide_record_repayment, RecordRepayment(f"r{receipt}", nxt.owed, min(on, TODAY)))
        elif roll < 0.65:  # a partial payment
            on = max(day, nxt.due_on + timedelta(days=rng.randrange(-5, 20)))
            h.do(fin.decide_record_repayment, RecordRepayment(f"r{receipt}", max(1, nxt.owed // 3), min(on, TODAY)))
        elif roll < 0.70 and h.state.status != "written_off":
            h.do(fin.decide_reschedule, Reschedule(rng.randrange(3, 15), day, "hardship"), "manager")
        elif roll < 0.72 and h.state.status != "written_off" and h.state.margin_owed > 1:
            h.do(fin.decide_discount_margin, DiscountMargin(rng.randrange(1, h.state.margin_owed), day, "goodwill"),
                 "manager")
        elif roll < 0.75 and h.state.status != "written_off":
            h.do(fin.decide_write_off, WriteOff(day, "uncollectable"), "manager")
        elif roll < 0.78 and h.state.status != "written_off" and (h.state.last_paid_on or day) <= day:
            quote = fin.settlement_quote(h.state, day)
            h.do(fin.decide_settle_early, SettleEarly(f"s{receipt}", quote.to_pay, day))
        # else: misses this round
        day = max(day, h.state.last_paid_on or day, h.state.schedule_changed_on or day) + timedelta(
            days=rng.randrange(10, 45))
    return h


async def test_portfolio_quality_matches_the_loans_definition(pg: PostgresHandle) -> None:
    rng = random.Random(20251231)
    histories = [random_history(rng) for _ in range(60)]
    assert sum(1 for h in histories if h.state.restructured) >= 3
    assert sum(1 for h in histories if h.state.status == "written_off") >= 2
    assert sum(1 for h in histories if h.state.close_reason == "settled_early") >= 1

    src_url, dst_url = await pg.create_database("oracle_loans"), await pg.create_database("oracle_reporting")
    spool, dpool = await create_pool(src_url, 1, 3), await create_pool(dst_url, 1, 3)
    try:
        async with spool.acquire() as conn:
            await migrate(conn, "eventstore", MIGRATIONS)
        store = PostgresEventStore(spool, src_url)
        await store.append_batch([StreamAppend(TENANT, "financing", h.fid, 0, h.events) for h in histories])
        b = Build(FAMILIES["financing"], "reporting.financing.v1", "v1")
        async with dpool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS)
            await migrate(conn, f"projection:{b.name}", list(b.migrations))
        source = EventLogSource(dpool, "loans", PostgresLogReader(spool, src_url), b, load_all())
        while await source.step():
            pass

        dates = sorted({date(2024, 3, 1) + timedelta(days=rng.randrange(0, 800)) for _ in range(25)}
                       | {i.due_on for h in histories[:5] for i in h.state.instalments if i.due_on <= TODAY})
        settings = LoanSettings()
        async with tenant_scope(dpool, TENANT) as conn:
            ours = await q.portfolio(conn, {"financing": b.names}, dates)
            for on in dates:
                states = [fin.fold_as_of(h.envelopes, on) for h in histories]
                theirs = quality.portfolio(states, on, settings)
                mine = ours[on]["all"]
                assert (mine.financings, mine.gross_principal) == (theirs.financings, theirs.gross_principal), on
                for n in PAR_DAYS:
                    assert mine.at_risk[n] == theirs.par[n].at_risk, (on, n)
                    assert mine.at_risk_with_restructured[n] == theirs.par_with_restructured[n].at_risk, (on, n)
                assert mine.restructured_principal == theirs.restructured.at_risk, on
                start = on.replace(day=1)
                rate = quality.repayment_rate(states, start, on)
                assert await q.repayment(conn, {"financing": b.names}, start, on) == (rate.paid_on_time,
                                                                                   rate.fallen_due), on
                year = date(on.year, 1, 1)
                rate = quality.repayment_rate(states, year, on)
                assert await q.repayment(conn, {"financing": b.names}, year, on) == (rate.paid_on_time,
                                                                                  rate.fallen_due), on
    finally:
        await spool.close()
        await dpool.close()
