"""``reporting.catalogue``: each cooperative's loan products as the loans service publishes them
(``loans.ProductPublished``), so reports and exports can name a product beside its id.

One row per product: its code, its name, purpose, contract type, frequency and the day it was introduced.
A product is never amended nor retired in loans (its stream holds its definition and nothing else), so a
row is written once; a re-delivered event writes the same values. A product whose event has not arrived
yet has no row: readers fall back to its id (``queries.product_names``).

The family reads the loans topic, but writes (and records as ``seen``) only the product events
(``projects``): the financing events on that topic are the financing family's.
"""

from __future__ import annotations

import asyncpg

from services.reporting.projections.base import SEEN, Family, Names, Table
from shared.contracts import Contract
from shared.contracts.loans import ProductPublished
from shared.envelope import Envelope


class CatalogueProjection(Family):
    family = "catalogue"
    version = 1
    prefix = "rc"
    sources = ("loans",)
    projects = (ProductPublished,)
    tables = (
        Table("product", """
            CREATE TABLE {t} (
                tenant_id     text NOT NULL,
                product_id    text NOT NULL,
                name          text NOT NULL,
                purpose       text NOT NULL,
                contract_type text NOT NULL,
                frequency     text NOT NULL,
                defined_on    date NOT NULL,
                PRIMARY KEY (tenant_id, product_id)
            );"""),
        SEEN,
    )

    async def apply(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        if isinstance(event, ProductPublished):
            await conn.execute(
                f"""INSERT INTO {t['product']} (tenant_id, product_id, name, purpose, contract_type, frequency,
                                                defined_on)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (tenant_id, product_id) DO UPDATE SET name = EXCLUDED.name,
                        purpose = EXCLUDED.purpose, contract_type = EXCLUDED.contract_type,
                        frequency = EXCLUDED.frequency, defined_on = EXCLUDED.defined_on""",
                envelope.tenant_id, event.product_id, event.product_name, event.purpose, event.contract_type,
                event.frequency, event.defined_on,
            )
