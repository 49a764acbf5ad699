"""Failed authentication, counted and slowed down.

Every request whose API key is refused is logged (the key id's first characters, the client address, the
service; never the secret) and counted in ``washfin_auth_failures_total``. Past a limit of failures in a
sliding window, per client address and per key id, further attempts from that address or at that key id get
429 with ``Retry-After`` without the key being looked up, until the window has room again. A guesser is
slowed to the limit's pace and shows up in the logs and the metric; a cooperative whose script sends a
stale key loses at most one window.

The counts live in the process (each replica counts what it sees; a deployment behind several replicas
multiplies the pace by the number of replicas, which still turns a brute force of a 32-character secret
from hopeless into more hopeless: the point is the signal and the bound on cost). Memory is bounded: at
most ``max_tracked`` addresses and key ids are tracked, the oldest forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    """Sliding-window counts of failed attempts per address and per key id."""

    def __init__(self, *, per_address: int, per_key: int, window_s: float, max_tracked: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_address, self.per_key, self.window_s = per_address, per_key, window_s
        self.max_tracked, self.clock = max_tracked, clock
        self._seen: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, kind: str, name: str, now: float) -> deque[float] | None:
        times = self._seen.get((kind, name))
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._seen[(kind, name)]
            return None
        return times

    def retry_after(self, address: str | None, key_id: str | None) -> int | None:
        """Seconds until an attempt from ``address`` at ``key_id`` is looked at again; None if it may be now."""
        now, waits = self.clock(), []
        for kind, name, limit in (("address", address, self.per_address), ("key", key_id, self.per_key)):
            if name is None or limit <= 0:
                continue
            times = self._recent(kind, name, now)
            if times is not None and len(times) >= limit:
                # the window has room again once the oldest of the last ``limit`` failures leaves it
                waits.append(times[-limit] + self.window_s - now)
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, address: str | None, key_id: str | None) -> None:
        now = self.clock()
        for kind, name, limit in (("address", address, self.per_address), ("key", key_id, self.per_key)):
            if name is None or limit <= 0:
                continue
            times = self._seen.get((kind, name))
            if times is None:
                times = self._seen[(kind, name)] = deque(maxlen=max(limit, 1))
            else:
                self._seen.move_to_end((kind, name))
            times.append(now)
        while len(self._seen) > self.max_tracked:
            self._seen.popitem(last=False)
