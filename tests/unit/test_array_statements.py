"""``shared.db.array_statements``: a statement over array parameters split into statements of whole rows,
at most about ``elements`` array elements each, is the one statement's parameters cut in order (checked
against the one statement, ``elements=None``, on generated columns)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.db import array_statements


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
