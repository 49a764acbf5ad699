"""A runtime's parts (pools, the event store) exist once ``start`` made them: read before, each refuses with
``NotStarted`` naming the part; the login pools are set by ``start`` only."""

from __future__ import annotations

import pytest

from services.loans.app import build_runtime
from services.loans.settings import LoansSettings
from shared.runtime import NotStarted

PARTS = {
    "pool": "the request pool",
    "request_pool": "the request login pool",
    "background_pool": "the background login pool",
    "worker_pool": "the worker pool",
    "reaction_pool": "the reaction pool",
    "platform_pool": "the platform pool",
    "store": "the event store",
}


@pytest.mark.parametrize("part, what", PARTS.items())
def test_a_part_read_before_start_is_refused_by_name(part: str, what: str) -> None:
    rt = build_runtime(LoansSettings(event_source="none"))
    with pytest.raises(NotStarted, match=f"loans: {what} is used before the runtime started"):
        getattr(rt, part)


def test_a_part_set_is_the_part_read_and_the_login_pools_are_the_runtimes_own() -> None:
    rt = build_runtime(LoansSettings(event_source="none"))
    marker = object()
    rt.worker_pool = marker  # type: ignore[assignment]
    assert rt.worker_pool is marker
    assert rt.started is False  # the request pool, not the worker pool, says the runtime started
    for part in ("request_pool", "background_pool"):
        with pytest.raises(AttributeError):
            setattr(rt, part, marker)
