"""Credentials: a request without a valid key gets 401 on every authenticated route of every service,
whatever is wrong with the key: missing, malformed, unknown, wrong secret, expired, revoked, or of a
suspended cooperative. Keys are issued, expired, revoked and suspended with ``shared.tenancy`` on the
platform database, for cooperatives of this suite's own (the demo keys other tests use stay untouched).
"""

from __future__ import annotations

from datetime import timedelta

from shared.db import connect
from shared.tenancy import Role, revoke_key, set_tenant_status
from tests.helpers import eventually
from tests.security.catalog import Kind, classified, fill
from tests.security.conftest import SERVICES, A, System, h, key_of, make_tenant, now
from tests.security.test_authorisation import NOWHERE

#: a well-formed key that was never issued, and a real demo key's id with another secret
UNKNOWN = "wf_000000000000_thisKeyWasNeverIssuedByAnyOperator0000"
WRONG_SECRET = key_of(A, Role.MANAGER).rsplit("_", 1)[0] + "_notTheSecretThatWasIssuedForThisKey00"

BAD_HEADERS: dict[str, dict[str, str]] = {
    "missing": {},
    "empty": {"X-API-Key": ""},
    "malformed: not a key": {"X-API-Key": "letmein"},
    "malformed: short secret": {"X-API-Key": "wf_bmimanager01_short"},
    "malformed: extra part": {"X-API-Key": key_of(A, Role.MANAGER) + "_x"},
    "malformed: injection": {"X-API-Key": "wf_' OR '1'='1_" + "a" * 40},
    "malformed: huge": {"X-API-Key": "wf_" + "a" * 12 + "_" + "b" * 20_000},
    "unknown": {"X-API-Key": UNKNOWN},
    "wrong secret": {"X-API-Key": WRONG_SECRET},
    "wrong secret as bearer": {"Authorization": f"Bearer {WRONG_SECRET}"},
    "valid key, wrong scheme": {"Authorization": f"Basic {key_of(A, Role.MANAGER)}"},
}


def _authenticated_routes(system: System) -> list[tuple[str, str, str]]:
    out = []
    for service in SERVICES:
        for method, template, spec in classified(service, system.apps[service]):
            if spec.kind != Kind.PUBLIC:
                out.append((service, method, fill(template, NOWHERE)))
    return out


async def _status(system: System, service: str, method: str, path: str, headers: dict[str, str]) -> int:
    r = await system[service].request(method, path, headers=headers)
    if r.status_code == 401:
        assert r.headers.get("www-authenticate") == "ApiKey" and r.json()["error"] == "unauthorized", r.text
    return r.status_code


async def test_every_authenticated_route_refuses_a_bad_key_with_401(system: System) -> None:
    routes = _authenticated_routes(system)
    assert len(routes) > 80
    before = await system.event_counts()
    failures = [f"{label}: {service} {method} {path} -> {status}"
                for service, method, path in routes for label, headers in BAD_HEADERS.items()
                if (status := await _status(system, service, method, path, headers)) != 401]
    assert not failures, "\n".join(failures[:40])
    assert await system.event_counts() == before
    # the same routes do answer a good key (as bearer too): the 401s above are the key's doing
    for service, method, path in routes[::7]:
        for headers in (h(A), {"Authorization": f"Bearer {key_of(A, Role.MANAGER)}"}):
            assert await _status(system, service, method, path, headers) != 401, f"{service} {method} {path}"


def _sample(system: System) -> list[tuple[str, str]]:
    """A read of every service that a manager may make with nothing in the cooperative."""
    return [("members", "/members"), ("members", "/settings"), ("loans", "/financings"), ("loans", "/portfolio"),
            ("sanitation", "/jobs"), ("sanitation", "/contractors"), ("reporting", "/reports/summary")]


async def _answers(system: System, key: str) -> list[int]:
    return [(await system[s].get(p, headers={"X-API-Key": key})).status_code for s, p in _sample(system)]


async def test_expired_revoked_and_suspended_keys_fail_at_once_on_every_service(system: System,
                                                                                platform_url: str) -> None:
    """Real keys of the suite's own cooperatives: they work, then, once expired, revoked or their
    cooperative suspended, every service refuses them with 401 (each request is checked against the
    platform database); resuming the cooperative lets its keys in again. Each operator action is recorded
    as an event in the platform database."""
    revoked = await make_tenant(platform_url, "sec-revoked")
    suspended = await make_tenant(platform_url, "sec-suspended")
    for tenant in (revoked, suspended):
        assert await _answers(system, tenant.keys[Role.MANAGER]) == [200] * len(_sample(system))
    # the expiring keys are issued only now, after the other baseline checks: their window covers their own
    # baseline round alone (5 s: generous for one request per service, short for the suite to wait out)
    soon = now() + timedelta(seconds=5)
    expiring = await make_tenant(platform_url, "sec-expiring", expires_at=soon)
    assert await _answers(system, expiring.keys[Role.MANAGER]) == [200] * len(_sample(system))

    conn = await connect(platform_url)
    try:
        for role in (Role.MANAGER, Role.FIELD_OFFICER):
            assert await revoke_key(conn, revoked.key_ids[role], reason="security suite: leaked", actor="tests")
        assert await set_tenant_status(conn, suspended.tenant_id, "suspended", reason="security suite", actor="tests")
        for key in (revoked.keys[Role.MANAGER], revoked.keys[Role.FIELD_OFFICER], suspended.keys[Role.MANAGER],
                    suspended.keys[Role.FIELD_OFFICER], suspended.keys[Role.CONTRACTOR]):
            assert set(await _answers(system, key)) == {401}, key[:16]
        # the cooperative's other keys are untouched by a revocation
        assert (await system["sanitation"].get("/jobs", headers=revoked.h(Role.INSPECTOR))).status_code == 200
        # the expiring keys: still good until their expiry, refused after it
        # (the services compare expires_at with the platform database's now(): wait until that clock passed it)
        await eventually(lambda: conn.fetchval("SELECT now() > $1", soon), timeout=60, interval=0.05)
        for role in (Role.MANAGER, Role.FIELD_OFFICER, Role.INSPECTOR):
            assert set(await _answers(system, expiring.keys[role])) == {401}
        # resuming brings the suspended cooperative's keys back; the revoked keys stay revoked
        assert await set_tenant_status(conn, suspended.tenant_id, "active", actor="tests")
        assert await _answers(system, suspended.keys[Role.MANAGER]) == [200] * len(_sample(system))
        assert await set_tenant_status(conn, suspended.tenant_id, "suspended", reason="left suspended", actor="tests")
        assert set(await _answers(system, revoked.keys[Role.MANAGER])) == {401}
        recorded = {(r["type"], r["stream_id"]) for r in await conn.fetch(
            "SELECT type, stream_id FROM events WHERE tenant_id = 'platform'")}
        assert ("platform.ApiKeyRevoked", revoked.key_ids[Role.MANAGER]) in recorded
        assert ("platform.TenantSuspended", suspended.tenant_id) in recorded
        assert ("platform.TenantResumed", suspended.tenant_id) in recorded
        # no secret is stored or recorded: only its hash
        dump = str(await conn.fetch("SELECT * FROM api_keys")) + str(await conn.fetch("SELECT payload FROM events"))
        assert revoked.keys[Role.MANAGER] not in dump and revoked.keys[Role.MANAGER].rsplit("_", 1)[1] not in dump
    finally:
        await conn.close()
