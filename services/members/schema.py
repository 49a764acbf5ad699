"""The members service's own tables beside its event store.

Personal data (name, NIK, phone) is kept here, not in events, so it can be corrected or erased; the
events keep only non-personal facts.
"""

from shared.db import Migration

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
]
