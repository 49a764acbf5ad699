"""POST /imports runs off the service's event loop and off its request pool (``bulk_import.off_the_loop``,
``ImportView``): another cooperative's GET is answered while imports hold their transactions open, and at
most ``import_concurrency`` imports run at once. Shown by ordering (imports held inside their transaction
by a signal), never by timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from services.loans import bulk_import
from tests.helpers import ServiceClient, eventually
from tests.services.conftest import BAIK, BMI, headers, service
from tests.services.loans.support import MANAGER, OFFICER, define_product, event_count, known_member
from tests.services.loans.test_import_api import book_row

#: how long a test waits for a signal before it fails (a safety net, not a measure)
WAIT_S = 60.0


class Held:
    """``bulk_import._prepare`` (a batch's statements, inside the import's transaction) held until ``go``:
    ``entered`` counts the imports that reached it; ``order`` records each import's entry and exit."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.go = threading.Event()
        self.order: list[str] = []
        self.loops: set[int] = set()
        self._real = bulk_import._prepare

    def __call__(self, tenant: str, chunk: Any, meta: Any, spent: list[Any]) -> Any:
        ref = bulk_import._ref(chunk[0])
        self.order.append(f"in {ref}")
        self.entered.release()
        assert self.go.wait(WAIT_S), "the test never let the import go on"
        self.order.append(f"out {ref}")
        return self._real(tenant, chunk, meta, spent)

    async def wait_entered(self) -> None:
        reached = await asyncio.to_thread(self.entered.acquire, True, WAIT_S)
        assert reached, "no import reached its transaction"


@contextmanager
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    h = Held()
    monkeypatch.setattr(bulk_import, "_prepare", h)
    try:
        yield h
    finally:
        h.go.set()  # never leave an import thread waiting


def posting(loans: ServiceClient, rows: list[dict[str, Any]]) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(loans.post("/imports", json=rows, headers=headers(BMI, MANAGER)))


async def prepared(loans: ServiceClient, refs: list[str]) -> list[list[dict[str, Any]]]:
    """A product and a known member in BMI; one single-row file for each of ``refs``."""
    await define_product(loans)
    member = await known_member(loans)
    files = []
    for ref in refs:
        row = book_row(ref)
        row["member_id"] = member
        files.append([row])
    return files


async def test_a_neighbours_get_is_answered_while_imports_hold_their_transactions_open(
        pg: Any, platform_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two imports of one cooperative, each held inside its transaction, on a service whose request pool
    has two connections: another cooperative's GET is still answered (200), at once. Before, each import
    held one of the request pool's connections for its whole transaction, so the GET waited for a
    connection until the pool's bound and answered 503."""
    async with service("loans", pg, platform_url, db_pool_max=2, db_acquire_timeout_s=2.0,
                       import_concurrency=2) as loans:
        files = await prepared(loans, ["H-1", "H-2"])
        before = await event_count(loans)
        with held(monkeypatch) as h:
            imports = [posting(loans, f) for f in files]
            await h.wait_entered()
            await h.wait_entered()
            # both imports are inside their transactions, neither has committed
            assert h.order == ["in H-1", "in H-2"] or h.order == ["in H-2", "in H-1"]
            r = await loans.get("/financings?limit=20", headers=headers(BAIK, OFFICER))
            assert r.status_code == 200, r.text
            r = await loans.get("/financings?limit=20", headers=headers(BMI, OFFICER))
            assert r.status_code == 200 and r.json()["items"] == [], r.text  # nothing committed yet
            assert not any(t.done() for t in imports)
            h.go.set()
            answers = await asyncio.wait_for(asyncio.gather(*imports), WAIT_S)
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert sum(a.json()["events"] for a in answers) == await event_count(loans) - before


async def test_imports_beyond_the_concurrency_wait_their_turn(pg: Any, platform_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``import_concurrency=1`` a second import waits (``waiting_imports``) until the first has
    committed, then runs; both import their rows."""
    async with service("loans", pg, platform_url, import_concurrency=1) as loans:
        files = await prepared(loans, ["T-1", "T-2"])
        with held(monkeypatch) as h:
            first = posting(loans, files[0])
            await h.wait_entered()
            second = posting(loans, files[1])
            runtime = loans.runtime
            await eventually(_true(lambda: bulk_import.waiting_imports(runtime) == 1), timeout=WAIT_S)
            assert h.order == ["in T-1"]
            h.go.set()
            answers = await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert h.order == ["in T-1", "out T-1", "in T-2", "out T-2"]
        assert bulk_import.waiting_imports(runtime) == 0


def _true(check: Callable[[], bool]) -> Callable[[], Any]:
    async def probe() -> bool:
        return check()

    return probe
