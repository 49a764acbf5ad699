"""``washfin repair job-links`` on real PostgreSQL, against the stuck state the old sanitation fallback made
(commit e1d859f, before stream ids were per kind of record): a contractor held a financed job's derived id,
so the tranche reaction ordered the job under uuid5(disbursement event id, "job"); the loans service, which
expects the derived id, refused that job's passed inspection and tranche 2 waited forever (issue 14).

The repair is a dry run unless --apply, releases tranche 2 exactly once (a second run, and the inspection
delivered again, release nothing more) and links a job not inspected yet so its inspection releases the
tranche as usual. The CLI runs as a separate process on the services' own databases."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

from services.loans.reactions import TrancheRelease
from services.sanitation.reactions import TrancheOrdersJob
from shared.contracts import load_all
from shared.envelope import Envelope
from tests.cli import run_in_process
from tests.helpers import ServiceClient
from tests.services.conftest import BMI, headers
from tests.services.loans.support import MANAGER, Walk
from tests.services.loans.support import events as loans_events
from tests.services.sanitation.helpers import INSPECTOR, contractor, findings, ok
from tests.services.sanitation.helpers import events as sanitation_events

REGISTRY = load_all()


def washfin(loans: ServiceClient, sanitation: ServiceClient, *args: str) -> subprocess.CompletedProcess[str]:
    """``washfin *args`` on the two services' databases, in this process as a new process would run it
    (``tests/cli.py``; tests/ops/test_cli.py checks the two agree)."""
    return run_in_process({"LOANS_DATABASE_URL": loans.runtime.settings.database_url,
                           "SANITATION_DATABASE_URL": sanitation.runtime.settings.database_url}, *args)


def answer(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def stuck_job(loans: ServiceClient, sanitation: ServiceClient, *, inspected: bool) -> tuple[Walk, str]:
    """A financing disbursed in loans whose job the old fallback ordered under uuid5(event id, "job"), the
    derived id held by a contractor; with ``inspected``, the job passed its inspection and loans refused to
    release tranche 2 for it. The financing and the job's id."""
    w = await Walk(loans).disbursed(amount=6_000_000)
    derived = w.body["tranches"][0]["job_id"]
    [cause] = [e for e in await loans_events(loans)
               if e.type == "loans.TrancheDisbursed" and e.stream_id == w.id]
    await contractor(sanitation, contractor_id=derived, certified=False)  # the squatter of the old days
    fallback = str(uuid.uuid5(cause.event_id, "job"))
    moved = cause.model_copy(update={"payload": {**cause.payload, "job_id": fallback}})
    orders = next(p for p in sanitation.runtime.projections if isinstance(p, TrancheOrdersJob))
    await orders.handle(None, moved, REGISTRY.decode(moved))  # type: ignore[arg-type]
    job = ok(await sanitation.get(f"/jobs/{fallback}", headers=headers(BMI)))
    assert (job["status"], job["financing_id"]) == ("ordered", w.id)
    if inspected:
        await inspect(sanitation, fallback, "2025-02-03")
        await deliver_inspections(loans, sanitation, fallback)
        assert await tranches(loans, w.id) == [1]  # the stuck state: loans refused the job's inspection
    return w, fallback


async def inspect(sanitation: ServiceClient, job_id: str, on: str) -> None:
    builder = await contractor(sanitation)
    ok(await sanitation.post(f"/jobs/{job_id}/assignment", headers=headers(BMI),
                             json={"contractor_id": builder, "assigned_on": "2025-01-17"}))
    ok(await sanitation.post(f"/jobs/{job_id}/start", headers=headers(BMI),
                             json={"started_on": "2025-01-18"}))
    ok(await sanitation.post(f"/jobs/{job_id}/inspections", headers=headers(BMI, INSPECTOR),
                             json={"inspected_on": on, "septic_tank": findings()}))


async def deliver_inspections(loans: ServiceClient, sanitation: ServiceClient, job_id: str) -> list[Envelope]:
    """The job's InspectionRecorded events, handed to loans' tranche release as its consumer would."""
    found = [e for e in await sanitation_events(sanitation)
             if e.type == "sanitation.InspectionRecorded" and e.stream_id == job_id]
    release = next(p for p in loans.runtime.projections if isinstance(p, TrancheRelease))
    for env in found:
        async with loans.runtime.pool.acquire() as conn, conn.transaction():
            await release.handle(conn, env, REGISTRY.decode(env))
    return found


async def tranches(loans: ServiceClient, financing_id: str) -> list[int]:
    return [e.payload["tranche_number"] for e in await loans_events(loans)
            if e.type == "loans.TrancheDisbursed" and e.stream_id == financing_id]


async def test_the_repair_releases_a_stuck_tranche_two_exactly_once_and_only_when_applied(
        loans: ServiceClient, sanitation: ServiceClient) -> None:
    w, job = await stuck_job(loans, sanitation, inspected=True)
    [inspection] = [e for e in await sanitation_events(sanitation)
                    if e.type == "sanitation.InspectionRecorded" and e.stream_id == job]
    before = len(await loans_events(loans))

    plan = answer(washfin(loans, sanitation, "--json", "repair", "job-links"))  # a dry run by default
    assert plan["apply"] is False
    [item] = plan["jobs"]
    derived = w.body["tranches"][0]["job_id"]
    assert (item["financing_id"], item["job_id"], item["previous_job_id"]) == (w.id, job, derived)
    assert (item["relink"], item["release"], item["applied"]) == (True, 2, False)
    assert item["inspection"] == str(inspection.event_id)
    assert len(await loans_events(loans)) == before  # nothing written

    done = washfin(loans, sanitation, "--json", "repair", "job-links", "--apply")
    [item] = answer(done)["jobs"]
    assert (item["relink"], item["release"], item["applied"]) == (True, 2, True)
    assert '"job_relinked"' in done.stderr and w.id in done.stderr  # the repair is logged
    assert await tranches(loans, w.id) == [1, 2]
    new = (await loans_events(loans))[before:]
    assert [e.type for e in new] == ["loans.JobRelinked", "loans.TrancheDisbursed"]
    relinked, second = new
    assert relinked.payload["job_id"] == job and relinked.actor and relinked.actor.startswith("cli:")
    assert second.payload["job_id"] == job and second.payload["amount"] == 3_000_000
    assert second.payload["disbursed_on"] == "2025-02-03" and second.causation_id == inspection.event_id
    body = ok(await loans.get(f"/financings/{w.id}", headers=headers(BMI, MANAGER)))
    assert body["disbursed"] == 6_000_000 and body["tranches"][1]["waiting_for"] is None

    # exactly once: a second run finds nothing to do, the inspection delivered again releases nothing
    again = washfin(loans, sanitation, "repair", "job-links", "--apply")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout
    await deliver_inspections(loans, sanitation, job)
    assert await tranches(loans, w.id) == [1, 2] and len(await loans_events(loans)) == before + 2


async def test_a_job_not_inspected_yet_is_linked_and_its_inspection_then_releases_tranche_two(
        loans: ServiceClient, sanitation: ServiceClient) -> None:
    w, job = await stuck_job(loans, sanitation, inspected=False)
    text = washfin(loans, sanitation, "repair", "job-links")
    assert text.returncode == 0 and "would be linked" in text.stdout and "dry run" in text.stdout, text.stdout
    [item] = answer(washfin(loans, sanitation, "--json", "repair", "job-links", "--apply"))["jobs"]
    assert (item["relink"], item["release"], item["applied"]) == (True, None, True)
    assert await tranches(loans, w.id) == [1]
    await inspect(sanitation, job, "2025-02-05")
    await deliver_inspections(loans, sanitation, job)  # the usual path, now that loans knows the job
    assert await tranches(loans, w.id) == [1, 2]
    [item] = answer(washfin(loans, sanitation, "--json", "repair", "job-links", "--apply"))["jobs"]
    assert (item["relink"], item["release"], item["applied"]) == (False, None, False)


async def test_jobs_under_their_derived_id_are_not_touched(loans: ServiceClient,
                                                           sanitation: ServiceClient) -> None:
    w = await Walk(loans).disbursed(amount=6_000_000)
    [cause] = [e for e in await loans_events(loans) if e.type == "loans.TrancheDisbursed"]
    orders = next(p for p in sanitation.runtime.projections if isinstance(p, TrancheOrdersJob))
    await orders.handle(None, cause, REGISTRY.decode(cause))  # type: ignore[arg-type]
    assert ok(await sanitation.get(f"/jobs/{w.body['tranches'][0]['job_id']}", headers=headers(BMI)))
    result = washfin(loans, sanitation, "--json", "repair", "job-links", "--apply")
    assert answer(result)["jobs"] == []
