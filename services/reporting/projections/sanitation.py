"""``reporting.sanitation``: construction jobs, SNI inspections, contractors' certification, and the
desludging of handed-over septic tanks, from the sanitation service's events.

Dated facts: every step of a job (``job_step``: ordered, assigned, started, inspection_failed,
inspection_passed, completed, with its business date), every inspection, every due date a tank was
given (``due``: at handover, and after each acknowledged emptying), every visit and every IPLT receipt.
The published events carry no rework step (``ReworkStarted`` is internal to the sanitation service): a job
failed at inspection stays "inspection_failed" until it is inspected again.
"""

from __future__ import annotations

import asyncpg

from services.reporting.projections.base import SEEN, Family, Names, Table
from shared.contracts import Contract
from shared.contracts.sanitation import (
    ContractorAssigned,
    ContractorCertificationExpired,
    ContractorCertified,
    DesludgingScheduled,
    DesludgingVisitRecorded,
    InspectionRecorded,
    IpltReceiptAcknowledged,
    JobCompleted,
    JobOrdered,
    JobStarted,
    NextDesludgingDue,
)
from shared.envelope import Envelope


class SanitationProjection(Family):
    family = "sanitation"
    version = 1
    prefix = "rs"
    sources = ("sanitation",)
    tables = (
        Table("job", """
            CREATE TABLE {t} (
                tenant_id     text NOT NULL,
                job_id        uuid NOT NULL,
                member_id     uuid NOT NULL,
                kind          text NOT NULL,
                financing_id  uuid,
                ordered_on    date,
                contractor_id uuid,
                assigned_on   date,
                started_on    date,
                completed_on  date,
                PRIMARY KEY (tenant_id, job_id)
            );
            CREATE INDEX {t}_by_member ON {t} (tenant_id, member_id);"""),
        Table("job_step", """
            CREATE TABLE {t} (
                tenant_id     text NOT NULL,
                job_id        uuid NOT NULL,
                seq           integer NOT NULL,
                step          text NOT NULL,
                on_date       date NOT NULL,
                contractor_id uuid,
                PRIMARY KEY (tenant_id, job_id, seq)
            );"""),
        Table("inspection", """
            CREATE TABLE {t} (
                tenant_id         text NOT NULL,
                job_id            uuid NOT NULL,
                inspection_number integer NOT NULL,
                passed            boolean NOT NULL,
                inspected_on      date NOT NULL,
                failed_items      text[] NOT NULL,
                PRIMARY KEY (tenant_id, job_id, inspection_number)
            );"""),
        Table("certification", """
            CREATE TABLE {t} (
                tenant_id          text NOT NULL,
                contractor_id      uuid NOT NULL,
                certificate_number text NOT NULL,
                trained_on         date,
                certified_on       date NOT NULL,
                valid_until        date NOT NULL,
                expiry_recorded_on date,
                PRIMARY KEY (tenant_id, contractor_id, certificate_number)
            );"""),
        Table("due", """
            CREATE TABLE {t} (
                tenant_id      text NOT NULL,
                job_id         uuid NOT NULL,
                seq            integer NOT NULL,
                member_id      uuid NOT NULL,
                basis          text NOT NULL,
                since_on       date NOT NULL,
                interval_years integer NOT NULL,
                due_on         date NOT NULL,
                PRIMARY KEY (tenant_id, job_id, seq)
            );"""),
        Table("visit", """
            CREATE TABLE {t} (
                tenant_id           text NOT NULL,
                visit_id            uuid NOT NULL,
                job_id              uuid NOT NULL,
                member_id           uuid NOT NULL,
                visited_on          date NOT NULL,
                outcome             text NOT NULL,
                volume_m3           numeric(6, 3),
                cancellation_reason text,
                PRIMARY KEY (tenant_id, visit_id)
            );
            CREATE INDEX {t}_by_job ON {t} (tenant_id, job_id);"""),
        Table("receipt", """
            CREATE TABLE {t} (
                tenant_id          text NOT NULL,
                visit_id           uuid NOT NULL,
                job_id             uuid NOT NULL,
                member_id          uuid NOT NULL,
                iplt_id            text NOT NULL,
                received_on        date NOT NULL,
                volume_removed_m3  numeric(6, 3) NOT NULL,
                volume_received_m3 numeric(6, 3) NOT NULL,
                volume_mismatch    boolean NOT NULL,
                PRIMARY KEY (tenant_id, visit_id)
            );
            CREATE INDEX {t}_by_job ON {t} (tenant_id, job_id);"""),
        SEEN,
    )

    async def apply(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        tenant, seq = envelope.tenant_id, envelope.version
        if isinstance(event, JobOrdered):
            await self._job(conn, t, tenant, event.job_id, event.member_id, event.kind, event.financing_id,
                            ordered_on=event.ordered_on)
            await self._step(conn, t, tenant, event.job_id, seq, "ordered", event.ordered_on, None)
        elif isinstance(event, ContractorAssigned):
            await self._job(conn, t, tenant, event.job_id, event.member_id, event.kind, event.financing_id,
                            contractor_id=event.contractor_id, assigned_on=event.assigned_on)
            await self._step(conn, t, tenant, event.job_id, seq, "assigned", event.assigned_on, event.contractor_id)
        elif isinstance(event, JobStarted):
            await conn.execute(f"UPDATE {t['job']} SET started_on = $3 WHERE tenant_id = $1 AND job_id = $2",
                               tenant, event.job_id, event.started_on)
            await self._step(conn, t, tenant, event.job_id, seq, "started", event.started_on, event.contractor_id)
        elif isinstance(event, InspectionRecorded):
            await conn.execute(
                f"""INSERT INTO {t['inspection']} (tenant_id, job_id, inspection_number, passed, inspected_on,
                                                   failed_items)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                tenant, event.job_id, event.inspection_number, event.passed, event.inspected_on,
                [i.code for i in event.items if not i.passed],
            )
            await self._step(conn, t, tenant, event.job_id, seq,
                             "inspection_passed" if event.passed else "inspection_failed", event.inspected_on, None)
        elif isinstance(event, JobCompleted):
            await self._job(conn, t, tenant, event.job_id, event.member_id, event.kind, event.financing_id,
                            contractor_id=event.contractor_id, completed_on=event.completed_on)
            await self._step(conn, t, tenant, event.job_id, seq, "completed", event.completed_on, event.contractor_id)
        elif isinstance(event, DesludgingScheduled | NextDesludgingDue):
            first = isinstance(event, DesludgingScheduled)
            since = event.completed_on if isinstance(event, DesludgingScheduled) else event.last_emptied_on
            await conn.execute(
                f"""INSERT INTO {t['due']} (tenant_id, job_id, seq, member_id, basis, since_on, interval_years, due_on)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
                tenant, event.job_id, seq, event.member_id, "handover" if first else "emptied", since,
                event.interval_years, event.due_on,
            )
        elif isinstance(event, DesludgingVisitRecorded):
            await conn.execute(
                f"""INSERT INTO {t['visit']} (tenant_id, visit_id, job_id, member_id, visited_on, outcome, volume_m3,
                                              cancellation_reason)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    ON CONFLICT (tenant_id, visit_id) DO UPDATE SET visited_on = EXCLUDED.visited_on,
                        outcome = EXCLUDED.outcome, volume_m3 = EXCLUDED.volume_m3,
                        cancellation_reason = EXCLUDED.cancellation_reason""",
                tenant, event.visit_id, event.job_id, event.member_id, event.visited_on, event.outcome,
                event.volume_m3, event.cancellation_reason,
            )
        elif isinstance(event, IpltReceiptAcknowledged):
            await conn.execute(
                f"""INSERT INTO {t['receipt']} (tenant_id, visit_id, job_id, member_id, iplt_id, received_on,
                                                volume_removed_m3, volume_received_m3, volume_mismatch)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
                tenant, event.visit_id, event.job_id, event.member_id, event.iplt_id, event.received_on,
                event.volume_removed_m3, event.volume_received_m3, event.volume_mismatch,
            )
        elif isinstance(event, ContractorCertified):
            await conn.execute(
                f"""INSERT INTO {t['certification']} (tenant_id, contractor_id, certificate_number, trained_on,
                                                      certified_on, valid_until)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (tenant_id, contractor_id, certificate_number) DO UPDATE SET
                        trained_on = EXCLUDED.trained_on, certified_on = EXCLUDED.certified_on,
                        valid_until = EXCLUDED.valid_until""",
                tenant, event.contractor_id, event.certificate_number, event.trained_on, event.certified_on,
                event.valid_until,
            )
        elif isinstance(event, ContractorCertificationExpired):
            await conn.execute(
                f"""UPDATE {t['certification']} SET expiry_recorded_on = $4
                    WHERE tenant_id = $1 AND contractor_id = $2 AND certificate_number = $3""",
                tenant, event.contractor_id, event.certificate_number, event.recorded_on,
            )

    @staticmethod
    async def _job(conn: asyncpg.Connection, t: Names, tenant: str, job_id: object, member_id: object, kind: str,
                   financing_id: object, **values: object) -> None:
        cols = list(values)
        await conn.execute(
            f"""INSERT INTO {t['job']} (tenant_id, job_id, member_id, kind, financing_id, {', '.join(cols)})
                VALUES ($1, $2, $3, $4, $5, {', '.join(f'${i + 6}' for i in range(len(cols)))})
                ON CONFLICT (tenant_id, job_id) DO UPDATE SET
                    financing_id = coalesce(EXCLUDED.financing_id, {t['job']}.financing_id),
                    {', '.join(f'{c} = EXCLUDED.{c}' for c in cols)}""",
            tenant, job_id, member_id, kind, financing_id, *values.values(),
        )

    @staticmethod
    async def _step(conn: asyncpg.Connection, t: Names, tenant: str, job_id: object, seq: int, step: str,
                    on: object, contractor_id: object) -> None:
        await conn.execute(
            f"""INSERT INTO {t['job_step']} (tenant_id, job_id, seq, step, on_date, contractor_id)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            tenant, job_id, seq, step, on, contractor_id,
        )
