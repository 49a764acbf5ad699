"""Starting washfin's services as separate OS processes on loopback (run command and end-to-end tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from deploy.local.kafka import InfraError, free_port, stop_process

if TYPE_CHECKING:
    from shared.kafka import KafkaConnection

SERVICES = ("members", "loans", "sanitation", "reporting")


#: reporting's projector process (``REPORTING_ROLE=projector``): its log's and its record's name
PROJECTOR = "reporting-projector"


def reporting_roles(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The environments of reporting's two processes from the service's one: its API
    (``REPORTING_ROLE=api``, projects nothing) and its projector (``projector``, serves no reports), so
    that a projection's batch never holds the event loop that answers requests."""
    return {**env, "REPORTING_ROLE": "api"}, {**env, "REPORTING_ROLE": "projector"}


def database_name(service: str, suffix: str = "") -> str:
    return f"washfin_{service}{suffix}"


@dataclass
class ServiceProcess:
    service: str
    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServiceProcess":
        self.port = self.port or free_port()
        prefix = self.service.upper()
        env = {**os.environ, **self.env, f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(self.port)}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", f"services.{self.service}"], env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait for /readyz to answer 200; returns the seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise InfraError(f"{self.service} exited with code {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise InfraError(f"{self.service} was not ready within {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout, kill_wait=5)

    def kill(self) -> None:
        """kill -9: no shutdown at all (crash tests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def kafka_env(kafka: str | KafkaConnection) -> dict[str, str]:
    """WASHFIN_KAFKA_* variables for a broker login (a bare bootstrap string: plaintext)."""
    from shared.kafka import connection

    c = connection(kafka)
    env = {"WASHFIN_KAFKA_BOOTSTRAP_SERVERS": c.bootstrap_servers, "WASHFIN_KAFKA_SECURITY_PROTOCOL": c.security_protocol}
    if c.authenticated:
        env |= {"WASHFIN_KAFKA_SASL_MECHANISM": c.sasl_mechanism, "WASHFIN_KAFKA_SASL_USERNAME": c.username or "",
                "WASHFIN_KAFKA_SASL_PASSWORD": c.password or ""}
    if c.ssl_cafile:
        env["WASHFIN_KAFKA_SSL_CAFILE"] = c.ssl_cafile
    return env


def service_env(
    service: str,
    database_urls: dict[str, str],
    platform_url: str,
    *,
    kafka: str | KafkaConnection | None,
    extra: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment one service process needs: its database, the platform database, its event source
    (with ``kafka`` a connection: the service's own broker login, WASHFIN_KAFKA_SASL_*; without, the
    other services' event logs: ``sources``, else their ``database_urls``)."""
    prefix = service.upper()
    env = {
        f"{prefix}_DATABASE_URL": database_urls[service],
        "WASHFIN_PLATFORM_DATABASE_URL": platform_url,
        f"{prefix}_EVENT_SOURCE": "kafka" if kafka else "embedded",
        f"{prefix}_LOG_LEVEL": os.environ.get("WASHFIN_LOG_LEVEL", "INFO"),
    }
    if kafka:
        env |= kafka_env(kafka)
    else:
        env["WASHFIN_KAFKA_BOOTSTRAP_SERVERS"] = ""
        others = sources if sources is not None else {s: u for s, u in database_urls.items() if s != service}
        env[f"{prefix}_SOURCE_DATABASE_URLS"] = json.dumps(others)
    env.update(extra or {})
    return env


def members_personal_data_env(data_dir: Path) -> dict[str, str]:
    """The members service's personal-data keys for a local run: made once (random, 32 bytes each) and kept
    in ``<data_dir>/secrets/members-personal-data.json``, the owner's only (0600), so the data sealed in
    one run opens in the next. Never in git: ``.washfin/`` is ignored."""
    from services.members.personal_data import new_key

    path = data_dir / "secrets" / "members-personal-data.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = {"keys": {"local-1": new_key()}, "key_id": "local-1", "lookup_key": new_key()}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(keys, f)
    keys = json.loads(path.read_text())
    return {"MEMBERS_PERSONAL_DATA_KEYS": json.dumps(keys["keys"]), "MEMBERS_PERSONAL_DATA_KEY_ID": keys["key_id"],
            "MEMBERS_PERSONAL_DATA_LOOKUP_KEY": keys["lookup_key"]}


def ephemeral_personal_data_keys(key_id: str) -> None:
    """Personal-data keys for a process that keeps nothing (the test session, a benchmark run): random,
    set in this process's environment unless given, and inherited by the service processes it starts."""
    from services.members.personal_data import new_key

    os.environ.setdefault("MEMBERS_PERSONAL_DATA_KEYS", json.dumps({key_id: new_key()}))
    os.environ.setdefault("MEMBERS_PERSONAL_DATA_LOOKUP_KEY", new_key())
