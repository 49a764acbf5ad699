"""The members service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.members.api.routes import routers
from services.members.contractor_jobs import ContractorJobs
from services.members.sanitation_reactions import SanitationWorks
from services.members.reactions import LoanStanding
from services.members.schema import migrations
from services.members.settings import MembersSettings
from shared.runtime import ServiceRuntime
from shared.serve import create_service_app

SERVICE = "members"
#: this service's settings class (what the command line builds, ``deploy/cli.py``)
SETTINGS = MembersSettings


def build_runtime(settings: MembersSettings) -> ServiceRuntime:
    # LoanStanding consumes the loans service's events (eligibility: overdue financings); SanitationWorks
    # the sanitation service's (the sanitation ladder follows construction and emptying), and ContractorJobs
    # its assignments (a contractor's key reads its own open jobs' households). The schema's last
    # step seals personal data an older version kept in the clear: it needs the keys, and a members service
    # without them does not start (settings.vault() says which setting is missing)
    return ServiceRuntime(SERVICE, settings, migrations=migrations(settings.vault()),
                          consumers=lambda rt: [LoanStanding(), SanitationWorks(rt), ContractorJobs()])


def create_app(settings: MembersSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or MembersSettings(), build_runtime, routers,
        "Cooperative members and households, WASH surveys on the JMP ladders, promotion and triggering "
        "sessions, segmentation and eligibility for WASH financing. Personal numbers are masked in every "
        "response and never leave this service.",
    )
