"""The sanitation ladder follows construction, on real PostgreSQL: sanitation events delivered to the
``SanitationWorks`` reaction as its consumer does (``apply_events`` in the consumer's transaction, which
skips stream versions applied before), then read back through the members API: the member view and its
rung's source, GET /members?sanitation_rung=..., and GET /members/follow-ups. The embedded event source
(the reaction tailing the sanitation service's own log) is driven end to end in
``test_sanitation_works_system.py``."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from services.members import read_model
from services.members.sanitation_reactions import SanitationWorks
from shared.consumer import DeadLetter, apply_events
from shared.contracts import load_all
from shared.envelope import Envelope, LogPosition
from tests.events import sanitation
from tests.helpers import ServiceClient
from tests.services.conftest import BAIK, BMI, headers
from tests.services.members.support import SURVEY, events, register

REGISTRY = load_all()


class Job:
    """A job the sanitation service's own domain code decides (``tests.events.SanitationProducer``): paid in
    cash, built, inspected and handed over, then its tank emptied and the sludge received, with the stream
    versions and payloads the sanitation service's relay would publish."""

    def __init__(self, member_id: str, tenant: str = BMI, kind: str = "septic_tank") -> None:
        self.member_id, self.tenant, self.kind = member_id, tenant, kind
        self.id: str | None = None
        self.emptied_visits: set[str] = set()

    async def completed(self, on: date = date(2025, 3, 20)) -> Envelope:
        """The handover (the job is built the first time); the JobCompleted envelope."""
        assert self.id is None, "the sanitation service hands a job over once"
        self.id, handover = await sanitation().handed_over(self.tenant, self.member_id, self.kind, on)
        return handover

    async def emptied(self, on: date = date(2025, 9, 2), visit_id: uuid.UUID | None = None) -> Envelope:
        assert self.id is not None
        vid = str(visit_id or uuid.uuid4())
        self.emptied_visits.add(vid)
        return await sanitation().emptied(self.tenant, self.id, on, vid)

    async def receipt(self, on: date = date(2025, 9, 3), visit_id: uuid.UUID | None = None) -> Envelope:
        """The IPLT's receipt of a visit's sludge (the visit recorded first, a day before, if it was not)."""
        assert self.id is not None
        vid = str(visit_id or uuid.uuid4())
        if vid not in self.emptied_visits:
            await self.emptied(on - timedelta(days=1), uuid.UUID(vid))
        return await sanitation().received(self.tenant, self.id, vid, on)


def republished(envelope: Envelope) -> Envelope:
    """The same fact published again as a new event: a new id at a later version of its stream."""
    return envelope.model_copy(update={"event_id": uuid.uuid4(), "version": envelope.version + 100})


def reaction(client: ServiceClient) -> SanitationWorks:
    [found] = [p for p in client.runtime.projections if isinstance(p, SanitationWorks)]
    return found


async def deliver(client: ServiceClient, *envelopes: Envelope) -> tuple[Any, list[DeadLetter]]:
    """As the consumer does: the batch in one transaction, skipping stream versions applied before."""
    pool = client.runtime.pool
    assert pool is not None
    async with pool.acquire() as conn, conn.transaction():
        return await apply_events(conn, reaction(client), REGISTRY, list(envelopes))


async def delivered(client: ServiceClient, *envelopes: Envelope) -> Any:
    outcome, dead = await deliver(client, *envelopes)
    assert dead == []
    return outcome


async def view(client: ServiceClient, member_id: str, tenant: str = BMI) -> dict[str, Any]:
    r = await client.get(f"/members/{member_id}", headers=headers(tenant))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ladder_of(body: dict[str, Any]) -> tuple[Any, ...]:
    return (body["sanitation_rung"], body["sanitation_rung_source"], body["surveyed_sanitation_rung"])


async def numbers(client: ServiceClient, tenant: str = BMI, **params: str) -> list[str]:
    r = await client.get("/members", params={**params, "status": "all"}, headers=headers(tenant))
    assert r.status_code == 200, r.text
    return [m["member_number"] for m in r.json()["items"]]


async def follow_ups(client: ServiceClient, tenant: str = BMI, **params: Any) -> dict[str, Any]:
    r = await client.get("/members/follow-ups", params=params, headers=headers(tenant))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_handover_then_iplt_receipt_moves_the_household_up(members: ServiceClient) -> None:
    m = await register(members, baseline_survey=SURVEY)  # pit latrine without slab, not shared: unimproved
    number = m["member_number"]
    assert ladder_of(m) == ("unimproved", "survey", "unimproved") and m["follow_up_due"] is False
    assert number in await numbers(members, sanitation_rung="unimproved")
    job = Job(m["member_id"])

    await delivered(members, await job.completed(date(2025, 3, 20)))
    body = await view(members, m["member_id"])
    assert ladder_of(body) == ("basic", "construction", "unimproved")
    assert (body["sanitation_handed_over_on"], body["septic_tank_emptied_on"], body["follow_up_due"]) == \
        ("2025-03-20", None, True)
    assert number not in await numbers(members, sanitation_rung="unimproved")
    assert number in await numbers(members, sanitation_rung="basic")

    # the truck emptied the tank: not yet safely managed, until the treatment plant acknowledges the sludge
    visit = uuid.uuid4()
    await delivered(members, await job.emptied(date(2025, 9, 2), visit))
    assert await view(members, m["member_id"]) == body
    await delivered(members, await job.receipt(date(2025, 9, 3), visit))
    body = await view(members, m["member_id"])
    assert ladder_of(body) == ("safely_managed", "emptying", "unimproved")
    assert body["septic_tank_emptied_on"] == "2025-09-03"
    assert await numbers(members, sanitation_rung="safely_managed") == [number]
    assert number not in await numbers(members, sanitation_rung="basic")

    # the survey history is untouched: still the one baseline
    r = await members.get(f"/members/{m['member_id']}/surveys", headers=headers(BMI))
    assert [s["sanitation_rung"] for s in r.json()["items"]] == ["unimproved"]
    # each fact is a new, internal event in the member's stream, caused by the sanitation event
    mine = [e for e in await events(members) if e.stream_id == m["member_id"]]
    assert [e.type for e in mine][-2:] == ["members.SanitationFacilityHandedOver", "members.SanitationTankEmptied"]
    assert mine[-1].actor == "reaction:members.sanitation-works.v1"
    assert mine[-1].payload == {"member_id": m["member_id"], "job_id": str(job.id),
                                "visit_id": mine[-1].payload["visit_id"], "received_on": "2025-09-03"}


async def test_redelivery_and_a_republished_event_record_the_fact_once(members: ServiceClient) -> None:
    m = await register(members, baseline_survey=SURVEY)
    job = Job(m["member_id"])
    handover, visit = await job.completed(), uuid.uuid4()
    receipt = await job.receipt(visit_id=visit)
    first = await delivered(members, handover, receipt)
    again = await delivered(members, handover, receipt)  # redelivered: the consumer's progress skips them
    assert (first.applied, again.skipped) == (2, 2)
    before = await view(members, m["member_id"])
    # ... and without that progress (a crash between the append and the checkpoint) the reaction records
    # nothing twice; nor for the same facts re-published as new events (new ids, later versions)
    for env in (handover, receipt):
        await reaction(members).handle(None, env, REGISTRY.decode(env))  # type: ignore[arg-type]
    await delivered(members, republished(handover), republished(receipt))
    after = await view(members, m["member_id"])
    assert after == before and after["version"] == m["version"] + 2
    assert ladder_of(after) == ("safely_managed", "emptying", "unimproved")


async def test_the_receipt_counts_once_the_tank_is_known_to_be_handed_over(members: ServiceClient) -> None:
    m = await register(members, baseline_survey=SURVEY)
    job = Job(m["member_id"])
    handover = await job.completed()
    receipt = await job.receipt()
    # a dead letter replayed late: the receipt first, alone, shows nothing yet
    await reaction(members).handle(None, receipt, REGISTRY.decode(receipt))  # type: ignore[arg-type]
    assert ladder_of(await view(members, m["member_id"])) == ("unimproved", "survey", "unimproved")
    await delivered(members, handover)
    assert ladder_of(await view(members, m["member_id"])) == ("safely_managed", "emptying", "unimproved")


async def test_what_each_kind_of_job_shows(members: ServiceClient) -> None:
    toilet = await register(members, BMI, 0, baseline_survey=SURVEY)
    water = await register(members, BMI, 1, baseline_survey=SURVEY)
    t, w = Job(toilet["member_id"], kind="toilet_upgrade"), Job(water["member_id"], kind="water_connection")
    # a toilet upgrade is an improved facility (the sanitation service empties septic tanks only: it refuses
    # a desludging visit to a toilet upgrade, so no emptying of one ever reaches this reaction)
    await delivered(members, await t.completed())
    assert ladder_of(await view(members, toilet["member_id"])) == ("basic", "construction", "unimproved")
    # a water connection does not touch the sanitation ladder, nor the follow-up list
    await delivered(members, await w.completed())
    body = await view(members, water["member_id"])
    assert ladder_of(body) == ("unimproved", "survey", "unimproved") and body["follow_up_due"] is False
    assert body["version"] == water["version"]


async def test_a_survey_saying_the_facility_is_shared_caps_it_at_limited(members: ServiceClient) -> None:
    shared = {**SURVEY, "sanitation": {"facility": "pit_latrine_without_slab", "shared": True}}
    m = await register(members, baseline_survey=shared)
    job = Job(m["member_id"])
    await delivered(members, await job.completed(), await job.receipt())
    assert ladder_of(await view(members, m["member_id"])) == ("limited", "emptying", "unimproved")
    # the follow-up survey finds the new tank used by this household alone, never emptied since: it is
    # the survey's rung now (safely managed in situ), and ties with what the emptying shows
    own = {**SURVEY, "surveyed_on": "2025-10-01",
           "sanitation": {"facility": "flush_to_septic_tank", "shared": False, "excreta": "emptied_to_treatment_plant"}}
    assert (await members.post(f"/members/{m['member_id']}/surveys", json=own, headers=headers(BMI))).status_code == 201
    assert ladder_of(await view(members, m["member_id"])) == ("safely_managed", "survey", "safely_managed")


async def test_a_survey_ranking_higher_stays_the_source(members: ServiceClient) -> None:
    safe = {**SURVEY, "sanitation": {"facility": "flush_to_septic_tank", "shared": False, "excreta": "never_emptied"}}
    m = await register(members, baseline_survey=safe)
    await delivered(members, await Job(m["member_id"]).completed())
    assert ladder_of(await view(members, m["member_id"])) == ("safely_managed", "survey", "safely_managed")


async def test_follow_up_list(members: ServiceClient) -> None:
    a = await register(members, BMI, 0, baseline_survey=SURVEY)
    b = await register(members, BMI, 1)  # never surveyed
    c = await register(members, BMI, 2, baseline_survey=SURVEY)
    assert (await follow_ups(members))["items"] == []
    await delivered(members, await Job(a["member_id"]).completed(date(2025, 3, 20)),
                    await Job(b["member_id"], kind="toilet_upgrade").completed(date(2025, 2, 1)),
                    await Job(c["member_id"]).completed(date(2025, 4, 1)))
    body = await follow_ups(members)
    assert [(i["member_number"], i["handed_over_on"], i["last_surveyed_on"]) for i in body["items"]] == [
        (b["member_number"], "2025-02-01", None),
        (a["member_number"], "2025-03-20", "2024-11-05"),
        (c["member_number"], "2025-04-01", "2024-11-05")]
    assert body["items"][0]["name"] == b["name"] and body["items"][1]["sanitation_rung"] == "basic"
    # paged, oldest handover first
    page = await follow_ups(members, limit=2)
    assert [i["member_id"] for i in page["items"]] == [b["member_id"], a["member_id"]] and page["next_cursor"]
    rest = await follow_ups(members, limit=2, cursor=page["next_cursor"])
    assert [i["member_id"] for i in rest["items"]] == [c["member_id"]] and rest["next_cursor"] is None
    # a survey dated before the handover (entered late) does not clear it; one on the handover day does
    late = {**SURVEY, "surveyed_on": "2025-03-01"}
    assert (await members.post(f"/members/{a['member_id']}/surveys", json=late, headers=headers(BMI))).status_code == 201
    assert a["member_id"] in [i["member_id"] for i in (await follow_ups(members))["items"]]
    follow = {**SURVEY, "surveyed_on": "2025-03-20",
              "sanitation": {"facility": "flush_to_septic_tank", "shared": False, "excreta": "never_emptied"}}
    assert (await members.post(f"/members/{a['member_id']}/surveys", json=follow, headers=headers(BMI))).status_code == 201
    assert [i["member_id"] for i in (await follow_ups(members))["items"]] == [b["member_id"], c["member_id"]]
    assert (await view(members, a["member_id"]))["follow_up_due"] is False
    # a later handover makes her due again; an exited member is no longer on the list
    await delivered(members, await Job(a["member_id"], kind="toilet_upgrade").completed(date(2025, 5, 2)))
    assert (await view(members, a["member_id"]))["follow_up_due"] is True
    assert (await members.post(f"/members/{b['member_id']}/exit", json={"reason": "voluntary"},
                               headers=headers(BMI))).status_code == 200
    assert [i["member_id"] for i in (await follow_ups(members))["items"]] == [c["member_id"], a["member_id"]]
    assert (await members.get("/members/follow-ups", params={"cursor": "nonsense"},
                              headers=headers(BMI))).status_code == 422


async def test_another_cooperatives_events_never_touch_this_cooperatives_member(members: ServiceClient) -> None:
    mine = await register(members, BMI, 0, baseline_survey=SURVEY)
    theirs = await register(members, BAIK, 0, baseline_survey=SURVEY)
    # Koperasi BAIK's job naming Kopsyah BMI's member: BAIK has no such member, so nothing is applied to
    # anyone; the event is kept as a dead letter (replayable), and the batch goes on
    stray = await Job(mine["member_id"], tenant=BAIK).completed()
    outcome, dead = await deliver(members, stray, await Job(theirs["member_id"], tenant=BAIK).completed())
    assert outcome.applied == 1 and [d.event_id for d in dead] == [stray.event_id]
    assert "no member" in dead[0].error
    body = await view(members, mine["member_id"])
    assert ladder_of(body) == ("unimproved", "survey", "unimproved") and body["version"] == mine["version"]
    assert (await follow_ups(members, BMI))["items"] == []
    assert [i["member_id"] for i in (await follow_ups(members, BAIK))["items"]] == [theirs["member_id"]]
    assert ladder_of(await view(members, theirs["member_id"], BAIK)) == ("basic", "construction", "unimproved")
    # and each cooperative's list shows its own only
    assert await numbers(members, BMI, sanitation_rung="basic") == []
    assert await numbers(members, BAIK, sanitation_rung="basic") == [theirs["member_number"]]
    assert (await members.get(f"/members/{theirs['member_id']}", headers=headers(BMI))).status_code == 404


async def test_a_rebuild_of_the_read_tables_gives_the_same_rungs_and_list(members: ServiceClient) -> None:
    a = await register(members, BMI, 0, baseline_survey=SURVEY)
    b = await register(members, BMI, 1)
    c = await register(members, BAIK, 0, baseline_survey=SURVEY)
    ja, jb = Job(a["member_id"]), Job(b["member_id"], kind="toilet_upgrade")
    await delivered(members, await ja.completed(), await jb.completed(), await ja.receipt(),
                    await Job(c["member_id"], tenant=BAIK).completed())
    shared = {**SURVEY, "surveyed_on": "2025-10-01", "sanitation": {"facility": "pit_latrine_with_slab", "shared": True}}
    assert (await members.post(f"/members/{b['member_id']}/surveys", json=shared, headers=headers(BMI))).status_code == 201
    pool = members.runtime.pool
    assert pool is not None

    async def answer() -> Any:
        tables = {t: [dict(r) for r in await pool.fetch(f"SELECT * FROM {t} ORDER BY 1, 2, 3")]
                  for t in read_model.TABLES}
        lists = [await numbers(members, t, sanitation_rung=r) for t in (BMI, BAIK)
                 for r in ("unimproved", "limited", "basic", "safely_managed")]
        return tables, lists, await follow_ups(members, BMI), await follow_ups(members, BAIK)

    live = await answer()
    # b: a toilet handed over (basic), then surveyed sharing a slab latrine: limited
    assert live[1] == [[], [b["member_number"]], [], [a["member_number"]], [], [], [c["member_number"]], []]
    assert [i["member_id"] for i in live[2]["items"]] == [a["member_id"]]
    store = members.runtime.store
    assert store is not None
    assert await read_model.rebuild(store) == len(await store.read_log(LogPosition(), 10_000))
    assert await answer() == live
