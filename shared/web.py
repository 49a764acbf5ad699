"""What every service's HTTP API shares: credentials, clear refusals, health, request context."""

from __future__ import annotations

import functools
import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
import orjson
import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from opentelemetry.trace import SpanKind
from starlette.datastructures import Headers, MutableHeaders

from shared.application import (
    CommandContext,
    Conflict,
    NotAllowed,
    NotFound,
    RuleViolation,
    TooLarge,
    TryLater,
    Unauthorized,
)
from shared import timing
from shared.asgi import HttpMiddleware, ServiceMiddleware
from shared.db import PoolBusy
from shared.envelope import Metadata
from shared.eventstore import ConcurrencyError, IdempotencyConflict
from shared.metrics import AUTH_FAILURES
from shared.tenancy import UNKNOWN_KEY, Authenticator, Principal, Role, parse_key
from shared.throttle import FailureThrottle
from shared.tracing import trace_id, traced

if TYPE_CHECKING:
    from shared.runtime import CooperativeRuntime

log = structlog.get_logger("washfin.auth")


#: the HTTP names of the application's refusals (``shared/application.py``), kept for the routes
Refusal = RuleViolation
Forbidden = NotAllowed


class TooManyFailures(RuleViolation):
    """Too many refused keys from this address, or at this key id, within the window (``shared.throttle``)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many requests with a refused API key; try again in {retry_after_s} s",
                         field="X-API-Key")
        self.retry_after_s = retry_after_s


#: each kind of refusal as HTTP, in one place: the most specific class of an exception decides
HTTP_REFUSALS: dict[type[RuleViolation], tuple[int, str]] = {
    Unauthorized: (401, "unauthorized"),
    NotAllowed: (403, "forbidden"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    TooLarge: (413, "too_large"),
    TryLater: (503, "unavailable"),
    TooManyFailures: (429, "too_many_failed_attempts"),
    RuleViolation: (422, "rule_violation"),
}


def http_refusal(exc: RuleViolation) -> tuple[int, str]:
    """The status and error code of a refusal: those of the nearest class in ``HTTP_REFUSALS`` (the code
    replaced by the exception's own ``code`` when its class sets one)."""
    status, code = next(HTTP_REFUSALS[c] for c in type(exc).__mro__ if c in HTTP_REFUSALS)
    return status, exc.code or code


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e.get("loc", ())), "reason": e.get("msg", "invalid")} for e in exc.errors()]
        return JSONResponse({"error": "invalid_request", "errors": errors}, status_code=422)

    @app.exception_handler(RuleViolation)
    async def _refused(_: Request, exc: RuleViolation) -> JSONResponse:
        status, code = http_refusal(exc)
        body: dict[str, Any] = {"error": code, "reason": exc.message}
        if exc.field:
            body["field"] = exc.field
        headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
        if isinstance(exc, TooManyFailures):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ConcurrencyError)
    async def _race(_: Request, exc: ConcurrencyError) -> JSONResponse:
        return JSONResponse(
            {"error": "conflict", "reason": f"{exc} - someone else changed it first; reload and try again"},
            status_code=409,
        )

    async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
        # text PostgreSQL cannot store (the NUL character) reached the database: the client's error,
        # and the append's transaction rolled back, so nothing was written
        return JSONResponse({"error": "invalid_text", "reason": "text may not contain the NUL character (\\u0000)"},
                            status_code=422)

    for error in (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        app.add_exception_handler(error, _unstorable)

    @app.exception_handler(PoolBusy)
    async def _busy(_: Request, exc: PoolBusy) -> JSONResponse:
        # every connection is in use: nothing was done; the client may try again shortly
        return JSONResponse({"error": "busy", "reason": f"the service is busy ({exc}); try again shortly"},
                            status_code=503, headers={"Retry-After": str(max(1, round(exc.waited_s)))})

    @app.exception_handler(asyncpg.QueryCanceledError)
    async def _too_long(_: Request, exc: asyncpg.QueryCanceledError) -> JSONResponse:
        # the statement ran past the request bound (statement_timeout): its transaction rolled back
        return JSONResponse({"error": "busy", "reason": "the request took too long and was cancelled; try again "
                             "shortly"}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(IdempotencyConflict)
    async def _reused_key(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse({"error": "idempotency_key_reused", "field": "Idempotency-Key", "reason": str(exc)},
                            status_code=422)


class BodyLimit(HttpMiddleware):
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413, before they are read whole
    (by the declared Content-Length, or by counting a streamed body)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            # a request with neither has no body (RFC 9112, 6.3): nothing to count, nothing to wrap
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        exceeded = False

        async def counting_receive() -> Any:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True  # hand the app an ended, empty body; its answer is replaced below
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        refused = False

        async def guarded_send(message: Any) -> None:
            nonlocal refused
            if not exceeded:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Any) -> None:
        body = orjson.dumps({"error": "payload_too_large",
                             "reason": f"request body over {self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def install_request_context(app: FastAPI, service: str) -> None:
    """Bind a correlation id (from ``X-Correlation-ID`` or new) and the W3C trace context (from
    ``traceparent`` or new) to each request and its logs; both travel on the events it appends."""
    app.add_middleware(RequestContext, service=service)


class RequestContext(ServiceMiddleware):
    """The ASGI middleware of ``install_request_context``."""

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        headers = Headers(scope=scope)
        try:
            correlation_id = str(uuid.UUID(headers.get("x-correlation-id", "")))
        except ValueError:
            correlation_id = str(uuid.uuid4())
        method = scope["method"]
        with traced(f"{method} {scope['path']}", headers.get("traceparent"), SpanKind.SERVER,
                    {"http.method": method, "washfin.service": self.service}) as (span, traceparent):
            state = scope.setdefault("state", {})
            state["correlation_id"], state["traceparent"] = correlation_id, traceparent
            status = 500
            parts, started = timing.begin(), time.perf_counter()
            watch = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
            watch = getattr(watch, "loop_watch", None)
            late0 = watch.late_s() if watch is not None else 0.0

            async def send_with_context(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    out = MutableHeaders(scope=message)
                    out["X-Correlation-ID"] = correlation_id
                    out["traceparent"] = traceparent
                    # responses carry names and figures of a cooperative: no shared or browser cache keeps
                    # them (routes that serve static assets set their own Cache-Control), and no browser
                    # second-guesses their content type
                    out.setdefault("Cache-Control", "no-store")
                    out["X-Content-Type-Options"] = "nosniff"
                    if watch is not None:
                        parts["loop"] = watch.late_s() - late0
                    out["Server-Timing"] = timing.header(parts, time.perf_counter() - started)
                await send(message)

            structlog.contextvars.bind_contextvars(correlation_id=correlation_id, trace_id=trace_id(traceparent))
            try:
                await self.app(scope, receive, send_with_context)
            finally:
                structlog.contextvars.unbind_contextvars("correlation_id", "trace_id", "tenant_id")
                route = scope.get("route")
                if route is not None:
                    span.update_name(f"{method} {getattr(route, 'path', '')}")
                span.set_attribute("http.status_code", status)


_BEARER = re.compile(r"^Bearer\s+(\S+)$", re.IGNORECASE)


#: the API key header, as a security scheme: the OpenAPI documents declare it (Swagger UI's Authorize button)
#: on every operation that depends on ``current_principal``, instead of an optional header parameter on each;
#: ``auto_error=False`` leaves a missing key to ``current_principal``, which refuses it in the platform's shape
API_KEY = APIKeyHeader(name="X-API-Key", scheme_name="ApiKey", auto_error=False,
                       description="The API key issued to your cooperative (or to an operator or a programme "
                                   "officer). Also accepted as `Authorization: Bearer <key>`.")


async def current_principal(
    request: Request,
    x_api_key: Annotated[str | None, Security(API_KEY)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    raw = x_api_key
    if raw is None and authorization:
        m = _BEARER.match(authorization)
        raw = m.group(1) if m else None
    if not raw:
        raise Unauthorized("missing API key: send it in the X-API-Key header")
    runtime = request.app.state.runtime
    throttle = _throttle(request)
    address, key_id = (request.client.host if request.client else None), parse_key(raw)
    service = getattr(runtime, "service", "?")
    wait = throttle.retry_after(address, key_id)
    if wait is not None:
        AUTH_FAILURES.labels(service, "throttled").inc()
        log.warning("auth_throttled", service=service, client=address, key_id_prefix=_prefix(key_id),
                    retry_after_s=wait)
        raise TooManyFailures(wait)
    auth: Authenticator = runtime.authenticator
    principal = await auth.authenticate(raw)
    if principal is None:
        throttle.failed(address, key_id)
        AUTH_FAILURES.labels(service, "refused" if key_id else "malformed").inc()
        # the right secret of a key the operator stopped (suspended cooperative, staff member left) is told so
        why = await auth.refusal(raw) if key_id else UNKNOWN_KEY
        log.warning("auth_refused", service=service, client=address, key_id_prefix=_prefix(key_id),
                    reason=("malformed key" if not key_id else
                            "unknown, expired, revoked or wrong secret" if why == UNKNOWN_KEY else why))
        raise Unauthorized(why)
    if principal.tenant_id:
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return principal


def _prefix(key_id: str | None) -> str | None:
    """What a log may say of a key id: enough to tell whose key it is among a cooperative's few, never
    enough to stand for it (the id is not the secret, but logs travel further than the database)."""
    return key_id[:6] if key_id else None


def _throttle(request: Request) -> FailureThrottle:
    throttle = getattr(request.app.state, "auth_throttle", None)
    if throttle is None:
        s = request.app.state.runtime.settings
        throttle = request.app.state.auth_throttle = FailureThrottle(
            per_address=s.auth_failures_per_address, per_key=s.auth_failures_per_key,
            window_s=s.auth_failure_window_s)
    return throttle


PrincipalDep = Annotated[Principal, Depends(current_principal)]

#: every list is paged: one cap for the whole platform
MAX_PAGE = 200
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE})")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip")]


@functools.cache
def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only ``roles``, and only with a tenant. The same roles give the same
    dependency, so FastAPI runs it once per request however many of a route's dependencies name it."""

    async def _check(principal: PrincipalDep, request: Request) -> Principal:
        if principal.role not in roles or principal.tenant_id is None:
            raise Forbidden(f"this needs one of the roles: {', '.join(r.value for r in roles)}")
        request.state.cooperative = principal.tenant_id
        return principal

    return _check


#: the roles most commands admit, shared by the services' routes
OFFICER_ROLES = (Role.FIELD_OFFICER, Role.MANAGER)
Officer = Annotated[Principal, Depends(require_roles(*OFFICER_ROLES))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]

#: the headers a command takes, with one rule each for every service
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Retry-safe: the same key returns the first result")]
IF_MATCH_MAX = 40
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=IF_MATCH_MAX,
                                       description="The version you read: the change applies only if it is "
                                                   "still the current one (else 409)")]


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match names (a number, quoted or weak: ``7``, ``"7"``, ``W/"7"``), None without
    one; anything else is refused (422, field If-Match). The one parsing rule of every service."""
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise Refusal("If-Match takes the version number you read, e.g. 7", field="If-Match") from None


def cooperative_runtime(request: Request) -> CooperativeRuntime:
    """The service runtime as the calling cooperative sees it (``ServiceRuntime.for_tenant``): every
    statement of the request runs behind row-level security for the key's cooperative. Only for routes
    behind ``require_roles``; elsewhere it refuses to serve rather than fall back to the owner's view."""
    tenant = getattr(request.state, "cooperative", None)
    if tenant is None:
        raise RuntimeError("a business route without require_roles: no cooperative to scope the request to")
    return request.app.state.runtime.for_tenant(tenant)


def request_metadata(request: Request, principal: Principal) -> Metadata:
    """What every event appended by this request carries: who, and which request and trace caused it."""
    return Metadata(correlation_id=uuid.UUID(request.state.correlation_id), actor=principal.actor,
                    traceparent=request.state.traceparent)


@dataclass(frozen=True)
class CommandRequest:
    """What a command route works with, from one dependency (``command_request``): who calls (admitted by
    role, with a cooperative), the service as that cooperative sees it (``cooperative_runtime``), what the
    events it appends carry (``request_metadata``), and the command headers the route takes
    (Idempotency-Key, If-Match; None when the route takes none or the client sent none).

    ``context()`` is the ``CommandContext`` a handler gives ``run_command``: the If-Match is read there, by
    the one rule (``expected_version``), so a malformed one is refused (422, field If-Match) when the command
    runs, after the request's own validation, as before the dependency existed."""

    principal: Principal
    runtime: CooperativeRuntime
    meta: Metadata
    idempotency_key: str | None = None
    if_match: str | None = None

    @property
    def tenant(self) -> str:
        return self.runtime.tenant_id

    @property
    def actor(self) -> str:
        """Who the events record as their actor (the staff member behind the key, else the key)."""
        return self.principal.actor

    def today(self) -> date:
        """The business day, in the cooperatives' time zone (``ServiceSettings.business_today``)."""
        return self.runtime.settings.business_today()  # type: ignore[no-any-return]

    def context(self) -> CommandContext:
        return CommandContext(self.tenant, self.meta, self.today(), self.idempotency_key,
                              expected_version(self.if_match))


CommandDependency = Callable[..., Awaitable["CommandRequest"]]


@functools.cache
def command_request(*roles: Role, idempotency_key: bool = False,
                    if_match: bool = False) -> CommandDependency:
    """The dependency giving a command route its ``CommandRequest``, admitting only ``roles`` (with a
    tenant, as ``require_roles``). ``idempotency_key`` / ``if_match``: the route takes that header (declared
    once, ``IdempotencyKey`` / ``IfMatch``, so each appears in the OpenAPI document with its rule); a route
    without one neither reads it nor documents it. The same arguments give the same dependency."""
    check = require_roles(*roles)

    async def command(request: Request, principal: Principal, idempotency_key: str | None = None,
                      if_match: str | None = None) -> CommandRequest:
        return CommandRequest(principal, cooperative_runtime(request), request_metadata(request, principal),
                              idempotency_key, if_match)

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("request", keyword, annotation=Request),
              inspect.Parameter("principal", keyword, annotation=Annotated[Principal, Depends(check)])]
    if idempotency_key:
        params.append(inspect.Parameter("idempotency_key", keyword, default=None, annotation=IdempotencyKey))
    if if_match:
        params.append(inspect.Parameter("if_match", keyword, default=None, annotation=IfMatch))
    signature = inspect.Signature(params, return_annotation=CommandRequest)
    command.__signature__ = signature  # type: ignore[attr-defined]  # what FastAPI reads
    return command


def command_type(*roles: Role, idempotency_key: bool = False, if_match: bool = False) -> Any:
    """``Annotated[CommandRequest, Depends(command_request(...))]``: a route parameter of that type is its
    command request."""
    return Annotated[CommandRequest, Depends(command_request(*roles, idempotency_key=idempotency_key,
                                                             if_match=if_match))]


#: the command requests of the shared roles: a route's parameter ``cmd: OfficerCommand`` (no command headers),
#: ``KeyedOfficerCommand`` (takes Idempotency-Key), ``VersionedOfficerCommand`` (If-Match), or
#: ``KeyedVersionedOfficerCommand`` (both); the same for managers
OfficerCommand = command_type(*OFFICER_ROLES)
KeyedOfficerCommand = command_type(*OFFICER_ROLES, idempotency_key=True)
VersionedOfficerCommand = command_type(*OFFICER_ROLES, if_match=True)
KeyedVersionedOfficerCommand = command_type(*OFFICER_ROLES, idempotency_key=True, if_match=True)
ManagerCommand = command_type(Role.MANAGER)
KeyedManagerCommand = command_type(Role.MANAGER, idempotency_key=True)
VersionedManagerCommand = command_type(Role.MANAGER, if_match=True)
KeyedVersionedManagerCommand = command_type(Role.MANAGER, idempotency_key=True, if_match=True)


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process can do its work: no background worker died, no connection "
                                     "pool is stuck, every consumer is advancing")
    async def healthz(request: Request) -> JSONResponse:
        runtime = getattr(request.app.state, "runtime", None)
        problems = runtime.liveness() if runtime is not None else {}
        if problems:  # a liveness failure: the orchestrator restarts the process
            status = "dead workers" if "dead" in problems else "stuck"
            return JSONResponse({"status": status, **problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", summary="Database reachable and migrated; background workers running")
    async def readyz(request: Request) -> JSONResponse:
        checks = await request.app.state.runtime.readiness()
        ok = all(c["ok"] for c in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    return router
