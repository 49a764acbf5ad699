"""The members service's read tables: written from its own events, in the appending transaction.

Every command passes ``apply`` as (part of) its ``after=`` hook, so the tables change in the same
transaction as the events: a query never sees an event without its effect, nor the reverse, and a refused
command changes neither. ``apply`` depends on the events alone, so ``rebuild`` can drop the tables' rows
and replay the service's log to the same result (tested). The tables hold no personal data.

Tables: ``member_index`` (segmentation: group, B40, area, rungs, tenure, leads), ``member_sanitation_jobs``
(the construction jobs handed over and tanks emptied that the member's stream recorded), ``centres``,
``groups``, ``promotion_sessions``. ``member_index.sanitation_rung`` is the household's rung with what
construction and emptying show (``jmp.sanitation_after_works``, as the member aggregate computes it);
``survey_sanitation_rung`` is the latest survey's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.members.domain import jmp
from services.members.domain import member as member_domain
from services.members.domain import organisation as org
from shared.contracts.members import (
    HouseholdSurveyed,
    LeadMarked,
    MemberDetailsChanged,
    MemberExited,
    MemberGroupChanged,
    MemberPersonalDataErased,
    MemberRegistered,
    PromotionSessionHeld,
    SessionAttendanceAdded,
)
from shared.db import connect
from shared.envelope import Envelope, LogPosition
from shared.eventstore.postgres import PostgresEventStore

TABLES = ("member_index", "member_sanitation_jobs", "centres", "groups", "promotion_sessions")
#: member_index columns a MemberDetailsChanged may set (the contract's field names)
_DETAIL_COLUMNS = frozenset({"sex", "joined_on", "household_size", "village", "district", "area", "electricity",
                             "income_band", "b40", "programme_consent"})
_CENTRE_COLUMNS = frozenset(org.CENTRE_FIELDS)
_GROUP_COLUMNS = frozenset(org.GROUP_FIELDS)


async def apply(conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
    """Bring the read tables up to date with ``envelopes`` (inside the caller's transaction)."""
    for e in envelopes:
        await _apply_one(conn, e)


async def _set(conn: asyncpg.Connection, table: str, key: str, tenant: str, key_value: Any,
               values: dict[str, Any]) -> None:
    cols = list(values)
    assignments = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(cols))
    await conn.execute(f"UPDATE {table} SET {assignments} WHERE tenant_id = $1 AND {key} = $2",
                       tenant, key_value, *values.values())


async def _apply_one(conn: asyncpg.Connection, e: Envelope) -> None:
    t, p = e.tenant_id, e.payload
    values: dict[str, Any]
    if e.type == MemberRegistered.event_type:
        r = MemberRegistered.model_validate(p)
        await conn.execute(
            """INSERT INTO member_index (tenant_id, member_id, member_number, sex, joined_on, household_size,
                   group_id, village, district, area, b40, programme_consent, version)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)""",
            t, r.member_id, r.member_number, r.sex, r.joined_on, r.household_size, r.group_id, r.village,
            r.district, r.area, r.b40, r.programme_consent, e.version)
    elif e.type == MemberDetailsChanged.event_type:
        d = MemberDetailsChanged.model_validate(p)
        values = {f: getattr(d, f) for f in d.changed_fields if f in _DETAIL_COLUMNS}
        await _set(conn, "member_index", "member_id", t, d.member_id, {**values, "version": e.version})
    elif e.type == MemberGroupChanged.event_type:
        g = MemberGroupChanged.model_validate(p)
        await _set(conn, "member_index", "member_id", t, g.member_id, {"group_id": g.to_group_id, "version": e.version})
    elif e.type == HouseholdSurveyed.event_type:
        s = HouseholdSurveyed.model_validate(p)
        if s.kind == "baseline":
            await _set(conn, "member_index", "member_id", t, s.member_id, {
                "baseline_on": s.surveyed_on, "baseline_water_rung": s.water_rung,
                "baseline_sanitation_rung": s.sanitation_rung, "baseline_hygiene_rung": s.hygiene_rung})
        # the current rungs are the latest survey's by survey date, as in the member aggregate
        await conn.execute(
            """UPDATE member_index SET water_rung = $3, survey_sanitation_rung = $4, hygiene_rung = $5,
                   last_surveyed_on = $6, survey_sanitation_shared = $7
               WHERE tenant_id = $1 AND member_id = $2 AND (last_surveyed_on IS NULL OR last_surveyed_on <= $6)""",
            t, s.member_id, s.water_rung, s.sanitation_rung, s.hygiene_rung, s.surveyed_on, s.sanitation.shared)
        await _set(conn, "member_index", "member_id", t, s.member_id, {"version": e.version})
        await _sanitation(conn, t, s.member_id)
    elif e.type == member_domain.SANITATION_HANDED_OVER:
        h = member_domain.SanitationFacilityHandedOver.model_validate(p)
        await conn.execute(
            """INSERT INTO member_sanitation_jobs (tenant_id, member_id, job_id, kind, completed_on)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (tenant_id, member_id, job_id) DO UPDATE
               SET kind = EXCLUDED.kind, completed_on = EXCLUDED.completed_on""",
            t, h.member_id, h.job_id, h.kind, h.completed_on)
        await conn.execute(
            """UPDATE member_index SET handed_over_on = greatest(handed_over_on, $3), version = $4
               WHERE tenant_id = $1 AND member_id = $2""", t, h.member_id, h.completed_on, e.version)
        await _sanitation(conn, t, h.member_id)
    elif e.type == member_domain.SANITATION_TANK_EMPTIED:
        x = member_domain.SanitationTankEmptied.model_validate(p)
        await conn.execute(
            """INSERT INTO member_sanitation_jobs (tenant_id, member_id, job_id, emptied_on) VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant_id, member_id, job_id) DO UPDATE
               SET emptied_on = least(member_sanitation_jobs.emptied_on, EXCLUDED.emptied_on)""",
            t, x.member_id, x.job_id, x.received_on)
        await _set(conn, "member_index", "member_id", t, x.member_id, {"version": e.version})
        await _sanitation(conn, t, x.member_id)
    elif e.type == MemberExited.event_type:
        x = MemberExited.model_validate(p)
        await _set(conn, "member_index", "member_id", t, x.member_id, {"exited_on": x.exited_on, "version": e.version})
    elif e.type == MemberPersonalDataErased.event_type:
        er = MemberPersonalDataErased.model_validate(p)
        await _set(conn, "member_index", "member_id", t, er.member_id,
                   {"personal_data_erased": True, "version": e.version})
    elif e.stream_type == "member":
        # internal member events (personal data corrected) move the version only
        await _set(conn, "member_index", "member_id", t, uuid.UUID(e.stream_id), {"version": e.version})
    elif e.type == PromotionSessionHeld.event_type:
        h = PromotionSessionHeld.model_validate(p)
        await conn.execute(
            """INSERT INTO promotion_sessions (tenant_id, session_id, kind, held_on, topics, group_id, village,
                   district, facilitator_id, attendees, other_attendees, version)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)""",
            t, h.session_id, h.kind, h.held_on, list(h.topics), h.group_id, h.village, h.district, h.facilitator_id,
            len(h.attendee_member_ids), h.other_attendees, e.version)
        await _attended(conn, t, h.attendee_member_ids)
    elif e.type == SessionAttendanceAdded.event_type:
        a = SessionAttendanceAdded.model_validate(p)
        await conn.execute(
            """UPDATE promotion_sessions SET attendees = attendees + $3, version = $4
               WHERE tenant_id = $1 AND session_id = $2""", t, a.session_id, len(a.member_ids), e.version)
        await _attended(conn, t, a.member_ids)
    elif e.type == LeadMarked.event_type:
        lead = LeadMarked.model_validate(p)
        await _set(conn, "member_index", "member_id", t, lead.member_id, {f"lead_{lead.product}": True})
        await conn.execute(
            f"""UPDATE promotion_sessions SET {lead.product}_leads = {lead.product}_leads + 1, version = $3
                WHERE tenant_id = $1 AND session_id = $2""", t, lead.session_id, e.version)
    elif e.type == org.CENTRE_OPENED:
        await conn.execute(
            """INSERT INTO centres (tenant_id, centre_id, name, branch, village, district, opened_on, version)
               VALUES ($1,$2,$3,$4,$5,$6,$7::text::date,$8)""",
            t, p["centre_id"], p["name"], p["branch"], p["village"], p["district"], p["opened_on"], e.version)
    elif e.type == org.CENTRE_DETAILS_CHANGED:
        values = {f: p[f] for f in p["changed_fields"] if f in _CENTRE_COLUMNS}
        await _set(conn, "centres", "centre_id", t, p["centre_id"], {**values, "version": e.version})
    elif e.type == org.GROUP_FORMED:
        await conn.execute(
            """INSERT INTO groups (tenant_id, group_id, name, centre_id, meeting_day, formed_on, version)
               VALUES ($1,$2,$3,$4,$5,$6::text::date,$7)""",
            t, p["group_id"], p["name"], p["centre_id"], p["meeting_day"], p["formed_on"], e.version)
    elif e.type == org.GROUP_DETAILS_CHANGED:
        values = {f: p[f] for f in p["changed_fields"] if f in _GROUP_COLUMNS}
        await _set(conn, "groups", "group_id", t, p["group_id"], {**values, "version": e.version})
    elif e.type == org.GROUP_CLOSED:
        await conn.execute("UPDATE groups SET closed_on = $3::text::date, version = $4 WHERE tenant_id = $1 AND group_id = $2",
                           t, p["group_id"], p["closed_on"], e.version)


async def _sanitation(conn: asyncpg.Connection, tenant: str, member_id: uuid.UUID) -> None:
    """Set the member's sanitation rung and its source from the latest survey and the jobs recorded."""
    row = await conn.fetchrow(
        """SELECT m.survey_sanitation_rung, m.survey_sanitation_shared,
                  EXISTS (SELECT 1 FROM member_sanitation_jobs j WHERE j.tenant_id = m.tenant_id
                            AND j.member_id = m.member_id AND j.completed_on IS NOT NULL) AS handed_over,
                  EXISTS (SELECT 1 FROM member_sanitation_jobs j WHERE j.tenant_id = m.tenant_id
                            AND j.member_id = m.member_id AND j.completed_on IS NOT NULL AND j.kind = $3
                            AND j.emptied_on IS NOT NULL) AS emptied
           FROM member_index m WHERE m.tenant_id = $1 AND m.member_id = $2""", tenant, member_id, jmp.EMPTIED_JOB_KIND)
    if row is None:
        return
    rung, source = jmp.sanitation_after_works(row["survey_sanitation_rung"], row["survey_sanitation_shared"],
                                              row["handed_over"], row["emptied"])
    await conn.execute(
        "UPDATE member_index SET sanitation_rung = $3, sanitation_rung_source = $4 WHERE tenant_id = $1 AND member_id = $2",
        tenant, member_id, rung, source)


async def _attended(conn: asyncpg.Connection, tenant: str, member_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(
        "UPDATE member_index SET sessions_attended = sessions_attended + 1 WHERE tenant_id = $1 AND member_id = ANY($2::uuid[])",
        tenant, list(member_ids))


async def rebuild(store: PostgresEventStore, batch: int = 5000) -> int:
    """Empty the read tables and replay the whole log into them, in one transaction; returns the number
    of events replayed. Run it with the API stopped: a command committing meanwhile, beyond the log
    position read, would be missing from the rebuilt tables (they are written only by ``apply``)."""
    replayed = 0
    # the rewrite runs on a connection of its own, not a pooled one: the log is read through the store's
    # pool meanwhile, and holding one pooled connection while asking the same pool for another can wedge it
    conn = await connect(store.pool.dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
            after = LogPosition()
            while True:
                events = await store.read_log(after, batch)
                if not events:
                    break
                await apply(conn, [r.envelope for r in events])
                replayed += len(events)
                after = events[-1].log_position
    finally:
        await conn.close()
    return replayed
