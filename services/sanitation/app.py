"""The sanitation service's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from services.sanitation.api.routes import router
from services.sanitation.handlers import contractors
from services.sanitation.member_directory import MemberDirectory
from services.sanitation.reactions import TrancheOrdersJob
from services.sanitation.schema import MIGRATIONS
from services.sanitation.settings import SanitationSettings
from shared.runtime import PeriodicJob, ServiceRuntime
from shared.serve import create_service_app

SERVICE = "sanitation"
#: this service's settings class (what the command line builds, ``deploy/cli.py``)
SETTINGS = SanitationSettings


def build_runtime(settings: SanitationSettings) -> ServiceRuntime:
    # lapsed certifications are recorded on their own, hourly by default (a contractor whose certification
    # lapsed may not take a new job: the record is what the cooperative and the donor see)
    sweep = PeriodicJob("certification-expiries", settings.certification_sweep_interval_s,
                        contractors.sweep_every_cooperative)
    return ServiceRuntime(SERVICE, settings, migrations=MIGRATIONS,
                          consumers=lambda rt: [TrancheOrdersJob(rt), MemberDirectory()], periodic=[sweep])


def create_app(settings: SanitationSettings | None = None) -> FastAPI:
    return create_service_app(
        SERVICE, settings or SanitationSettings(), build_runtime, [router],
        "Contractors, construction jobs with the SNI 2398:2017 inspection, and scheduled desludging with IPLT "
        "receipts.",
    )
