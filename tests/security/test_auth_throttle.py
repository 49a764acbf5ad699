"""Failed authentication is logged, counted and slowed down (issue 14, item 5), and API responses tell
caches and browsers to keep nothing (item 7).

The attack: a client guesses keys as fast as it can. Before this change every guess got 401, forever, and
nothing was logged or counted (600 guesses in 2 s, no trace anywhere). Now, past the limit of refusals
within the window, from one address or at one key id, guesses get 429 with ``Retry-After`` without being
looked up; every refusal is logged (key id prefix, address, service, never the secret) and counted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from deploy.local.demo import key_for
from deploy.local.infra import PostgresHandle
from shared.tenancy import Role
from shared.throttle import FailureThrottle
from tests.helpers import running_app
from tests.services.conftest import BMI, BAIK

GOOD = key_for(BMI, Role.MANAGER)
#: the real key id of BMI's manager with a secret that was never issued
WRONG_SECRET = GOOD.rsplit("_", 1)[0] + "_thisIsNotTheSecretOfThisKeyAtAll000"
UNKNOWN = "wf_000000000000_thisKeyWasNeverIssuedByAnyOperator0000"


def _client(app: object, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),  # type: ignore[arg-type]
                             base_url="http://test")


@pytest.fixture
async def members_app(pg: PostgresHandle, platform_url: str) -> AsyncIterator[object]:
    """The members service with the default limits: 30 refusals per address, 10 per key id, per 60 s."""
    from services.members.app import create_app
    from services.members.settings import MembersSettings

    settings = MembersSettings(database_url=await pg.create_database("throttle_members"),
                               platform_database_url=platform_url, kafka_bootstrap_servers=None,
                               event_source="none")
    assert (settings.auth_failures_per_address, settings.auth_failures_per_key) == (30, 10)
    app = create_app(settings)
    async with running_app(app):
        yield app


def _failures(service: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("washfin_auth_failures_total",
                                     {"service": service, "outcome": outcome}) or 0.0


def _auth_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The ``washfin.auth`` log lines, as the event dicts structlog hands to the services' JSON handler
    (caplog sees them whatever structlog has cached: the services log through stdlib logging)."""
    return [r.msg for r in caplog.records if r.name == "washfin.auth" and isinstance(r.msg, dict)]


async def test_guessing_keys_from_one_address_is_throttled_logged_and_counted(
        members_app: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="washfin.auth")
    refused_before, throttled_before = _failures("members", "refused"), _failures("members", "throttled")
    async with _client(members_app, "203.0.113.7") as guesser:
        statuses = []
        for i in range(30):  # unknown well-formed keys: a different key id every time
            guess = f"wf_{i:012d}_guessedSecretGuessedSecretGuessed0000"
            statuses.append((await guesser.get("/members", headers={"X-API-Key": guess})).status_code)
        assert statuses == [401] * 30
        blocked = await guesser.get("/members", headers={"X-API-Key": UNKNOWN})
        assert blocked.status_code == 429, blocked.text
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        assert blocked.json()["error"] == "too_many_failed_attempts"
        assert blocked.json()["field"] == "X-API-Key"
        # while throttled, the address is not served even with a good key: the key is not looked up
        assert (await guesser.get("/members", headers={"X-API-Key": GOOD})).status_code == 429
    # another address is untouched by this one's failures
    async with _client(members_app, "198.51.100.20") as office:
        assert (await office.get("/members", headers={"X-API-Key": GOOD})).status_code == 200
        assert (await office.get("/members", headers={"X-API-Key": UNKNOWN})).status_code == 401
    logs = _auth_events(caplog)
    refusals = [e for e in logs if e["event"] == "auth_refused"]
    assert len(refusals) == 31
    assert {e["client"] for e in refusals} == {"203.0.113.7", "198.51.100.20"}
    assert all(e["service"] == "members" and len(e["key_id_prefix"]) == 6 for e in refusals)
    assert [e for e in logs if e["event"] == "auth_throttled"][0]["client"] == "203.0.113.7"
    # never the secret, nor the whole key, in any log line
    text = repr(logs) + caplog.text
    assert "guessedSecret" not in text and "thisKeyWasNeverIssued" not in text
    assert _failures("members", "refused") - refused_before == 31
    assert _failures("members", "throttled") - throttled_before == 2


async def test_guessing_one_keys_secret_from_many_addresses_is_throttled_per_key_id(members_app: object) -> None:
    """A distributed guess at one real key id: 10 refusals at that id, from 10 addresses, and the id is
    throttled for everyone until the window has room (a stolen key id alone is worth nothing, and its
    owner loses at most one window); other keys are untouched."""
    for i in range(10):
        async with _client(members_app, f"192.0.2.{i + 1}") as c:
            assert (await c.get("/members", headers={"X-API-Key": WRONG_SECRET})).status_code == 401
    async with _client(members_app, "192.0.2.200") as c:
        r = await c.get("/members", headers={"X-API-Key": WRONG_SECRET})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        # another key of the same cooperative, and another cooperative's key, still work from there
        assert (await c.get("/members", headers={"X-API-Key": key_for(BMI, Role.FIELD_OFFICER)})).status_code == 200
        assert (await c.get("/members", headers={"X-API-Key": key_for(BAIK, Role.MANAGER)})).status_code == 200


async def test_a_missing_key_is_not_a_failed_attempt(members_app: object) -> None:
    """No key at all is a client that has not logged in, not a guess: 401 every time, never throttled."""
    async with _client(members_app, "203.0.113.99") as c:
        assert {(await c.get("/members")).status_code for _ in range(40)} == {401}
        assert (await c.get("/members", headers={"X-API-Key": GOOD})).status_code == 200


async def test_api_responses_ask_caches_to_keep_nothing_and_browsers_not_to_sniff(members_app: object) -> None:
    async with _client(members_app, "198.51.100.30") as c:
        for path, key in (("/members", GOOD), ("/members", None), ("/healthz", None)):
            r = await c.get(path, headers={"X-API-Key": key} if key else {})
            assert r.headers["cache-control"] == "no-store", (path, r.status_code)
            assert r.headers["x-content-type-options"] == "nosniff", (path, r.status_code)


def test_the_window_frees_room_as_old_failures_leave_it() -> None:
    now = [1000.0]
    t = FailureThrottle(per_address=3, per_key=2, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert t.retry_after("a", None) is None
        t.failed("a", None)
        now[0] += 10
    # failures at 1000, 1010, 1020; now 1030: the oldest leaves the window at 1060
    assert t.retry_after("a", None) == 30
    assert t.retry_after("b", None) is None
    now[0] = 1060.5
    assert t.retry_after("a", None) is None
    t.failed("a", "k1")
    # per key: one failure of two
    assert t.retry_after("z", "k1") is None
    t.failed("z", "k1")
    assert t.retry_after("y", "k1") == 60


def test_limits_of_zero_turn_the_throttle_off_and_memory_stays_bounded() -> None:
    t = FailureThrottle(per_address=0, per_key=0, window_s=60)
    for _ in range(100):
        t.failed("a", "k")
    assert t.retry_after("a", "k") is None
    bounded = FailureThrottle(per_address=5, per_key=5, window_s=60, max_tracked=50)
    for i in range(1000):
        bounded.failed(f"10.0.{i // 256}.{i % 256}", f"key{i:08d}")
    assert len(bounded._seen) == 50
