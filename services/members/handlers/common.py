"""What the handlers share: the business day, loading state, and page cursors (a command's context comes
from its route: ``shared.web.CommandRequest.context``)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg
import orjson

from services.members.domain import member as member_domain
from services.members.domain import settings as settings_domain
from services.members.domain.member import GroupInfo, Member
from services.members.domain.settings import CooperativeSettings
from shared.eventstore.postgres import PostgresEventStore
from shared.runtime import CooperativeRuntime, ServiceRuntime
from shared.web import NotFound, Refusal

def today(rt: ServiceRuntime | CooperativeRuntime) -> date:
    """The business day in the cooperatives' time zone (``<SVC>_BUSINESS_TIMEZONE``, default Asia/Jakarta)."""
    return rt.settings.business_today()


def parts(rt: CooperativeRuntime) -> tuple[PostgresEventStore, asyncpg.Pool]:
    return rt.store, rt.pool


def member_not_found(member_id: str) -> str:
    return f"no member {member_id} in this cooperative"


async def load_member(rt: CooperativeRuntime, tenant: str, member_id: str) -> Member:
    store, _ = parts(rt)
    state = member_domain.fold(await store.read_stream(tenant, member_domain.STREAM_TYPE, member_id))
    if not state.exists:
        raise NotFound(member_not_found(member_id))
    return state


async def load_settings(rt: CooperativeRuntime, tenant: str) -> CooperativeSettings:
    store, _ = parts(rt)
    return settings_domain.fold(await store.read_stream(tenant, settings_domain.STREAM_TYPE, settings_domain.STREAM_ID))


async def group_info(conn: asyncpg.Pool | asyncpg.Connection, tenant: str,
                     group_id: str | None) -> GroupInfo | None:
    """The registered group ``group_id`` (from the groups read table), or None if it is not registered."""
    if group_id is None:
        return None
    row = await conn.fetchrow("SELECT centre_id, closed_on FROM groups WHERE tenant_id = $1 AND group_id = $2",
                              tenant, group_id)
    return None if row is None else GroupInfo(group_id, row["centre_id"], row["closed_on"] is not None)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([str(v) for v in values])).decode().rstrip("=")


def decode_cursor(cursor: str | None, *kinds: Callable[[str], Any]) -> list[Any] | None:
    """The values of a cursor given out by ``encode_cursor``, each parsed by its kind (str, date.fromisoformat,
    uuid.UUID ...); a cursor that is not one of ours is refused (422) rather than reaching the database."""
    if cursor is None:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(values, list) and len(values) == len(kinds) and all(isinstance(v, str) for v in values)):
            raise ValueError
        return [kind(v) for kind, v in zip(kinds, values, strict=True)]
    except ValueError:
        raise Refusal("not a cursor this API gave out", field="cursor") from None


def new_id() -> str:
    return str(uuid.uuid4())
