"""What every scenario shares: the infrastructure, the sizes, result rows with their targets, payloads,
a timed-writers harness and the disk's fsync rate.

Figures are only meaningful next to a baseline measured in the same run on the same machine, so every
``Row`` carries one, and the table prints the ratio.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any, Literal

from deploy.local.infra import InfraError, KafkaHandle, PostgresHandle, start_kafka, start_postgres
from deploy.local.kafka import stop_process
from deploy.local.services import ephemeral_personal_data_keys

# the members service does not start without its personal-data keys: a benchmark run makes its own
ephemeral_personal_data_keys("bench-1")

MEMBER_EVENT = "members.MemberRegistered"


def uptime() -> str:
    """The machine's load as ``uptime`` prints it (what every benchmark reports beside its figures)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def proc_status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory figure of /proc/PID/status (``VmHWM``: the process's peak resident set; ``VmRSS``: now), in
    MB; None when the process or the field is not there."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def say(msg: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quiet_logs() -> None:
    """The kernel logs through structlog (stdout by default): keep only warnings, on stderr, so the
    relay's and consumers' info lines do not interleave with the table."""
    import structlog

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


# -- sizes --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    quick: bool
    s1_seconds: float          # measured window of each S1 run
    s1_warmup: float           # discarded start of each S1 run (connections, plans, caches)
    s2_events: int             # events the relay drains
    s2_naive_events: int       # events the naive relay is given (it is slow)
    s2_naive_seconds: float    # ... and at most this long
    s3_lag_seconds: float      # open-loop phase
    s3_lag_rate: int           # events/s offered in the open-loop phase
    s3_sustained_events: int   # closed-loop phase
    s3_writers: int
    s3_replay_seconds: float   # cap on the consumer-replay measurement
    s3_naive_events: int
    s3_naive_seconds: float
    phase_timeout: float       # give up waiting for a read model after this long


def sizes(quick: bool) -> Sizes:
    if quick:
        return Sizes(True, s1_seconds=1.5, s1_warmup=0.3, s2_events=20_000, s2_naive_events=1_000,
                     s2_naive_seconds=6, s3_lag_seconds=5, s3_lag_rate=1_000, s3_sustained_events=6_000,
                     s3_writers=16, s3_replay_seconds=6, s3_naive_events=500, s3_naive_seconds=5,
                     phase_timeout=60)
    return Sizes(False, s1_seconds=6.0, s1_warmup=1.0, s2_events=200_000, s2_naive_events=5_000,
                 s2_naive_seconds=20, s3_lag_seconds=20, s3_lag_rate=1_000, s3_sustained_events=45_000,
                 s3_writers=16, s3_replay_seconds=20, s3_naive_events=3_000, s3_naive_seconds=15,
                 phase_timeout=180)


# -- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A goal, not an assertion: on the ratio to the row's baseline, or on the figure itself."""

    on: Literal["ratio", "value"]
    op: Literal[">=", "<"]
    bound: float

    def describe(self, unit: str) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.bound:g}x"
        return f"{self.op} {fmt(self.bound, unit)} {unit}"

    def met(self, value: float, ratio: float | None) -> bool | None:
        x = ratio if self.on == "ratio" else value
        if x is None:
            return None
        return x >= self.bound if self.op == ">=" else x < self.bound


@dataclass
class Row:
    scenario: str
    measure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        return self.target.met(self.value, self.ratio) if self.target else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = self.target.describe(self.unit) if self.target else None
        d["ratio"] = self.ratio
        d["met"] = self.met
        return d


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if unit == "ms":
        return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.1f}"


@dataclass
class Timed:
    """Operations counted in a measured window: events done, elapsed seconds, per-operation latency."""

    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def pct_ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# -- timed writers ------------------------------------------------------------------------------------
Op = Callable[[], Awaitable[int]]


async def run_async_writers(ops: list[Op], warmup: float, seconds: float) -> Timed:
    """Run each op in its own loop, concurrently; count the ops that start inside the measured window
    (after ``warmup``), and time the window up to the end of the last counted op."""
    t0 = time.perf_counter()
    ws, we = t0 + warmup, t0 + warmup + seconds
    counted: list[tuple[float, float, int]] = []

    async def loop(op: Op) -> None:
        while True:
            start = time.perf_counter()
            if start >= we:
                return
            n = await op()
            if start >= ws:
                counted.append((start, time.perf_counter(), n))

    await asyncio.gather(*(loop(op) for op in ops))
    return _window(counted, ws)


def run_thread_writers(ops: list[Callable[[], int]], warmup: float, seconds: float) -> Timed:
    """The same harness for synchronous clients, one thread per writer (they release the GIL on I/O)."""
    t0 = time.perf_counter()
    ws, we = t0 + warmup, t0 + warmup + seconds
    counted: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop(op: Callable[[], int]) -> None:
        try:
            while True:
                start = time.perf_counter()
                if start >= we:
                    return
                n = op()
                if start >= ws:
                    end = time.perf_counter()
                    with lock:
                        counted.append((start, end, n))
        except BaseException as e:  # surfaced below: a silent dead thread would flatter nobody
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(op,), daemon=True) for op in ops]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return _window(counted, ws)


def _window(counted: list[tuple[float, float, int]], ws: float) -> Timed:
    if not counted:
        return Timed(0, 0.0)
    end = max(c[1] for c in counted)
    return Timed(sum(c[2] for c in counted), end - ws, [c[1] - c[0] for c in counted])


# -- payloads -----------------------------------------------------------------------------------------
_VILLAGES = ["Sukamaju", "Cibodas", "Margahayu", "Sindangsari", "Tegalwaru", "Cikoneng"]
_DISTRICTS = ["Bandung", "Garut", "Sumedang", "Cianjur"]


def member_payload(rng: Random, member_id: str | None = None, n: int = 0) -> dict[str, Any]:
    """A valid ``MemberRegistered`` payload (about 280 bytes of JSON), as the members service writes."""
    return {
        "member_id": member_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "member_number": f"KSM-{n:08d}",
        "sex": rng.choice(("female", "male")),
        "joined_on": (date(2023, 1, 1) + timedelta(days=rng.randrange(700))).isoformat(),
        "household_size": rng.randint(1, 9),
        "group_id": f"grp-{rng.randrange(200):03d}",
        "village": rng.choice(_VILLAGES),
        "district": rng.choice(_DISTRICTS),
        "area": rng.choice(("urban", "rural")),
        "b40": rng.random() < 0.6,
        "programme_consent": True,
    }


def payload_pool(n: int = 1000, seed: int = 7) -> list[dict[str, Any]]:
    """Pre-built payloads, cycled by writers so payload building stays out of the timed loop."""
    rng = Random(seed)
    return [member_payload(rng, n=i) for i in range(n)]


# -- infrastructure -----------------------------------------------------------------------------------
class Infra:
    """PostgreSQL (always) and Kafka (when a scenario needs it), started concurrently, stopped once."""

    def __init__(self, need_kafka: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._pg: Future[PostgresHandle] = self._pool.submit(start_postgres)
        self._kafka: Future[KafkaHandle] | None = self._pool.submit(_start_kafka) if need_kafka else None

    @property
    def pg(self) -> PostgresHandle:
        return self._pg.result()

    @property
    def kafka(self) -> KafkaHandle:
        if self._kafka is None:
            self._kafka = self._pool.submit(_start_kafka)
        return self._kafka.result()

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def describe(self) -> list[str]:
        out = [f"PostgreSQL: {self.pg.origin}"]
        if self._kafka is not None and self._kafka.done() and not self._kafka.exception():
            k = self._kafka.result()
            out.append(f"Apache Kafka {k.version}: {k.origin} at {k.bootstrap_servers}")
        return out

    def stop(self) -> None:
        for fut in (self._kafka, self._pg):
            if fut is None:
                continue
            try:
                fut.result().stop()
            except Exception as e:  # noqa: BLE001 - stopping is best effort; say why
                say(f"stopping infrastructure: {e!r}")
        self._pool.shutdown(wait=False)


def _start_kafka(attempts: int = 3) -> KafkaHandle:
    """``start_kafka`` with a retry for one known start-up flake: deploy/local/kafka.py passes a random
    base64 cluster id as ``-t ID``, and an id that begins with '-' (1 in 64) is taken by the storage
    tool's argument parser for an option ("expected one argument")."""
    for attempt in range(1, attempts + 1):
        workdir = Path(tempfile.mkdtemp(prefix="washfin-kafka-"))
        try:
            handle = start_kafka(workdir)
        except InfraError as e:
            shutil.rmtree(workdir, ignore_errors=True)
            if "formatting KRaft storage failed" not in str(e) or attempt == attempts:
                raise
            say(f"Kafka storage format failed (attempt {attempt}): {str(e).splitlines()[-1]}; retrying")
            continue
        if handle.local is None:  # an external or containerised broker: the folder went unused
            shutil.rmtree(workdir, ignore_errors=True)
        return handle
    raise AssertionError("unreachable")


@dataclass
class Bench:
    """What a scenario gets: the infrastructure and the sizes."""

    infra: Infra
    sizes: Sizes
    notes: list[str] = field(default_factory=list)  # "where the time goes", printed under the table

    async def fresh_db(self, prefix: str) -> str:
        return await self.infra.pg.create_database(prefix)

    def note(self, scenario: str, text: str) -> None:
        self.notes.append(f"{scenario}: {text}")
        say(f"{scenario}: {text}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the disk's durable-commit ceiling ----------------------------------------------------------------
def fdatasync_rate(seconds: int = 2) -> tuple[float | None, str]:
    """``pg_test_fsync``'s fdatasync ops/s for one 8 kB write (Linux's default ``wal_sync_method``):
    no committed transaction can be durable faster than this without group commit.

    The tool goes on with more sections; we stop it once the line we need is out."""
    try:
        from deploy.local.postgres import bin_dir

        exe = bin_dir() / "pg_test_fsync"
    except Exception as e:  # noqa: BLE001 - no local binaries (e.g. an external server)
        return None, f"pg_test_fsync unavailable: {e}"
    if not exe.exists():
        return None, f"{exe} not found"
    # on the filesystem the embedded server writes its WAL to (its data lives under the temp dir)
    with tempfile.TemporaryDirectory(prefix="bench-fsync-") as d:
        proc = subprocess.Popen([str(exe), "-s", str(seconds), "-f", os.path.join(d, "probe")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rate: float | None = None
        section = False
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "using one 8kB write" in line:
                    section = True
                elif "using two 8kB writes" in line:
                    break
                elif section and (m := re.match(r"\s*fdatasync\s+([\d.]+)\s+ops/sec", line)):
                    rate = float(m.group(1))
                    break
        finally:
            stop_process(proc, 10, kill_wait=None)
    return rate, f"{exe} -s {seconds} (fdatasync, one 8kB write)"
