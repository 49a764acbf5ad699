"""Member commands and queries: load the stream, decide with the domain, append with the expected version.

Personal data is written to ``member_personal_data`` and the read tables by ``read_model.apply`` in the
same transaction as the events (the ``after=`` hook); any refusal raised there rolls everything back.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import asyncpg

from services.members import read_model
from services.members.api.schemas import (
    ContractorJob,
    ContractorJobList,
    CorrectMemberRequest,
    EligibilityCheck,
    EligibilityResponse,
    ExitMemberRequest,
    FollowUp,
    FollowUpList,
    MemberList,
    MemberResponse,
    MemberSummary,
    MoveGroupRequest,
    OverdueFinancing,
    RegisterMemberRequest,
    SurveyList,
    SurveyRequest,
    SurveyResponse,
    mask,
)
from services.members.domain import eligibility
from services.members.domain import member as domain
from services.members.domain.member import PERSONAL_FIELDS, Member, SurveyAnswers
from services.members.handlers.common import (
    decode_cursor,
    encode_cursor,
    group_info,
    load_member,
    load_settings,
    member_not_found,
    new_id,
    parts,
    today,
)
from services.members.personal_data import SEALED_FIELDS, Vault
from services.members.reactions import financings_of
from shared.contracts.members import HouseholdSurveyed
from shared.application import CommandContext, run_command
from shared.envelope import Envelope, NewEvent
from shared.logging import get_logger
from shared.runtime import CooperativeRuntime
from shared.tenancy import Principal, tenant_of
from shared.web import Conflict, NotFound, Refusal

# logs name members by id and fields by name, never a personal value
log = get_logger(__name__)


def vault(rt: CooperativeRuntime) -> Vault:
    """The service's personal-data vault (MembersSettings.vault: the keys come from settings)."""
    return rt.settings.vault()  # type: ignore[attr-defined, no-any-return]


async def personal_data(pool: Any, v: Vault, tenant: str, member_id: str) -> dict[str, str | None] | None:
    """A member's name, NIK and phone, opened; None once erased (or never written)."""
    row = await pool.fetchrow(
        "SELECT name_sealed, nik_sealed, phone_sealed FROM member_personal_data WHERE tenant_id = $1 AND member_id = $2",
        tenant, uuid.UUID(member_id))
    if row is None:
        return None
    return {f: v.open(tenant, member_id, f, row[f"{f}_sealed"]) for f in SEALED_FIELDS}


def _nik_taken(e: asyncpg.UniqueViolationError) -> bool:
    return getattr(e, "constraint_name", None) == "member_personal_data_nik"


NIK_TAKEN = "a member with this NIK is already registered in this cooperative"


async def _write_personal_data(conn: asyncpg.Connection, sql: str, *args: Any) -> None:
    """A write of ``member_personal_data``; a NIK another member of the cooperative has is a conflict naming
    the field (the unique index on ``nik_lookup`` decides, inside the command's transaction)."""
    try:
        await conn.execute(sql, *args)
    except asyncpg.UniqueViolationError as e:
        if not _nik_taken(e):
            raise
        raise Conflict(NIK_TAKEN, field="nik") from None



def _answers(body: SurveyRequest, survey_id: str) -> SurveyAnswers:
    return SurveyAnswers(survey_id=survey_id, surveyed_on=body.surveyed_on, water=body.water,
                         sanitation=body.sanitation, hygiene=body.hygiene, household_size=body.household_size)


#: fields added to the registration body after its first version
_LATER_FIELDS = ("electricity", "income_band", "baseline_survey")


def registration_fingerprint(body: RegisterMemberRequest) -> dict[str, Any]:
    """What the Idempotency-Key's request hash covers: the whole body, leaving out the later fields when
    they were not sent, so a retry of a request stored by the first version hashes as it did then."""
    return body.model_dump(mode="json", exclude={f for f in _LATER_FIELDS if f not in body.model_fields_set})


async def register_member(rt: CooperativeRuntime, who: Principal, body: RegisterMemberRequest,
                          ctx: CommandContext) -> MemberResponse:
    store, pool = parts(rt)
    tenant = ctx.tenant
    member_id = new_id()
    details = body.model_dump(exclude={*PERSONAL_FIELDS, "baseline_survey"})
    baseline = _answers(body.baseline_survey, new_id()) if body.baseline_survey else None

    async def decide(state: Member) -> list[NewEvent]:
        return domain.register(state, member_id, details, ctx.today, settings=await load_settings(rt, tenant),
                               group=await group_info(pool, tenant, body.group_id), baseline=baseline)

    async def write(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        # the member number and the personal data in one statement: the number's row is inserted first
        # (the outer insert reads it from the CTE), so a taken number is reported before a taken NIK
        v = vault(rt)
        try:
            await _write_personal_data(
                conn,
                """WITH number AS (
                       INSERT INTO member_numbers (tenant_id, member_number, member_id) VALUES ($1, $2, $3)
                       RETURNING tenant_id, member_id)
                   INSERT INTO member_personal_data (tenant_id, member_id, name_sealed, nik_sealed,
                                                     phone_sealed, nik_lookup)
                   SELECT tenant_id, member_id, $4::bytea, $5::bytea, $6::bytea, $7::bytea FROM number""",
                tenant, body.member_number, uuid.UUID(member_id),
                *(v.seal(tenant, member_id, f, getattr(body, f)) for f in SEALED_FIELDS),
                v.nik_lookup(tenant, body.nik),
            )
        except asyncpg.UniqueViolationError as e:
            if getattr(e, "constraint_name", None) != "member_numbers_pkey":
                raise
            raise Conflict(f"member number {body.member_number} is already registered in this cooperative",
                           field="member_number") from None
        await read_model.apply(conn, envelopes)

    done = await run_command(store, ctx, stream_type=domain.STREAM_TYPE, stream_id=member_id, fold=domain.fold,
                             new=True, decide=decide, request=registration_fingerprint(body),
                             response={"member_id": member_id}, after=lambda _: write)
    if not done.recorded:  # a retry with the same Idempotency-Key answers with the member it registered
        return await get_member(rt, who, done.response["member_id"])
    log.info("member_registered", member_id=member_id, events=len(done.events))
    # the new stream is the events just appended, its personal data the body's: nothing to read back
    return await _response(pool, vault(rt), tenant, domain.fold(done.events),
                           personal={f: getattr(body, f) for f in SEALED_FIELDS})


async def get_member(rt: CooperativeRuntime, who: Principal, member_id: str) -> MemberResponse:
    _, pool = parts(rt)
    tenant = tenant_of(who)
    state = await load_member(rt, tenant, member_id)
    return await _response(pool, vault(rt), tenant, state)


async def _response(pool: asyncpg.Pool, v: Vault, tenant: str, state: Member,
                    personal: dict[str, str | None] | None = None) -> MemberResponse:
    """The member's view; ``personal``: its name, NIK and phone when the caller has them (else read)."""
    assert state.member_id and state.member_number and state.sex and state.joined_on
    if personal is None:
        personal = await personal_data(pool, v, tenant, state.member_id) or dict.fromkeys(SEALED_FIELDS)
    group = await group_info(pool, tenant, state.group_id)
    current = state.current_survey
    sanitation_rung, sanitation_source = state.sanitation()
    return MemberResponse(
        member_id=state.member_id, member_number=state.member_number, name=personal["name"], sex=state.sex,
        joined_on=state.joined_on, household_size=state.household_size, group_id=state.group_id,
        centre_id=group.centre_id if group else None, village=state.village, district=state.district,
        area=state.area, b40=state.b40, electricity=state.electricity, income_band=state.income_band,
        programme_consent=state.programme_consent, phone_masked=mask(personal["phone"]),
        nik_masked=mask(personal["nik"]), status="exited" if state.exited else "active",
        exited_on=state.exited_on, exit_reason=state.exit_reason, personal_data_erased=state.personal_data_erased,
        baseline_on=state.baseline_on, last_surveyed_on=current.surveyed_on if current else None,
        water_rung=current.water_rung if current else None,
        sanitation_rung=sanitation_rung, sanitation_rung_source=sanitation_source,  # type: ignore[arg-type]
        surveyed_sanitation_rung=current.sanitation_rung if current else None,
        sanitation_handed_over_on=state.handed_over_on, septic_tank_emptied_on=state.tank_emptied_on,
        follow_up_due=state.follow_up_due and not state.exited,
        hygiene_rung=current.hygiene_rung if current else None, version=state.version,
    )


async def correct_member(rt: CooperativeRuntime, who: Principal, member_id: str, body: CorrectMemberRequest,
                         ctx: CommandContext) -> MemberResponse:
    store, pool = parts(rt)
    tenant = ctx.tenant
    given = body.model_fields_set
    v = vault(rt)
    personal_changed: dict[str, Any] = {}
    changes = {f: getattr(body, f) for f in given if f not in PERSONAL_FIELDS}

    async def decide(state: Member) -> list[NewEvent]:
        if "name" in given and body.name is None:
            raise Refusal("a member's name cannot be cleared", field="name")
        personal_given = {f: getattr(body, f) for f in PERSONAL_FIELDS if f in given}
        row = await personal_data(pool, v, tenant, member_id)
        personal_changed.update({f: x for f, x in personal_given.items() if row is None or row[f] != x})
        return domain.correct_details(state, changes, ctx.today, settings=await load_settings(rt, tenant),
                                      personal_fields_changed=tuple(personal_changed))

    async def write(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        if personal_changed:
            # the fields are the fixed SEALED_FIELDS names, never input; the values go sealed, as parameters
            sealed = {f"{f}_sealed": v.seal(tenant, member_id, f, value) for f, value in personal_changed.items()}
            if "nik" in personal_changed:
                sealed["nik_lookup"] = v.nik_lookup(tenant, personal_changed["nik"])
            assignments = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(sealed))
            await _write_personal_data(
                conn, f"UPDATE member_personal_data SET {assignments} WHERE tenant_id = $1 AND member_id = $2",
                tenant, uuid.UUID(member_id), *sealed.values())
        await read_model.apply(conn, envelopes)

    done = await run_command(store, ctx, stream_type=domain.STREAM_TYPE, stream_id=member_id, fold=domain.fold,
                             decide=decide, missing=member_not_found(member_id), after=lambda _: write)
    if done.recorded:
        log.info("member_corrected", member_id=member_id, fields=sorted([*changes, *personal_changed]))
    return await get_member(rt, who, member_id)


async def move_group(rt: CooperativeRuntime, who: Principal, member_id: str, body: MoveGroupRequest,
                     ctx: CommandContext) -> MemberResponse:
    store, pool = parts(rt)

    async def decide(state: Member) -> list[NewEvent]:
        return domain.move_group(state, body.group_id, body.effective_on or ctx.today, ctx.today,
                                 group=await group_info(pool, ctx.tenant, body.group_id),
                                 settings=await load_settings(rt, ctx.tenant))

    await run_command(store, ctx, stream_type=domain.STREAM_TYPE, stream_id=member_id, fold=domain.fold,
                      decide=decide, missing=member_not_found(member_id), after=lambda _: read_model.apply)
    return await get_member(rt, who, member_id)


async def exit_member(rt: CooperativeRuntime, who: Principal, member_id: str, body: ExitMemberRequest,
                      ctx: CommandContext) -> MemberResponse:
    await run_command(parts(rt)[0], ctx, stream_type=domain.STREAM_TYPE, stream_id=member_id, fold=domain.fold,
                      decide=lambda state: domain.exit_member(state, body.exited_on or ctx.today, body.reason,
                                                              ctx.today),
                      missing=member_not_found(member_id), after=lambda _: read_model.apply)
    return await get_member(rt, who, member_id)


async def erase_personal_data(rt: CooperativeRuntime, who: Principal, member_id: str,
                              ctx: CommandContext) -> MemberResponse:
    tenant = ctx.tenant

    async def write(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        await conn.execute("DELETE FROM member_personal_data WHERE tenant_id = $1 AND member_id = $2",
                           tenant, uuid.UUID(member_id))
        await read_model.apply(conn, envelopes)

    done = await run_command(parts(rt)[0], ctx, stream_type=domain.STREAM_TYPE, stream_id=member_id,
                             fold=domain.fold, decide=lambda state: domain.erase_personal_data(state, ctx.today),
                             missing=member_not_found(member_id), after=lambda _: write)
    if done.recorded:
        log.info("personal_data_erased", member_id=member_id)
    return await get_member(rt, who, member_id)


# -- surveys -------------------------------------------------------------------------------------------------


def _survey(payload: dict[str, Any]) -> SurveyResponse:
    s = HouseholdSurveyed.model_validate(payload)
    return SurveyResponse(survey_id=str(s.survey_id), member_id=str(s.member_id), kind=s.kind,
                          surveyed_on=s.surveyed_on, household_size=s.household_size, water=s.water,
                          sanitation=s.sanitation, hygiene=s.hygiene, water_rung=s.water_rung,
                          sanitation_rung=s.sanitation_rung, hygiene_rung=s.hygiene_rung)


async def record_survey(rt: CooperativeRuntime, who: Principal, member_id: str, body: SurveyRequest,
                        ctx: CommandContext) -> SurveyResponse:
    survey_id = new_id()
    done = await run_command(
        parts(rt)[0], ctx, stream_type=domain.STREAM_TYPE, stream_id=member_id, fold=domain.fold,
        decide=lambda state: domain.record_survey(state, _answers(body, survey_id), ctx.today),
        request={"member_id": member_id, **body.model_dump(mode="json")}, response={"survey_id": survey_id},
        missing=member_not_found(member_id), after=lambda _: read_model.apply)
    return await _listed_survey(rt, who, member_id, done.response["survey_id"])


async def _listed_survey(rt: CooperativeRuntime, who: Principal, member_id: str,
                         survey_id: str) -> SurveyResponse:
    surveys = await list_surveys(rt, who, member_id)
    return next(s for s in surveys.items if s.survey_id == survey_id)


async def list_surveys(rt: CooperativeRuntime, who: Principal, member_id: str) -> SurveyList:
    store, _ = parts(rt)
    tenant = tenant_of(who)
    events = await store.read_stream(tenant, domain.STREAM_TYPE, member_id)
    # security: the stream must be a member's, not merely exist (a session's id answered 200 with no
    # surveys, telling any id of the cooperative's streams apart from an unknown one)
    if not domain.fold(events).exists:
        raise NotFound(f"no member {member_id} in this cooperative")
    return SurveyList(items=[_survey(e.payload) for e in events if e.type == HouseholdSurveyed.event_type])


# -- eligibility ---------------------------------------------------------------------------------------------


async def member_eligibility(rt: CooperativeRuntime, who: Principal, member_id: str,
                             as_of: date | None) -> EligibilityResponse:
    _, pool = parts(rt)
    tenant = tenant_of(who)
    day = as_of or today(rt)
    state = await load_member(rt, tenant, member_id)
    result = eligibility.assess(state, await load_settings(rt, tenant), await financings_of(pool, tenant, member_id),
                                day)
    return EligibilityResponse(
        member_id=member_id, as_of=day, eligible=result.eligible,
        reasons=[EligibilityCheck(rule=c.rule, passed=c.passed, reason=c.reason) for c in result.checks],  # type: ignore[arg-type]
        overdue_financings=[OverdueFinancing(financing_id=o.financing_id, instalment=o.instalment, due_on=o.due_on,
                                             days_overdue=o.days, unpaid=o.unpaid) for o in result.overdue],
    )


# -- segmentation --------------------------------------------------------------------------------------------

#: ``list_members``' ``lead`` filter: the condition on the member's leads (no filter without one)
LEAD_CONDITIONS = {
    "water": "m.lead_water",
    "sanitation": "m.lead_sanitation",
    "any": "(m.lead_water OR m.lead_sanitation)",
    "none": "NOT (m.lead_water OR m.lead_sanitation)",
}
#: its ``status`` filter, as of the day asked ($2); "all": no condition
STATUS_CONDITIONS = {
    "active": "m.joined_on <= $2 AND (m.exited_on IS NULL OR m.exited_on > $2)",
    "exited": "m.exited_on <= $2",
}



async def list_members(rt: CooperativeRuntime, who: Principal, *, member_number: str | None = None,
                       group_id: str | None, centre_id: str | None,
                       b40: bool | None, area: str | None, water_rung: str | None, sanitation_rung: str | None,
                       hygiene_rung: str | None, min_tenure_months: int | None, max_tenure_months: int | None,
                       lead: str | None, status: str, as_of: date | None, limit: int,
                       cursor: str | None) -> MemberList:
    """Members of the cooperative, filtered, in member-number order, one page at a time (keyset paging:
    a page costs the same wherever it is in a million members)."""
    _, pool = parts(rt)
    tenant = tenant_of(who)
    day = as_of or today(rt)
    where = ["m.tenant_id = $1", "$2::date IS NOT NULL"]  # $2, the as_of day, is typed even when unused
    args: list[Any] = [tenant, day]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column, value in (("member_number", member_number), ("group_id", group_id), ("area", area), ("water_rung", water_rung),
                          ("sanitation_rung", sanitation_rung), ("hygiene_rung", hygiene_rung)):
        if value is not None:
            where.append(f"m.{column} = {arg(value)}")
    if centre_id is not None:
        where.append(f"g.centre_id = {arg(centre_id)}")
    if b40 is not None:
        where.append(f"m.b40 = {arg(b40)}")
    # tenure as in the eligibility rule: n whole months are reached on joined_on + n months (clamped)
    if min_tenure_months is not None:
        where.append(f"m.joined_on + make_interval(months => {arg(min_tenure_months)}) <= $2")
    if max_tenure_months is not None:
        where.append(f"m.joined_on + make_interval(months => {arg(max_tenure_months + 1)}) > $2")
    for condition in (LEAD_CONDITIONS.get(lead or ""), STATUS_CONDITIONS.get(status)):
        if condition is not None:
            where.append(condition)
    after = decode_cursor(cursor, str, uuid.UUID)
    if after is not None:
        where.append(f"(m.member_number, m.member_id) > ({arg(after[0])}, {arg(after[1])})")
    rows = await pool.fetch(
        f"""SELECT m.*, g.centre_id, p.name_sealed FROM member_index m
            LEFT JOIN groups g ON g.tenant_id = m.tenant_id AND g.group_id = m.group_id
            LEFT JOIN member_personal_data p ON p.tenant_id = m.tenant_id AND p.member_id = m.member_id
            WHERE {' AND '.join(where)}
            ORDER BY m.member_number, m.member_id LIMIT {arg(limit + 1)}""",
        *args)
    page = rows[:limit]
    v = vault(rt)
    items = [
        MemberSummary(
            member_id=str(r["member_id"]), member_number=r["member_number"],
            name=v.open(tenant, str(r["member_id"]), "name", r["name_sealed"]), sex=r["sex"],
            joined_on=r["joined_on"], tenure_months=eligibility.whole_months(r["joined_on"], day),
            household_size=r["household_size"], group_id=r["group_id"], centre_id=r["centre_id"],
            village=r["village"], district=r["district"], area=r["area"], b40=r["b40"],
            status="exited" if r["exited_on"] is not None and r["exited_on"] <= day else "active",
            water_rung=r["water_rung"], sanitation_rung=r["sanitation_rung"],
            sanitation_rung_source=r["sanitation_rung_source"], hygiene_rung=r["hygiene_rung"],
            sessions_attended=r["sessions_attended"], lead_water=r["lead_water"],
            lead_sanitation=r["lead_sanitation"])
        for r in page
    ]
    last = page[-1] if page and len(rows) > limit else None
    return MemberList(items=items, next_cursor=encode_cursor(last["member_number"], last["member_id"]) if last else None)


async def find_by_nik(rt: CooperativeRuntime, who: Principal, nik: str) -> MemberResponse:
    """The cooperative's member with this NIK, found by its keyed hash (the NIK is stored only sealed)."""
    _, pool = parts(rt)
    tenant = tenant_of(who)
    member_id = await pool.fetchval(
        "SELECT member_id FROM member_personal_data WHERE tenant_id = $1 AND nik_lookup = $2",
        tenant, vault(rt).nik_lookup(tenant, nik))
    if member_id is None:
        raise NotFound("no member with this NIK in this cooperative")
    return await get_member(rt, who, str(member_id))


async def contractor_jobs(rt: CooperativeRuntime, who: Principal, *, job_id: str | None, limit: int,
                          cursor: str | None) -> ContractorJobList:
    """The open jobs assigned to the caller's contractor in its cooperative, with each household's name,
    village and district (``services/members/contractor_jobs.py``): nothing of any other job."""
    from services.members import contractor_jobs as jobs

    _, pool = parts(rt)
    tenant = tenant_of(who)
    contractor = jobs.contractor_of(who)
    after = decode_cursor(cursor, date.fromisoformat, uuid.UUID)
    rows = await jobs.open_jobs(pool, tenant, contractor, job_id=uuid.UUID(job_id) if job_id else None,
                                after=(after[0], after[1]) if after else None, limit=limit)
    page = rows[:limit]
    v = vault(rt)
    items = [ContractorJob(job_id=str(r["job_id"]), member_id=str(r["member_id"]), kind=r["kind"],
                           assigned_on=r["assigned_on"],
                           name=v.open(tenant, str(r["member_id"]), "name", r["name_sealed"]),
                           village=r["village"], district=r["district"]) for r in page]
    last = page[-1] if page and len(rows) > limit else None
    return ContractorJobList(items=items,
                             next_cursor=encode_cursor(last["assigned_on"], last["job_id"]) if last else None)


async def follow_ups(rt: CooperativeRuntime, who: Principal, *, limit: int,
                     cursor: str | None) -> FollowUpList:
    """Active members whose household was handed a toilet or septic tank and has not been surveyed on or
    since that day, the longest waiting first (keyset paging on the handover day; a partial index holds
    just these rows). A survey dated on or after the handover takes the member off the list."""
    _, pool = parts(rt)
    tenant = tenant_of(who)
    where = ["m.tenant_id = $1", "m.handed_over_on IS NOT NULL",
             "(m.last_surveyed_on IS NULL OR m.last_surveyed_on < m.handed_over_on)",
             "(m.exited_on IS NULL OR m.exited_on > $2)"]
    args: list[Any] = [tenant, today(rt)]
    after = decode_cursor(cursor, date.fromisoformat, uuid.UUID)
    if after is not None:
        args += after
        where.append("(m.handed_over_on, m.member_id) > ($3, $4)")
    args.append(limit + 1)
    rows = await pool.fetch(
        f"""SELECT m.member_id, m.member_number, m.group_id, m.village, m.handed_over_on, m.last_surveyed_on,
                   m.sanitation_rung, m.sanitation_rung_source, p.name_sealed
            FROM member_index m
            LEFT JOIN member_personal_data p ON p.tenant_id = m.tenant_id AND p.member_id = m.member_id
            WHERE {' AND '.join(where)}
            ORDER BY m.handed_over_on, m.member_id LIMIT ${len(args)}""", *args)
    page = rows[:limit]
    v = vault(rt)
    items = [FollowUp(member_id=str(r["member_id"]), member_number=r["member_number"],
                      name=v.open(tenant, str(r["member_id"]), "name", r["name_sealed"]),
                      group_id=r["group_id"], village=r["village"], handed_over_on=r["handed_over_on"],
                      last_surveyed_on=r["last_surveyed_on"], sanitation_rung=r["sanitation_rung"],
                      sanitation_rung_source=r["sanitation_rung_source"]) for r in page]
    last = page[-1] if page and len(rows) > limit else None
    return FollowUpList(items=items,
                        next_cursor=encode_cursor(last["handed_over_on"], last["member_id"]) if last else None)
