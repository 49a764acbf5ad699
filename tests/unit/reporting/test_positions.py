"""A financing's portfolio pieces on a known history (the property test on PostgreSQL compares them,
summed, with the portfolio computed from the facts on generated books)."""

from __future__ import annotations

from datetime import date

from services.reporting.indicators.positions import Facts, Piece, deltas, pieces

D = date


def facts(**kw: object) -> Facts:
    base: dict[str, object] = dict(
        product_id="tank", purpose="septic_tank", signed_on=D(2025, 1, 5), closed_on=None, close_reason=None,
        written_off_on=None, restructured_on=None, first_tranche_on=D(2025, 1, 10), first_tranche_fund="own_funds",
        schedules=[(D(2025, 1, 5), 4, [(1, D(2025, 2, 5), 110, 100), (2, D(2025, 3, 5), 110, 100)])],
        allocations=[])
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def test_an_unpaid_financing_moves_through_the_par_buckets_then_stays() -> None:
    got = pieces(facts())
    assert [(p.start, p.end, p.fund, p.bucket, p.principal, p.owed) for p in got] == [
        (D(2025, 1, 5), D(2025, 1, 10), "not_disbursed", 0, 200, 220),
        (D(2025, 1, 10), D(2025, 2, 7), "own_funds", 0, 200, 220),   # 1 day late is not "more than 1"
        (D(2025, 2, 7), D(2025, 3, 8), "own_funds", 1, 200, 220),
        (D(2025, 3, 8), D(2025, 5, 7), "own_funds", 30, 200, 220),
        (D(2025, 5, 7), None, "own_funds", 90, 200, 220),
    ]


def test_a_partial_payment_moves_the_principal_down_and_the_last_payment_ends_the_piece() -> None:
    got = pieces(facts(allocations=[(1, D(2025, 2, 5), 55), (1, D(2025, 2, 20), 55), (2, D(2025, 3, 1), 110)]))
    assert [(p.start, p.end, p.bucket, p.principal, p.owed) for p in got] == [
        (D(2025, 1, 5), D(2025, 1, 10), 0, 200, 220),
        (D(2025, 1, 10), D(2025, 2, 5), 0, 200, 220),
        (D(2025, 2, 5), D(2025, 2, 7), 0, 150, 165),   # 55 of 110 paid: 50 of its 100 principal
        (D(2025, 2, 7), D(2025, 2, 20), 1, 150, 165),
        (D(2025, 2, 20), D(2025, 3, 1), 0, 100, 110),
    ]


def test_settled_and_written_off_financings_leave_the_portfolio() -> None:
    settled = pieces(facts(closed_on=D(2025, 1, 20), close_reason="settled_early"))
    assert settled[-1].end == D(2025, 1, 20)
    written = pieces(facts(written_off_on=D(2025, 4, 1), restructured_on=D(2025, 3, 1)))
    assert written[-1].end == D(2025, 4, 1) and written[-1].restructured and not written[0].restructured


def test_deltas_of_a_change_cancel_what_did_not_change() -> None:
    a = [Piece(D(2025, 1, 1), None, "p", "x", "f", 0, False, 100, 110)]
    b = [Piece(D(2025, 1, 1), D(2025, 2, 1), "p", "x", "f", 0, False, 100, 110),
         Piece(D(2025, 2, 1), None, "p", "x", "f", 0, False, 50, 55)]
    changes, _ = deltas(a, b)
    assert list(changes.values()) == [[0, -50, -55]] and next(iter(changes))[0] == D(2025, 2, 1)
    assert deltas(b, b)[0] == {}
