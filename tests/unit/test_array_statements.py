"""``shared.db.array_statements``: a statement over array parameters split into statements of whole rows,
at most about ``elements`` array elements each, is the one statement's parameters cut in order (checked
against the one statement, ``elements=None``, on generated columns)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.db import array_statements, chunks, column_chunks


@given(width=st.integers(1, 6), height=st.integers(0, 60), elements=st.integers(1, 200),
       fixed=st.lists(st.integers(), max_size=2))
def test_the_statements_are_the_one_statements_rows_in_order(width: int, height: int, elements: int,
                                                             fixed: list[int]) -> None:
    columns = [[(c, r) for r in range(height)] for c in range(width)]
    one = array_statements("SQL", columns, fixed=fixed)
    parts = array_statements("SQL", columns, fixed=fixed, elements=elements)
    assert len(one) == (1 if height else 0)
    assert all(sql == "SQL" and args[:len(fixed)] == fixed for sql, args in (*one, *parts))
    for c in range(width):
        joined = [x for _, args in parts for x in args[len(fixed) + c]]
        assert joined == (one[0][1][len(fixed) + c] if one else [])
    per = max(1, elements // width)
    sizes = [len(args[len(fixed)]) for _, args in parts]
    assert all(0 < s <= per for s in sizes) and all(s == per for s in sizes[:-1])
    assert all(len({len(a) for a in args[len(fixed):]}) == 1 for _, args in parts)  # whole rows


def _array_statements_before(sql: str, columns: Any, *, fixed: Any = (), elements: int | None = None) -> Any:
    """``array_statements`` as it was before ``chunks`` and ``column_chunks`` (kept as the oracle)."""
    n = len(columns[0]) if columns else 0
    step = n if elements is None else max(1, elements // max(1, len(columns)))
    return [(sql, [*fixed, *(list(c[k:k + step]) for c in columns)]) for k in range(0, n, max(1, step))]


@given(width=st.integers(0, 6), height=st.integers(0, 60), elements=st.none() | st.integers(1, 200),
       fixed=st.lists(st.integers(), max_size=2), tuples=st.booleans())
def test_the_statements_and_column_chunks_are_the_earlier_computations(
        width: int, height: int, elements: int | None, fixed: list[int], tuples: bool) -> None:
    columns: list[Any] = [[(c, r) for r in range(height)] for c in range(width)]
    if tuples:  # callers pass zip()'s tuples too
        columns = [tuple(c) for c in columns]
    before = _array_statements_before("SQL", columns, fixed=fixed, elements=elements)
    assert array_statements("SQL", columns, fixed=fixed, elements=elements) == before
    assert column_chunks(columns, elements) == [args[len(fixed):] for _, args in before]


@given(seq=st.lists(st.integers(), max_size=80), n=st.integers(1, 30), as_range=st.booleans())
def test_chunks_cut_the_sequence_in_order(seq: list[int], n: int, as_range: bool) -> None:
    items: Any = range(len(seq)) if as_range else seq
    parts = chunks(items, n)
    assert [x for p in parts for x in p] == list(items)
    assert all(len(p) == n for p in parts[:-1]) and all(0 < len(p) <= n for p in parts)
    assert parts == [items[k:k + n] for k in range(0, len(items), n)]


def test_chunks_refuses_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        chunks([1, 2], 0)
