"""The bulk import writes a financing's book rows from its own fold (``book.imported_rows``): the very rows
``book.stream_rows`` derives from the stored stream, folded again."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from services.loans import book
from services.loans.domain.loan_book import BookEntry, BookPayment, import_financing
from tests.unit.loans.story import TODAY, product

DUES = [date(2024, 2, 15) + timedelta(days=30 * i) for i in range(12)]


def entry(payments: list[BookPayment]) -> BookEntry:
    return BookEntry(loan_ref="BMI-2024-0001", member_id=str(uuid.uuid4()), product_id="mikro-tata-sanitasi",
                     cost=6_000_000, margin=720_000, signed_on=date(2024, 1, 15),
                     schedule=[(d, 560_000) for d in DUES], payments=payments)


@pytest.mark.parametrize("payments", [
    [],
    [BookPayment(f"KW-{i}", d, 560_000) for i, d in enumerate(DUES[:3])],  # on time
    [BookPayment(f"KW-{i}", d + timedelta(days=9), 400_000) for i, d in enumerate(DUES[:5])],  # late, partial
    [BookPayment("A", DUES[0], 1_000_000), BookPayment("B", DUES[4] + timedelta(days=3), 2_000_000)],
    [BookPayment("ALL", date(2024, 6, 1), 6_720_000)],  # settled at once
    [BookPayment(f"KW-{i}", d, 560_000) for i, d in enumerate(DUES)],  # paid off instalment by instalment
])
def test_the_import_writes_the_rows_the_stream_gives(payments: list[BookPayment]) -> None:
    imp = import_financing(entry(payments), product(), today=TODAY, actor="import:test")
    fast = book.imported_rows("kopsyah-bmi", imp.events, imp.state, "import:test")
    slow = book.stream_rows("kopsyah-bmi", [
        book.StoredFact(imp.financing_id, n, e.type, "import:test", e.occurred_at, e.payload)  # type: ignore[arg-type]
        for n, e in enumerate(imp.events, start=1)])
    assert fast == slow
    assert fast.book and fast.statuses and fast.instalments
    assert len(fast.allocations) == sum(len(e.payload["allocations"]) for e in imp.events
                                        if e.type == "loans.RepaymentRecorded")


def test_a_book_imported_before_the_published_event_folds_and_reads_the_same() -> None:
    """Streams of books imported earlier hold the internal ``DisbursementImported`` where new ones hold
    ``FinancingImported``: the same financing, the same rows."""
    from services.loans.domain import financing as fin
    from shared.envelope import NewEvent

    imp = import_financing(entry([BookPayment("KW-0", DUES[0], 560_000)]), product(), today=TODAY)
    [k] = [n for n, e in enumerate(imp.events) if e.type == "loans.FinancingImported"]
    new = imp.events[k].payload
    old = NewEvent("loans.DisbursementImported", {"loan_ref": new["loan_ref"], "tranches": new["tranches"]}, 1,
                   imp.events[k].occurred_at)
    events = [*imp.events[:k], old, *imp.events[k + 1:]]

    def rows(evs: list[NewEvent]) -> book.BookRows:
        return book.stream_rows("kopsyah-bmi", [book.StoredFact(imp.financing_id, n, e.type, "import", e.occurred_at,
                                                                e.payload)  # type: ignore[arg-type]
                                                for n, e in enumerate(evs, start=1)])

    assert rows(events) == rows(imp.events)
    assert book.imported_rows("kopsyah-bmi", events, imp.state, "import") == rows(events)
    assert fin.payload_business_date(old.type, old.payload) == fin.payload_business_date(imp.events[k].type, new)


@pytest.mark.parametrize("paid", [0, 3, 12])
def test_an_earlier_import_gets_the_event_a_new_import_appends(paid: int) -> None:
    """``loan_book.earlier_import_published``: for a stream of the earlier shape, the ``FinancingImported``
    the import appends today (the state as imported from the import's own events), dated alike; nothing
    for a stream that has one."""
    from datetime import UTC, datetime

    from services.loans.domain.loan_book import earlier_import_published
    from shared.envelope import Envelope, Metadata, NewEvent
    from tests.events import recorded

    today = date(2025, 3, 1)
    imp = import_financing(entry([BookPayment(f"KW-{i}", d, 560_000) for i, d in enumerate(DUES[:paid])]), product(),
                           today=TODAY)
    [k] = [n for n, e in enumerate(imp.events) if e.type == "loans.FinancingImported"]
    new = imp.events[k]
    old = [*imp.events[:k], NewEvent("loans.DisbursementImported", {"loan_ref": new.payload["loan_ref"],
                                                                    "tranches": new.payload["tranches"]}),
           *imp.events[k + 1:]]
    cid, later = uuid.uuid4(), uuid.uuid4()

    def stored(events: list[NewEvent], correlation: uuid.UUID, first: int = 1) -> list[Envelope]:
        return recorded(events, imp.financing_id, stream_type="financing", tenant="kopsyah-bmi",
                        after=first - 1, at=datetime.combine(today, datetime.min.time(), tzinfo=UTC),
                        meta=Metadata(correlation_id=correlation))

    # a repayment recorded live after the import is not part of the state as imported
    stream = stored(old, cid)
    if paid < 12:
        stream += stored([NewEvent("loans.RepaymentRecorded", {**imp.events[6].payload, "receipt_number": "LIVE"}
                                   if paid else {"financing_id": imp.financing_id, "member_id": new.payload["member_id"],
                                                 "receipt_number": "LIVE", "amount": 1, "paid_on": "2025-03-01",
                                                 "allocations": {"1": 1}})], later, len(stream) + 1)
    got = earlier_import_published(stream)
    assert got is not None and got.type == "loans.FinancingImported" and got.occurred_at == new.occurred_at
    assert got.payload == {**new.payload, "imported_on": today.isoformat()}
    assert got.payload["status"] == ("settled" if paid == 12 else "active")
    assert earlier_import_published([*stream, *stored([got], later, len(stream) + 1)]) is None
    assert earlier_import_published(stored(imp.events, cid)) is None
