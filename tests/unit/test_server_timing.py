"""``shared.timing``: the parts of a request's time and its ``Server-Timing`` header."""

from __future__ import annotations

import asyncio

from shared import timing


def test_the_header_reads_back_as_written() -> None:
    parts = {"scope": 0.0031, "auth": 0.0125}
    value = timing.header(parts, 0.0204)
    assert value == "app;dur=20.4, auth;dur=12.5, scope;dur=3.1"
    assert timing.parse(value) == {"app": 20.4, "auth": 12.5, "scope": 3.1}
    assert timing.parse('cache;desc="hit", db;dur=2') == {"db": 2.0}


def test_parts_add_up_per_request_and_are_not_kept_outside_one() -> None:
    async def request() -> dict[str, float]:
        parts = timing.begin()
        timing.add("acquire", 0.002)
        timing.add("acquire", 0.001)
        with timing.timed("scope"):
            await asyncio.sleep(0.01)
        return parts

    async def both() -> list[dict[str, float]]:
        return list(await asyncio.gather(request(), request()))

    for parts in asyncio.run(both()):  # each task its own record
        assert abs(parts["acquire"] - 0.003) < 1e-9 and parts["scope"] >= 0.009
    timing.add("auth", 1.0)  # outside a request: nothing to add to, and no error
    with timing.timed("auth"):
        pass
