"""The base of washfin's own ASGI middleware (imported by ``shared.web`` and ``shared.metrics``)."""

from __future__ import annotations

from typing import Any


class HttpMiddleware:
    """Plain ASGI middleware that acts on HTTP requests (``handle``) and passes anything else through.
    Plain ASGI rather than ``@app.middleware``: Starlette's BaseHTTPMiddleware runs the app in a task of
    its own and streams the response through a queue, a cost every request paid once per middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError


class ServiceMiddleware(HttpMiddleware):
    """An ``HttpMiddleware`` that names the service it serves (in its logs and metric labels):
    ``app.add_middleware(Subclass, service=...)``."""

    def __init__(self, app: Any, service: str) -> None:
        super().__init__(app)
        self.service = service
