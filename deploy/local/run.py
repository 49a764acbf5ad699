"""The run command: the whole system on one machine, on its embedded default.

Starts an embedded PostgreSQL (data kept in .washfin/run, so nothing is lost between runs), migrates,
registers the two demo cooperatives and their demo keys, starts the four services as separate
processes (consumers tail the other services' event logs; ``--kafka`` runs a local Kafka broker and
the relays instead), loads demo members, prints the URLs and keys, and stops everything on Ctrl-C.

Stopping: the first SIGINT, SIGTERM or SIGHUP starts the clean-up (services, then the broker, then
PostgreSQL, then any other child left); further signals while it runs are noted once and otherwise ignored,
so `kill -TERM -- -PGID` repeated, or Ctrl-C pressed twice, cannot cut it short. A stop asked for by a
signal exits 0 once everything is gone; 1 means a failure (a service died, an infrastructure error,
another run already on the data folder).

One run per data folder: ``run.lock`` there is held (``flock``) for the run's life and names its pid;
a second start is refused with one line. ``run-children.json`` records the processes the run started,
so the next start stops what a run killed with SIGKILL left behind; a PostgreSQL on the data folder that
no run recorded is reported, not touched. The lock dies with its process, so a killed run never blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from deploy.local.demo import DEMO_KEYS, DemoKey, load_all_demo, prepare_demo_platform
from deploy.local.demos.reporting import demo_env as reporting_demo_env
from deploy.local.kafka import REPO_ROOT, InfraError, LocalKafka
from deploy.local.logins import provision
from deploy.local.postgres import LocalPostgres
from deploy.local.services import (
    PROJECTOR,
    SERVICES,
    ServiceProcess,
    kafka_env,
    members_personal_data_env,
    reporting_roles,
    service_env,
)
from shared.kafka import KafkaConnection
from shared.tenancy import Role


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LOCK_FILE, CHILDREN_FILE = "run.lock", "run-children.json"


class _Stop:
    """Signal handling of the run: the first stop signal interrupts whatever the run is doing (a start
    that waits, the demo load, the watch loop) with KeyboardInterrupt; from then on, and during every
    clean-up, signals only note once that the stop is under way."""

    def __init__(self) -> None:
        self.stopping = False
        self.signal: int | None = None
        self._noted = False

    def install(self) -> None:
        for s in STOP_SIGNALS:
            signal.signal(s, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            if not self._noted:
                self._noted = True
                # os.write, not print: the handler may run inside a print to the same stream
                os.write(1, f"\n({signal.Signals(signum).name}: already stopping, please wait)\n".encode())
            return
        self.stopping = True
        self.signal = signum
        raise KeyboardInterrupt


class _AlreadyRunning(Exception):
    pass


def _lock(data_dir: Path) -> int:
    """Hold ``run.lock`` (flock, exclusive) for this process's life; raise _AlreadyRunning naming the
    holder when another run has it. The descriptor is not inherited by the processes the run starts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise _AlreadyRunning(
            f"washfin is already running on {data_dir} (pid {holder}); stop it first "
            f"(Ctrl-C in its terminal, or kill -TERM {holder}), or pass another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)  # the file stays: unlinking a flock file races with a start that opened it
    os.close(fd)


def _start_time(pid: int) -> str | None:
    """The process's start time (Linux /proc), to tell it from a later process given the same pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]


def _alive(pid: int, start: str | None) -> bool:
    if Path("/proc").is_dir():
        return start is not None and _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None


class _Children:
    """``run-children.json``: the processes this run started, for the next start after a SIGKILL."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CHILDREN_FILE
        self.entries: list[dict[str, object]] = []

    def add(self, name: str, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None:
            return
        self.entries.append({"name": name, "pid": proc.pid, "start": _start_time(proc.pid)})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"run_pid": os.getpid(), "children": self.entries}))
        tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _stop_leftovers(data_dir: Path) -> None:
    """Stop what an earlier run, killed before its clean-up, left running (recorded in
    run-children.json); we hold the lock, so that run is gone."""
    path = data_dir / CHILDREN_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    left = [c for c in record.get("children", []) if _alive(int(c["pid"]), c.get("start"))]
    if left:
        names = ", ".join(f"{c['name']} (pid {c['pid']})" for c in left)
        print(f"an earlier run (pid {record.get('run_pid')}) did not stop; stopping what it left: {names}", flush=True)
        # the services and the broker first, PostgreSQL (fast shutdown: SIGINT) once they are gone
        others = [c for c in left if c["name"] != "postgres"]
        postgres = [c for c in left if c["name"] == "postgres"]
        for group, sig in ((others, signal.SIGTERM), (postgres, signal.SIGINT)):
            for c in group:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(c["pid"]), sig)
            deadline = time.monotonic() + 30
            while any(_alive(int(c["pid"]), c.get("start")) for c in group) and time.monotonic() < deadline:
                time.sleep(0.1)
            for c in group:
                if _alive(int(c["pid"]), c.get("start")):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(c["pid"]), signal.SIGKILL)
    path.unlink(missing_ok=True)


def _foreign_postgres(pg: LocalPostgres) -> str | None:
    """A PostgreSQL still running on our data folder that no recorded run started: one line saying so."""
    try:
        pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale postmaster.pid: PostgreSQL itself starts over it
    except PermissionError:
        pass
    cmd = Path(f"/proc/{pid}/cmdline")
    if cmd.exists() and b"postgres" not in cmd.read_bytes():
        return None  # the pid now belongs to another program: PostgreSQL starts over the stale file
    return (f"a PostgreSQL server (pid {pid}) that this command did not start is running on {pg.pgdata}; "
            f"stop it (kill -INT {pid}) or pass another --data-dir")


def _direct_children() -> list[int]:
    """Live children of this process (Linux /proc), whatever started them."""
    me, found = os.getpid(), []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


def _stop_services(procs: list[ServiceProcess], timeout: float = 15.0) -> None:
    """SIGTERM every service at once, then wait for all; SIGKILL whichever outlives ``timeout``."""
    running = [p.proc for p in procs if p.proc is not None and p.proc.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _reap_strays(timeout: float = 10.0) -> None:
    """Last resort: any child still there (one started as the first signal came, before it was
    recorded) gets SIGTERM, then SIGKILL."""
    strays = _direct_children()
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while strays and time.monotonic() < deadline:
        for pid in list(strays):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            strays.remove(pid)
        time.sleep(0.05)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def run(data_dir: Path, with_kafka: bool, demo: bool = True) -> int:
    t0 = time.monotonic()
    try:
        lock = _lock(data_dir)
    except _AlreadyRunning as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stop = _Stop()
    pg = LocalPostgres(data_dir / "postgres")
    kafka: LocalKafka | None = None
    procs: list[ServiceProcess] = []
    #: processes beside the services' APIs (reporting's projector): no URL of their own to give out
    workers: list[ServiceProcess] = []
    children = _Children(data_dir)
    try:
        stop.install()
        _stop_leftovers(data_dir)
        if foreign := _foreign_postgres(pg):
            print(f"error: {foreign}", file=sys.stderr)
            return 1
        print("starting embedded PostgreSQL ...", flush=True)
        try:
            pg.start()
        finally:
            children.add("postgres", pg.proc)
        # every service its own login and database, passwords of this data folder; an older folder
        # (trust, everything the superuser's) is migrated here (deploy/local/logins.py)
        logins = provision(pg)
        urls = logins.owners
        asyncio.run(prepare_demo_platform(urls["platform"]))
        bootstrap = None
        if with_kafka:
            print("starting local Kafka broker ...", flush=True)
            kafka = LocalKafka(data_dir / "kafka")
            try:
                kafka.start()
            finally:
                children.add("kafka", kafka.proc)
            asyncio.run(kafka.authorize())  # the service principals' ACLs (idempotent)
            bootstrap = kafka.bootstrap_servers
        service_urls = {s: u for s, u in urls.items() if s != "platform"}
        # the members service seals personal data with keys of this data directory (made on the first run)
        extras = {"reporting": reporting_demo_env(), "members": members_personal_data_env(data_dir)}
        for s in SERVICES:
            env = service_env(s, service_urls, urls["platform"], kafka=kafka.connection(s) if kafka else None,
                              extra={**logins.env_for(s), **extras.get(s, {})}, sources=logins.sources_for(s))
            if s == "reporting":  # its API, and beside it the process that projects the events
                api_env, projector_env = reporting_roles(env)
                env = api_env
                log_path = data_dir / "logs" / f"{PROJECTOR}.log"
                workers.append(ServiceProcess(s, projector_env, log_path).start())
                children.add(PROJECTOR, workers[-1].proc)
            procs.append(ServiceProcess(s, env, data_dir / "logs" / f"{s}.log").start())
            children.add(s, procs[-1].proc)
        for p in [*procs, *workers]:
            p.wait_ready()
        ready_s = time.monotonic() - t0
        _write_env_file(data_dir / "washfin.env", urls, procs, kafka.connection() if kafka else None,
                        {**extras["members"], **{k: v for s in SERVICES for k, v in logins.env_for(s).items()}})
        if demo:
            print("loading demo data through the services' APIs ...", flush=True)
            asyncio.run(load_all_demo({p.service: p.url for p in procs}))
        reporting = next(p for p in procs if p.service == "reporting")
        _banner(procs, reporting, ready_s, pg, kafka, data_dir)
        while all(p.proc is not None and p.proc.poll() is None for p in [*procs, *workers]):
            time.sleep(0.5)
        dead = [p for p in [*procs, *workers] if p.proc is not None and p.proc.poll() is not None]
        for p in dead:
            print(f"\n{p.log_path.stem} stopped unexpectedly:\n{p.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        name = signal.Signals(stop.signal).name if stop.signal else "interrupt"
        print(f"\nstopping ({name}) ...", flush=True)
        return 0
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        stop.stopping = True  # from here on a signal only notes that the stop is under way
        with contextlib.suppress(Exception):
            _stop_services([*procs, *workers])
        if kafka is not None:
            with contextlib.suppress(Exception):
                kafka.stop()
        with contextlib.suppress(Exception):
            pg.stop()
        with contextlib.suppress(Exception):
            _reap_strays()
        if not _direct_children():
            children.clear()
            if pg.proc is not None or procs:
                print("all washfin processes stopped", flush=True)
        else:
            print(f"some washfin processes did not stop; see {data_dir / CHILDREN_FILE}", file=sys.stderr, flush=True)
        _unlock(lock)


def _write_env_file(path: Path, urls: dict[str, str], procs: list[ServiceProcess],
                    kafka: KafkaConnection | None, extra: dict[str, str]) -> None:
    """Settings of the running system, for the operator CLI (`washfin status` and friends): the services'
    database logins with their passwords, with Kafka the admin principal's login, and the members service's
    personal-data keys (`washfin members reseal`), so the file is its owner's only (mode 0600)."""
    lines = [f"WASHFIN_PLATFORM_DATABASE_URL={urls['platform']}"]
    lines += [f"{k}={v}" for k, v in extra.items()]
    lines += [f"{s.upper()}_DATABASE_URL={urls[s]}" for s in SERVICES]
    lines += [f"WASHFIN_{p.service.upper()}_URL={p.url}" for p in procs]
    if kafka:
        lines += [f"{k}={v}" for k, v in kafka_env(kafka).items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# written by the run command; read by the washfin CLI\n" + "\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def demo_key_lines(keys: Sequence[DemoKey]) -> list[str]:
    """The demo keys as a table whose columns line up whatever the longest cooperative, role or programme:
    a programme officer's key reads the programme (its subject), not the lead cooperative it is filed under."""
    rows = [("who", "role", "key")]
    for k in keys:
        who = f"programme {k.subject}" if k.role is Role.PROGRAMME_OFFICER and k.subject else k.tenant_id
        rows.append((who, k.role.value, k.secret))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return [f"  {who:<{widths[0]}}  {role:<{widths[1]}}  {key}" for who, role, key in rows]


def walkthrough_command(data_dir: Path) -> str:
    """The README's walkthrough against this run (its settings file, when the run is not the default one)."""
    from deploy.local.walkthrough import DEFAULT_ENV_FILE

    env_file = data_dir / "washfin.env"
    command = ".venv/bin/python -m deploy.local.walkthrough"
    return command if env_file.resolve() == DEFAULT_ENV_FILE.resolve() else f"{command} --env-file {env_file}"


def _banner(procs: list[ServiceProcess], reporting: ServiceProcess, ready_s: float, pg: LocalPostgres,
            kafka: LocalKafka | None, data_dir: Path) -> None:
    lines = ["", f"washfin is up ({ready_s:.1f}s to healthy services). Open:", ""]
    lines.append(f"  dashboard   {reporting.url}/dashboard   (paste a manager key below)")
    for p in procs:
        lines.append(f"  {p.service:<11} {p.url}/docs")
    lines += ["", "Demo API keys (send as the X-API-Key header):", *demo_key_lines(DEMO_KEYS)]
    bmi = next(k.secret for k in DEMO_KEYS if k.tenant_id == "kopsyah-bmi")
    lines += [
        "",
        "Try:",
        f"  curl -s -H 'X-API-Key: {bmi}' {reporting.url}/reports/summary",
        f"  {walkthrough_command(data_dir)}   (a new member from registration to the IPLT: README, "
        "Walkthrough)",
        "",
        f"PostgreSQL: 127.0.0.1:{pg.port}, a login per service (passwords: {pg.passwords_path}); "
        f"superuser over the socket only: psql '{pg.url()}'",
        f"Kafka: {kafka.bootstrap_servers}" if kafka else "(no Kafka: embedded event source)",
        f"Logs: {data_dir / 'logs'}        Operator CLI: .venv/bin/washfin status",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="washfin", description="Run washfin on this machine.")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".washfin" / "run",
                        help="where the embedded database (and broker) keep their data")
    parser.add_argument("--kafka", action="store_true", help="run a local Kafka broker and the relays")
    args = parser.parse_args(argv)
    # WASHFIN_RUN_DEMO=0: no demo data load (quicker starts; the tests use it)
    demo = os.environ.get("WASHFIN_RUN_DEMO", "1").strip().lower() not in ("0", "false", "no")
    try:
        return run(args.data_dir.resolve(), args.kafka, demo)
    except KeyboardInterrupt:  # the first signal, landing as an error was reported: clean-up has run
        return 0


if __name__ == "__main__":
    sys.exit(main())
