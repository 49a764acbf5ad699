"""Every route of every service, classified: who may call it, what kind of thing it is, a valid body.

The routes themselves are enumerated from each FastAPI app (``routes_of``), never listed by hand; this
catalog is the declared expectation they are checked against. ``test_every_route_is_classified`` fails
for a route that is missing here (a new route must be added to the security matrix consciously) and for
an entry whose route is gone.

Kinds:
- RESOURCE: the path names one resource of a cooperative; another cooperative's key gets 404 and
  changes nothing (the cross-tenant matrix).
- FILTERED: the path parameter only filters the caller's own cooperative's data (e.g. a member's
  financings in the loans service, which answers an empty list for a member it does not know): another
  cooperative's key gets none of the owner's data.
- COLLECTION: no resource in the path; the cooperative comes from the key (lists, creations, settings).
- PLATFORM: operator routes (programmes and their consenting cooperatives): no cooperative's key
  passes them, and they show programme membership, never business figures.
- PUBLIC: infrastructure and static assets, served without a key and holding no cooperative's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from fastapi import FastAPI

from services.members.api.schemas import SURVEY_EXAMPLE
from deploy.local.demos.sanitation import GOOD_TANK
from shared.tenancy import Role

FO, MGR, INSP, CONTR, PROG, OPER = (Role.FIELD_OFFICER, Role.MANAGER, Role.INSPECTOR, Role.CONTRACTOR,
                                    Role.PROGRAMME_OFFICER, Role.OPERATOR)
OFFICER = frozenset({FO, MGR})
MANAGER = frozenset({MGR})
INSPECTOR = frozenset({INSP})
READER = frozenset({FO, MGR})  # a cooperative's staff: its own reports
ANY_READER = frozenset({FO, MGR, PROG})  # and programme officers: their consenting cooperatives
OPERATOR = frozenset({OPER})
PUBLIC_ROLES: frozenset[Role] = frozenset()
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Kind(Enum):
    RESOURCE = "resource"
    FILTERED = "filtered"
    COLLECTION = "collection"
    PLATFORM = "platform"
    PUBLIC = "public"


Ids = dict[str, Any]
Body = Callable[[Ids], Any]


@dataclass(frozen=True)
class Spec:
    roles: frozenset[Role]
    kind: Kind
    #: a valid body, built from the caller's own cooperative's ids (None: the route takes no body)
    body: Body | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- valid bodies ---------------------------------------------------------------------------------------

def _member(ids: Ids) -> dict[str, Any]:
    return {"member_number": unique("SEC"), "name": "Security Probe", "sex": "female", "joined_on": "2020-01-06",
            "household_size": 4, "village": "Desa Uji", "area": "rural", "programme_consent": False}


def _session(ids: Ids) -> dict[str, Any]:
    return {"kind": "promotion", "held_on": "2025-02-11", "topics": ["water"], "facilitator_id": "FO-SEC",
            "attendee_member_ids": [ids["members"][0]], "other_attendees": 1}


def _product(ids: Ids) -> dict[str, Any]:
    return {"product_id": unique("sec-product"), "name": "Security product", "purpose": "septic_tank",
            "contract_type": "murabahah", "frequency": "monthly", "min_amount": 1_000_000,
            "max_amount": 10_000_000, "tenors": [{"instalments": 12, "margin_bp": 1200}],
            "tranche_percents": [100], "funds": ["own_funds"]}


def _book_row(ids: Ids) -> dict[str, Any]:
    return {"loan_ref": unique("SEC-LOAN"), "member_id": ids["members"][0], "product_id": ids["products"][0],
            "cost": 3_000_000, "margin": 300_000, "signed_on": "2024-01-15",
            "schedule": [{"due_on": "2024-02-15", "amount": 3_300_000}]}


LOANS_SETTINGS = {"sharia": True, "substandard_over_days": 90, "doubtful_over_days": 180, "loss_over_days": 270}
MEMBERS_SETTINGS = {"b40_method": "electricity", "b40_electricity": ["none", "450", "900_subsidised"],
                    "b40_income_bands": ["below_1m", "1m_to_2m", "2m_to_3m"], "min_tenure_months": 12,
                    "max_days_overdue": 30, "require_registered_groups": False}


def _none(ids: Ids) -> dict[str, Any]:
    return {}


# -- the catalog ----------------------------------------------------------------------------------------

RES, FIL, COL, PLAT, PUB = Kind.RESOURCE, Kind.FILTERED, Kind.COLLECTION, Kind.PLATFORM, Kind.PUBLIC

_INFRA = {
    ("GET", "/healthz"): Spec(PUBLIC_ROLES, PUB),
    ("GET", "/readyz"): Spec(PUBLIC_ROLES, PUB),
    ("GET", "/metrics"): Spec(PUBLIC_ROLES, PUB),
    ("GET", "/openapi.json"): Spec(PUBLIC_ROLES, PUB),
    ("GET", "/docs"): Spec(PUBLIC_ROLES, PUB),
    ("GET", "/docs/oauth2-redirect"): Spec(PUBLIC_ROLES, PUB),
    ("GET", "/redoc"): Spec(PUBLIC_ROLES, PUB),
}

CATALOG: dict[str, dict[tuple[str, str], Spec]] = {
    "members": {
        **_INFRA,
        ("POST", "/members"): Spec(OFFICER, COL, _member),
        ("GET", "/members"): Spec(OFFICER, COL),
        # a NIK of the caller's own cooperative (the demo's first member): another cooperative gets 404
        ("POST", "/members/find-by-nik"): Spec(OFFICER, COL, lambda i: {"nik": "3603124501800001"}),
        ("GET", "/members/follow-ups"): Spec(OFFICER, COL),
        # a contractor's own open jobs with the household's name: contractor keys only, their own jobs only
        ("GET", "/contractor-jobs"): Spec(frozenset({CONTR}), COL),
        ("GET", "/members/{member_id}"): Spec(OFFICER, RES),
        ("PATCH", "/members/{member_id}"): Spec(OFFICER, RES, lambda i: {"village": "Desa Serangan"}),
        ("PUT", "/members/{member_id}/group"): Spec(OFFICER, RES, lambda i: {"group_id": i["groups"][0]}),
        ("POST", "/members/{member_id}/exit"): Spec(OFFICER, RES, lambda i: {"reason": "moved_away"}),
        ("DELETE", "/members/{member_id}/personal-data"): Spec(MANAGER, RES),
        ("POST", "/members/{member_id}/surveys"): Spec(OFFICER, RES, lambda i: dict(SURVEY_EXAMPLE)),
        ("GET", "/members/{member_id}/surveys"): Spec(OFFICER, RES),
        ("GET", "/members/{member_id}/eligibility"): Spec(OFFICER, RES),
        ("POST", "/centres"): Spec(MANAGER, COL, lambda i: {"centre_id": unique("sec-centre"), "name": "Pusat Uji"}),
        ("GET", "/centres"): Spec(OFFICER, COL),
        ("GET", "/centres/{centre_id}"): Spec(OFFICER, RES),
        ("PATCH", "/centres/{centre_id}"): Spec(MANAGER, RES, lambda i: {"name": "Pusat Dibajak"}),
        ("POST", "/groups"): Spec(MANAGER, COL, lambda i: {"group_id": unique("sec-group"), "name": "Majelis Uji"}),
        ("GET", "/groups"): Spec(OFFICER, COL),
        ("GET", "/groups/{group_id}"): Spec(OFFICER, RES),
        ("PATCH", "/groups/{group_id}"): Spec(MANAGER, RES, lambda i: {"name": "Majelis Dibajak"}),
        ("POST", "/groups/{group_id}/close"): Spec(MANAGER, RES, _none),
        ("POST", "/sessions"): Spec(OFFICER, COL, _session),
        ("GET", "/sessions"): Spec(OFFICER, COL),
        ("GET", "/sessions/{session_id}"): Spec(OFFICER, RES),
        ("POST", "/sessions/{session_id}/attendance"): Spec(OFFICER, RES, lambda i: {"member_ids": [i["members"][-1]]}),
        ("POST", "/sessions/{session_id}/leads"): Spec(OFFICER, RES,
                                                       lambda i: {"member_id": i["members"][-1], "product": "water"}),
        ("GET", "/settings"): Spec(OFFICER, COL),
        ("PUT", "/settings"): Spec(MANAGER, COL, lambda i: dict(MEMBERS_SETTINGS)),
    },
    "loans": {
        **_INFRA,
        ("POST", "/products"): Spec(MANAGER, COL, _product),
        ("GET", "/products"): Spec(OFFICER, COL),
        ("GET", "/products/{product_id}"): Spec(OFFICER, RES),
        ("GET", "/settings"): Spec(OFFICER, COL),
        ("PUT", "/settings"): Spec(MANAGER, COL, lambda i: dict(LOANS_SETTINGS)),
        ("GET", "/financings"): Spec(OFFICER, COL),
        ("POST", "/financings"): Spec(OFFICER, COL, lambda i: {
            "member_id": i["members"][0], "product_id": i["products"][0], "amount": 3_000_000, "instalments": 12}),
        ("GET", "/financings/{financing_id}"): Spec(OFFICER, RES),
        ("GET", "/financings/{financing_id}/settlement-quote"): Spec(OFFICER, RES),
        ("POST", "/financings/{financing_id}/approve"): Spec(MANAGER, RES, _none),
        ("POST", "/financings/{financing_id}/reject"): Spec(MANAGER, RES, lambda i: {"reason": "repayment_capacity"}),
        ("POST", "/financings/{financing_id}/work-order"): Spec(MANAGER, RES, lambda i: {
            "work_order_ref": unique("WO"), "payee_type": "contractor", "payee_id": "cv-sec", "cost": 3_000_000}),
        ("POST", "/financings/{financing_id}/contract"): Spec(MANAGER, RES, _none),
        ("POST", "/financings/{financing_id}/disbursements"): Spec(MANAGER, RES, _none),
        ("POST", "/financings/{financing_id}/repayments"): Spec(OFFICER, RES, lambda i: {
            "receipt_number": unique("KW-SEC"), "amount": 10_000}),
        ("POST", "/financings/{financing_id}/early-settlement"): Spec(OFFICER, RES, lambda i: {
            "receipt_number": unique("LUNAS-SEC"), "amount": 1}),
        ("POST", "/financings/{financing_id}/reschedule"): Spec(MANAGER, RES, lambda i: {
            "instalments": 12, "reason": "disaster"}),
        ("POST", "/financings/{financing_id}/discount"): Spec(MANAGER, RES, lambda i: {
            "amount": 1_000, "reason": "goodwill"}),
        ("POST", "/financings/{financing_id}/write-off"): Spec(MANAGER, RES, lambda i: {"reason": "uncollectable"}),
        ("POST", "/financings/{financing_id}/hardship"): Spec(OFFICER, RES, lambda i: {"note": "security probe"}),
        ("POST", "/financings/{financing_id}/hardship/clear"): Spec(OFFICER, RES, _none),
        ("POST", "/financings/{financing_id}/late-charges"): Spec(OFFICER, RES, lambda i: {
            "instalment_number": 1, "note": "security probe"}),
        ("POST", "/financings/{financing_id}/late-charges/{instalment_number}/approve"): Spec(MANAGER, RES, _none),
        ("POST", "/financings/{financing_id}/late-charges/{instalment_number}/decline"): Spec(MANAGER, RES, _none),
        ("POST", "/financings/{financing_id}/late-charges/{instalment_number}/payments"): Spec(OFFICER, RES, lambda i: {
            "receipt_number": unique("TZ-SEC"), "amount": 1_000}),
        ("GET", "/members/{member_id}/financings"): Spec(OFFICER, FIL, notes=(
            "loans answers an empty page for a member it does not know in the caller's cooperative")),
        ("GET", "/portfolio"): Spec(MANAGER, COL),
        ("POST", "/imports"): Spec(MANAGER, COL, lambda i: [_book_row(i)]),
    },
    "sanitation": {
        **_INFRA,
        ("GET", "/settings"): Spec(frozenset({FO, MGR, INSP}), COL),
        ("PUT", "/settings"): Spec(MANAGER, COL, _none),
        ("POST", "/contractors"): Spec(OFFICER, COL, lambda i: {"name": "CV Uji Keamanan"}),
        ("GET", "/contractors"): Spec(OFFICER, COL),
        ("POST", "/contractors/certification-expiries"): Spec(OFFICER, COL, _none),
        ("GET", "/contractors/{contractor_id}"): Spec(frozenset({FO, MGR, CONTR}), RES),
        ("GET", "/contractors/{contractor_id}/quality"): Spec(frozenset({FO, MGR, CONTR}), RES),
        ("POST", "/contractors/{contractor_id}/training"): Spec(OFFICER, RES, lambda i: {"trained_on": "2024-03-01"}),
        ("POST", "/contractors/{contractor_id}/certification"): Spec(OFFICER, RES, lambda i: {
            "certificate_number": unique("SNI-SEC"), "certified_on": "2024-03-01", "valid_until": "2030-12-31"}),
        ("POST", "/contractors/{contractor_id}/deactivation"): Spec(OFFICER, RES, lambda i: {"reason": "probe"}),
        ("POST", "/contractors/{contractor_id}/reactivation"): Spec(OFFICER, RES, notes="takes no body"),
        ("POST", "/jobs"): Spec(OFFICER, COL, lambda i: {"member_id": i["members"][0], "kind": "septic_tank"}),
        ("GET", "/jobs"): Spec(frozenset({FO, MGR, INSP, CONTR}), COL),
        ("GET", "/jobs/{job_id}"): Spec(frozenset({FO, MGR, INSP, CONTR}), RES),
        ("PUT", "/jobs/{job_id}/village"): Spec(OFFICER, RES, lambda i: {"village": "Desa Dibajak"}),
        ("POST", "/jobs/{job_id}/assignment"): Spec(OFFICER, RES, lambda i: {"contractor_id": i["keyed_contractor"]}),
        ("POST", "/jobs/{job_id}/start"): Spec(frozenset({FO, MGR, CONTR}), RES, _none),
        ("POST", "/jobs/{job_id}/inspections"): Spec(INSPECTOR, RES, lambda i: {"septic_tank": dict(GOOD_TANK)}),
        ("GET", "/jobs/{job_id}/inspections"): Spec(frozenset({FO, MGR, INSP, CONTR}), RES),
        ("POST", "/jobs/{job_id}/rework"): Spec(frozenset({FO, MGR, CONTR}), RES, _none),
        ("POST", "/jobs/{job_id}/completion"): Spec(frozenset({FO, MGR, CONTR}), RES, _none),
        ("POST", "/jobs/{job_id}/desludging/requests"): Spec(OFFICER, RES, _none),
        ("POST", "/jobs/{job_id}/desludging/visits"): Spec(OFFICER, RES, lambda i: {"planned_on": "2025-01-06"}),
        ("POST", "/desludging/visits/{visit_id}/outcome"): Spec(OFFICER, RES, lambda i: {"outcome": "household_absent"}),
        ("POST", "/iplt-receipts"): Spec(OFFICER, COL, lambda i: {
            "visit_id": i["open_visit"][0], "iplt_id": "iplt-sec", "manifest_number": unique("MAN"),
            "volume_received_m3": "1.0"}),
        ("GET", "/desludging/due"): Spec(OFFICER, COL),
        ("GET", "/desludging/overdue"): Spec(OFFICER, COL),
        ("GET", "/desludging/requests"): Spec(OFFICER, COL),
        ("GET", "/desludging/due-summary"): Spec(OFFICER, COL, extra={
            "query": {"from_month": "2024-01", "to_month": "2026-12"}}),
    },
    "reporting": {
        **_INFRA,
        # README: managers read the cooperative's reports; the reporting routes admit field officers too
        ("GET", "/reports/summary"): Spec(READER, COL),
        ("GET", "/reports/dashboard"): Spec(ANY_READER, COL),
        ("GET", "/reports/cooperative"): Spec(READER, COL),
        ("GET", "/reports/cooperatives/{tenant_id}"): Spec(ANY_READER, RES, notes="the resource is a cooperative"),
        ("GET", "/reports/programme"): Spec(frozenset({PROG}), COL),
        ("GET", "/reports/tables"): Spec(ANY_READER, COL),
        ("GET", "/reports/tables/{table}"): Spec(ANY_READER, COL, notes="a report's name, scoped by the key"),
        ("GET", "/reports/exports/report.xlsx"): Spec(ANY_READER, COL, extra={"export": True}),
        ("GET", "/reports/exports/indicators.csv"): Spec(ANY_READER, COL, extra={"export": True}),
        ("GET", "/reports/exports/tables/{table}"): Spec(ANY_READER, COL, extra={"export": True}),
        ("GET", "/reports/targets"): Spec(READER, COL),
        ("PUT", "/reports/targets/{indicator}"): Spec(MANAGER, COL, lambda i: {"target": 5000, "baseline": 10},
                                                      notes="sets the caller's own cooperative's target"),
        ("DELETE", "/reports/targets/{indicator}"): Spec(MANAGER, RES, notes="A's target, by indicator"),
        ("GET", "/programmes"): Spec(OPERATOR, PLAT),
        ("GET", "/programmes/{programme_id}"): Spec(OPERATOR, PLAT),
        ("PUT", "/programmes/{programme_id}"): Spec(OPERATOR, PLAT, lambda i: {"name": "Programme probe"}),
        ("PUT", "/programmes/{programme_id}/cooperatives/{tenant_id}"): Spec(OPERATOR, PLAT, lambda i: {
            "consented_on": "2025-01-06"}),
        ("DELETE", "/programmes/{programme_id}/cooperatives/{tenant_id}"): Spec(OPERATOR, PLAT),
        ("GET", "/dashboard"): Spec(PUBLIC_ROLES, PUB, notes="the page holds no data; its script calls the API"),
        ("GET", "/dashboard/"): Spec(PUBLIC_ROLES, PUB),
        ("GET", "/dashboard/static/{name}"): Spec(PUBLIC_ROLES, PUB),
    },
}


# -- enumerating the apps' routes -----------------------------------------------------------------------

def routes_of(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """Every (method, path, route) an app serves, HEAD aside (Starlette adds it to every GET), walking
    included routers whatever FastAPI version flattens or nests them."""
    try:
        from fastapi.routing import iter_route_contexts  # nested routers (FastAPI >= 0.16x)
        contexts: Any = iter_route_contexts(app.routes)
    except ImportError:  # flat app.routes in earlier versions
        contexts = app.routes
    for route in contexts:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                yield method, route.path, route


def classified(service: str, app: FastAPI) -> Iterator[tuple[str, str, Spec]]:
    """``routes_of(app)`` that the catalog classifies, each with its entry (an unclassified route is
    ``test_every_route_is_classified``'s failure, so the other tests pass over it)."""
    for method, template, _ in routes_of(app):
        spec = CATALOG[service].get((method, template))
        if spec is not None:
            yield method, template, spec


def path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def resource_values(service: str, ids: Ids) -> dict[str, str]:
    """A value for every path parameter of a service: resources of the cooperative ``ids`` describes,
    chosen in a state where the commands would succeed (an active financing, an assigned job, an open
    visit), so a missing tenant check could not hide behind a state refusal."""
    if service == "members":
        return {"member_id": ids["members"][0], "centre_id": ids["centres"][0], "group_id": ids["groups"][0],
                "session_id": ids["sessions"][0]}
    if service == "loans":
        return {"product_id": ids["products"][0], "financing_id": ids["financings"]["active"],
                "instalment_number": "1", "member_id": ids["members"][0]}
    if service == "sanitation":
        return {"contractor_id": ids["keyed_contractor"], "job_id": ids["jobs"]["assigned"],
                "visit_id": ids["open_visit"][0], "visit_job": ids["open_visit"][1]}
    return {"name": "dashboard.js", "tenant_id": ids.get("tenant_id", ""), "table": "reach",
            "indicator": ids.get("indicator", "members"), "programme_id": "sec-programme"}


#: how the owner sees each kind of resource: snapshots taken before and after an attack must be equal
OBSERVERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("members", "member_id"): ("/members/{member_id}", "/members/{member_id}/surveys",
                               "/members/{member_id}/eligibility"),
    ("members", "centre_id"): ("/centres/{centre_id}",),
    ("members", "group_id"): ("/groups/{group_id}",),
    ("members", "session_id"): ("/sessions/{session_id}",),
    ("loans", "product_id"): ("/products/{product_id}",),
    ("loans", "financing_id"): ("/financings/{financing_id}",),
    ("loans", "member_id"): ("/members/{member_id}/financings",),
    ("loans", "instalment_number"): (),
    ("sanitation", "contractor_id"): ("/contractors/{contractor_id}", "/contractors/{contractor_id}/quality"),
    ("sanitation", "job_id"): ("/jobs/{job_id}", "/jobs/{job_id}/inspections"),
    ("sanitation", "visit_id"): ("/jobs/{visit_job}",),
    ("reporting", "tenant_id"): ("/reports/cooperative", "/reports/dashboard"),
    ("reporting", "indicator"): ("/reports/targets",),
    ("reporting", "programme_id"): ("/programmes/{programme_id}",),
}


def fill(path: str, values: dict[str, str]) -> str:
    return path.format(**values)


def caller_role(spec: Spec) -> Role:
    """The role an attacker uses on a route: one the route admits, so a refusal proves isolation, not a
    missing role."""
    for role in (MGR, FO, INSP, CONTR, PROG, OPER):
        if role in spec.roles:
            return role
    raise AssertionError("a route with no role has no caller")
