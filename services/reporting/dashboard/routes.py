"""``GET /dashboard`` (the page) and ``GET /dashboard/static/{name}`` (its scripts and styles).

Assets are served from this package's ``static/`` folder by an allow-list of file names, so nothing else
on disk can be asked for, and the page's Content-Security-Policy lets it load scripts, styles and data
from this origin only: no CDN, no inline script, no build step.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from shared.web import NotFound

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
#: scripts, styles and API calls from this origin only; SVG is built through the DOM, so no inline code
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(tags=["dashboard"])


@lru_cache(maxsize=1)
def _page() -> str:
    """The page with asset URLs versioned by their content, so a new release is never served stale."""
    digest = hashlib.sha256()
    for name in sorted(ASSETS):
        digest.update((STATIC / name).read_bytes())
    return (STATIC / "index.html").read_text(encoding="utf-8").replace("{{version}}", digest.hexdigest()[:12])


# GET and HEAD as two operations (one route with both methods would give both one operationId)
@router.get("/dashboard", response_class=HTMLResponse, operation_id="dashboard_page",
            summary="The dashboard page (asks for an API key)")
@router.head("/dashboard", response_class=HTMLResponse, operation_id="dashboard_page_head",
             summary="The dashboard page's headers")
async def dashboard_page() -> HTMLResponse:
    return HTMLResponse(_page(), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/dashboard/", include_in_schema=False)
async def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=308)


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no dashboard asset named {name!r}")
    # the URL carries a content version (?v=), so browsers may keep the file; revalidation stays cheap (ETag)
    return FileResponse(STATIC / name, media_type=media_type,
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"})
