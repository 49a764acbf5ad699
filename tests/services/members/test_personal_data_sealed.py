"""Personal data sealed at rest (issue 14 item 3), on real PostgreSQL.

Read as the database owner (or by anyone holding a dump or a backup), the members database holds no name,
NIK or phone number in the clear; the service still shows them (masked) and finds a member by NIK through a
keyed hash; a NIK is unique within a cooperative; erasure removes the ciphertext; a database written by an
older version in the clear is sealed by the migration; keys rotate with `washfin members reseal`; the
service does not start without keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from deploy.local.infra import PostgresHandle
from services.members.app import build_runtime, create_app
from services.members.personal_data import PersonalDataKeyError, new_key
from services.members.schema import MIGRATIONS
from services.members.settings import MembersSettings
from shared.db import connect, migrate
from tests.helpers import ServiceClient, running_app
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import manager, member, register

PEOPLE = [member(BMI, 0), member(BMI, 1), member(BAIK, 0)]


async def everything_stored(url: str) -> str:
    """Every row of every table of the members database, as text, read as the owner."""
    conn = await connect(url)
    try:
        tables = [r["t"] for r in await conn.fetch(
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public'")]
        out = []
        for t in tables:
            rows = await conn.fetch(f'SELECT row_to_json(x)::text AS j FROM "{t}" x')
            out += [r["j"] for r in rows]
        return "\n".join(out)
    finally:
        await conn.close()


def secrets_of(people: list[dict[str, Any]]) -> set[str]:
    return {p[f] for p in people for f in ("name", "nik", "phone") if p.get(f)}


def db_url(client: ServiceClient) -> str:
    return client.runtime.settings.database_url  # type: ignore[no-any-return]


async def test_no_name_nik_or_phone_in_clear_in_any_table(members: ServiceClient) -> None:
    for p in PEOPLE:
        r = await members.post("/members", json=p, headers=headers(BMI if p in PEOPLE[:2] else BAIK))
        assert r.status_code == 201, r.text
        assert r.json()["nik_masked"].endswith(p["nik"][-4:])
    stored = await everything_stored(db_url(members))
    assert stored, "nothing read back"
    leaks = sorted(s for s in secrets_of(PEOPLE) if s in stored)
    assert leaks == [], f"in the clear in the members database: {leaks}"
    # and the service still shows what it holds
    listed = (await members.get("/members", headers=headers(BMI))).json()["items"]
    assert sorted(i["name"] for i in listed) == sorted(p["name"] for p in PEOPLE[:2])


async def test_found_by_nik_within_the_cooperative_only(members: ServiceClient) -> None:
    siti = await register(members, BMI, 0)
    nik = member(BMI, 0)["nik"]
    found = await members.post("/members/find-by-nik", json={"nik": nik}, headers=headers(BMI))
    assert found.status_code == 200 and found.json()["member_id"] == siti["member_id"]
    # another cooperative asking for the same NIK learns nothing
    other = await members.post("/members/find-by-nik", json={"nik": nik}, headers=headers(BAIK))
    assert other.status_code == 404, other.text
    bad = await members.post("/members/find-by-nik", json={"nik": "12"}, headers=headers(BMI))
    assert bad.status_code == 422 and "nik" in bad.text


async def test_a_nik_is_unique_within_a_cooperative(members: ServiceClient) -> None:
    await register(members, BMI, 0)
    first_nik = member(BMI, 0)["nik"]
    twice = await members.post("/members", json={**member(BMI, 0), "member_number": "BMI-DUP-1"},
                               headers=headers(BMI))
    assert twice.status_code == 409 and twice.json()["field"] == "nik", twice.text
    # nothing of the refused registration was kept: its number is free
    numbers = [i["member_number"] for i in (await members.get("/members", headers=headers(BMI))).json()["items"]]
    assert "BMI-DUP-1" not in numbers
    # nor its member number's row (written in the same statement as the personal data): the number registers
    free = await members.post("/members", json={**member(BMI, 1), "member_number": "BMI-DUP-1",
                                                "nik": "3603124501809999"}, headers=headers(BMI))
    assert free.status_code == 201, free.text
    # the same person may belong to another cooperative
    elsewhere = await members.post("/members", json={**member(BMI, 0), "member_number": "BAIK-SAME-1"},
                                   headers=headers(BAIK))
    assert elsewhere.status_code == 201, elsewhere.text
    # a correction onto a NIK taken in the cooperative is refused and changes nothing
    other = await register(members, BMI, 1)
    taken = await members.patch(f"/members/{other['member_id']}", json={"nik": first_nik},
                                headers={**headers(BMI), "If-Match": f'"{other["version"]}"'})
    assert taken.status_code == 409 and taken.json()["field"] == "nik", taken.text
    again = (await members.get(f"/members/{other['member_id']}", headers=headers(BMI))).json()
    assert again["nik_masked"].endswith(member(BMI, 1)["nik"][-4:]) and again["version"] == other["version"]


async def test_erasure_removes_the_ciphertext(members: ServiceClient) -> None:
    m = await register(members, BMI, 0)
    exited = await members.post(f"/members/{m['member_id']}/exit", json={"reason": "moved_away"},
                                headers={**headers(BMI), "If-Match": f'"{m["version"]}"'})
    assert exited.status_code == 200, exited.text
    erased = await members.delete(f"/members/{m['member_id']}/personal-data", headers=manager())
    assert erased.status_code == 200 and erased.json()["name"] is None, erased.text
    conn = await connect(db_url(members))
    try:
        rows = await conn.fetch("SELECT * FROM member_personal_data WHERE member_id = $1::uuid", m["member_id"])
    finally:
        await conn.close()
    assert rows == []


async def test_a_database_written_in_the_clear_is_sealed_by_the_migration(pg: PostgresHandle,
                                                                           platform_url: str) -> None:
    """A members database of the version before: its personal data in the clear. The new version's
    migration seals every value and drops the clear columns; the members read as before."""
    url = await pg.create_database("members-legacy")
    conn = await connect(url)
    try:
        await migrate(conn, "members", MIGRATIONS[:3])  # the schema as the previous version left it
        await conn.execute(
            """INSERT INTO member_personal_data (tenant_id, member_id, name, nik, phone)
               VALUES ('kopsyah-bmi', '11111111-1111-4111-8111-111111111111', 'Ibu Lama', '3603124501800009',
                       '081200000009')""")
    finally:
        await conn.close()
    settings = MembersSettings(database_url=url, platform_database_url=platform_url, kafka_bootstrap_servers=None,
                               event_source="none")
    rt = build_runtime(settings)
    await rt.start(background=False)
    try:
        stored = await everything_stored(url)
        assert "Ibu Lama" not in stored and "3603124501800009" not in stored and "081200000009" not in stored
        conn = await connect(url)
        try:
            row = await conn.fetchrow("SELECT * FROM member_personal_data")
            columns = set(row.keys())
        finally:
            await conn.close()
        assert {"name", "nik", "phone"}.isdisjoint(columns), columns
        v = settings.vault()
        assert v.open("kopsyah-bmi", "11111111-1111-4111-8111-111111111111", "name", row["name_sealed"]) == "Ibu Lama"
        assert row["nik_lookup"] == v.nik_lookup("kopsyah-bmi", "3603124501800009")
    finally:
        await rt.stop()


async def test_keys_rotate_with_the_reseal_verb(pg: PostgresHandle, platform_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = await pg.create_database("members-rotate")
    old = json.loads(os.environ["MEMBERS_PERSONAL_DATA_KEYS"])
    first = MembersSettings(database_url=url, platform_database_url=platform_url, kafka_bootstrap_servers=None,
                            event_source="none")
    async with running_app(create_app(first)) as client:
        siti = await register(client, BMI, 0)
    new = {**old, "rotated-2": new_key()}
    env = {**os.environ, "MEMBERS_DATABASE_URL": url, "MEMBERS_PERSONAL_DATA_KEYS": json.dumps(new),
           "MEMBERS_PERSONAL_DATA_KEY_ID": "rotated-2"}
    done = subprocess.run([sys.executable, "-m", "deploy.cli", "--json", "members", "reseal"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["resealed"] == 1 and report["current_key"] == "rotated-2", report
    # the old key can go: the service with only the new key reads the member (keys come from the
    # environment, as in a deployment; settings merge a dict given in code with the environment's)
    monkeypatch.setenv("MEMBERS_PERSONAL_DATA_KEYS", json.dumps({"rotated-2": new["rotated-2"]}))
    only_new = MembersSettings(database_url=url, platform_database_url=platform_url, kafka_bootstrap_servers=None,
                               event_source="none")
    assert list(only_new.personal_data_keys) == ["rotated-2"]
    async with running_app(create_app(only_new)) as client:
        r = await client.get(f"/members/{siti['member_id']}", headers=headers(BMI))
        assert r.status_code == 200 and r.json()["name"] == member(BMI, 0)["name"], r.text
    # a second run finds nothing left to do; a key that is not listed is one clear error line
    again = subprocess.run([sys.executable, "-m", "deploy.cli", "--json", "members", "reseal"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout)["resealed"] == 0, again.stderr
    gone = subprocess.run([sys.executable, "-m", "deploy.cli", "members", "reseal"],
                          env={**env, "MEMBERS_PERSONAL_DATA_KEYS": json.dumps({"other": new_key()}),
                               "MEMBERS_PERSONAL_DATA_KEY_ID": "other"},
                          capture_output=True, text=True, timeout=120)
    lines = gone.stderr.strip().splitlines()
    assert gone.returncode != 0 and len(lines) == 1 and "not among MEMBERS_PERSONAL_DATA_KEYS" in lines[0], gone.stderr


def test_the_service_does_not_start_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMBERS_PERSONAL_DATA_KEYS")
    with pytest.raises(PersonalDataKeyError, match="MEMBERS_PERSONAL_DATA_KEYS is not set"):
        build_runtime(MembersSettings(kafka_bootstrap_servers=None, event_source="none"))


