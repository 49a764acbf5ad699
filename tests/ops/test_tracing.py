"""One trace id followed from an HTTP request, onto the event it appended, into the projection it caused
(the members API and the reporting consumer, which tails the members' log)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deploy.local.demo import DEMO_MEMBERS, key_for
from deploy.local.infra import PostgresHandle
from services.members.app import create_app as members_app
from services.members.settings import MembersSettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.envelope import LogPosition
from shared.tenancy import Role
from tests.helpers import event_logs, eventually, running_app
from tests.services.conftest import BMI

_EXPORTER = InMemorySpanExporter()


def recording_spans() -> InMemorySpanExporter:
    """Install a recording tracer provider once per process (OpenTelemetry allows one)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


async def test_one_trace_from_request_to_projection(pg: PostgresHandle, platform_url: str) -> None:
    exporter = recording_spans()
    exporter.clear()
    members_url = await pg.create_database("members")
    others = await event_logs(pg, "loans", "sanitation")  # reporting's other sources: empty logs
    m_settings = MembersSettings(database_url=members_url, platform_database_url=platform_url,
                                 kafka_bootstrap_servers=None, event_source="none")
    r_settings = ReportingSettings(database_url=await pg.create_database("reporting"),
                                   platform_database_url=platform_url, kafka_bootstrap_servers=None,
                                   event_source="embedded", source_database_urls={"members": members_url, **others})
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with running_app(members_app(m_settings)) as members, running_app(reporting_app(r_settings)) as reporting:
        r = await members.post("/members", json=DEMO_MEMBERS[BMI][0],
                               headers={"X-API-Key": key_for(BMI, Role.FIELD_OFFICER),
                                        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        assert r.status_code == 201
        assert r.headers["traceparent"].split("-")[1] == trace_id

        async def projected() -> bool:
            got = await reporting.get("/reports/summary", headers={"X-API-Key": key_for(BMI, Role.MANAGER)})
            return got.json()["members"] == 1

        await eventually(projected, timeout=30)
        stored = await members.runtime.store.read_log(LogPosition(), 10)  # type: ignore[union-attr]
        assert stored[0].envelope.traceparent is not None
        assert stored[0].envelope.traceparent.split("-")[1] == trace_id

    spans = [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
    names = {s.name for s in spans}
    assert "POST /members" in names
    applied = [s for s in spans if s.name == "apply members.MemberRegistered"
               and s.attributes["washfin.consumer"] == "reporting.summary.v1"]
    assert len(applied) == 1
    # washfin's own server span (FastAPI may record one of its own beside it, named alike)
    request_span = next(s for s in spans if s.name == "POST /members" and s.attributes.get("washfin.service"))
    assert applied[0].parent is not None and applied[0].parent.span_id == request_span.context.span_id
