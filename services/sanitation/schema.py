"""The sanitation service's own tables beside its event store.

Read tables (contractors, jobs, desludging_visits) are written in the same transaction as the events
they derive from (the append's ``after`` hook upserts the row of the folded state), so a list answered
right after a command already shows it, and a row is always the fold of its stream at ``version``.
A contractor's name and contact are personal data: they live only here, never in events.
``iplt_manifests`` makes a plant's manifest number usable once per cooperative.
"""

from shared.db import Migration
from shared.rls import request_tables

MIGRATIONS = [
    Migration(
        "0001_sanitation",
        """
        CREATE TABLE contractors (
            tenant_id           text NOT NULL,
            contractor_id       uuid NOT NULL,
            name                text NOT NULL,
            contact             text,
            registered_on       date NOT NULL,
            trained_on          date,
            certificate_number  text,
            certified_on        date,
            valid_until         date,
            expiry_recorded_for date,
            active              boolean NOT NULL,
            version             integer NOT NULL,
            PRIMARY KEY (tenant_id, contractor_id)
        );
        CREATE INDEX contractors_by_validity ON contractors (tenant_id, valid_until);

        CREATE TABLE jobs (
            tenant_id               text NOT NULL,
            job_id                  uuid NOT NULL,
            member_id               uuid NOT NULL,
            kind                    text NOT NULL,
            financing_id            uuid,
            status                  text NOT NULL,
            contractor_id           uuid,
            village                 text,
            ordered_on              date NOT NULL,
            assigned_on             date,
            started_on              date,
            completed_on            date,
            pdam_customer_number    text,
            inspections             integer NOT NULL,
            first_inspection_passed boolean,
            last_inspection_passed  boolean,
            reworks                 integer NOT NULL,
            interval_years          integer,
            next_due_on             date,
            last_emptied_on         date,
            open_request_on         date,
            open_visit_id           uuid,
            version                 integer NOT NULL,
            PRIMARY KEY (tenant_id, job_id)
        );
        CREATE INDEX jobs_by_order ON jobs (tenant_id, ordered_on DESC, job_id);
        CREATE INDEX jobs_by_contractor ON jobs (tenant_id, contractor_id);
        CREATE INDEX jobs_by_due ON jobs (tenant_id, next_due_on, job_id) WHERE next_due_on IS NOT NULL;

        CREATE TABLE desludging_visits (
            tenant_id          text NOT NULL,
            visit_id           uuid NOT NULL,
            job_id             uuid NOT NULL,
            planned_on         date NOT NULL,
            operator           text,
            truck_plate        text,
            visited_on         date,
            outcome            text,
            volume_m3          numeric(6, 3),
            cancellation_reason text,
            note               text,
            iplt_id            text,
            manifest_number    text,
            received_on        date,
            volume_received_m3 numeric(6, 3),
            volume_mismatch    boolean,
            PRIMARY KEY (tenant_id, visit_id)
        );
        CREATE INDEX visits_by_job ON desludging_visits (tenant_id, job_id);

        CREATE TABLE iplt_manifests (
            tenant_id       text NOT NULL,
            iplt_id         text NOT NULL,
            manifest_number text NOT NULL,
            visit_id        uuid NOT NULL,
            PRIMARY KEY (tenant_id, iplt_id, manifest_number)
        );
        """,
    ),
    # the second wall (shared.rls): a request reads and writes only its own cooperative's rows
    Migration("0002_row_level_security",
              request_tables("contractors", "jobs", "desludging_visits", "iplt_manifests")),
]
