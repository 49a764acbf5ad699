"""While reporting applies a large batch of imported financings (batches of 2,000 events, real PostgreSQL),
no garbage collection walks the heap the service built at start.

What held it (S5N, ``event_loop_held`` in reporting's log): full garbage collections, set off by a batch's
allocations, each walking the whole heap the service had built at start (160-380 ms each; the decoding and
the projection's CPU work already give the loop a turn every ``shared.worker.TURN_S``). The serving app now
freezes its start-up heap once its runtime has started (``shared.runtime.freeze_heap``, ``gc_freeze``: the
lifespan's part is ``test_the_app_freezes_what_its_whole_start_built``), so a collection walks only what
was made since: asserted by counting the objects each full collection during the batches walks (no timing:
how long the loop is held is the benchmark's, ``python -m bench --only S5N``; a ticker's bound here failed
under a loaded machine and did not tell the parent commit apart).
"""

from __future__ import annotations

import gc
import random
from datetime import date

from deploy.local.infra import PostgresHandle
from services.reporting.projections.base import Build
from services.reporting.projections.catalog import FAMILIES
from services.reporting.runtime import ReportingRuntime
from shared.consumer import TRACKING_MIGRATIONS
from shared.consumer.log_source import EventLogSource
from shared.contracts import load_all
from shared.db import create_pool, migrate
from shared.eventstore import StreamAppend
from shared.eventstore.postgres import MIGRATIONS, PostgresEventStore, PostgresLogReader
from shared.runtime import freeze_heap
from tests.helpers import running_app
from tests.services.reporting.conftest import reporting_settings
from tests.services.reporting.test_portfolio_rewrite import history, imported_history

#: at most this many objects walked by a full collection during the batches (without the freeze: the whole
#: start-up heap, 207,000-241,000 in this process; with it, what the batches and the test made since,
#: 10,000-47,000)
WALKED = 100_000


async def test_no_collection_during_a_large_batch_walks_the_start_up_heap(pg: PostgresHandle, platform_url: str) -> None:
    rng = random.Random(77)
    first = date(2024, 1, 1)
    books = [imported_history("coop-a", rng, first, 700) if i % 3 else history("coop-a", rng, first, 700)
             for i in range(600)]
    urls = {s: await pg.create_database(f"held_{s}") for s in ("reporting", "members", "loans", "sanitation")}
    runtime = ReportingRuntime(reporting_settings(urls, platform_url))
    await runtime.start(background=False)  # the service's start, without its consumers: the test runs one
    freeze_heap()  # as the serving app's lifespan does once its runtime has started
    spool = await create_pool(urls["loans"], 1, 3)
    b = Build(FAMILIES["financing"], "reporting.financing.v2", "v2")
    try:
        async with spool.acquire() as conn:
            await migrate(conn, "eventstore", MIGRATIONS)
        async with runtime.worker_pool.acquire() as conn:
            await migrate(conn, "tracking", TRACKING_MIGRATIONS)
            await migrate(conn, f"projection:{b.name}", list(b.migrations))
        store = PostgresEventStore(spool, urls["loans"])
        for i in range(0, len(books), 100):
            await store.append_batch([StreamAppend(h.tenant, "financing", h.fid, 0, h.events)
                                      for h in books[i:i + 100]])
        source = EventLogSource(runtime.worker_pool, "loans", PostgresLogReader(spool, urls["loans"]), b, load_all(),
                                batch_size=2000)
        # what a full collection walks: every object tracked outside the frozen generation; taken at each
        # full collection the batches set off, and after each batch (a collection need not come: the
        # thresholds depend on what the process did before)
        full: list[int] = []
        gc.callbacks.append(lambda phase, info: full.append(len(gc.get_objects()))
                            if phase == "start" and info["generation"] == 2 else None)
        applied = 0
        while n := await source.step():
            applied += n
            full.append(len(gc.get_objects()))
        assert applied == sum(len(h.events) for h in books)  # the log's entries, internal events included
        assert source.totals.applied > 5000 and source.totals.dead == 0
        # what a full collection has to walk (while it holds the loop): what the batches made, not the heap
        # the service built at start (no timing in this one)
        assert max(full) < WALKED, f"a full collection walked {max(full):,} objects ({full})"
    finally:
        gc.callbacks[:] = [c for c in gc.callbacks if getattr(c, "__name__", "") != "<lambda>"]
        await spool.close()
        await runtime.stop()
        gc.unfreeze()  # the test process's heap, as the other tests had it


async def test_the_app_freezes_what_its_whole_start_built(pg: PostgresHandle, platform_url: str) -> None:
    """The lifespan freezes after the runtime's whole start (reporting's reader pool, made after the kernel's
    start, included), and unfreezes when the app stops, so an app stopped in a process that goes on (the
    tests) leaves nothing the collector can no longer free. With ``gc_freeze`` off, nothing is frozen."""
    from services.reporting.app import create_app

    urls = {s: await pg.create_database(f"frz_{s}") for s in ("reporting", "members", "loans", "sanitation")}
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    # on, as the service's default has it (the tests' fixtures start their services with it off)
    settings = reporting_settings(urls, platform_url, gc_freeze=True).model_copy(
        update={"event_source": "none"})
    async with running_app(create_app(settings)) as client:
        runtime = client.runtime
        assert gc.get_freeze_count() > 0
        tracked = {id(o) for o in gc.get_objects()}  # what a collection walks: the frozen are not in it
        assert id(runtime) not in tracked and id(runtime.reader_pool) not in tracked
    assert gc.get_freeze_count() == 0
    async with running_app(create_app(settings.model_copy(update={"gc_freeze": False}))):
        assert gc.get_freeze_count() == 0
