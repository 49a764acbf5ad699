"""Reporting split in two (``REPORTING_ROLE``): an API process that projects nothing, and a projector beside
it on the same database. The API answers from what the projector writes, its cached figures go stale with
the projector's batches (the cache key is read from the database), and its freshness figures count the
events the projector has not applied yet, per cooperative, from the positions the projector commits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.local.demo import DEMO_MEMBERS, key_for
from deploy.local.infra import PostgresHandle
from shared.tenancy import Role
from tests.helpers import eventually
from tests.services.reporting.conftest import System, quiet, start_system
from tests.services.reporting.scenario import BAIK, BMI


def h(tenant: str, role: Role = Role.MANAGER) -> dict[str, str]:
    return {"X-API-Key": key_for(tenant, role)}


@pytest.fixture
async def split(pg: PostgresHandle, platform_url: str) -> AsyncIterator[System]:
    async with start_system(pg, platform_url, split=True) as s:  # the tests' default, said here
        yield s


async def _register(system: System, tenant: str, n: int) -> None:
    r = await system.members.post("/members", json=DEMO_MEMBERS[tenant][n],
                                  headers=h(tenant, Role.FIELD_OFFICER))
    assert r.status_code == 201, r.text


async def _members(system: System, tenant: str) -> int:
    r = await system.reporting.get("/reports/cooperative", headers=h(tenant))
    assert r.status_code == 200, r.text
    return int(r.json()["reach"]["members"])


async def test_the_api_projects_nothing_and_answers_from_what_the_projector_writes(split: System) -> None:
    assert split.projector is not None
    assert split.reporting.runtime.consumers == [] and split.projector.runtime.consumers
    await _register(split, BMI, 0)
    await quiet(split)
    summary = (await split.reporting.get("/reports/summary", headers=h(BMI))).json()
    assert summary["members"] == 1
    assert await _members(split, BMI) == 1  # computed, and cached under the projector's batches
    await _register(split, BMI, 1)
    await quiet(split)
    assert await _members(split, BMI) == 2  # the projector's batch made the cached figures stale
    fresh = (await split.reporting.get("/reports/dashboard", headers=h(BMI))).json()["freshness"]
    assert fresh["lag_events"] == 0 and fresh["as_of_position"]
    # the projector serves health and metrics only
    assert (await split.projector.get("/reports/summary", headers=h(BMI))).status_code == 404
    assert (await split.projector.get("/readyz")).status_code == 200


async def test_the_apis_freshness_counts_what_the_projector_has_not_applied_per_cooperative(
        split: System) -> None:
    assert split.projector is not None
    await _register(split, BMI, 0)
    await quiet(split)

    async def lag(tenant: str) -> object:
        r = await split.reporting.get("/reports/dashboard", headers=h(tenant))
        return r.json()["freshness"]["lag_events"]

    assert await lag(BMI) == 0
    for group in list(split.projector.runtime._groups):  # the projector stops applying
        await split.projector.runtime.stop_consumers(group)
    await _register(split, BMI, 1)
    assert await eventually(lambda: _positive(lag(BMI)))
    assert await lag(BAIK) == 0  # another cooperative's backlog never shows


async def _positive(value: object) -> bool:
    v = await value  # type: ignore[misc]
    return isinstance(v, int) and v > 0
