"""Every request body the four OpenAPI documents show has an example, and every example is accepted by the
demo system: the four services in-process on real PostgreSQL, wired as ``make run`` wires them (consumers
tail each other's event logs), with the demo cooperatives, their demo keys and the demo data loaded through
the APIs as ``make run`` loads them.

``WORKFLOW`` replays each documented example once or more, in the order a cooperative works (the README's
walk-through): a member, then a financing through its life, the construction job its first tranche orders,
a cash-funded job, desludging, reporting's targets and programmes. Where an example holds one of the
made-up ids of ``shared.openapi.EXAMPLE_IDS``, the replay substitutes the id an earlier step answered with
(the step the documentation names), and a path parameter is that id or its documented example. Each answer
must be 2xx; the examples must be exactly the set the documents hold, so an example added without a place
in the workflow, or a body without an example, fails here. Afterwards every read whose path names a resource
(``GET .../{id}``) answers 200 with those ids or the documented parameter examples.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from deploy.local.demo import DEMO_KEYS, key_for
from deploy.local.infra import PostgresHandle
from shared.db import connect
from shared.openapi import EXAMPLE_IDS
from shared.tenancy import Role, issue_key
from tests.databases import service_databases
from tests.helpers import ServiceClient, eventually, running_app

SERVICES = ("members", "loans", "sanitation", "reporting")
TENANT = "kopsyah-bmi"  # the examples are Kopsyah BMI's (Tangerang): its products, villages, IPLT
OPERATOR = "operator"
JSON = "application/json"


@dataclass(frozen=True)
class Step:
    """One replayed example: ``example`` is the name of the media type's example (``example-N``)."""

    service: str
    method: str
    path: str
    role: Role | str = Role.MANAGER
    example: str = "example-1"
    media: str = JSON
    #: the EXAMPLE_IDS name the answer gives (its field of the same name, or ``field``)
    gives: str | None = None
    field: str | None = None
    #: the body's ``amount`` is the settlement quote's ``to_pay`` on its ``settled_on`` (as the field says)
    quoted: bool = False

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return self.service, self.method, self.path, self.media, self.example


@dataclass(frozen=True)
class FindFinancingJob:
    """Not an example: find the job the financing's first tranche ordered (``GET /jobs``), as the ``job_id``
    parameter's description says, once sanitation has reacted."""


M, L, S, R = "members", "loans", "sanitation", "reporting"
OFFICER, INSPECTOR = Role.FIELD_OFFICER, Role.INSPECTOR
F = "/financings/{financing_id}"
J = "/jobs/{job_id}"

#: a financing from application to disbursement (the one after it is the job its first tranche ordered)
_TO_DISBURSEMENT = [
    Step(L, "post", "/financings", OFFICER, gives="financing_id"),
    Step(L, "post", f"{F}/approve"),
    Step(L, "post", f"{F}/work-order"),
    Step(L, "post", f"{F}/contract"),
    Step(L, "post", f"{F}/disbursements"),
]

WORKFLOW: list[Step | FindFinancingJob] = [
    # -- members: the organisation, two members, a session ----------------------------------------------------
    Step(M, "put", "/settings"),
    Step(M, "post", "/centres"),
    Step(M, "patch", "/centres/{centre_id}"),
    Step(M, "post", "/groups"),
    Step(M, "patch", "/groups/{group_id}"),
    Step(M, "post", "/members", OFFICER, gives="member_id"),
    Step(M, "post", "/members", OFFICER, example="example-2", gives="other_member_id", field="member_id"),
    Step(M, "patch", "/members/{member_id}", OFFICER),
    Step(M, "put", "/members/{member_id}/group", OFFICER),
    Step(M, "post", "/members/find-by-nik", OFFICER),
    Step(M, "post", "/sessions", OFFICER, gives="session_id"),
    Step(M, "post", "/sessions/{session_id}/attendance", OFFICER),
    Step(M, "post", "/sessions/{session_id}/leads", OFFICER),
    # -- sanitation: settings and a certified contractor ---------------------------------------------------------
    Step(S, "put", "/settings"),
    Step(S, "post", "/contractors", OFFICER, gives="contractor_id"),
    Step(S, "post", "/contractors/{contractor_id}/training", OFFICER),
    Step(S, "post", "/contractors/{contractor_id}/certification", OFFICER),
    # -- loans: settings, a product, the member's old book, an application refused ------------------------------
    Step(L, "put", "/settings"),
    Step(L, "post", "/products"),
    Step(L, "post", "/imports"),
    Step(L, "post", "/imports", media="text/csv"),
    Step(L, "post", "/financings", OFFICER, gives="financing_id"),
    Step(L, "post", f"{F}/reject"),
    # ... and one through its life: its first tranche orders the septic tank, assigned to the work order's
    # contractor; the tank passes, is handed over and later emptied at the IPLT
    *_TO_DISBURSEMENT,
    FindFinancingJob(),
    Step(S, "post", f"{J}/start", OFFICER),
    Step(S, "post", f"{J}/inspections", INSPECTOR),
    Step(S, "post", f"{J}/completion", OFFICER),
    Step(S, "post", f"{J}/desludging/requests", OFFICER),
    Step(S, "post", f"{J}/desludging/visits", OFFICER, gives="visit_id"),
    Step(S, "post", "/desludging/visits/{visit_id}/outcome", OFFICER),
    Step(S, "post", "/iplt-receipts", OFFICER),
    Step(M, "post", "/members/{member_id}/surveys", OFFICER),
    Step(L, "post", f"{F}/repayments", OFFICER),
    Step(L, "post", f"{F}/late-charges", OFFICER),
    Step(L, "post", f"{F}/late-charges/{{instalment_number}}/decline"),
    Step(L, "post", f"{F}/late-charges", OFFICER),  # proposed again, and this time approved and paid
    Step(L, "post", f"{F}/late-charges/{{instalment_number}}/approve"),
    Step(L, "post", f"{F}/late-charges/{{instalment_number}}/payments", OFFICER),
    Step(L, "post", f"{F}/hardship", OFFICER),
    Step(L, "post", f"{F}/hardship/clear", OFFICER),
    Step(L, "post", f"{F}/discount"),
    Step(L, "post", f"{F}/reschedule"),
    Step(L, "post", f"{F}/early-settlement", OFFICER, quoted=True),
    # a third financing, written off
    *_TO_DISBURSEMENT,
    Step(L, "post", f"{F}/write-off"),
    # -- sanitation: a cash-funded toilet upgrade that fails an item and is reworked ------------------------------
    Step(S, "post", "/jobs", OFFICER, gives="job_id"),
    Step(S, "put", f"{J}/village", OFFICER),
    Step(S, "post", f"{J}/assignment", OFFICER),
    Step(S, "post", f"{J}/start", OFFICER),
    Step(S, "post", f"{J}/inspections", INSPECTOR, example="example-2"),
    Step(S, "post", f"{J}/rework", OFFICER),
    Step(S, "post", "/contractors/certification-expiries", OFFICER),
    Step(S, "post", "/contractors/{contractor_id}/deactivation", OFFICER),
    # -- reporting: a target, a programme and a cooperative's consent --------------------------------------------
    Step(R, "put", "/reports/targets/{indicator}"),
    Step(R, "put", "/programmes/{programme_id}", OPERATOR),
    Step(R, "put", "/programmes/{programme_id}/cooperatives/{tenant_id}", OPERATOR),
    # -- members: the group closes, the member leaves -------------------------------------------------------------
    Step(M, "post", "/groups/{group_id}/close"),
    Step(M, "post", "/members/{member_id}/exit", OFFICER),
]


#: reads with a path the workflow itself makes, where the state allows it (a written-off financing, the
#: current one at the end, has nothing to settle)
READ_IN_WORKFLOW = {(L, f"{F}/settlement-quote")}


@dataclass
class Demo:
    apps: dict[str, FastAPI]
    clients: dict[str, ServiceClient]
    operator_key: str
    member_ids: dict[str, list[str]] = field(default_factory=dict)

    async def caught_up(self) -> None:
        """Wait until every consumer has applied everything its sources hold (reactions included)."""

        async def no_lag() -> bool:
            for client in self.clients.values():
                for consumer in client.runtime.consumers:
                    if sum((await consumer.lag()).values()):
                        return False
            return True

        await eventually(no_lag, timeout=60, interval=0.1)


@pytest.fixture(scope="module")
async def demo(pg: PostgresHandle, platform_url: str) -> AsyncIterator[Demo]:
    """The demo system: the four services (embedded event source, as ``make run``), the demo cooperatives and
    keys (``platform_url``), the demo data loaded through the APIs by the run command's loaders, the demo
    programmes configured, and an operator key for the operator routes (the demo publishes none)."""
    from deploy.local.demos.loans import load_demo as load_loans
    from deploy.local.demos.members import load_demo as load_members
    from deploy.local.demos.reporting import DEMO_PROGRAMMES
    from deploy.local.demos.reporting import load_demo as load_reporting
    from deploy.local.demos.sanitation import load_demo as load_sanitation
    from services.loans.app import create_app as loans_app
    from services.loans.settings import LoansSettings
    from services.members.app import create_app as members_app
    from services.members.settings import MembersSettings
    from services.reporting.app import create_app as reporting_app
    from services.reporting.settings import ReportingSettings
    from services.sanitation.app import create_app as sanitation_app
    from services.sanitation.settings import SanitationSettings

    conn = await connect(platform_url)
    try:
        operator_key = (await issue_key(conn, None, Role.OPERATOR, label="api examples")).secret
    finally:
        await conn.close()
    dbs = service_databases(pg, platform_url)
    async with AsyncExitStack() as stack:
        urls = {}
        for service in SERVICES:
            urls[service] = await dbs.create(service, f"examples_{service}")
            stack.push_async_callback(dbs.drop, urls[service])
        common: dict[str, Any] = {"platform_database_url": platform_url, "kafka_bootstrap_servers": None,
                                  "event_source": "embedded"}

        def sources(service: str) -> dict[str, str]:
            return {s: urls[s] for s in SERVICES if s not in (service, "reporting")}

        apps = {
            "members": members_app(MembersSettings(database_url=urls["members"], **common,
                                                   source_database_urls=sources("members"))),
            "loans": loans_app(LoansSettings(database_url=urls["loans"], **common,
                                             source_database_urls=sources("loans"))),
            "sanitation": sanitation_app(SanitationSettings(database_url=urls["sanitation"], **common,
                                                            source_database_urls=sources("sanitation"))),
            "reporting": reporting_app(ReportingSettings(database_url=urls["reporting"], **common,
                                                         programmes=DEMO_PROGRAMMES,
                                                         source_database_urls=sources("reporting"))),
        }
        clients = {s: await stack.enter_async_context(running_app(app)) for s, app in apps.items()}
        system = Demo(apps, clients, operator_key)
        system.member_ids = await load_members("http://test", transport=httpx.ASGITransport(app=apps["members"]))
        keys: dict[str, dict[str, str]] = {}
        for k in DEMO_KEYS:
            keys.setdefault(k.tenant_id, {}).setdefault(k.role.value, k.secret)
        await load_loans("http://test", keys, system.member_ids, transport=httpx.ASGITransport(app=apps["loans"]))
        await load_sanitation("http://test", system.member_ids, client=clients["sanitation"])
        await load_reporting("http://test", transport=httpx.ASGITransport(app=apps["reporting"]))
        await system.caught_up()
        yield system


# -- the documents ------------------------------------------------------------------------------------------------


def _documents(demo: Demo) -> dict[str, dict[str, Any]]:
    return {s: demo.apps[s].openapi() for s in SERVICES}


def documented_examples(api: dict[str, Any], service: str) -> dict[tuple[str, ...], tuple[dict[str, Any], Any]]:
    """(service, method, path, media type, example name) -> (the media type's schema, the example's value),
    for every example of every request body; fails for a body without one."""
    out = {}
    for path, ops in api["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "requestBody" not in op:
                continue
            content = op["requestBody"]["content"]
            assert any(media.get("examples") for media in content.values()), \
                f"{service} {method.upper()} {path}: a request body without an example"
            for media_type, media in content.items():
                assert "example" not in media, f"{service} {method.upper()} {path}: name the example"
                for name, example in media.get("examples", {}).items():
                    out[(service, method, path, media_type, name)] = (media["schema"], example["value"])
    return out


def test_every_body_has_examples_that_match_its_schema(demo: Demo) -> None:
    total = 0
    for service, api in _documents(demo).items():
        validate(api)
        for (_, method, path, media, name), (schema, value) in documented_examples(api, service).items():
            total += 1
            jsonschema.Draft202012Validator({**schema, "components": api["components"]}).validate(value)
            if media == JSON:
                assert isinstance(value, dict | list), (service, method, path, name)
    assert total >= 55


def test_every_path_parameter_says_where_its_value_comes_from(demo: Demo) -> None:
    for service, api in _documents(demo).items():
        for path, ops in api["paths"].items():
            for method, op in ops.items():
                for p in op.get("parameters", []) if isinstance(op, dict) else []:
                    if p["in"] == "path":
                        where = f"{service} {method.upper()} {path} {p['name']}"
                        assert p.get("description") and "example" in p, where
                        if p["name"] in EXAMPLE_IDS:
                            assert p["example"] == EXAMPLE_IDS[p["name"]][0], where
                            assert "From an earlier step" in p["description"], where


def test_the_workflow_replays_every_documented_example(demo: Demo) -> None:
    documented = {k for s, api in _documents(demo).items() for k in documented_examples(api, s)}
    replayed = {step.key for step in WORKFLOW if isinstance(step, Step)}
    assert replayed - documented == set(), "the workflow replays examples the documents do not show"
    assert documented - replayed == set(), "documented examples the workflow does not replay"


# -- the replay ---------------------------------------------------------------------------------------------------


def _key(role: Role | str, demo: Demo) -> str:
    return demo.operator_key if role == OPERATOR else key_for(TENANT, role)  # type: ignore[arg-type]


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    """The example with each made-up id replaced by the one an earlier step gave (fails if none did yet)."""
    text = value if isinstance(value, str) else json.dumps(value)
    for name, (made_up, where) in EXAMPLE_IDS.items():
        if made_up in text:
            assert name in ids, f"the example needs a {name} ({where}), which no earlier step gave"
            text = text.replace(made_up, ids[name])
    return text if isinstance(value, str) else json.loads(text)


def _path(api: dict[str, Any], step: Step, ids: dict[str, str]) -> str:
    path = step.path
    for p in api["paths"][step.path][step.method].get("parameters", []):
        if p["in"] == "path":
            value = ids[p["name"]] if p["name"] in EXAMPLE_IDS else p["example"]
            path = path.replace("{" + p["name"] + "}", str(value))
    return path


async def test_every_documented_example_is_accepted_by_the_demo_system(demo: Demo) -> None:
    docs = _documents(demo)
    examples = {k: v for s, api in docs.items() for k, v in documented_examples(api, s).items()}
    ids: dict[str, str] = {}
    accepted = 0
    for step in WORKFLOW:
        await demo.caught_up()
        if isinstance(step, FindFinancingJob):
            ids["job_id"] = await _financing_job(demo, ids)
            continue
        assert isinstance(step, Step)
        _, value = examples[step.key]
        body = _substitute(value, ids)
        client, headers = demo.clients[step.service], {"X-API-Key": _key(step.role, demo)}
        path = _path(docs[step.service], step, ids)
        if step.quoted:
            quote = await client.get(f"/financings/{ids['financing_id']}/settlement-quote",
                                     params={"on": body["settled_on"]}, headers=headers)
            assert quote.status_code == 200, quote.text
            body["amount"] = quote.json()["to_pay"]
        if step.media == JSON:
            r = await client.request(step.method, path, json=body, headers=headers)
        else:
            r = await client.request(step.method, path, content=body.encode(),
                                     headers={**headers, "Content-Type": step.media})
        where = f"{step.service} {step.method.upper()} {step.path} ({step.media} {step.example})"
        assert 200 <= r.status_code < 300, f"{where}: {r.status_code} {r.text}"
        accepted += 1
        if step.gives:
            ids[step.gives] = str(r.json()[step.field or step.gives])
    assert accepted == sum(isinstance(s, Step) for s in WORKFLOW)
    # what the replay did is there: the member's financing settled, its job emptied at the IPLT
    officer = {"X-API-Key": key_for(TENANT, OFFICER)}
    financings = (await demo.clients[L].get("/financings", params={"member_id": ids["member_id"], "limit": 10},
                                            headers=officer)).json()["items"]
    assert sorted(f["status"] for f in financings) == ["rejected", "settled", "settled", "settled", "written_off"]
    # and every read whose path names something finds it, by the ids the replay gave or the documented examples
    reads = 0
    for service, api in docs.items():
        for template, ops in api["paths"].items():
            op = ops.get("get")
            if op is None or "{" not in template or (service, template) in READ_IN_WORKFLOW:
                continue
            step = Step(service, "get", template, OPERATOR if template.startswith("/programmes") else Role.MANAGER)
            r = await demo.clients[service].get(_path(api, step, ids), headers={"X-API-Key": _key(step.role, demo)})
            assert r.status_code == 200, f"{service} GET {template}: {r.status_code} {r.text[:300]}"
            reads += 1
    assert reads >= 15, reads


async def _financing_job(demo: Demo, ids: dict[str, str]) -> str:
    """The construction job the financing's first tranche ordered, as ``GET /jobs`` lists it."""
    headers = {"X-API-Key": key_for(TENANT, OFFICER)}

    async def ordered() -> str | None:
        r = await demo.clients[S].get("/jobs", params={"member_id": ids["member_id"]}, headers=headers)
        assert r.status_code == 200, r.text
        jobs = [j for j in r.json()["items"] if j["financing_id"] == ids["financing_id"]]
        return jobs[0]["job_id"] if jobs else None

    job_id: str = await eventually(ordered, timeout=60, interval=0.2)
    return job_id


def test_examples_use_no_id_of_their_own() -> None:
    """Made-up ids are only those of EXAMPLE_IDS (each a distinct UUID, so a substitution never clashes)."""
    values = [v for v, _ in EXAMPLE_IDS.values()]
    assert len(set(values)) == len(values)
    for v in values:
        assert str(uuid.UUID(v)) == v

