"""The command line every service shares: ``python -m services.<name> [serve|migrate]``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import ValidationError

from shared.logging import configure_logging
from shared.metrics import install_http_metrics, metrics_router
from shared.openapi import install_api_docs, install_openapi
from shared.runtime import MissingSource, ServiceRuntime, freeze_heap
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing
from shared.web import BodyLimit, health_router, install_error_handlers, install_request_context


def create_service_app(
    service: str,
    settings: ServiceSettings,
    build_runtime: Callable[[Any], ServiceRuntime],
    routers: list[APIRouter],
    description: str = "",
) -> FastAPI:
    """An app whose lifespan owns the service's runtime (pools, relay, consumers): nothing at import."""
    configure_logging(service, settings.log_level, settings.log_json)
    configure_tracing(service, settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        await runtime.start()
        if settings.gc_freeze:  # what the whole start built, no later collection walks (freeze_heap)
            freeze_heap()
        app.state.runtime = runtime
        try:
            yield
        finally:
            if settings.gc_freeze:  # collectable again: an app stopped in a process that goes on (tests)
                gc.unfreeze()
            await runtime.stop()

    # the documentation pages are install_api_docs' (assets served offline, at the same URLs as FastAPI's)
    app = FastAPI(title=f"washfin {service}", version="0.1.0", lifespan=lifespan, description=description,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json" if settings.api_docs else None)
    install_openapi(app)
    if settings.api_docs:
        install_api_docs(app)
    install_error_handlers(app)
    install_request_context(app, service)
    install_http_metrics(app, service)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.include_router(health_router())
    if settings.metrics:
        app.include_router(metrics_router())
    for r in routers:
        app.include_router(r)
    return app


def main(
    service: str,
    settings_cls: type[ServiceSettings],
    create_app: Callable[[Any], Any],
    build_runtime: Callable[[Any], ServiceRuntime],
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"],
                        help="serve: API with its relay and consumers (default); migrate: schema only")
    args = parser.parse_args(argv)
    try:
        settings = settings_cls()
    except ValidationError as e:
        first = e.errors()[0]
        name = f"{settings_cls.model_config.get('env_prefix', '')}{'.'.join(map(str, first['loc']))}".upper()
        print(f"error: setting {name}: {first['msg']}", file=sys.stderr)
        sys.exit(2)
    if args.command == "migrate":
        configure_logging(service, settings.log_level, settings.log_json)

        async def _migrate() -> None:
            rt = build_runtime(settings)
            await rt.start(background=False)
            await rt.stop()

        asyncio.run(_migrate())
        print(f"{service}: database migrated")
        return
    try:  # a consumer's source not set: one line naming the setting, before anything opens
        build_runtime(settings).check_sources()
    except MissingSource as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, timeout_graceful_shutdown=10)
