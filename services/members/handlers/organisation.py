"""Centres and groups: commands on their streams, queries on their read tables."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.members import read_model
from services.members.api import schemas
from services.members.domain import organisation as org
from services.members.handlers.common import (
    decode_cursor,
    encode_cursor,
    parts,
)
from shared.application import CommandContext, run_command
from shared.envelope import NewEvent
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, tenant_of
from shared.web import NotFound


async def _centre(rt: CooperativeRuntime, tenant: str, centre_id: str | None) -> org.Centre | None:
    if centre_id is None:
        return None
    store, _ = parts(rt)
    return org.fold_centre(await store.read_stream(tenant, org.CENTRE_STREAM, org.centre_stream_id(centre_id)))


async def open_centre(rt: CooperativeRuntime, who: Principal, body: schemas.OpenCentreRequest,
                      ctx: CommandContext) -> schemas.CentreResponse:
    await run_command(parts(rt)[0], ctx, stream_type=org.CENTRE_STREAM, stream_id=org.centre_stream_id(body.centre_id),
                      fold=org.fold_centre, after=lambda _: read_model.apply,
                      decide=lambda state: org.open_centre(state, body.centre_id, body.model_dump(),
                                                           body.opened_on or ctx.today, ctx.today))
    return await get_centre(rt, who, body.centre_id)


async def change_centre(rt: CooperativeRuntime, who: Principal, centre_id: str, body: schemas.ChangeCentreRequest,
                        ctx: CommandContext) -> schemas.CentreResponse:
    await run_command(parts(rt)[0], ctx, stream_type=org.CENTRE_STREAM,
                      stream_id=org.centre_stream_id(centre_id), fold=org.fold_centre, what="centre",
                      missing=f"no centre {centre_id} in this cooperative", after=lambda _: read_model.apply,
                      decide=lambda state: org.change_centre(state, {f: getattr(body, f) for f in body.model_fields_set}))
    return await get_centre(rt, who, centre_id)


def _centre_response(r: Any) -> schemas.CentreResponse:
    return schemas.CentreResponse(centre_id=r["centre_id"], name=r["name"], branch=r["branch"], village=r["village"],
                          district=r["district"], opened_on=r["opened_on"], version=r["version"])


async def get_centre(rt: CooperativeRuntime, who: Principal, centre_id: str) -> schemas.CentreResponse:
    _, pool = parts(rt)
    row = await pool.fetchrow("SELECT * FROM centres WHERE tenant_id = $1 AND centre_id = $2", tenant_of(who), centre_id)
    if row is None:
        raise NotFound(f"no centre {centre_id} in this cooperative")
    return _centre_response(row)


async def list_centres(rt: CooperativeRuntime, who: Principal, *, branch: str | None, limit: int,
                       cursor: str | None) -> schemas.CentreList:
    _, pool = parts(rt)
    after = decode_cursor(cursor, str)
    rows = await pool.fetch(
        """SELECT * FROM centres WHERE tenant_id = $1 AND ($2::text IS NULL OR branch = $2)
             AND ($3::text IS NULL OR centre_id > $3) ORDER BY centre_id LIMIT $4""",
        tenant_of(who), branch, after[0] if after else None, limit + 1)
    page = rows[:limit]
    return schemas.CentreList(items=[_centre_response(r) for r in page],
                      next_cursor=encode_cursor(page[-1]["centre_id"]) if len(rows) > limit else None)


# -- groups --------------------------------------------------------------------------------------------------


async def _group(rt: CooperativeRuntime, tenant: str, group_id: str) -> org.Group:
    store, _ = parts(rt)
    return org.fold_group(await store.read_stream(tenant, org.GROUP_STREAM, org.group_stream_id(group_id)))


async def form_group(rt: CooperativeRuntime, who: Principal, body: schemas.FormGroupRequest,
                     ctx: CommandContext) -> schemas.GroupResponse:

    async def decide(state: org.Group) -> list[NewEvent]:
        return org.form_group(state, body.group_id, body.model_dump(), body.formed_on or ctx.today, ctx.today,
                              centre=await _centre(rt, ctx.tenant, body.centre_id))

    await run_command(parts(rt)[0], ctx, stream_type=org.GROUP_STREAM, stream_id=org.group_stream_id(body.group_id),
                      fold=org.fold_group, decide=decide, after=lambda _: read_model.apply)
    return await get_group(rt, who, body.group_id)


async def change_group(rt: CooperativeRuntime, who: Principal, group_id: str, body: schemas.ChangeGroupRequest,
                       ctx: CommandContext) -> schemas.GroupResponse:
    changes = {f: getattr(body, f) for f in body.model_fields_set}

    async def decide(state: org.Group) -> list[NewEvent]:
        return org.change_group(state, changes, centre=await _centre(rt, ctx.tenant, changes.get("centre_id")))

    await run_command(parts(rt)[0], ctx, stream_type=org.GROUP_STREAM, stream_id=org.group_stream_id(group_id),
                      fold=org.fold_group, decide=decide, what="group", missing=f"no group {group_id} in this cooperative",
                      after=lambda _: read_model.apply)
    return await get_group(rt, who, group_id)


async def close_group(rt: CooperativeRuntime, who: Principal, group_id: str, body: schemas.CloseGroupRequest,
                      ctx: CommandContext) -> schemas.GroupResponse:
    store, pool = parts(rt)

    async def decide(state: org.Group) -> list[NewEvent]:
        return org.close_group(state, body.closed_on or ctx.today, ctx.today,
                               active_members=await _active_members(pool, ctx.tenant, group_id))

    await run_command(store, ctx, stream_type=org.GROUP_STREAM, stream_id=org.group_stream_id(group_id),
                      fold=org.fold_group, decide=decide, what="group", missing=f"no group {group_id} in this cooperative",
                      after=lambda _: read_model.apply)
    return await get_group(rt, who, group_id)


async def _active_members(conn: asyncpg.Pool | asyncpg.Connection, tenant: str, group_id: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM member_index WHERE tenant_id = $1 AND group_id = $2 AND exited_on IS NULL",
        tenant, group_id))


_GROUP_SELECT = """
    SELECT g.*, (SELECT count(*) FROM member_index m
                 WHERE m.tenant_id = g.tenant_id AND m.group_id = g.group_id AND m.exited_on IS NULL) AS active
    FROM groups g"""


def _group_response(r: Any) -> schemas.GroupResponse:
    return schemas.GroupResponse(group_id=r["group_id"], name=r["name"], centre_id=r["centre_id"],
                         meeting_day=r["meeting_day"], formed_on=r["formed_on"], closed_on=r["closed_on"],
                         status="closed" if r["closed_on"] else "open", active_members=r["active"],
                         version=r["version"])


async def get_group(rt: CooperativeRuntime, who: Principal, group_id: str) -> schemas.GroupResponse:
    _, pool = parts(rt)
    row = await pool.fetchrow(f"{_GROUP_SELECT} WHERE g.tenant_id = $1 AND g.group_id = $2", tenant_of(who), group_id)
    if row is None:
        raise NotFound(f"no group {group_id} in this cooperative")
    return _group_response(row)


async def list_groups(rt: CooperativeRuntime, who: Principal, *, centre_id: str | None, status: str | None,
                      limit: int, cursor: str | None) -> schemas.GroupList:
    _, pool = parts(rt)
    after = decode_cursor(cursor, str)
    rows = await pool.fetch(
        f"""{_GROUP_SELECT} WHERE g.tenant_id = $1 AND ($2::text IS NULL OR g.centre_id = $2)
              AND ($3::text IS NULL OR ($3 = 'open') = (g.closed_on IS NULL))
              AND ($4::text IS NULL OR g.group_id > $4) ORDER BY g.group_id LIMIT $5""",
        tenant_of(who), centre_id, status, after[0] if after else None, limit + 1)
    page = rows[:limit]
    return schemas.GroupList(items=[_group_response(r) for r in page],
                     next_cursor=encode_cursor(page[-1]["group_id"]) if len(rows) > limit else None)
