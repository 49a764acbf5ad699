"""The members service's routers, one per resource (thin: rules in ``domain``, flow in ``handlers``)."""

from __future__ import annotations

from services.members.api import contractor_jobs, members, organisation, sessions, settings

router = members.router
routers = [members.router, organisation.centres, organisation.groups, sessions.router, settings.router,
           contractor_jobs.router]
