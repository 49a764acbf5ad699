"""What the handlers share: the business day, loading state, idempotency, If-Match, and page cursors."""

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
from shared.application import earlier_response as shared_earlier_response
from shared.eventstore import Idempotency
from shared.eventstore.postgres import PostgresEventStore
from shared.runtime import ServiceRuntime
from shared.tenancy import Principal
from shared.web import Conflict, NotFound, Refusal, expected_version, request_hash

def today(rt: ServiceRuntime) -> date:
    """The business day in the cooperatives' time zone (``<SVC>_BUSINESS_TIMEZONE``, default Asia/Jakarta)."""
    return rt.settings.business_today()


def tenant_of(who: Principal) -> str:
    assert who.tenant_id is not None  # require_roles admits only principals with a tenant
    return who.tenant_id


def parts(rt: ServiceRuntime) -> tuple[PostgresEventStore, asyncpg.Pool]:
    return rt.store, rt.pool


def check_if_match(if_match: str | None, version: int) -> int:
    """The version to append after: the client's If-Match (a version number, quoted or not) when given,
    refused at once if the member has moved on already; else the version just loaded."""
    expected = expected_version(if_match)
    if expected is None:
        return version
    if expected != version:
        raise Conflict(f"the record is at version {version}, not {expected}: someone else changed it first; "
                       "reload and try again", field="If-Match")
    return expected


def idempotency(key: str | None, body: Any, response: dict[str, Any]) -> Idempotency | None:
    if not key:
        return None
    return Idempotency(key, request_hash(body), response)


async def earlier_response(rt: ServiceRuntime, tenant: str, key: str | None, body: Any) -> dict[str, Any] | None:
    """The response of an earlier request with this Idempotency-Key, looked up before deciding: a retry
    gets the first result even if the state has moved on since (the member exited, the rule changed).
    The key used for a different request is refused (422)."""
    if not key:
        return None
    store, _ = parts(rt)
    return await shared_earlier_response(store, tenant, key, request_hash(body))


async def load_member(rt: ServiceRuntime, tenant: str, member_id: str) -> Member:
    store, _ = parts(rt)
    state = member_domain.fold(await store.read_stream(tenant, member_id))
    if not state.exists:
        raise NotFound(f"no member {member_id} in this cooperative")
    return state


async def load_settings(rt: ServiceRuntime, tenant: str) -> CooperativeSettings:
    store, _ = parts(rt)
    return settings_domain.fold(await store.read_stream(tenant, settings_domain.STREAM_ID))


async def group_info(conn: asyncpg.Pool | asyncpg.Connection, tenant: str, group_id: str | None) -> GroupInfo | None:
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
