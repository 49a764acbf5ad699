"""A watchdog of the event loop: every time the loop is held longer than a bound (one callback, one request's
CPU work, a thread keeping the interpreter), one ``event_loop_held`` warning with how long and where.

``<SVC>_LOOP_WATCHDOG_MS`` (``ServiceSettings.loop_watchdog_ms``; 0, the default, is off) turns it on: a task
in the loop stamps the time every 5 ms; a daemon thread looks every 2 ms, and while the stamp is older than
the bound it takes the loop thread's stack (innermost frames last). When the loop runs again it logs the
hold: its length, the stack seen most often during it and the last one, and how much of it the garbage
collector ran (``gc_ms``, with the oldest generation collected, ``gc_gen``: from ``gc.callbacks``; a
collection holds the interpreter, so the stacks show only where it started). It costs a wake-up of each every
few milliseconds: a diagnosis tool (the benchmarks turn it on), not a production default.

Where it points: the Python frame the loop thread was in. A hold in C code that keeps the interpreter (an
encoder's loop) shows its Python caller; a hold while the loop thread waited for the interpreter (another
thread's CPU work) shows the loop's ``select`` or a socket call; a process descheduled by the machine's
load shows wherever it stood.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

from shared.logging import get_logger

log = get_logger(__name__)

#: how often the loop stamps the time, and how often the thread looks
TICK_S = 0.005
LOOK_S = 0.002


class LoopWatch:
    """The watchdog of the running loop (``start`` in it, ``stop`` when done). ``holds``: (ms, where) of
    each hold past the bound, also logged."""

    def __init__(self, bound_ms: float, depth: int = 8) -> None:
        self.bound_s = bound_ms / 1000
        self.depth = depth
        self.holds: list[tuple[float, str]] = []
        self._stamp = time.perf_counter()
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._last = ""
        self._held = 0.0
        #: the collector's time and its oldest generation since the last tick
        self._gc_s = 0.0
        self._gc_gen = -1
        self._gc_started = 0.0
        #: the ticks' lateness summed since start (seconds): ``late_s()``
        self._late_s = 0.0

    def late_s(self) -> float:
        """How late the loop has run its ticks since start, in all (seconds), the tick now due included:
        the difference of two readings is how long the loop was busy with other work between them
        (``shared.timing``'s ``loop``)."""
        return self._late_s + max(0.0, time.perf_counter() - self._stamp - TICK_S)

    def start(self) -> None:
        self._stamp = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="loop-watchdog")
        self._thread = threading.Thread(target=self._look, args=(threading.get_ident(),), daemon=True,
                                        name="loop-watchdog")
        self._thread.start()
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self._gc_s += time.perf_counter() - self._gc_started
            self._gc_gen = max(self._gc_gen, info.get("generation", 0))
            self._gc_started = 0.0

    async def stop(self) -> None:
        self._stop.set()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=1)

    async def _tick(self) -> None:
        while True:
            now = time.perf_counter()
            late = now - self._stamp - TICK_S
            self._stamp = now
            self._late_s += max(0.0, late)
            gc_s, gc_gen = self._gc_s, self._gc_gen
            self._gc_s, self._gc_gen = 0.0, -1
            if late > self.bound_s:
                self._report(late, gc_s, gc_gen)
            elif self._seen:
                with self._lock:  # a shorter hold's samples: not the next one's
                    self._seen, self._last = Counter(), ""
            await asyncio.sleep(TICK_S)

    def _report(self, late: float, gc_s: float = 0.0, gc_gen: int = -1) -> None:
        with self._lock:
            seen, last = self._seen, self._last
            self._seen, self._last = Counter(), ""
        where = seen.most_common(1)[0][0] if seen else last
        ms = round(late * 1000, 1)
        self.holds.append((ms, where))
        log.warning("event_loop_held", ms=ms, where=where, last=last if last != where else None,
                    samples=sum(seen.values()), gc_ms=round(gc_s * 1000, 1), gc_gen=gc_gen if gc_s else None)

    def _look(self, loop_thread: int) -> None:
        while not self._stop.wait(LOOK_S):
            if time.perf_counter() - self._stamp - TICK_S <= self.bound_s / 2:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-self.depth:]
            where = " < ".join(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in reversed(stack))
            with self._lock:
                self._seen[where] += 1
                self._last = where


def _short(path: str) -> str:
    for cut in ("/site-packages/", "/lib/python3."):
        if cut in path:
            rest = path.split(cut, 1)[1]
            return rest if cut == "/site-packages/" else rest.split("/", 1)[-1]
    return path.removeprefix(_ROOT)


#: the project's directory: its files are named from there
_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
