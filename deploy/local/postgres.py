"""A real, embedded PostgreSQL server for machines without Docker.

The server binaries come from the ``pgserver`` wheel (PostgreSQL 16), or from Debian's
``postgresql`` package when that is installed instead. The server listens on 127.0.0.1 on a free port
and on a Unix socket inside its data folder. PostgreSQL refuses to run as root, so under root the
server runs as an unprivileged system user (``washfin-pg``, created on first use).

    python -m deploy.local.postgres start DIR     # run in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.kafka import InfraError, free_port

PG_USER = "washfin-pg"


def bin_dir() -> Path:
    """Folder of the PostgreSQL server binaries: pgserver's bundled build, else Debian's."""
    try:
        with warnings.catch_warnings():  # pgserver's import warns about XDG_RUNTIME_DIR; we use only its binaries
            warnings.simplefilter("ignore")
            import pgserver._commands as pgc

        path = Path(pgc.POSTGRES_BIN_PATH)
        if (path / "postgres").exists():
            return path
    except ImportError:
        pass
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if debian:
        return Path(debian[-1]).parent
    raise InfraError(
        "no PostgreSQL server binaries: install the `pgserver` wheel (pip install pgserver) "
        "or Debian's `postgresql` package"
    )


def _system_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(PG_USER)


def _let_traverse(path: Path) -> None:
    """Let other users traverse (x only) every folder above ``path``, as the server user must."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _let_read_tree(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        for name in dirs:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            p = Path(root, name)
            m = p.stat().st_mode
            p.chmod(m | stat.S_IROTH | (stat.S_IXOTH if m & stat.S_IXUSR else 0))


@dataclass
class LocalPostgres:
    """One PostgreSQL server process on loopback, owned by this object."""

    data_dir: Path
    port: int = 0
    superuser: str = "postgres"
    settings: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, int]:
        user = _system_user()
        return {"user": user.pw_uid, "group": user.pw_gid} if user else {}

    def start(self, timeout: float = 60.0) -> "LocalPostgres":
        bins = bin_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        as_user = self._run_as()
        if as_user:
            _let_traverse(bins)
            _let_read_tree(bins.parent)
            _let_traverse(self.data_dir)
            os.chown(self.data_dir, as_user["user"], as_user["group"])
        if not (self.pgdata / "PG_VERSION").exists():
            shutil.rmtree(self.pgdata, ignore_errors=True)
            init = subprocess.run(
                [str(bins / "initdb"), "-D", str(self.pgdata), "-U", self.superuser, "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
                capture_output=True, text=True, **as_user,
            )
            if init.returncode != 0:
                # older initdb builds may lack the C.UTF-8 locale
                init = subprocess.run(
                    [str(bins / "initdb"), "-D", str(self.pgdata), "-U", self.superuser, "--auth=trust",
                     "--encoding=UTF8", "--no-locale"],
                    capture_output=True, text=True, **as_user,
                )
            if init.returncode != 0:
                raise InfraError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        saved = self.data_dir / "port"
        if not self.port:
            self.port = int(saved.read_text()) if saved.exists() else free_port()
        try:
            saved.write_text(str(self.port))
        except OSError:
            pass
        opts = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # every client connects over TCP; a socket path longer than the kernel's 107 bytes (a deep test
            # directory) would stop the server, so a deep data directory gets no Unix socket at all
            "unix_socket_directories": str(self.pgdata) if len(str(self.pgdata)) < 90 else "",
            "max_connections": "300",
            "shared_buffers": "256MB",
            "logging_collector": "off",
            **self.settings,
        }
        args = [str(bins / "postgres"), "-D", str(self.pgdata)]
        for k, v in opts.items():
            args += ["-c", f"{k}={v}"]
        log = open(self.data_dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     **as_user)  # type: ignore[call-overload]
        log.close()
        self._wait_ready(bins, timeout)
        return self

    def _wait_ready(self, bins: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = (self.data_dir / "postgres.log").read_text(errors="replace").splitlines()[-15:]
                raise InfraError("PostgreSQL exited at start:\n" + "\n".join(tail))
            ok = subprocess.run([str(bins / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"])
            if ok.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise InfraError(f"PostgreSQL did not accept connections within {timeout:.0f}s")

    def create_database(self, name: str) -> None:
        """Create ``name`` if it does not exist (idempotent)."""
        bins = bin_dir()
        q = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"
        psql = [str(bins / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.superuser, "-d",
                "postgres", "-tAc"]
        exists = subprocess.run(psql + [q], capture_output=True, text=True, check=True).stdout.strip()
        if exists != "1":
            subprocess.run(psql + [f'CREATE DATABASE "{name}"'], capture_output=True, text=True, check=True)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown: roll back open transactions, checkpoint
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.postgres", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="run a server in the foreground until interrupted")
    st.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        pg = LocalPostgres(args.data_dir.resolve()).start()
        print(f"PostgreSQL ready: {pg.url()}", flush=True)
        try:
            assert pg.proc is not None
            pg.proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            pg.stop()
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
