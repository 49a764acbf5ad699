"""The run command (`make run` = `python -m deploy.local.run`) as a real process on real infrastructure:
its own embedded PostgreSQL and the four service processes, in a temporary data folder (so free ports
and nothing shared with a developer's own `make run`), started in its own process group as a shell's
job is.

- Any number of SIGTERM/SIGINT to the whole group (`kill -TERM -- -PGID`, Ctrl-C and then an impatient
  `kill`) stops it cleanly: exit 0, no traceback, no process it started left, PostgreSQL's
  postmaster.pid gone.
- A second start on the same data folder is refused at once with one line, and the first one goes on.
- What a run killed with SIGKILL left behind (its PostgreSQL, its services) is stopped by the next start;
  a PostgreSQL on the data folder that no run started is reported, not touched.

Every wait polls a real signal (a URL answering, a line printed, a pid gone) under a generous bound.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.postgres import LocalPostgres
from deploy.local.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0  # two shared cores: generous
STOP_TIMEOUT = 120.0



@pytest.fixture(autouse=True)
def _needs_proc() -> None:
    """These tests find the run's processes in /proc: elsewhere they fail with the reason, never skip."""
    if not Path("/proc/self/stat").exists():
        pytest.fail("tests/deploy/test_run_stop.py reads /proc to find the run's processes (Linux only)")


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, state, start time) of a live process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], fields[19]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """Every live process below ``root``: pid -> (start time, command line)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None and st[1] != "Z":
            children.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[2]
    found: dict[int, tuple[str, str]] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = (starts[pid], _cmdline(pid))
        todo += children.get(pid, [])
    return found


def alive(procs: dict[int, tuple[str, str]]) -> dict[int, str]:
    """Those of ``procs`` still running (same pid and same start time: not a reused pid)."""
    out = {}
    for pid, (start, cmd) in procs.items():
        st = _stat(pid)
        if st is not None and st[1] != "Z" and st[2] == start:
            out[pid] = cmd
    return out


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what} (last: {value!r})")
        time.sleep(interval)


@dataclass
class Run:
    """One `python -m deploy.local.run` process, leader of its own process group."""

    data_dir: Path
    name: str
    proc: subprocess.Popen[bytes] = field(init=False)
    seen: dict[int, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_path = self.data_dir.parent / f"{self.name}.out"
        self.err_path = self.data_dir.parent / f"{self.name}.err"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "WASHFIN_RUN_DEMO": "0"}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "deploy.local.run", "--data-dir", str(self.data_dir)],
                                         cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def urls(self) -> dict[str, str]:
        env = (self.data_dir / "washfin.env").read_text().splitlines()
        return {s: line.split("=", 1)[1] for s in SERVICES for line in env
                if line.startswith(f"WASHFIN_{s.upper()}_URL=")}

    def wait_up(self) -> dict[int, tuple[str, str]]:
        """Until the banner is printed and every service's /readyz answers 200; returns (and remembers)
        the processes the run started."""
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the run exited ({self.proc.returncode}):\n{self.stdout}\n{self.stderr}")
            return "washfin is up" in self.stdout

        poll(up, START_TIMEOUT, "the run's banner")
        for service, url in self.urls().items():
            poll(lambda: _ready(url), 60, f"{service} /readyz at {url}")
        self.seen.update(descendants(self.proc.pid))
        return self.seen

    def signal_group(self, sig: signal.Signals) -> None:
        os.killpg(self.proc.pid, sig)  # what `kill -SIG -- -PGID` does: every process of the group

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the run did not exit within {STOP_TIMEOUT:.0f}s:\n{self.stdout}\n{self.stderr}")

    def kill_everything(self) -> None:
        """Test clean-up only: SIGKILL the run and whatever it started that is still there."""
        if self.proc.poll() is None:
            self.seen.update(descendants(self.proc.pid))
            self.proc.kill()
            self.proc.wait(10)
        for pid in alive(self.seen):
            with _suppress_gone():
                os.kill(pid, signal.SIGKILL)


class _suppress_gone:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, *_: Any) -> bool:
        return typ is not None and issubclass(typ, ProcessLookupError)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def base() -> Iterator[Path]:
    """A temporary folder outside pytest's own: under root the server runs as an unprivileged user that
    must traverse it, and every pytest session starting meanwhile makes /tmp/pytest-of-<user> 0700 again."""
    path = Path(tempfile.mkdtemp(prefix="washfin-run-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def runs(base: Path) -> Iterator[Callable[[str], Run]]:
    """Start runs on one temporary data folder; whatever is left is killed at the end."""
    started: list[Run] = []
    data_dir = base / "run"

    def start(name: str) -> Run:
        started.append(Run(data_dir, name))
        return started[-1]

    yield start
    for r in started:
        r.kill_everything()


def assert_stopped_cleanly(r: Run, rc: int, started: dict[int, tuple[str, str]]) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert rc == 0, f"exit code {rc}\n{r.stdout}\n{r.stderr}"
    deadline = time.monotonic() + 15  # the run waited for them; only the kernel's bookkeeping may lag
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(started), f"left running after the run exited: {alive(started)}"
    assert not (r.data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()
    assert "all washfin processes stopped" in r.stdout


def _check_started(started: dict[int, tuple[str, str]]) -> None:
    commands = " | ".join(cmd for _, cmd in started.values())
    assert "postgres -D" in commands, commands
    for s in SERVICES:
        assert f"services.{s}" in commands, commands


@pytest.mark.parametrize(
    "signals",
    [
        # kill -TERM -- -PGID twice at once, then again while clean-up runs
        (signal.SIGTERM, signal.SIGTERM, "cleanup", signal.SIGTERM, signal.SIGTERM),
        # Ctrl-C, Ctrl-C again while it stops, then an impatient kill
        (signal.SIGINT, "cleanup", signal.SIGINT, signal.SIGTERM, signal.SIGINT),
    ],
    ids=["sigterm-repeated", "sigint-then-sigterm"],
)
def test_repeated_signals_to_the_group_stop_everything(runs: Callable[[str], Run], signals: tuple[Any, ...]) -> None:
    r = runs("run")
    started = r.wait_up()
    _check_started(started)

    for s in signals:
        if s == "cleanup":
            poll(lambda: "stopping" in r.stdout or r.proc.poll() is not None, 30, "the run starting its clean-up",
                 interval=0.01)
        else:
            with _suppress_gone():
                r.signal_group(s)
    rc = r.wait_exit()
    assert_stopped_cleanly(r, rc, started)


def banner_keys_line_up(stdout: str) -> None:
    """The start banner's demo keys: one line each, every column starting where its heading does (the
    programme officer keys, the longest role, included), a programme key named by its programme."""
    from deploy.local.demo import DEMO_KEYS

    lines = stdout.split("Demo API keys (send as the X-API-Key header):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    heading, rows = lines[0], lines[1:]
    assert heading.split() == ["who", "role", "key"], heading
    assert len(rows) == len(DEMO_KEYS)
    for k, line in zip(DEMO_KEYS, rows, strict=True):
        assert line.index(k.role.value) == heading.index("role"), (heading, line)
        assert line.index(k.secret) == heading.index("key") and line.endswith(k.secret), (heading, line)
    assert any(line.strip().startswith("programme iuwash-plus ") for line in rows), rows


def refused_in_one_line(run: Run) -> str:
    """The one line a refused start says, once it has exited (not 0)."""
    assert run.proc.wait(60) != 0
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_second_start_is_refused_and_leaves_the_first_running(runs: Callable[[str], Run]) -> None:
    first = runs("first")
    started = first.wait_up()
    banner_keys_line_up(first.stdout)
    # the banner says how to try the README's walkthrough against this very run (its own settings file)
    assert f"python -m deploy.local.walkthrough --env-file {first.data_dir / 'washfin.env'}" in first.stdout
    postmaster = (first.data_dir / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0]

    second = runs("second")
    line = refused_in_one_line(second)
    assert "already running" in line and str(first.proc.pid) in line, line
    assert "Traceback" not in second.stderr

    assert first.proc.poll() is None
    assert not set(started) - set(alive(started)), "the refused start stopped some of the first run's processes"
    for service, url in first.urls().items():
        assert _ready(url), f"{service} of the first run no longer ready"
    assert (first.data_dir / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0] == postmaster

    first.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(first, first.wait_exit(), started)


def test_next_start_stops_what_a_killed_run_left(runs: Callable[[str], Run]) -> None:
    killed = runs("killed")
    left = killed.wait_up()
    _check_started(left)
    killed.proc.kill()  # SIGKILL to the run alone: its children (own sessions) survive
    killed.proc.wait(10)
    assert alive(left), "nothing survived the SIGKILL: this test shows nothing"

    nxt = runs("next")
    started = nxt.wait_up()
    assert not alive(left), f"left running: {alive(left)}"
    assert "earlier run" in nxt.stdout, nxt.stdout
    assert "Traceback" not in nxt.stderr, nxt.stderr

    nxt.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(nxt, nxt.wait_exit(), started)


def test_a_postgres_no_run_started_is_reported_and_left_alone(runs: Callable[[str], Run], base: Path) -> None:
    pg = LocalPostgres(base / "run" / "postgres").start()
    try:
        assert pg.proc is not None
        line = refused_in_one_line(runs("run"))
        assert "PostgreSQL" in line and str(pg.proc.pid) in line, line
        assert pg.proc.poll() is None, "the run stopped a PostgreSQL it had not started"
    finally:
        pg.stop()
