"""The run command: the whole system on one machine, on its embedded default.

Starts an embedded PostgreSQL (data kept in .washfin/run, so nothing is lost between runs), migrates,
registers the two demo cooperatives and their demo keys, starts the four services as separate
processes (consumers tail the other services' event logs; ``--kafka`` runs a local Kafka broker and
the relays instead), loads demo members, prints the URLs and keys, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from deploy.local.demo import DEMO_KEYS, load_all_demo, prepare_demo_platform
from deploy.local.kafka import REPO_ROOT, InfraError, LocalKafka
from deploy.local.postgres import LocalPostgres
from deploy.local.services import SERVICES, ServiceProcess, database_name, service_env
from services.reporting.demo import demo_env as reporting_demo_env


def run(data_dir: Path, with_kafka: bool) -> int:
    t0 = time.monotonic()

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    pg = LocalPostgres(data_dir / "postgres")
    kafka: LocalKafka | None = None
    procs: list[ServiceProcess] = []
    try:
        print("starting embedded PostgreSQL ...", flush=True)
        pg.start()
        urls = {}
        for s in (*SERVICES, "platform"):
            pg.create_database(database_name(s))
            urls[s] = pg.url(database_name(s))
        asyncio.run(prepare_demo_platform(urls["platform"]))
        bootstrap = None
        if with_kafka:
            print("starting local Kafka broker ...", flush=True)
            kafka = LocalKafka(data_dir / "kafka").start()
            bootstrap = kafka.bootstrap_servers
        service_urls = {s: u for s, u in urls.items() if s != "platform"}
        for s in SERVICES:
            env = service_env(s, service_urls, urls["platform"], kafka=bootstrap,
                              extra=reporting_demo_env() if s == "reporting" else None)
            procs.append(ServiceProcess(s, env, data_dir / "logs" / f"{s}.log").start())
        for p in procs:
            p.wait_ready()
        ready_s = time.monotonic() - t0
        _write_env_file(data_dir / "washfin.env", urls, procs, bootstrap)
        print("loading demo data through the services' APIs ...", flush=True)
        asyncio.run(load_all_demo({p.service: p.url for p in procs}))
        reporting = next(p for p in procs if p.service == "reporting")
        _banner(procs, reporting, ready_s, pg, kafka, data_dir)
        while all(p.proc is not None and p.proc.poll() is None for p in procs):
            time.sleep(0.5)
        dead = [p for p in procs if p.proc is not None and p.proc.poll() is not None]
        for p in dead:
            print(f"\n{p.service} stopped unexpectedly:\n{p.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for p in procs:
            with contextlib.suppress(Exception):
                p.stop()
        if kafka is not None:
            kafka.stop()
        pg.stop()
        print("all washfin processes stopped", flush=True)


def _write_env_file(path: Path, urls: dict[str, str], procs: list[ServiceProcess], kafka: str | None) -> None:
    """Settings of the running system, for the operator CLI (`washfin status` and friends)."""
    lines = [f"WASHFIN_PLATFORM_DATABASE_URL={urls['platform']}"]
    lines += [f"{s.upper()}_DATABASE_URL={urls[s]}" for s in SERVICES]
    lines += [f"WASHFIN_{p.service.upper()}_URL={p.url}" for p in procs]
    if kafka:
        lines.append(f"WASHFIN_KAFKA_BOOTSTRAP_SERVERS={kafka}")
    path.write_text("# written by the run command; read by the washfin CLI\n" + "\n".join(lines) + "\n")


def _banner(procs: list[ServiceProcess], reporting: ServiceProcess, ready_s: float, pg: LocalPostgres,
            kafka: LocalKafka | None, data_dir: Path) -> None:
    lines = ["", f"washfin is up ({ready_s:.1f}s to healthy services). Open:", ""]
    lines.append(f"  dashboard   {reporting.url}/dashboard   (paste a manager key below)")
    for p in procs:
        lines.append(f"  {p.service:<11} {p.url}/docs")
    lines += ["", "Demo API keys (send as the X-API-Key header):"]
    for k in DEMO_KEYS:
        lines.append(f"  {k.tenant_id:<14} {k.role.value:<14} {k.secret}")
    bmi = next(k.secret for k in DEMO_KEYS if k.tenant_id == "kopsyah-bmi")
    lines += [
        "",
        "Try:",
        f"  curl -s -H 'X-API-Key: {bmi}' {reporting.url}/reports/summary",
        "",
        f"PostgreSQL: {pg.url()}" + (f"   Kafka: {kafka.bootstrap_servers}" if kafka else "   (no Kafka: embedded event source)"),
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
    return run(args.data_dir.resolve(), args.kafka)


if __name__ == "__main__":
    sys.exit(main())
