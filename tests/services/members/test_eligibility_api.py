"""Eligibility for WASH financing on real PostgreSQL: the LoanStanding reaction is driven directly with
loans envelopes inside a consumer transaction (as the Kafka and embedded sources do), and
GET /members/{id}/eligibility answers from what it kept."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from services.members.domain.eligibility import add_months
from services.members.handlers.common import today
from services.members.reactions import LoanStanding
from shared.consumer import apply_events
from shared.contracts import load_all
from shared.envelope import Envelope
from tests.events import loans
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import manager, register

REGISTRY = load_all()


class Financing:
    """A financing the loans service's own domain code decides (``tests.events.LoansProducer``): the
    envelopes, stream versions and allocations its relay would publish (12 instalments of Rp 560,000, the
    first due 2 May 2025)."""

    def __init__(self, member_id: str, tenant: str = BMI) -> None:
        self.member_id, self.tenant, self.id = member_id, tenant, str(uuid.uuid4())

    async def signed(self) -> Envelope:
        return await loans().signed(self.tenant, self.member_id, financing_id=self.id, signed_on=date(2025, 4, 2))

    async def repaid(self, receipt: str, paid_on: date, amount: int) -> Envelope:
        [recorded] = await loans().repaid(self.tenant, self.id, receipt, paid_on, amount)
        return recorded


async def handle(client: ServiceClient, *envelopes: Envelope) -> None:
    """Hand envelopes to the reaction's handle() inside one transaction of the members database."""
    reaction = LoanStanding()
    async with client.runtime.pool.acquire() as conn, conn.transaction():  # type: ignore[union-attr]
        for env in envelopes:
            await reaction.handle(conn, env, REGISTRY.decode(env))


async def eligibility(client: ServiceClient, member_id: str, as_of: str, tenant: str = BMI) -> dict[str, Any]:
    r = await client.get(f"/members/{member_id}/eligibility?as_of={as_of}", headers=headers(tenant))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def reason(body: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(c for c in body["reasons"] if c["rule"] == rule)


async def test_overdue_financing_boundaries(members: ServiceClient) -> None:
    m = await register(members)  # joined 2021-03-15
    f = Financing(m["member_id"])
    assert (await eligibility(members, m["member_id"], "2025-06-02"))["eligible"] is True
    await handle(members, await f.signed())  # first instalment due 2025-05-02, nothing paid
    on_time = await eligibility(members, m["member_id"], "2025-05-02")
    assert on_time["eligible"] is True and on_time["overdue_financings"] == []
    thirty = await eligibility(members, m["member_id"], "2025-06-01")
    assert thirty["eligible"] is True
    assert thirty["overdue_financings"] == [{"financing_id": f.id, "instalment": 1, "due_on": "2025-05-02",
                                             "days_overdue": 30, "unpaid": 560_000}]
    late = await eligibility(members, m["member_id"], "2025-06-02")
    assert late["eligible"] is False
    rule = reason(late, "no_financing_overdue")
    assert rule["passed"] is False and "31 days overdue" in rule["reason"] and "at most 30" in rule["reason"]
    assert reason(late, "minimum_tenure")["passed"] is True and reason(late, "active_member")["passed"] is True


async def test_repayments_and_closing_change_the_answer(members: ServiceClient) -> None:
    m = await register(members)
    f = Financing(m["member_id"])
    await handle(members, await f.signed(), await f.repaid("KW-1", date(2025, 5, 2), 300_000))
    body = await eligibility(members, m["member_id"], "2025-06-10")
    assert body["eligible"] is False and body["overdue_financings"][0]["unpaid"] == 260_000
    await handle(members, await f.repaid("KW-2", date(2025, 6, 10), 820_000))  # instalment 1's rest, then 2
    assert (await eligibility(members, m["member_id"], "2025-06-10"))["eligible"] is True
    # as it stood before that repayment
    assert (await eligibility(members, m["member_id"], "2025-06-09"))["eligible"] is False
    # much later nothing more was paid: instalment 3 (due 2 July) is 31 days late on 2 August
    assert (await eligibility(members, m["member_id"], "2025-08-02"))["overdue_financings"][0]["days_overdue"] == 31
    settled = await loans().settled_early(BMI, f.id, "KW-3", date(2025, 7, 20))
    assert [e.type for e in settled] == ["loans.RepaymentRecorded", "loans.FinancingClosed"]
    assert settled[1].payload["reason"] == "settled_early"
    await handle(members, *settled)
    assert (await eligibility(members, m["member_id"], "2025-08-02"))["eligible"] is True


async def test_a_written_off_financing_keeps_the_member_ineligible(members: ServiceClient) -> None:
    m = await register(members)
    f = Financing(m["member_id"])
    await handle(members, await f.signed(), *await loans().written_off(BMI, f.id, date(2025, 9, 1)))
    assert (await eligibility(members, m["member_id"], "2025-10-01"))["eligible"] is False


async def test_tenure_and_settings(members: ServiceClient) -> None:
    joined = add_months(today(members.runtime), -7)
    m = await register(members, member_number="BMI-NEW-1", joined_on=joined.isoformat())
    body = await eligibility(members, m["member_id"], today(members.runtime).isoformat())
    assert body["eligible"] is False
    assert reason(body, "minimum_tenure")["reason"] == (
        f"a member for 7 whole months; at least 12 needed (reached on {add_months(joined, 12)})")
    settings = (await members.get("/settings", headers=headers(BMI))).json()
    del settings["version"]
    r = await members.put("/settings", json={**settings, "min_tenure_months": 6}, headers=manager())
    assert r.status_code == 200
    r = await members.get(f"/members/{m['member_id']}/eligibility", headers=headers(BMI))  # as_of: today
    assert r.status_code == 200 and r.json()["eligible"] is True and r.json()["as_of"] == today(members.runtime).isoformat()


async def test_an_exited_member_is_not_eligible(members: ServiceClient) -> None:
    m = await register(members)
    r = await members.post(f"/members/{m['member_id']}/exit", json={"exited_on": "2025-01-31", "reason": "voluntary"},
                           headers=headers(BMI))
    assert r.status_code == 200
    assert (await eligibility(members, m["member_id"], "2025-01-30"))["eligible"] is True
    body = await eligibility(members, m["member_id"], "2025-01-31")
    assert body["eligible"] is False and reason(body, "active_member")["reason"] == "left the cooperative on 2025-01-31"


async def test_loans_events_of_another_cooperative_do_not_count(members: ServiceClient) -> None:
    m = await register(members)
    await handle(members, await Financing(m["member_id"], tenant=BAIK).signed())
    assert (await eligibility(members, m["member_id"], "2025-09-01"))["eligible"] is True
    r = await members.get(f"/members/{m['member_id']}/eligibility", headers=headers(BAIK))
    assert r.status_code == 404


async def test_eligibility_refusals(members: ServiceClient) -> None:
    m = await register(members)
    r = await members.get(f"/members/{m['member_id']}/eligibility?as_of=June", headers=headers(BMI))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "as_of"
    r = await members.get(f"/members/{uuid.uuid4()}/eligibility", headers=headers(BMI))
    assert r.status_code == 404


async def test_redelivered_events_are_applied_once(members: ServiceClient) -> None:
    m = await register(members)
    f = Financing(m["member_id"])
    batch = [await f.signed(), await f.repaid("KW-1", date(2025, 5, 2), 300_000)]
    reaction = LoanStanding()
    pool = members.runtime.pool
    assert pool is not None
    for _ in range(2):  # the same records delivered twice
        async with pool.acquire() as conn, conn.transaction():
            outcome, dead = await apply_events(conn, reaction, REGISTRY, batch)
    assert (outcome.applied, outcome.skipped, dead) == (0, 2, [])
    assert await pool.fetchval("SELECT sum(amount) FROM loan_payments") == 300_000
    # even the handler itself, called again (a replayed dead letter), adds nothing
    await handle(members, *batch)
    assert await pool.fetchval("SELECT sum(amount) FROM loan_payments") == 300_000
    assert await pool.fetchval("SELECT count(*) FROM loan_instalments") == 12
    assert (await eligibility(members, m["member_id"], "2025-06-02"))["overdue_financings"][0]["unpaid"] == 260_000


async def test_out_of_order_delivery_still_adds_up(members: ServiceClient) -> None:
    m = await register(members)
    f = Financing(m["member_id"])
    signed = await f.signed()
    repaid = await f.repaid("KW-1", date(2025, 5, 2), 560_000)
    await handle(members, repaid)  # a repayment seen before the signing (a replayed dead letter)
    assert (await eligibility(members, m["member_id"], "2025-06-03"))["eligible"] is True
    await handle(members, signed)
    body = await eligibility(members, m["member_id"], "2025-07-03")
    assert body["overdue_financings"][0]["instalment"] == 2 and body["overdue_financings"][0]["days_overdue"] == 31


async def test_a_rescheduled_financing_is_judged_by_its_new_schedule(members: ServiceClient) -> None:
    m = await register(members)
    f = Financing(m["member_id"])
    await handle(members, await f.signed())  # instalment 1 (due 2 May) unpaid
    assert (await eligibility(members, m["member_id"], "2025-06-10"))["eligible"] is False
    # the whole Rp 6,720,000 spread over 6 new instalments from 10 July, as the loans service decides it
    rescheduled = await loans().rescheduled(BMI, f.id, 6, date(2025, 6, 10), first_due_on=date(2025, 7, 10))
    assert [(i["number"], i["due_on"], i["amount"]) for i in rescheduled.payload["schedule"]] == [
        (n, add_months(date(2025, 7, 10), n - 1).isoformat(), 1_120_000) for n in range(1, 7)]
    await handle(members, rescheduled)
    assert (await eligibility(members, m["member_id"], "2025-06-09"))["eligible"] is False  # the old schedule
    assert (await eligibility(members, m["member_id"], "2025-06-10"))["eligible"] is True
    await handle(members, await f.repaid("KW-9", date(2025, 7, 10), 1_120_000))
    body = await eligibility(members, m["member_id"], "2025-09-10")  # new instalment 2 was due 10 August
    assert body["overdue_financings"][0]["instalment"] == 2 and body["overdue_financings"][0]["days_overdue"] == 31
