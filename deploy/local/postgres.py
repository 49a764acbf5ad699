"""A real, embedded PostgreSQL server for machines without Docker.

The server binaries come from the ``pgserver`` wheel (PostgreSQL 16), or from Debian's
``postgresql`` package when that is installed instead. The server listens on 127.0.0.1 on a free port
and on a Unix socket inside its data folder. PostgreSQL refuses to run as root, so under root the
server runs as an unprivileged system user (``washfin-pg``, created on first use).

Authentication (``pg_hba.conf``, rewritten at every start, so a data folder made by older code with
``trust`` everywhere is brought to this posture by its next start):

- TCP (127.0.0.1, ::1): ``scram-sha-256`` for every login, and the superuser refused outright;
- the Unix socket: ``trust``, the superuser's only way in (the operator's ``psql -h <socket dir>``, the
  set-up). The socket lives in the data folder (``pgdata``, mode 0700, the server user's), or, where that
  path is too long for a socket, in a private 0700 folder in /tmp named after it: only the server's OS user and root
  reach it, who can read the data files themselves anyway.

Logins are made with ``ensure_login``; their passwords are generated per data folder (``logins.json``
beside ``pgdata``, mode 0600, its owner's only), never written in the source.

    python -m deploy.local.postgres start DIR     # run in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.kafka import InfraError, exit_status, free_port, serve_until_interrupted, stop_process

PG_USER = "washfin-pg"
#: the longest socket folder path that leaves room for ``/.s.PGSQL.<port>`` in the kernel's 107 bytes
SOCKET_DIR_MAX = 90
PASSWORDS_FILE = "logins.json"

#: written over ``pg_hba.conf`` at every start (see the module's docstring)
HBA = """# written by deploy/local/postgres.py at every start: edits here are lost
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       all                      trust
host    all       {superuser}  127.0.0.1/32   reject
host    all       {superuser}  ::1/128        reject
host    all       all       127.0.0.1/32   scram-sha-256
host    all       all       ::1/128        scram-sha-256
"""


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

    #: where the Unix socket is (set by ``start``)
    socket_dir: Path | None = field(default=None, repr=False)
    _own_socket_dir: bool = field(default=False, repr=False)

    def url(self, database: str = "postgres") -> str:
        """The superuser's URL: over the Unix socket (TCP refuses the superuser)."""
        assert self.socket_dir is not None, "start the server first"
        return f"postgresql://{self.superuser}@/{database}?host={self.socket_dir}&port={self.port}"

    def login_url(self, login: str, database: str) -> str:
        """``login``'s URL over TCP with its password (made by ``ensure_login``)."""
        return f"postgresql://{login}:{self.password(login)}@127.0.0.1:{self.port}/{database}"

    @property
    def passwords_path(self) -> Path:
        return self.data_dir / PASSWORDS_FILE

    def _passwords(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.passwords_path.read_text()))
        except FileNotFoundError:
            return {}

    def password(self, login: str) -> str:
        """``login``'s password: generated on first ask and kept in ``logins.json`` (0600)."""
        known = self._passwords()
        if login not in known:
            known[login] = secrets.token_urlsafe(24)
            tmp = self.passwords_path.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(known, f)
            tmp.replace(self.passwords_path)
        os.chmod(self.passwords_path, 0o600)  # a file made looser by hand is tightened again
        return known[login]

    def sql(self, query: str, database: str = "postgres") -> str:
        """Run ``query`` as the superuser (over the socket); its output, one row a line. The SQL goes in on
        standard input, never on the command line, where any local user could read a password in it."""
        assert self.socket_dir is not None, "start the server first"
        psql = [str(bin_dir() / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.superuser,
                "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-tA", "-f", "-"]
        done = subprocess.run(psql, input=query, capture_output=True, text=True)
        if done.returncode != 0:
            raise InfraError(f"psql on {database} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def ensure_login(self, login: str, *, inherit: bool = False) -> str:
        """``login`` exists as an ordinary login (NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB, and
        NOINHERIT unless ``inherit``) whose password is the one in ``logins.json``: set at every call, so
        a role an older run made (with no password, or another) ends on the file's. Returns the password."""
        password = self.password(login)
        attrs = (f"LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION "
                 f"{'INHERIT' if inherit else 'NOINHERIT'} PASSWORD '{password}'")
        self.sql(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN
                CREATE ROLE "{login}" {attrs};
            ELSE
                ALTER ROLE "{login}" {attrs};
            END IF;
        END $$;""")
        return password

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
        (self.pgdata / "pg_hba.conf").write_text(HBA.format(superuser=self.superuser))
        saved = self.data_dir / "port"
        if not self.port:
            self.port = int(saved.read_text()) if saved.exists() else free_port()
        try:
            saved.write_text(str(self.port))
        except OSError:
            pass
        self.socket_dir = self._make_socket_dir(as_user)
        opts = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # the superuser's way in; a socket path longer than the kernel's 107 bytes (a deep test
            # directory) would stop the server, so a deep data directory's socket goes to a short folder
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "password_encryption": "scram-sha-256",
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

    def _make_socket_dir(self, as_user: dict[str, int]) -> Path:
        """The socket's folder: ``pgdata`` itself, or for a path too long for a socket a folder in the
        temporary directory named after the data folder, so a restart (``stop``, ``start``) keeps the same
        URL. Such a folder must be a directory of ours (or the server user's) with mode 0700; one that
        somebody else made first is refused."""
        if len(str(self.pgdata)) < SOCKET_DIR_MAX:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata.resolve()).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"washfin-pgsock-{digest}"
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        st = path.lstat()
        ours = {os.geteuid(), as_user.get("user", os.geteuid())}
        if not stat.S_ISDIR(st.st_mode) or st.st_uid not in ours or stat.S_IMODE(st.st_mode) & 0o077:
            raise InfraError(f"{path}: the PostgreSQL socket folder is not a 0700 directory of this user's; remove it")
        if as_user:
            os.chown(path, as_user["user"], as_user["group"])
        self._own_socket_dir = True
        return path

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

    def create_database(self, name: str, owner: str | None = None) -> None:
        """Create ``name`` (owned by ``owner``, else the superuser) if it does not exist (idempotent)."""
        if self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self.sql(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None:  # SIGINT: fast shutdown (roll back open transactions, checkpoint)
            stop_process(self.proc, timeout, signal.SIGINT)
        if self._own_socket_dir and self.socket_dir is not None and (self.proc is None or self.proc.poll() is not None):
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.postgres", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="run a server in the foreground until interrupted")
    st.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)

    def serve() -> None:
        pg = LocalPostgres(args.data_dir.resolve()).start()
        serve_until_interrupted(pg, f"PostgreSQL ready: {pg.url()}")

    return exit_status(serve)


if __name__ == "__main__":
    sys.exit(main())
