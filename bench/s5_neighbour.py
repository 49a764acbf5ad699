"""S5N: S5's neighbour effect of an import alone, in a minute (``python -m bench --only S5N``).

The system as S5 starts it (the four services, each its own OS process, on the embedded event source), two
cooperatives: ``s5-small`` (``S5N_SMALL`` financings, default 100), the neighbour, and ``s5-late``, into which
``S5N_ROUNDS`` books (default 3) of ``S5N_LATE`` financings (default 1,000, one ``POST /imports`` each, as S5's
neighbour phase) are imported one after the other, reporting projecting them live. The neighbour's loans
``GET /financings?limit=20`` (the simple GET of S5's rows) and reporting ``GET /reports/summary`` in turn, one every
20 ms, over HTTP from a client process of its own (``Neighbour``: the bench's own work of building and sending
the books must not show in its latencies): during the imports, then alone for as long. Rows: p50, p99 and the
longest of each, alone and during; the ratio to alone is the effect. The loans service's own longest event-loop
hold is not visible from here: ``python -m bench.loans_import --watch`` shows those (in process, with where).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from asyncio.subprocess import PIPE
from collections import Counter
from random import Random
from typing import Any

import httpx

from bench.common import Bench, Row, Target, say, uptime
from bench.s5_scale import (
    CLIENT_TIMEOUT_S,
    LATE,
    PROJECTOR,
    SMALL,
    import_book,
    pct,
    settle,
    with_services,
)
from shared import timing


#: innermost frames where the loop thread gives up the interpreter (waiting for its events, writing): a hold
#: there is the loop waiting to get it back (a thread's CPU work, or the machine's load)
IDLE = ("selectors.py", "asyncio/selector_events.py:1057 write")
#: the services log each hold of their event loop longer than this (``shared.loopwatch``)
WATCHDOG_MS = 20.0


#: the processes whose event-loop holds S5N reads from their logs (reporting's API, and its projector's
#: unless ``S5_REPORTING=one``)
WATCHED = ("loans", "reporting", PROJECTOR)


def log_size(system: Any, service: str) -> int:
    path = system.logs / f"{service}.log"
    return path.stat().st_size if path.exists() else 0


def log_sizes(system: Any) -> dict[str, int]:
    return {svc: log_size(system, svc) for svc in WATCHED}


#: one ``event_loop_held`` warning: (ms, where, of which the garbage collector's ms)
Hold = tuple[float, str, float]


def loop_holds(system: Any, service: str, since: int) -> list[Hold]:
    """``service``'s ``event_loop_held`` warnings logged after byte ``since`` of its log."""
    out: list[Hold] = []
    path = system.logs / f"{service}.log"
    if not path.exists():
        return out
    with open(path, "rb") as f:
        f.seek(since)
        for line in f:
            if b"event_loop_held" not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out.append((float(rec.get("ms", 0)), str(rec.get("where", "")), float(rec.get("gc_ms") or 0)))
    return out


def _sizes() -> tuple[int, int, int]:
    return (int(os.environ.get("S5N_SMALL", 100)), int(os.environ.get("S5N_LATE", 1_000)),
            int(os.environ.get("S5N_ROUNDS", 3)))


#: the neighbour, a client of its own (its own process: the bench's work of building and sending the books,
#: in this process, must not show in its latencies): each URL in turn every 20 ms until a line on stdin, then
#: the latencies (ms) of each as one JSON line, each with its ``Server-Timing`` and when it was sent
#: (``time.monotonic()``, the same clock as this process's, for the phases of ``import_book``)
_NEIGHBOUR = """import asyncio, json, sys, time
import httpx
async def main(key, urls):
    out = {u: [] for u in urls}
    stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    async with httpx.AsyncClient(timeout=600) as c:
        while not stop.done():
            for u in urls:
                t, at = time.perf_counter(), time.monotonic()
                r = await c.get(u, headers={"X-API-Key": key})
                out[u].append(((time.perf_counter() - t) * 1000, r.headers.get("server-timing", ""), at))
                if r.status_code != 200:
                    raise SystemExit(f"{u}: {r.status_code} {r.text[:300]}")
                await asyncio.sleep(0.02)
    print(json.dumps(out), flush=True)
asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


class Neighbour:
    """The neighbour's client process (``_NEIGHBOUR``) while the block runs; ``got`` its latencies by URL,
    each (ms, the answer's ``Server-Timing``); ``sent`` the same with when each was sent (``Stamped``)."""

    def __init__(self, key: str, urls: list[str]) -> None:
        self.key, self.urls, self.got = key, urls, {}
        self.sent: dict[str, list[Stamped]] = {}

    async def __aenter__(self) -> Neighbour:
        self.proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _NEIGHBOUR, self.key, *self.urls,
                                                         stdin=PIPE, stdout=PIPE)
        await asyncio.sleep(0.5)  # its interpreter and first connections
        return self

    async def __aexit__(self, *exc: object) -> None:
        out, _ = await self.proc.communicate(b"stop\n")
        if self.proc.returncode != 0:
            raise RuntimeError(f"the neighbour's client exited {self.proc.returncode}")
        got = json.loads(out)
        self.got = {u: [(ms, h) for ms, h, _ in xs] for u, xs in got.items()}
        self.sent = {u: [(at, ms, h) for ms, h, at in xs] for u, xs in got.items()}


async def run(bench: Bench) -> list[Row]:
    small_n, late_n, rounds = _sizes()
    rng = Random(55)
    load_before = uptime()
    say(f"S5N: neighbour {small_n} financings, {rounds} imports of {late_n}; load {load_before}")
    #: service -> phase ("alone", "during") -> its holds
    held: dict[str, dict[str, list[Hold]]] = {svc: {"alone": [], "during": []} for svc in WATCHED}
    gets = {"financings": "loans GET /financings", "summary": "reporting GET /reports/summary"}
    during: dict[str, list[Timed]] = {k: [] for k in gets}
    alone: dict[str, list[Timed]] = {k: [] for k in gets}
    sent: dict[str, list[Stamped]] = {k: [] for k in gets}
    #: the spans of each round's phases (``import_book``'s marks)
    marks: dict[str, list[tuple[float, float]]] = {}
    async with with_services(bench, "S5N", [SMALL, LATE], watchdog_ms=WATCHDOG_MS) as system:
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S) as client:
            small = system.coops[SMALL]
            urls = {"financings": f"{system.url('loans')}/financings?limit=20",
                    "summary": f"{system.url('reporting')}/reports/summary"}
            await import_book(system, client, small, small_n, rng)
            await settle(system)
            imported_s: list[float] = []
            events = 0
            mark = log_sizes(system)
            for _ in range(rounds):
                async with Neighbour(small.manager, list(urls.values())) as nb:
                    t0 = time.perf_counter()
                    events += await import_book(system, client, system.coops[LATE], late_n, rng, marks)
                    imported_s.append(time.perf_counter() - t0)
                for k in gets:
                    during[k] += nb.got[urls[k]]
                    sent[k] += nb.sent[urls[k]]
                await settle(system)  # reporting's holds while it catches up on the import count as during
                for svc in WATCHED:
                    held[svc]["during"] += loop_holds(system, svc, mark[svc])
                mark = log_sizes(system)
            async with Neighbour(small.manager, list(urls.values())) as nb:
                await asyncio.sleep(sum(imported_s))
            for k in gets:
                alone[k] += nb.got[urls[k]]
            for svc in WATCHED:
                held[svc]["alone"] = loop_holds(system, svc, mark[svc])
            procs = set(system.procs)
    load_after = uptime()
    rows: list[Row] = []
    for k, label in gets.items():
        for phase, got in (("during", during[k]), ("alone", alone[k])):
            bench.note("S5N", f"{label} {phase}: {breakdown(got)}")
        a, d = [ms for ms, _ in alone[k]], [ms for ms, _ in during[k]]
        rows.append(Row("S5N", f"neighbour {label} alone p50 (n={len(a)})", pct(a, 50), "ms"))
        rows.append(Row("S5N", f"neighbour {label} alone p99", pct(a, 99), "ms"))
        rows.append(Row("S5N", f"neighbour {label} during an import p50 (n={len(d)})", pct(d, 50), "ms", "alone",
                        pct(a, 50)))
        rows.append(Row("S5N", f"neighbour {label} during an import p99", pct(d, 99), "ms", "alone", pct(a, 99),
                        target=Target("value", "<", 50)))
        rows.append(Row("S5N", f"neighbour {label} during an import, longest", max(d, default=0.0), "ms", "alone",
                        max(a, default=0.0)))
        for phase, what in PHASES.items():
            got = in_spans(sent[k], marks.get(phase, []))
            rows.append(Row("S5N", f"neighbour {label} while {what} p99 (n={len(got)})",
                            pct([ms for ms, _ in got], 99), "ms", "alone", pct(a, 99)))
            bench.note("S5N", f"{label} while {what}: {breakdown(got)}")
    for svc in WATCHED:
        if svc == PROJECTOR and PROJECTOR not in procs:
            continue
        rows += _hold_rows(svc, held[svc])
        during_holds = held[svc]["during"]
        for ms_, where, gc_ms in sorted(during_holds, reverse=True)[:3]:
            bench.note("S5N", f"{svc} loop held {ms_:.0f} ms (GC {gc_ms:.0f} ms) at "
                              f"{where or '(no sample: the process was not running)'}")
        for ms_, where, gc_ms in sorted((h for h in during_holds if h[1] and not h[1].startswith(IDLE)),
                                        reverse=True)[:6]:
            bench.note("S5N", f"{svc} loop held {ms_:.0f} ms (GC {gc_ms:.0f} ms) at {where}")
        places = Counter(h[1].split(" < ")[0] for h in during_holds)
        bench.note("S5N", f"{svc} loop holds during the imports by innermost frame: "
                          f"{dict(places.most_common(8))}")
    bench.note("S5N", f"{rounds} imports of {late_n:,} financings ({events:,} loans events) in "
                      f"{', '.join(f'{s:.1f}' for s in imported_s)} s, reporting projecting them live")
    bench.note("S5N", f"load before: {load_before}")
    bench.note("S5N", f"load after:  {load_after}")
    return rows


#: one GET's latency (ms) and its answer's ``Server-Timing`` header
Timed = tuple[float, str]
#: one GET's sending time (``time.monotonic()``), latency (ms) and ``Server-Timing`` header
Stamped = tuple[float, float, str]

#: the phases of an import round (``import_book``'s marks) that S5N's rows tell apart
PHASES = {"members": "loans learns the members", "post": "POST /imports runs"}


def in_spans(sent: list[Stamped], spans: list[tuple[float, float]]) -> list[Timed]:
    """Those of ``sent`` sent within one of ``spans``."""
    return [(ms, h) for at, ms, h in sent if any(a <= at < b for a, b in spans)]


def breakdown(got: list[Timed]) -> str:
    """Where the time of the slowest 1% of ``got`` (at least one) went, beside all of them's: the mean of
    the client's time, of each ``Server-Timing`` part (``shared.timing``) and of the time outside the app
    (the client's minus ``app``: accepting, reading, the loop's queue before the request's task ran,
    writing)."""
    if not got:
        return "no requests"
    ranked = sorted(got, key=lambda g: g[0], reverse=True)

    def means(part: list[Timed]) -> str:
        sums: dict[str, float] = {}
        for ms, header in part:
            parts = timing.parse(header)
            parts["outside"] = ms - parts.get("app", 0.0)
            for name, v in {"client": ms, **parts}.items():
                sums[name] = sums.get(name, 0.0) + v
        return ", ".join(f"{name} {v / len(part):.1f}" for name, v in sums.items())

    slow = ranked[:max(1, len(got) // 100)]
    return f"slowest {len(slow)} (ms, means): {means(slow)}; all {len(got)}: {means(got)}"


def _hold_rows(svc: str, held: dict[str, list[Hold]]) -> list[Row]:
    """``svc``'s rows of event-loop holds: how many, their total (and the collector's part of it) and the
    longest, alone and during."""
    rows = []
    for phase in ("alone", "during"):
        hs = [h[0] for h in held[phase]]
        when = "alone" if phase == "alone" else "during the imports (to caught up)"
        rows.append(Row("S5N", f"{svc} service: event-loop holds > {WATCHDOG_MS:g} ms {when}", len(hs), "holds",
                        target=Target("value", "<", 1) if phase == "during" else None))
        rows.append(Row("S5N", f"{svc} service: event-loop held in all {when}", sum(hs), "ms"))
        rows.append(Row("S5N", f"{svc} service: of which garbage collection {when}",
                        sum(h[2] for h in held[phase]), "ms"))
        rows.append(Row("S5N", f"{svc} service: longest event-loop hold {when}", max(hs, default=0.0), "ms"))
    return rows


__all__: list[Any] = ["breakdown", "run"]
