"""Maker-checker compares people, not keys (issue 14 item 4), on real PostgreSQL.

A manager who holds two keys (as after the README's leaked-key rotation: a new key issued, the old one
not yet revoked) cannot approve their own application with the second key; another manager can. A staff
member who leaves loses every key at once.
"""

from __future__ import annotations

from typing import Any

import pytest

from deploy.local.demo import key_for, second_manager_key
from shared.db import connect
from shared.tenancy import Authenticator, Role, add_staff, issue_key, staff_leaves
from tests.helpers import ServiceClient
from tests.services.conftest import BMI
from tests.services.loans.support import define_product, known_member

MANAGER = Role.MANAGER


async def _apply(loans: ServiceClient, key: str) -> str:
    await define_product(loans)
    member_id = await known_member(loans)
    r = await loans.post("/financings", headers={"X-API-Key": key}, json={
        "member_id": member_id, "product_id": "mikro-tata-sanitasi", "amount": 10_000_000, "instalments": 12,
        "applied_on": "2025-01-06"})
    assert r.status_code == 201, r.text
    return r.json()["financing_id"]  # type: ignore[no-any-return]


async def _second_key_for(platform_url: str, staff_id: str) -> str:
    conn = await connect(platform_url)
    try:
        return (await issue_key(conn, BMI, MANAGER, label="after a leak", staff_id=staff_id)).secret
    finally:
        await conn.close()


async def test_the_same_manager_with_a_second_key_cannot_approve_their_own_application(
        loans: ServiceClient, platform_url: str) -> None:
    first = key_for(BMI, MANAGER)  # the demo's manager bmi-ani
    second = await _second_key_for(platform_url, "bmi-ani")
    assert second != first
    fid = await _apply(loans, first)
    refused = await loans.post(f"/financings/{fid}/approve", json={}, headers={"X-API-Key": second})
    assert refused.status_code == 403, refused.text
    assert "another manager must approve it (maker-checker)" in refused.json()["reason"]
    # another person, a manager too, may approve
    approved = await loans.post(f"/financings/{fid}/approve", json={}, headers={"X-API-Key": second_manager_key(BMI)})
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    # the events name the people, whichever of their keys they used
    stored = [e for e in await loans.runtime.store.read_stream(BMI, "financing", fid)]  # type: ignore[union-attr]
    approval = [e for e in stored if e.type == "loans.FinancingApproved"]
    assert {e.actor for e in stored if e not in approval} == {"staff:bmi-ani"}
    assert [e.actor for e in approval] == ["staff:bmi-wati"]


async def test_a_staff_member_who_leaves_loses_every_key(platform_url: str) -> None:
    conn = await connect(platform_url)
    try:
        assert await add_staff(conn, BMI, "bmi-leaver", "Pak Leaver")
        keys = [(await issue_key(conn, BMI, Role.FIELD_OFFICER, staff_id="bmi-leaver")).secret for _ in range(2)]
        auth = Authenticator(conn)  # type: ignore[arg-type]
        who = [await auth.authenticate(k) for k in keys]
        assert [p.staff_id for p in who if p] == ["bmi-leaver", "bmi-leaver"]
        revoked = await staff_leaves(conn, BMI, "bmi-leaver", reason="moved to another branch")
        assert len(revoked) == 2
        assert [await auth.authenticate(k) for k in keys] == [None, None]
        # no new key for someone who left; no staff member for a contractor key
        with pytest.raises(LookupError, match="or they left"):
            await issue_key(conn, BMI, Role.MANAGER, staff_id="bmi-leaver")
        with pytest.raises(ValueError, match="stands for no staff member"):
            await issue_key(conn, BMI, Role.CONTRACTOR, subject="c-1", staff_id="bmi-ani")
        with pytest.raises(LookupError, match="no staff member 'nobody'"):
            await issue_key(conn, BMI, Role.MANAGER, staff_id="nobody")
    finally:
        await conn.close()


async def test_a_key_issued_without_a_staff_member_stands_for_a_person_of_its_own(platform_url: str) -> None:
    conn = await connect(platform_url)
    try:
        issued = await issue_key(conn, BMI, Role.INSPECTOR, label="Pak Baru")
        principal: Any = await Authenticator(conn).authenticate(issued.secret)  # type: ignore[arg-type]
        assert principal.staff_id == issued.key_id and principal.actor == f"staff:{issued.key_id}"
        name = await conn.fetchval("SELECT name FROM staff WHERE tenant_id = $1 AND staff_id = $2", BMI, issued.key_id)
        assert name == "Pak Baru"
    finally:
        await conn.close()
