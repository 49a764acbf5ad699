"""The loans service's own tables beside its event store: read tables for lists and uniqueness.

They are written in the same transaction as the events they reflect (``after=`` of the append), so a
list never disagrees with the streams, and a refusal raised there rolls the events back too. The streams
stay the truth: the tables can be rebuilt from them (``handlers.rebuild_read_tables``).
"""

from shared.db import Migration
from shared.rls import request_tables

#: each ``loan_book`` row's running figures (``book.position``) from the financing's other rows, in SQL: for
#: a book recorded before migration 0005 (the rows written since compute them in Python, the same way)
FILL_BOOK_POSITIONS = """
UPDATE loan_book b SET active_on = (
    SELECT max(d) FROM (SELECT max(on_date) FROM loan_statuses s
                        WHERE s.tenant_id = b.tenant_id AND s.financing_id = b.financing_id
                        UNION ALL
                        SELECT max(paid_on) FROM loan_allocations a
                        WHERE a.tenant_id = b.tenant_id AND a.financing_id = b.financing_id
                        UNION ALL
                        SELECT max(valid_from) FROM loan_instalments i
                        WHERE i.tenant_id = b.tenant_id AND i.financing_id = b.financing_id) AS x(d)),
    owed = 0, cost_owed = 0, unpaid_due = '{}', unpaid_cum = '{}';
UPDATE loan_book b SET owed = u.owed, cost_owed = u.cost_owed, unpaid_due = u.dues, unpaid_cum = u.cums
FROM (SELECT tenant_id, financing_id, sum(amount - paid)::bigint AS owed,
             sum(CASE WHEN amount <= 0 THEN 0 ELSE cost_part - div(least(paid, amount)::numeric * cost_part, amount) END)::bigint
                 AS cost_owed,
             array_agg(due_on ORDER BY due_on, number) AS dues, array_agg(cum ORDER BY due_on, number) AS cums
      FROM (SELECT tenant_id, financing_id, number, due_on, amount, cost_part, paid,
                   (sum(amount - paid) OVER (PARTITION BY tenant_id, financing_id ORDER BY due_on, number))::bigint
                       AS cum
            FROM loan_instalments WHERE valid_until IS NULL AND paid < amount) i
      GROUP BY 1, 2) u
WHERE u.tenant_id = b.tenant_id AND u.financing_id = b.financing_id;
"""

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
    # the book as dated facts (``services/loans/book.py``): the portfolio, today or as of a date, is SQL over
    # these rows, never a fold of every stream. A book recorded before this step has no rows here yet: the
    # service writes them on start (``book.backfill``), and the portfolio answers 503 until it has.
    Migration(
        "0003_loan_book_rows",
        """
        CREATE TABLE loan_book (
            tenant_id             text NOT NULL,
            financing_id          uuid NOT NULL,
            version               integer NOT NULL,
            restructured_on       date,
            closed_on             date,
            written_off_principal bigint NOT NULL DEFAULT 0,
            -- as of a date before this one the stream is folded (a late charge's dates the rows cannot
            -- reproduce); NULL for nearly every financing
            fold_below            date,
            PRIMARY KEY (tenant_id, financing_id)
        );
        CREATE INDEX loan_book_fold_below ON loan_book (tenant_id, fold_below) WHERE fold_below IS NOT NULL;
        CREATE TABLE loan_statuses (
            tenant_id    text NOT NULL,
            financing_id uuid NOT NULL,
            version      integer NOT NULL,
            on_date      date NOT NULL,
            status       text NOT NULL,
            PRIMARY KEY (tenant_id, financing_id, version)
        );
        CREATE TABLE loan_instalments (
            tenant_id    text NOT NULL,
            financing_id uuid NOT NULL,
            generation   integer NOT NULL,
            number       integer NOT NULL,
            due_on       date NOT NULL,
            amount       bigint NOT NULL,
            cost_part    bigint NOT NULL,
            paid         bigint NOT NULL,
            paid_on_time bigint NOT NULL,
            valid_from   date NOT NULL,
            valid_until  date,
            PRIMARY KEY (tenant_id, financing_id, generation, number)
        );
        CREATE INDEX loan_instalments_due ON loan_instalments (tenant_id, due_on);
        CREATE TABLE loan_allocations (
            tenant_id    text NOT NULL,
            financing_id uuid NOT NULL,
            generation   integer NOT NULL,
            number       integer NOT NULL,
            paid_on      date NOT NULL,
            amount       bigint NOT NULL,
            on_time      boolean NOT NULL,
            recovery     boolean NOT NULL
        );
        CREATE INDEX loan_allocations_paid_on ON loan_allocations (tenant_id, paid_on);
        CREATE INDEX loan_allocations_financing ON loan_allocations (tenant_id, financing_id);
        CREATE TABLE loan_late_charges (
            tenant_id         text NOT NULL,
            financing_id      uuid NOT NULL,
            seq               integer NOT NULL,
            instalment_number integer NOT NULL,
            amount            bigint NOT NULL,
            proposed_on       date NOT NULL,
            status            text NOT NULL,
            decided_on        date,
            PRIMARY KEY (tenant_id, financing_id, seq)
        );
        """
        + request_tables("loan_book", "loan_statuses", "loan_instalments", "loan_allocations", "loan_late_charges"),
    ),
    # the book's reads at scale: a status as of a date from each financing's last one (``loan_book.status``);
    # a position reads only the instalments not fully paid (``book._UNPAID_AS_OF``);
    # recoveries and recorded late charges are few among many allocations and charges
    # (partial indexes, not a scan of every repayment); the planner's statistics kept fresh by autovacuum on
    # these tables after a few percent of new rows, not the default 10 % (a bulk import or a rebuild also
    # ANALYZEs them at once: ``book.analyze``)
    Migration(
        "0004_loan_book_read_paths",
        """
        -- each financing's last status and its date: its status as of any later date, without its changes
        ALTER TABLE loan_book ADD COLUMN status text, ADD COLUMN status_on date;
        UPDATE loan_book b SET status = s.status, status_on = s.on_date
        FROM (SELECT DISTINCT ON (tenant_id, financing_id) tenant_id, financing_id, status, on_date
              FROM loan_statuses ORDER BY tenant_id, financing_id, version DESC) s
        WHERE s.tenant_id = b.tenant_id AND s.financing_id = b.financing_id;
        CREATE INDEX loan_book_status_on ON loan_book (tenant_id, status_on);
        CREATE INDEX loan_instalments_unpaid ON loan_instalments (tenant_id, financing_id) WHERE paid < amount;
        CREATE INDEX loan_allocations_recoveries ON loan_allocations (tenant_id, paid_on) WHERE recovery;
        CREATE INDEX loan_late_charges_recorded ON loan_late_charges (tenant_id, decided_on)
            WHERE status = 'recorded';
        """
        + "".join(f"ALTER TABLE {t} SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 200);"
                  for t in ("loan_book", "loan_statuses", "loan_instalments", "loan_allocations", "loan_late_charges")),
    ),
    # the portfolio at scale (``book.position``): each financing's running figures on its ``loan_book`` row, so
    # that as of any date after its last dated fact (as of today: every financing) the portfolio reads one row
    # per financing, not its instalments; filled here for a book recorded before
    Migration(
        "0005_loan_book_positions",
        """
        ALTER TABLE loan_book ADD COLUMN owed bigint NOT NULL DEFAULT 0,
                              ADD COLUMN cost_owed bigint NOT NULL DEFAULT 0,
                              ADD COLUMN unpaid_due date[] NOT NULL DEFAULT '{}',
                              ADD COLUMN unpaid_cum bigint[] NOT NULL DEFAULT '{}',
                              ADD COLUMN active_on date;
        CREATE INDEX loan_book_active_on ON loan_book (tenant_id, active_on);
        """ + FILL_BOOK_POSITIONS,
    ),
    # the instalments of each financing's schedule in force (after a reschedule, not the count applied for), for
    # the lists: from the book's current schedule generation, or, before a contract, the application
    Migration(
        "0006_financing_instalments",
        """
        ALTER TABLE loan_financings ADD COLUMN instalments integer;
        UPDATE loan_financings f SET instalments = coalesce(
            (SELECT nullif(count(*), 0) FROM loan_instalments i
             WHERE i.tenant_id = f.tenant_id AND i.financing_id = f.financing_id AND i.valid_until IS NULL),
            (SELECT (e.payload->>'instalments')::int FROM events e
             WHERE e.tenant_id = f.tenant_id AND e.stream_id = f.financing_id::text
               AND e.type = 'loans.FinancingApplied'),
            0);
        ALTER TABLE loan_financings ALTER COLUMN instalments SET NOT NULL;
        """,
    ),
    # payments against late charges (``book.py``): the social fund received as of a date, apart from the
    # repayments' allocations; a book recorded before this step has none (the payments are new)
    Migration(
        "0007_loan_charge_payments",
        """
        CREATE TABLE loan_charge_payments (
            tenant_id         text NOT NULL,
            financing_id      uuid NOT NULL,
            version           integer NOT NULL,
            instalment_number integer NOT NULL,
            receipt_number    text NOT NULL,
            amount            bigint NOT NULL,
            paid_on           date NOT NULL,
            PRIMARY KEY (tenant_id, financing_id, version)
        );
        CREATE INDEX loan_charge_payments_paid_on ON loan_charge_payments (tenant_id, paid_on);
        """ + request_tables("loan_charge_payments"),
    ),
    # the portfolio's sums per cooperative (``sums.py``): by date and key, and by key alone (today's), so the
    # portfolio, today or as of a date, reads rows in number of the distinct dates and due dates, not of the
    # financings. A book recorded before this step gets them at start (``sums.backfill``): its cooperative is
    # listed in loan_portfolio_pending until then, and its portfolio reads the rows meanwhile
    Migration(
        "0008_loan_portfolio_sums",
        """
        CREATE TABLE loan_portfolio_changes (
            tenant_id    text NOT NULL,
            on_date      date NOT NULL,
            status       text NOT NULL,
            positioned   boolean NOT NULL,
            first_due    date NOT NULL,   -- the first unpaid due date (9999-12-31: none)
            restructured boolean NOT NULL,
            n            bigint NOT NULL,
            owed         bigint NOT NULL,
            cost_owed    bigint NOT NULL,
            wo_principal bigint NOT NULL,
            PRIMARY KEY (tenant_id, on_date, status, positioned, first_due, restructured)
        );
        CREATE TABLE loan_portfolio_now (
            tenant_id    text NOT NULL,
            status       text NOT NULL,
            positioned   boolean NOT NULL,
            first_due    date NOT NULL,
            restructured boolean NOT NULL,
            n            bigint NOT NULL,
            owed         bigint NOT NULL,
            cost_owed    bigint NOT NULL,
            wo_principal bigint NOT NULL,
            PRIMARY KEY (tenant_id, status, positioned, first_due, restructured)
        );
        CREATE TABLE loan_portfolio_due_changes (
            tenant_id        text NOT NULL,
            on_date          date NOT NULL,
            due_on           date NOT NULL,
            unpaid           bigint NOT NULL,
            fallen_due       bigint NOT NULL,
            paid_on_time     bigint NOT NULL,
            charges          bigint NOT NULL,
            charges_received bigint NOT NULL,
            recovered        bigint NOT NULL,
            PRIMARY KEY (tenant_id, on_date, due_on)
        );
        CREATE TABLE loan_portfolio_due_now (
            tenant_id        text NOT NULL,
            due_on           date NOT NULL,
            unpaid           bigint NOT NULL,
            fallen_due       bigint NOT NULL,
            paid_on_time     bigint NOT NULL,
            charges          bigint NOT NULL,
            charges_received bigint NOT NULL,
            recovered        bigint NOT NULL,
            PRIMARY KEY (tenant_id, due_on)
        );
        CREATE TABLE loan_portfolio_pending (
            tenant_id text PRIMARY KEY
        );
        -- every cooperative with a book (rows, or financings whose rows the book backfill is still to write)
        INSERT INTO loan_portfolio_pending SELECT tenant_id FROM loan_book UNION SELECT tenant_id FROM loan_financings;
        -- the sums are of the book's rows: a book truncated has none
        CREATE FUNCTION loan_portfolio_sums_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE loan_portfolio_changes, loan_portfolio_now, loan_portfolio_due_changes, loan_portfolio_due_now,
                     loan_portfolio_pending;
            RETURN NULL;
        END $$;
        CREATE TRIGGER loan_book_truncated AFTER TRUNCATE ON loan_book
            FOR EACH STATEMENT EXECUTE FUNCTION loan_portfolio_sums_truncate();
        """ + request_tables("loan_portfolio_changes", "loan_portfolio_now", "loan_portfolio_due_changes",
                             "loan_portfolio_due_now", "loan_portfolio_pending"),
    ),
]
