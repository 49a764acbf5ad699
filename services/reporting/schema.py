"""The reporting service's own tables (beside the projections' read tables).

- ``projection_builds``: which build of each projection family is live, which are being built beside it,
  which were retired (operational metadata, no cooperative data: no row-level security);
- ``programmes`` and ``programme_cooperatives``: donor programmes and the cooperatives that consented to
  be aggregated in them (managed by operators, see the ``/programmes`` routes, or seeded from settings);
- ``cooperative_targets``: each cooperative's targets (e.g. 10 000 members with access by a date), set
  by its managers; no event carries targets;
- ``consumer_lag``: a Kafka projector's records not applied yet, per build (for the API processes).
"""

from __future__ import annotations

from shared.db import Migration
from shared.rls import allow_requests, protect

MIGRATIONS = [
    Migration(
        "0001_projection_builds",
        """
        CREATE TABLE projection_builds (
            build      text PRIMARY KEY,
            family     text NOT NULL,
            version    integer NOT NULL,
            suffix     text NOT NULL,
            state      text NOT NULL CHECK (state IN ('building', 'live', 'retired')),
            created_at timestamptz NOT NULL DEFAULT now(),
            live_since timestamptz,
            retired_at timestamptz,
            dropped_at timestamptz,
            UNIQUE (family, suffix)
        );
        CREATE UNIQUE INDEX projection_builds_one_live ON projection_builds (family) WHERE state = 'live';
        """,
    ),
    Migration(
        "0002_programmes",
        """
        CREATE TABLE programmes (
            programme_id text PRIMARY KEY CHECK (programme_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
            name         text NOT NULL
        );
        CREATE TABLE programme_cooperatives (
            tenant_id    text NOT NULL,
            programme_id text NOT NULL REFERENCES programmes (programme_id),
            consented_on date NOT NULL,
            PRIMARY KEY (tenant_id, programme_id)
        );
        CREATE INDEX programme_cooperatives_by_programme ON programme_cooperatives (programme_id);
        """ + protect("programme_cooperatives"),
    ),
    Migration(
        "0003_cooperative_targets",
        """
        CREATE TABLE cooperative_targets (
            tenant_id   text NOT NULL,
            indicator   text NOT NULL,
            target      bigint NOT NULL CHECK (target > 0),
            due_on      date,
            baseline    bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, indicator)
        );
        """ + protect("cooperative_targets"),
    ),
    # a manager's target is written as the cooperative itself (``shared.rls.TenantPool``), like the other
    # services' requests: its own row and no other's
    Migration("0004_targets_written_behind_rls", allow_requests("cooperative_targets")),
    # a rebuild's month-end sums are written once, when it is about to go live (``builds.finish_months``)
    Migration("0005_builds_months_deferred",
              "ALTER TABLE projection_builds ADD COLUMN months_deferred boolean NOT NULL DEFAULT false;"),
    # a projector process on Kafka says how far each build's consumers are behind the broker, for the API
    # processes' freshness figures (``ReportingRuntime._pending_elsewhere``; no cooperative data)
    Migration("0006_consumer_lag",
              """CREATE TABLE consumer_lag (consumer text PRIMARY KEY, events bigint NOT NULL,
                                          updated_at timestamptz NOT NULL DEFAULT now());"""),
]
