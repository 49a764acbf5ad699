"""``queries.facts_by_date`` and ``queries.repayment_in`` (what ``Withheld`` and ``bulk._Withheld`` both sum
the withheld financings' parts with) give what the two loops they replace gave, on generated parts: the
loops are kept here as the oracles, as they were written in each class."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.reporting.queries import facts_by_date, repayment_in

DAY0 = date(2024, 1, 1)
days = st.integers(0, 90).map(lambda n: DAY0 + timedelta(days=n))
labels = st.none() | st.sampled_from(["p1", "p2", "septic_tank"])
metrics = st.sampled_from(["applied", "value", "repaid"])
kinds = st.sampled_from(["product", "fund", "money"])


def facts_on_before(books: list[dict[tuple[date, tuple[str, Any, Any, str]], int]], dates: list[date],
                    kind: str) -> list[tuple[Any, ...]]:
    """``Withheld.facts_on`` before (its ``facts_parts(b)`` for each book given as ``books``)."""
    out: dict[tuple[date, str | None, str | None, str], int] = {}
    for b in books:
        for (on, (k, a, bb, metric)), amount in b.items():
            if k != kind:
                continue
            for d in dates:
                if on <= d:
                    out[(d, a, bb, metric)] = out.get((d, a, bb, metric), 0) + amount
    return [(*key, v) for key, v in sorted(out.items(), key=lambda x: str(x[0])) if v]


def bulk_facts_on_before(summed: dict[tuple[date, Any, Any, str], int],
                         dates: list[date]) -> list[tuple[Any, ...]]:
    """``bulk._Withheld.facts_on`` before (over its parts added up per category, ``_facts[kind]``)."""
    out: dict[tuple[date, str | None, str | None, str], int] = {}
    for (on, a, bb, metric), amount in summed.items():
        for d in dates:
            if on <= d:
                out[(d, a, bb, metric)] = out.get((d, a, bb, metric), 0) + amount
    return [(*key, v) for key, v in sorted(out.items(), key=lambda x: str(x[0])) if v]


def repayment_before(cells: list[tuple[tuple[date, date], tuple[int, int]]], start: date,
                     end: date) -> tuple[int, int]:
    """``Withheld.repayment`` and ``bulk._Withheld.repayment`` before (the same loop in each)."""
    on_time = due = 0
    for (on, due_on), (x, y) in cells:
        if on <= end and start <= due_on <= end:
            on_time, due = on_time + x, due + y
    return on_time, due


book = st.dictionaries(st.tuples(days, st.tuples(kinds, labels, labels, metrics)), st.integers(-5, 5),
                       max_size=12)


@given(books=st.lists(book, max_size=4), dates=st.lists(days, min_size=1, max_size=4), kind=kinds)
def test_facts_by_date_is_the_loops_it_replaces(books: list[Any], dates: list[date], kind: str) -> None:
    parts = [((on, a, bb, m), v) for b in books for (on, (k, a, bb, m)), v in b.items() if k == kind]
    assert facts_by_date(parts, dates) == facts_on_before(books, dates, kind)
    summed: dict[tuple[date, Any, Any, str], int] = {}
    for key, v in parts:
        summed[key] = summed.get(key, 0) + v
    assert facts_by_date(summed.items(), dates) == bulk_facts_on_before(summed, dates)


@given(cells=st.lists(st.tuples(st.tuples(days, days), st.tuples(st.integers(0, 9), st.integers(0, 9))),
                      max_size=20), start=days, end=days)
def test_repayment_in_is_the_loop_it_replaces(cells: list[Any], start: date, end: date) -> None:
    assert repayment_in(cells, start, end) == repayment_before(cells, start, end)
