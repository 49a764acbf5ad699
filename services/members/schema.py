"""The members service's own tables beside its event store.

Personal data (name, NIK, phone) is kept here, not in events, so it can be corrected or erased; the
events keep only non-personal facts.
"""

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
]
