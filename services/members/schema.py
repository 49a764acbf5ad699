"""The members service's own tables beside its event store.

Personal data (name, NIK, phone) is kept here, not in events, so it can be corrected or erased; the
events keep only non-personal facts. Since migration 0006 it is kept sealed (AES-GCM, by the service:
``services/members/personal_data.py``): the database holds no name, NIK or phone in the clear.
"""

from __future__ import annotations

import asyncpg

from services.members.personal_data import SEALED_FIELDS, Vault
from shared.db import Migration
from shared.rls import request_tables

MIGRATIONS = [
    Migration(
        "0001_members",
        """
        CREATE TABLE member_numbers (
            tenant_id     text NOT NULL,
            member_number text NOT NULL,
            member_id     uuid NOT NULL,
            PRIMARY KEY (tenant_id, member_number)
        );
        CREATE TABLE member_personal_data (
            tenant_id text NOT NULL,
            member_id uuid NOT NULL,
            name      text NOT NULL,
            nik       text,
            phone     text,
            PRIMARY KEY (tenant_id, member_id)
        );
        """,
    ),
    Migration(
        "0002_read_tables",
        """
        -- one row per member: the segmentation queries' read table, written in the same transaction as
        -- the member's events (services/members/read_model.py); no personal data here
        CREATE TABLE member_index (
            tenant_id               text NOT NULL,
            member_id               uuid NOT NULL,
            member_number           text NOT NULL,
            sex                     text NOT NULL,
            joined_on               date NOT NULL,
            household_size          integer NOT NULL,
            group_id                text,
            village                 text,
            district                text,
            area                    text,
            b40                     boolean,
            electricity             text,
            income_band             text,
            programme_consent       boolean NOT NULL,
            exited_on               date,
            personal_data_erased    boolean NOT NULL DEFAULT false,
            baseline_on             date,
            baseline_water_rung     text,
            baseline_sanitation_rung text,
            baseline_hygiene_rung   text,
            last_surveyed_on        date,
            water_rung              text,
            sanitation_rung         text,
            hygiene_rung            text,
            sessions_attended       integer NOT NULL DEFAULT 0,
            lead_water              boolean NOT NULL DEFAULT false,
            lead_sanitation         boolean NOT NULL DEFAULT false,
            version                 integer NOT NULL,
            PRIMARY KEY (tenant_id, member_id)
        );
        CREATE INDEX member_index_by_number ON member_index (tenant_id, member_number, member_id);
        CREATE INDEX member_index_by_group ON member_index (tenant_id, group_id);
        CREATE TABLE centres (
            tenant_id  text NOT NULL,
            centre_id  text NOT NULL,
            name       text NOT NULL,
            branch     text,
            village    text,
            district   text,
            opened_on  date NOT NULL,
            version    integer NOT NULL,
            PRIMARY KEY (tenant_id, centre_id)
        );
        CREATE TABLE groups (
            tenant_id   text NOT NULL,
            group_id    text NOT NULL,
            name        text NOT NULL,
            centre_id   text,
            meeting_day text,
            formed_on   date NOT NULL,
            closed_on   date,
            version     integer NOT NULL,
            PRIMARY KEY (tenant_id, group_id)
        );
        CREATE TABLE promotion_sessions (
            tenant_id        text NOT NULL,
            session_id       uuid NOT NULL,
            kind             text NOT NULL,
            held_on          date NOT NULL,
            topics           text[] NOT NULL,
            group_id         text,
            village          text,
            district         text,
            facilitator_id   text NOT NULL,
            attendees        integer NOT NULL,
            other_attendees  integer NOT NULL,
            water_leads      integer NOT NULL DEFAULT 0,
            sanitation_leads integer NOT NULL DEFAULT 0,
            version          integer NOT NULL,
            PRIMARY KEY (tenant_id, session_id)
        );
        CREATE INDEX promotion_sessions_by_day ON promotion_sessions (tenant_id, held_on DESC, session_id);
        """,
    ),
    # the second wall (shared.rls): a request reads and writes only its own cooperative's rows
    Migration("0003_row_level_security", request_tables(
        "member_numbers", "member_personal_data", "member_index", "centres", "groups", "promotion_sessions")),
    # personal data sealed by the service (issue 14 item 3): one sealed column per personal field, and the
    # NIK's keyed look-up hash, unique within a cooperative (the same person cannot be registered twice)
    Migration("0004_sealed_personal_data", """
        ALTER TABLE member_personal_data
            ADD COLUMN name_sealed  bytea,
            ADD COLUMN nik_sealed   bytea,
            ADD COLUMN phone_sealed bytea,
            ADD COLUMN nik_lookup   bytea,
            ALTER COLUMN name DROP NOT NULL;
        CREATE UNIQUE INDEX member_personal_data_nik ON member_personal_data (tenant_id, nik_lookup)
            WHERE nik_lookup IS NOT NULL;
        """),
    # the sanitation ladder follows construction (services/members/sanitation_reactions.py):
    # ``sanitation_rung`` is now the household's rung with what the sanitation service's events show,
    # ``survey_sanitation_*`` the latest survey's own answer, ``handed_over_on`` the latest facility
    # handed over (the follow-up list)
    Migration(
        "0005_sanitation_after_works",
        """
        ALTER TABLE member_index
            ADD COLUMN survey_sanitation_rung   text,
            ADD COLUMN survey_sanitation_shared boolean,
            ADD COLUMN sanitation_rung_source   text,
            ADD COLUMN handed_over_on           date;
        UPDATE member_index SET survey_sanitation_rung = sanitation_rung,
                                sanitation_rung_source = CASE WHEN sanitation_rung IS NOT NULL THEN 'survey' END;
        -- the latest survey's "shared" answer, from the events (latest by survey date, then by version,
        -- as read_model.apply and the member aggregate pick it)
        UPDATE member_index m SET survey_sanitation_shared = (s.payload->'sanitation'->>'shared')::boolean
        FROM (SELECT DISTINCT ON (tenant_id, stream_id) tenant_id, stream_id, payload FROM events
              WHERE type = 'members.HouseholdSurveyed'
              ORDER BY tenant_id, stream_id, (payload->>'surveyed_on')::date DESC, version DESC) s
        WHERE m.tenant_id = s.tenant_id AND m.member_id::text = s.stream_id;
        -- one row per construction job the member's stream recorded: handed over (kind, completed_on)
        -- and, for a septic tank, the first acknowledged emptying (either may be recorded first)
        CREATE TABLE member_sanitation_jobs (
            tenant_id    text NOT NULL,
            member_id    uuid NOT NULL,
            job_id       uuid NOT NULL,
            kind         text,
            completed_on date,
            emptied_on   date,
            PRIMARY KEY (tenant_id, member_id, job_id)
        );
        CREATE INDEX member_index_follow_ups ON member_index (tenant_id, handed_over_on, member_id)
            WHERE handed_over_on IS NOT NULL AND (last_surveyed_on IS NULL OR last_surveyed_on < handed_over_on);
        """ + request_tables("member_sanitation_jobs"),
    ),
]

#: the data step after 0004 and 0005, in Python (the database never sees the keys): what the checksum covers
SEAL_EXISTING = """
    -- services/members/schema.py seal_existing: every name, NIK and phone an older version wrote in the
    -- clear is sealed under the current personal-data key, with the NIK's look-up hash; then the clear
    -- columns name, nik and phone are dropped, so nothing can be written in the clear again
    SELECT 1;
    """


def migrations(vault: Vault) -> list[Migration]:
    """The members schema, with the sealing step that needs the service's keys."""

    async def seal_existing(conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT tenant_id, member_id, name, nik, phone FROM member_personal_data")
        for r in rows:
            tenant, member = r["tenant_id"], r["member_id"]
            try:
                await conn.execute(
                    """UPDATE member_personal_data SET name_sealed = $3, nik_sealed = $4, phone_sealed = $5,
                              nik_lookup = $6 WHERE tenant_id = $1 AND member_id = $2""",
                    tenant, member, *(vault.seal(tenant, member, f, r[f]) for f in SEALED_FIELDS),
                    vault.nik_lookup(tenant, r["nik"]))
            except asyncpg.UniqueViolationError:
                raise RuntimeError(
                    f"members: cooperative {tenant} has two members with the same NIK (member {member} and an "
                    "earlier one); a NIK is now unique within a cooperative: correct one of them with the "
                    "previous version, then start this one") from None
        await conn.execute("""ALTER TABLE member_personal_data DROP COLUMN name, DROP COLUMN nik, DROP COLUMN phone,
                                  ALTER COLUMN name_sealed SET NOT NULL""")

    return [*MIGRATIONS, Migration("0006_seal_personal_data", SEAL_EXISTING, step=seal_existing)]
