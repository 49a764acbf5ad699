"""The reporting service's dashboard: one HTML page and its static assets, shipped inside this package.

The page holds no data: its script reads ``GET /reports/dashboard`` with the API key the reader types in
(kept in the tab's sessionStorage and sent as ``X-API-Key``), so the page itself needs no credential.
"""

from services.reporting.dashboard.routes import router

__all__ = ["router"]
