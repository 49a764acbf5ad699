"""The chaos workload's ledger (issue 16): a 4xx answered while the service has not yet heard of an event on
its way is one command waiting, sent again with the same key, not a refusal; a refusal that ends the case
is counted as one. The service here is a real ASGI app answering over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.chaos.workload import BMI, Unavailable, Workload

MEMBER = "0" * 32


def service(refusals_before_ok: int) -> tuple[FastAPI, list[str]]:
    app, keys = FastAPI(), []

    @app.post("/financings")
    async def apply(request: Request) -> JSONResponse:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) <= refusals_before_ok:
            return JSONResponse({"error": f"member {MEMBER} is not known to this service yet"}, status_code=422)
        return JSONResponse({"financing_id": "f-1"}, status_code=201)

    @app.post(f"/members/{MEMBER}/exit")
    async def refuse() -> JSONResponse:
        return JSONResponse({"error": "the member has open financings"}, status_code=409)

    return app, keys


def workload(app: FastAPI) -> Workload:
    w = Workload({"loans": ["http://loans"]}, seed=1)
    w.client.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return w


async def test_answers_while_an_event_is_on_its_way_are_waits_not_refusals(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, keys = service(refusals_before_ok=3)
    w = workload(app)
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda s: real_sleep(0))  # the workload waits a second between sends
    try:
        data = await w.ok("loans", BMI, "field_officer", "POST", "/financings", {}, "k-1",
                          wait_for=("not known",))
    finally:
        await w.close()
    assert data == {"financing_id": "f-1"}
    assert keys == ["k-1"] * 4  # one command, sent four times under its key
    assert w.ledger.waits == {"POST /financings 422": 3}
    assert w.ledger.refusals == {}
    assert w.ledger.count("acknowledged") == 1 and w.ledger.count("refused") == 0


async def test_a_refusal_that_ends_the_case_is_counted_once() -> None:
    app, _ = service(refusals_before_ok=0)
    w = workload(app)
    w.stop_at = time.monotonic() + 60
    try:
        await w.ok("loans", BMI, "manager", "POST", f"/members/{MEMBER}/exit", {}, "k-2")
    except Unavailable as e:
        assert "refused 409" in str(e)
    else:
        raise AssertionError("a 409 the workload does not wait for must end the case")
    finally:
        await w.close()
    assert w.ledger.refusals == {"POST /members/{id}/exit 409": 1}
    assert w.ledger.waits == {}
    assert w.ledger.count("refused") == 1
