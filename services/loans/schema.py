"""The loans service's own tables beside its event store: read tables for lists and uniqueness.

They are written in the same transaction as the events they reflect (``after=`` of the append), so a
list never disagrees with the streams, and a refusal raised there rolls the events back too. The streams
stay the truth: the tables can be rebuilt from them (``handlers.rebuild_read_tables``).
"""

from shared.db import Migration
from shared.rls import request_tables

MIGRATIONS = [
    Migration(
        "0001_loans_read_tables",
        """
        CREATE TABLE loan_products (
            tenant_id     text NOT NULL,
            product_id    text NOT NULL,
            name          text NOT NULL,
            purpose       text NOT NULL,
            contract_type text NOT NULL,
            defined_on    date NOT NULL,
            PRIMARY KEY (tenant_id, product_id)
        );
        CREATE TABLE loan_financings (
            tenant_id          text NOT NULL,
            financing_id       uuid NOT NULL,
            member_id          uuid NOT NULL,
            product_id         text NOT NULL,
            purpose            text NOT NULL,
            status             text NOT NULL,
            amount             bigint NOT NULL,
            selling_price      bigint NOT NULL DEFAULT 0,
            owed               bigint NOT NULL DEFAULT 0,
            applied_on         date NOT NULL,
            -- due date of the earliest instalment not fully paid (NULL when nothing is owed): the
            -- member's days past due for eligibility, without folding every stream
            earliest_unpaid_due date,
            version            integer NOT NULL,
            PRIMARY KEY (tenant_id, financing_id)
        );
        CREATE INDEX loan_financings_member ON loan_financings (tenant_id, member_id);
        CREATE INDEX loan_financings_list ON loan_financings (tenant_id, applied_on DESC, financing_id);
        -- a receipt number belongs to one financing of a cooperative
        CREATE TABLE loan_receipts (
            tenant_id      text NOT NULL,
            receipt_number text NOT NULL,
            financing_id   uuid NOT NULL,
            PRIMARY KEY (tenant_id, receipt_number)
        );
        """,
    ),
    # the second wall (shared.rls): a request reads and writes only its own cooperative's rows
    Migration("0002_row_level_security", request_tables("loan_products", "loan_financings", "loan_receipts")),
]
