from datetime import date
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ProgrammeSeed(BaseModel):
    """A donor programme and its consenting cooperatives (cooperative id -> date it consented)."""

    name: str
    cooperatives: dict[str, date | None] = {}


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_reporting"
    #: what this process does: ``all`` serves the API and projects the events (one process, the simplest
    #: shape); ``api`` serves the API and projects nothing (the reports, live builds, cache keys and
    #: freshness are read from the database that a projector process keeps); ``projector`` projects the
    #: events, follows the build registry (switches, drops) and serves only health and metrics. Split, a
    #: batch's CPU never holds the event loop that answers requests (S5N: the summary GET's p99 during an
    #: import, 222 ms in one process, was the projection's batches in the API's loop)
    role: Literal["all", "api", "projector"] = "all"
    run_relay: bool = False  # reporting publishes nothing
    #: reports' queries are planned for the scope they get (one cooperative or a hundred), never from a
    #: plan cached on the connection for another scope
    db_plan_cache_mode: Literal["auto", "force_custom_plan", "force_generic_plan"] = "force_custom_plan"
    #: one consumer per projection build and source share these, besides the build supervisor
    db_worker_pool_max: int = 6
    #: how often the build supervisor follows the projection registry (new builds, switches), seconds
    build_poll_s: float = Field(default=2.0, gt=0)
    #: events a rebuild (``washfin rebuild``) applies per transaction: its build is not live yet, so no
    #: read waits on its batches, and the fewer the batches the fewer times each month-end sums row is
    #: rewritten (a batch's changes reach every month up to the span's last)
    rebuild_batch_size: int = Field(default=10_000, ge=1)
    #: how long a retired build's tables stay after reads moved away, seconds
    build_drop_grace_s: float = Field(default=60.0, ge=0)
    #: reports' figures kept for reuse until the read models move on (0: none)
    report_cache_size: int = Field(default=1024, ge=0)
    #: rows any one exported table may have
    export_max_rows: int = Field(default=50_000, ge=1)
    #: programmes created at start when missing, e.g. {"iuwash-plus": {"name": "USAID IUWASH PLUS",
    #: "cooperatives": {"kopsyah-bmi": "2024-01-15"}}}; operators manage them with the /programmes routes
    programmes: dict[str, ProgrammeSeed] = {}
