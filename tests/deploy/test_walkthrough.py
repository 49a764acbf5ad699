"""The README's walkthrough works: ``python -m deploy.local.walkthrough`` (the script behind it) is run as a
subprocess against the four services as separate processes with the run command's demo data loaded
(what ``make run`` shows a newcomer), and every step is answered as the README says; the README's section
is exactly what the script's steps render, so neither can change without the other. Bad set-ups fail in
one line with a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from deploy.local import walkthrough
from deploy.local.demo import key_for, load_all_demo
from deploy.local.infra import PostgresHandle
from deploy.local.kafka import free_port
from deploy.local.services import SERVICES, ServiceProcess, service_env
from shared.tenancy import Role

ROOT = Path(__file__).resolve().parents[2]
BMI = "kopsyah-bmi"


def run_script(*args: str, env_file: Path | None = None, urls: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The script as a newcomer runs it, with only the given service URLs in its environment."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("WASHFIN_") and k.endswith("_URL"))}
    env.update({f"WASHFIN_{s.upper()}_URL": url for s, url in (urls or {}).items()})
    argv = [sys.executable, "-m", "deploy.local.walkthrough", *args]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def system(pg: PostgresHandle, platform_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The four services as processes (embedded event source, real PostgreSQL) with the demo data loaded."""
    urls = {s: asyncio.run(pg.create_database(f"walk_{s}")) for s in SERVICES}
    logs = tmp_path_factory.mktemp("walkthrough-services")
    procs = [ServiceProcess(s, service_env(s, urls, platform_url, kafka=None), logs / f"{s}.log").start()
             for s in SERVICES]
    try:
        for p in procs:
            p.wait_ready()
        service_urls = {p.service: p.url for p in procs}
        asyncio.run(load_all_demo(service_urls))
        yield service_urls
    finally:
        for p in procs:
            p.stop()


def test_the_readme_shows_the_walkthrough_the_script_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert walkthrough.BEGIN in readme and walkthrough.END in readme, "README.md has no walkthrough section"
    section = readme[readme.index(walkthrough.BEGIN):readme.index(walkthrough.END) + len(walkthrough.END)]
    assert section == walkthrough.markdown(), (
        "README.md's walkthrough differs from the script's steps: paste `python -m deploy.local.walkthrough "
        "--markdown` over it")
    # the way to run it is in the README too, and every demo key it shows is a real demo key
    assert "python -m deploy.local.walkthrough" in readme.replace(walkthrough.BEGIN, "")
    for role in walkthrough.PEOPLE:
        assert walkthrough.key(role) == key_for(BMI, role)
    assert all(len(line) <= 110 for line in section.splitlines() if not line.startswith("|"))


def test_the_walkthrough_runs_against_the_demo_system(system: dict[str, str], tmp_path: Path) -> None:
    # the URLs from a settings file, as `make run` writes .washfin/run/washfin.env
    env_file = tmp_path / "washfin.env"
    env_file.write_text("".join(f"WASHFIN_{s.upper()}_URL={url}\n" for s, url in system.items()))
    done = run_script(env_file=env_file)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    calls = [s for s in walkthrough.STEPS if s.until is None]
    assert [ln.split(".", 1)[0].strip() for ln in lines if not ln.lstrip().startswith(("then", "done"))] == \
        [str(n) for n in range(1, len(calls) + 1)], done.stdout
    assert lines[-1].startswith("done: member WALK-"), done.stdout
    ids = dict(part.split(" ", 1) for part in lines[-1].removeprefix("done: ").split(", "))
    member_id = ids["member"].split("(")[1].rstrip(")")

    # what the README promises is really there, read back through the APIs
    today = datetime.now(ZoneInfo("Asia/Jakarta")).date().isoformat()
    officer = {"X-API-Key": key_for(BMI, Role.FIELD_OFFICER)}
    f = httpx.get(f"{system['loans']}/financings/{ids['financing']}", headers=officer, timeout=10).json()
    assert f["member_id"] == member_id and f["status"] == "active", f["status"]
    assert [t["disbursed_on"] for t in f["tranches"]] == [today, today]
    assert f["schedule"][0]["status"] == "paid" and f["work_order"]["payee_id"] == walkthrough.CONTRACTOR_ID
    job = httpx.get(f"{system['sanitation']}/jobs/{ids['job']}", headers=officer, timeout=10).json()
    assert job["status"] == "completed" and job["financing_id"] == ids["financing"]
    assert job["desludging"]["last_emptied_on"] == today
    member = httpx.get(f"{system['members']}/members/{member_id}", headers=officer, timeout=10).json()
    assert member["sanitation_rung"] == "safely_managed"

    # run again: a new member each time, so the README's steps work every time they are tried
    again = run_script(urls=system)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] != lines[-1]


def one_error_line(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert says in result.stderr, result.stderr


def test_without_a_running_system_it_fails_in_one_line(tmp_path: Path) -> None:
    one_error_line(run_script(env_file=tmp_path / "none.env"), "WASHFIN_MEMBERS_URL")
    nobody = f"http://127.0.0.1:{free_port()}"
    result = run_script(urls={s: nobody for s in SERVICES}, timeout=60)
    one_error_line(result, "step 1 (Register the member with the baseline survey)")
    assert "no answer" in result.stderr
