"""Versioned projections that can be rebuilt beside the live ones (blue/green).

A *family* (members, financing, sanitation, catalogue) is the code of a projection at one version: the tables it
keeps and how each event changes them. A *build* is one materialisation of a family: its own consumer
name (so its own progress, from the start of the sources) and its own tables, named
``<prefix>_<table>_<suffix>``: the first build of version 1 is ``reporting.financing.v1`` with tables
``rf_financing_v1`` ...; a rebuild is ``reporting.financing.v1.r2`` with tables ``rf_financing_v1_r2`` ...
Reads go to the family's *live* build (see ``services.reporting.builds``); a new build is filled beside it
and becomes live once it has caught up.

Every table is shared by all cooperatives: its first column and the start of its primary key is
``tenant_id``, and it is behind row-level security (``shared.rls.protect``). Handlers are deterministic:
they write only what the event says (business dates, ids, the envelope's own times), never the clock or
a sequence, so a replay gives the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import asyncpg

from shared.contracts import Contract
from shared.db import Migration, copy_staged
from shared.envelope import Envelope
from shared.rls import protect

SUFFIX = re.compile(r"^v[0-9]+(_r[0-9]+)?$")
#: the columns of the first primary key a table's DDL declares (a table's, or else a column's)
PRIMARY_KEY = re.compile(r"PRIMARY KEY \(([^)]*)\)|(?:^|[(,])\s*(\w+)\s[^,\n(]*PRIMARY KEY", re.M)


@dataclass(frozen=True)
class Table:
    """One read table of a family. ``ddl`` uses ``{t}`` for the table's physical name and ``{s}`` for
    the build suffix (index names); ``key`` orders its rows for the rebuild hash: the primary key the DDL
    declares, unless given."""

    name: str
    ddl: str
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            found = PRIMARY_KEY.search(self.ddl)
            if found is None:
                raise ValueError(f"table {self.name!r} declares no primary key to order its rows by")
            object.__setattr__(self, "key", found.group(1) or found.group(2))


class Names(dict[str, str]):
    """Logical table name -> physical name of one build (``names["financing"] == "rf_financing_v1"``).
    ``defer_months``: the build's month-end sums are written later, at once (``Sums.add``, ``Sums.fill``)."""

    defer_months: bool = False

    def deferred(self) -> Names:
        out = Names(self)
        out.defer_months = True
        return out


class Family:
    """A projection's code at one version. Subclasses set the class attributes and ``apply``."""

    family: ClassVar[str]
    version: ClassVar[int]
    prefix: ClassVar[str]
    sources: ClassVar[Sequence[str]]
    tables: ClassVar[Sequence[Table]]
    #: the family keeps month-end sums (``projections.sums``) that a rebuild writes once, at the end
    defers_months: ClassVar[bool] = False
    #: the event types the family projects, when it reads a topic for only some of its events (the catalogue
    #: reads the loans topic for its products): the others are passed by, with no ``seen`` row; None: all.
    #: A build declares them to the kernel (``Build.event_types``), which passes the others by before it
    #: decodes them or records their streams (``shared.consumer.apply_events``, and the sources)
    projects: ClassVar[tuple[type[Contract], ...] | None] = None

    @classmethod
    def default_build(cls) -> str:
        return f"reporting.{cls.family}.v{cls.version}"

    @classmethod
    def default_suffix(cls) -> str:
        return f"v{cls.version}"

    @classmethod
    def names(cls, suffix: str) -> Names:
        if not SUFFIX.match(suffix):
            raise ValueError(f"bad build suffix {suffix!r}")
        return Names({t.name: f"{cls.prefix}_{t.name}_{suffix}" for t in cls.tables})

    @classmethod
    def migrations(cls, suffix: str) -> list[Migration]:
        """The build's tables, then row-level security on each (applied once per build)."""
        names = cls.names(suffix)
        ddl = "\n".join(t.ddl.format(t=names[t.name], s=suffix) for t in cls.tables)
        rls = "\n".join(protect(names[t.name]) for t in cls.tables)
        return [Migration("0001_tables", ddl), Migration("0002_row_level_security", rls)]

    async def apply(self, conn: asyncpg.Connection, t: Names, envelope: Envelope, event: Contract) -> None:
        raise NotImplementedError

    async def fill_months(self, conn: asyncpg.Connection, t: Names) -> None:
        """Write the month-end sums of a build whose consumers deferred them (``builds.finish_months``)."""

    async def apply_batch(self, conn: asyncpg.Connection, t: Names,
                          items: Sequence[tuple[Envelope, Contract]]) -> None:
        """``apply`` of each item in turn; a family overrides it with fewer statements, writing exactly
        the same rows (``tests/services/reporting/test_batch_apply.py``)."""
        for envelope, event in items:
            await self.apply(conn, t, envelope, event)


class Build:
    """One build of a family, shaped as the kernel's ``Projection`` (name, sources, migrations, handle)."""

    def __init__(self, family: Family, name: str, suffix: str, *, registered: bool = False) -> None:
        self.family = family
        self.name = name
        self.suffix = suffix
        self.sources: Sequence[str] = tuple(family.sources)
        self.names = family.names(suffix)
        #: listed in ``projection_builds`` (``BuildRow.materialise``): it may defer its month-end sums
        self.registered = registered and family.defers_months
        self._deferred = self.names.deferred()
        self.migrations: Sequence[Migration] = family.migrations(suffix)
        self._seen = self.names["seen"]
        #: the kernel's ``Projection.event_types``: the contract type names of ``family.projects``
        self.event_types: frozenset[str] | None = (
            None if family.projects is None else frozenset(k.event_type for k in family.projects))

    @property
    def tables(self) -> list[str]:
        return list(self.names.values())

    async def _names(self, conn: asyncpg.Connection) -> Names:
        """The build's tables, deferring its month-end sums while the registry says so (read under a share
        lock: ``builds.finish_months`` writes them between two transactions of the consumer, never in one)."""
        if self.registered:
            if await conn.fetchval(
                    "SELECT months_deferred FROM projection_builds WHERE build = $1 FOR SHARE", self.name):
                return self._deferred
            self.registered = False  # written: a build never defers them again
        return self.names

    def _projects(self, event: Contract) -> bool:
        """The family projects ``event``. The kernel hands a build only the types it declares
        (``event_types``), so on the consumer's path this is always true; it stays as the guard of the paths
        that call ``handle`` with whatever they hold (a dead letter's replay, ``replay_dead_letters``; the
        unit tests)."""
        kinds = self.family.projects
        return kinds is None or isinstance(event, kinds)

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: Contract) -> None:
        if not self._projects(event):
            return
        await self.family.apply(conn, await self._names(conn), envelope, event)
        # one row per event (an insert, never an update of a hot row): the cooperative's last event time
        await conn.execute(
            f"""INSERT INTO {self._seen} (tenant_id, event_id, recorded_at) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING""",
            envelope.tenant_id, envelope.event_id, envelope.recorded_at,
        )

    async def handle_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, Contract]]) -> None:
        """``handle`` of every item, in order, with the family's batch writes and the ``seen`` rows in one
        statement (the consumer's fast path, ``shared.consumer.apply_events``)."""
        if self.family.projects is not None:
            items = [(e, ev) for e, ev in items if self._projects(ev)]
            if not items:
                return
        await self.family.apply_batch(conn, await self._names(conn), items)
        await copy_staged(
            conn, f"""INSERT INTO {self._seen} (tenant_id, event_id, recorded_at) SELECT * FROM {{stage}}
                      ON CONFLICT DO NOTHING""",
            (("tenant_id", "text"), ("event_id", "uuid"), ("recorded_at", "timestamptz")),
            [(e.tenant_id, e.event_id, e.recorded_at) for e, _ in items])

    async def row_hash(self, conn: asyncpg.Connection) -> dict[str, str]:
        """md5 of every table's rows in key order: equal hashes, equal rows (the rebuild check)."""
        out = {}
        for t in self.family.tables:
            out[t.name] = await conn.fetchval(
                f"SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY {t.key})), '') FROM {self.names[t.name]} x")
        return out


SEEN = Table(
    "seen",
    """CREATE TABLE {t} (
           tenant_id   text NOT NULL,
           event_id    uuid NOT NULL,
           recorded_at timestamptz NOT NULL,
           PRIMARY KEY (tenant_id, event_id)
       );
       CREATE INDEX {t}_recent ON {t} (tenant_id, recorded_at);""",
)
