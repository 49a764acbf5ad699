"""Where a request's time goes, in its ``Server-Timing`` response header (W3C Server Timing).

Each request served by a service (``shared.web.RequestContext``) carries one: ``app`` the time from the
middleware's start to the response's headers, and the parts of it spent

- ``auth``: looking its API key up in the platform database (``Authenticator.authenticate``, its own
  connection's ``acquire`` included);
- ``acquire``: waiting for a pooled database connection (``shared.db.Pool.acquire``, every pool);
- ``scope``: holding a request scope's connection (``shared.rls.scoped``: ``tenant_scope``,
  ``programme_scope``, ``TenantPool.acquire``): naming the scope, the transaction's begin, the route's
  statements and its work between them, the commit;
- ``loop``: how late the service's event loop ran its ticks while the request was open (only with the loop
  watchdog on, ``<SVC>_LOOP_WATCHDOG_MS``): the time the request's steps could have waited in the loop's
  queue behind other work, each ``await`` of ``auth``, ``acquire`` and ``scope`` included.

``app`` minus the others is the route's own work (validation, rendering) and waits not named here; the
client's time minus ``app`` is the time before the middleware ran (accepting, reading and parsing the
request, and the loop's queue before the request's task first ran) and after (writing the answer). A
browser's developer tools show the header; ``bench.s5_neighbour`` reads it from its slow requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: the current request's parts (name -> seconds), or None outside a request
_PARTS: ContextVar[dict[str, float] | None] = ContextVar("washfin_request_timing", default=None)

#: the parts in the order the header names them
PARTS = ("auth", "acquire", "scope", "loop")


def begin() -> dict[str, float]:
    """A fresh record of parts for the current request (its task's context)."""
    parts: dict[str, float] = {}
    _PARTS.set(parts)
    return parts


def add(part: str, seconds: float) -> None:
    """Add ``seconds`` to ``part`` of the current request (nothing outside a request)."""
    parts = _PARTS.get()
    if parts is not None:
        parts[part] = parts.get(part, 0.0) + seconds


@contextmanager
def timed(part: str) -> Iterator[None]:
    """The block's wall time, added to ``part`` of the current request."""
    if _PARTS.get() is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        add(part, time.perf_counter() - t0)


def header(parts: dict[str, float], app_s: float) -> str:
    """The ``Server-Timing`` value: ``app`` then each part recorded, in milliseconds."""
    items = [f"app;dur={app_s * 1000:.1f}"]
    items += [f"{p};dur={parts[p] * 1000:.1f}" for p in PARTS if p in parts]
    return ", ".join(items)


def parse(value: str) -> dict[str, float]:
    """A ``Server-Timing`` value as name -> milliseconds (the entries with a duration)."""
    out: dict[str, float] = {}
    for item in value.split(","):
        name, _, rest = item.strip().partition(";")
        for param in rest.split(";"):
            k, _, v = param.strip().partition("=")
            if k == "dur" and name:
                try:
                    out[name] = float(v)
                except ValueError:
                    pass
    return out
