"""``reporting.members``: members (non-personal attributes), household WASH surveys, promotion and
triggering sessions, attendance and leads, from the members service's events.

Dated facts, so figures can be asked as of any date: a member row carries ``joined_on`` / ``exited_on``;
every survey is kept with its date (baseline and follow-ups) and, since version 2, its answer to "is the
sanitation facility shared with other households?"; sessions with ``held_on``; leads with
``marked_on``. Member attributes (sex, household size, area, B40) are kept at their latest value: a
``MemberDetailsChanged`` is a correction of what was recorded, so it applies to every date.
Nothing personal is stored: no name, NIK, phone, nor the member number.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from services.reporting.projections.base import SEEN, Family, Names, Table
from shared.contracts import Contract
from shared.contracts import members
from shared.envelope import Envelope

#: attributes a MemberDetailsChanged may carry that this read model keeps
_KEPT = ("sex", "joined_on", "household_size", "area", "b40", "programme_consent")
_REQUIRED = ("sex", "joined_on", "household_size", "programme_consent")


class MembersProjection(Family):
    family = "members"
    #: 2: each survey keeps its "shared with other households?" answer (``sanitation_shared``), so the rung
    #: after construction follows JMP (a shared improved facility is "limited") as the members service does
    version = 2
    prefix = "rm"
    sources = ("members",)
    tables = (
        Table("member", """
            CREATE TABLE {t} (
                tenant_id         text NOT NULL,
                member_id         uuid NOT NULL,
                sex               text NOT NULL,
                joined_on         date NOT NULL,
                household_size    integer NOT NULL,
                area              text,
                b40               boolean,
                programme_consent boolean NOT NULL DEFAULT false,
                group_id          text,
                exited_on         date,
                exit_reason       text,
                personal_data_erased boolean NOT NULL DEFAULT false,
                PRIMARY KEY (tenant_id, member_id)
            );"""),
        Table("survey", """
            CREATE TABLE {t} (
                tenant_id       text NOT NULL,
                survey_id       uuid NOT NULL,
                member_id       uuid NOT NULL,
                seq             integer NOT NULL,
                kind            text NOT NULL,
                surveyed_on     date NOT NULL,
                household_size  integer NOT NULL,
                water_rung      text NOT NULL,
                sanitation_rung text NOT NULL,
                hygiene_rung    text,
                sanitation_shared boolean,
                PRIMARY KEY (tenant_id, survey_id)
            );
            CREATE INDEX {t}_by_member ON {t} (tenant_id, member_id, surveyed_on, seq);"""),
        Table("session", """
            CREATE TABLE {t} (
                tenant_id       text NOT NULL,
                session_id      uuid NOT NULL,
                kind            text NOT NULL,
                held_on         date NOT NULL,
                topics          text[] NOT NULL,
                other_attendees integer NOT NULL,
                PRIMARY KEY (tenant_id, session_id)
            );"""),
        Table("attendance", """
            CREATE TABLE {t} (
                tenant_id  text NOT NULL,
                session_id uuid NOT NULL,
                member_id  uuid NOT NULL,
                PRIMARY KEY (tenant_id, session_id, member_id)
            );"""),
        Table("lead", """
            CREATE TABLE {t} (
                tenant_id  text NOT NULL,
                session_id uuid NOT NULL,
                member_id  uuid NOT NULL,
                product    text NOT NULL,
                marked_on  date NOT NULL,
                PRIMARY KEY (tenant_id, session_id, member_id, product)
            );
            CREATE INDEX {t}_by_member ON {t} (tenant_id, member_id);"""),
        SEEN,
    )

    async def apply(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        tenant = envelope.tenant_id
        if isinstance(event, members.MemberRegistered):
            await conn.execute(
                f"""INSERT INTO {t['member']} (tenant_id, member_id, sex, joined_on, household_size, area, b40,
                                               programme_consent, group_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (tenant_id, member_id) DO UPDATE SET
                        sex = EXCLUDED.sex, joined_on = EXCLUDED.joined_on,
                        household_size = EXCLUDED.household_size, area = EXCLUDED.area, b40 = EXCLUDED.b40,
                        programme_consent = EXCLUDED.programme_consent, group_id = EXCLUDED.group_id""",
                tenant, event.member_id, event.sex, event.joined_on, event.household_size, event.area, event.b40,
                event.programme_consent, event.group_id,
            )
        elif isinstance(event, members.MemberDetailsChanged):
            fields = [f for f in _KEPT if f in event.changed_fields
                      and not (f in _REQUIRED and getattr(event, f) is None)]
            if not fields:
                return
            sets = ", ".join(f"{f} = ${i + 3}" for i, f in enumerate(fields))
            await conn.execute(f"UPDATE {t['member']} SET {sets} WHERE tenant_id = $1 AND member_id = $2",
                               tenant, event.member_id, *[getattr(event, f) for f in fields])
        elif isinstance(event, members.MemberGroupChanged):
            await conn.execute(f"UPDATE {t['member']} SET group_id = $3 WHERE tenant_id = $1 AND member_id = $2",
                               tenant, event.member_id, event.to_group_id)
        elif isinstance(event, members.MemberExited):
            await conn.execute(
                f"UPDATE {t['member']} SET exited_on = $3, exit_reason = $4 WHERE tenant_id = $1 AND member_id = $2",
                tenant, event.member_id, event.exited_on, event.reason)
        elif isinstance(event, members.MemberPersonalDataErased):
            await conn.execute(
                f"UPDATE {t['member']} SET personal_data_erased = true WHERE tenant_id = $1 AND member_id = $2",
                tenant, event.member_id)
        elif isinstance(event, members.HouseholdSurveyed):
            await conn.execute(
                f"""INSERT INTO {t['survey']} (tenant_id, survey_id, member_id, seq, kind, surveyed_on, household_size,
                                               water_rung, sanitation_rung, hygiene_rung, sanitation_shared)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING""",
                tenant, event.survey_id, event.member_id, envelope.version, event.kind, event.surveyed_on,
                event.household_size, event.water_rung, event.sanitation_rung, event.hygiene_rung,
                event.sanitation.shared,
            )
        elif isinstance(event, members.PromotionSessionHeld):
            await conn.execute(
                f"""INSERT INTO {t['session']} (tenant_id, session_id, kind, held_on, topics, other_attendees)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                tenant, event.session_id, event.kind, event.held_on, list(event.topics), event.other_attendees,
            )
            await self._attend(conn, t, tenant, event.session_id, event.attendee_member_ids)
        elif isinstance(event, members.SessionAttendanceAdded):
            await self._attend(conn, t, tenant, event.session_id, event.member_ids)
        elif isinstance(event, members.LeadMarked):
            await conn.execute(
                f"""INSERT INTO {t['lead']} (tenant_id, session_id, member_id, product, marked_on)
                    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                tenant, event.session_id, event.member_id, event.product, event.marked_on,
            )

    async def apply_batch(self, conn: asyncpg.Connection, t: Names,
                          items: Sequence[tuple[Envelope, Contract]]) -> None:
        """``apply`` of every item in turn, in one statement per table for the registrations and the rows
        only ever inserted (surveys, attendance, leads). A run of registrations is written before any
        other change of a member row (the order of a member row's writes is kept); of a member registered
        twice in a run the later registration is written (its upsert sets every column the earlier set);
        the inserted-only tables keep their rows' order, so the first of two rows with one key stays."""
        registered: dict[tuple[str, UUID], tuple[object, ...]] = {}
        surveys: list[tuple[object, ...]] = []
        attendance: list[tuple[object, ...]] = []
        leads: list[tuple[object, ...]] = []
        for envelope, event in items:
            tenant = envelope.tenant_id
            if isinstance(event, members.MemberRegistered):
                registered[(tenant, event.member_id)] = (
                    tenant, event.member_id, event.sex, event.joined_on, event.household_size, event.area,
                    event.b40, event.programme_consent, event.group_id)
            elif isinstance(event, members.HouseholdSurveyed):
                surveys.append((tenant, event.survey_id, event.member_id, envelope.version, event.kind,
                                event.surveyed_on, event.household_size, event.water_rung, event.sanitation_rung,
                                event.hygiene_rung, event.sanitation.shared))
            elif isinstance(event, members.SessionAttendanceAdded):
                attendance += [(tenant, event.session_id, m) for m in event.member_ids]
            elif isinstance(event, members.LeadMarked):
                leads.append((tenant, event.session_id, event.member_id, event.product, event.marked_on))
            elif isinstance(event, members.PromotionSessionHeld):
                await conn.execute(
                    f"""INSERT INTO {t['session']} (tenant_id, session_id, kind, held_on, topics, other_attendees)
                        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                    tenant, event.session_id, event.kind, event.held_on, list(event.topics),
                    event.other_attendees)
                attendance += [(tenant, event.session_id, m) for m in event.attendee_member_ids]
            else:  # a change of a member row: after the registrations before it
                await self._register(conn, t, list(registered.values()))
                registered.clear()
                await self.apply(conn, t, envelope, event)
        await self._register(conn, t, list(registered.values()))
        for table, rows, types in (
                ("survey", surveys, "text, uuid, uuid, int, text, date, int, text, text, text, bool"),
                ("attendance", attendance, "text, uuid, uuid"),
                ("lead", leads, "text, uuid, uuid, text, date")):
            if rows:
                args = ", ".join(f"${i + 1}::{ty.strip()}[]" for i, ty in enumerate(types.split(",")))
                cols = {"survey": "tenant_id, survey_id, member_id, seq, kind, surveyed_on, household_size, "
                                  "water_rung, sanitation_rung, hygiene_rung, sanitation_shared",
                        "attendance": "tenant_id, session_id, member_id",
                        "lead": "tenant_id, session_id, member_id, product, marked_on"}[table]
                await conn.execute(f"""INSERT INTO {t[table]} ({cols}) SELECT * FROM unnest({args})
                                       ON CONFLICT DO NOTHING""", *[list(c) for c in zip(*rows, strict=True)])

    @staticmethod
    async def _register(conn: asyncpg.Connection, t: Names, rows: list[tuple[object, ...]]) -> None:
        """MemberRegistered's upsert for many members (each once)."""
        if not rows:
            return
        await conn.execute(
            f"""INSERT INTO {t['member']} (tenant_id, member_id, sex, joined_on, household_size, area, b40,
                                           programme_consent, group_id)
                SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::date[], $5::int[], $6::text[],
                                     $7::bool[], $8::bool[], $9::text[])
                ON CONFLICT (tenant_id, member_id) DO UPDATE SET
                    sex = EXCLUDED.sex, joined_on = EXCLUDED.joined_on,
                    household_size = EXCLUDED.household_size, area = EXCLUDED.area, b40 = EXCLUDED.b40,
                    programme_consent = EXCLUDED.programme_consent, group_id = EXCLUDED.group_id""",
            *[list(c) for c in zip(*rows, strict=True)])

    @staticmethod
    async def _attend(conn: asyncpg.Connection, t: Names, tenant: str, session_id: UUID,
                      member_ids: Sequence[UUID]) -> None:
        if member_ids:
            await conn.execute(
                f"""INSERT INTO {t['attendance']} (tenant_id, session_id, member_id)
                    SELECT $1, $2, m FROM unnest($3::uuid[]) AS m ON CONFLICT DO NOTHING""",
                tenant, session_id, member_ids,
            )
