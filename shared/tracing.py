"""W3C trace context (``traceparent``): it travels from an HTTP request onto every event the request
causes, through Kafka headers, into the consumers and the events their reactions append."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def child_traceparent(parent: str | None) -> str:
    """A W3C ``traceparent`` for a new span: in the caller's trace when it sent a valid one, else a new trace."""
    m = _TRACEPARENT.match(parent or "")
    trace_id = m.group(1) if m and m.group(1) != "0" * 32 else secrets.token_hex(16)
    flags = m.group(3) if m else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def trace_id(traceparent: str | None) -> str | None:
    m = _TRACEPARENT.match(traceparent or "")
    return m.group(1) if m else None


# -- OpenTelemetry spans -------------------------------------------------------------------------------
# Spans are made through the OpenTelemetry API. With no exporter configured (the default) the API's
# no-op tracer makes them nearly free; ``configure_tracing`` with an OTLP endpoint exports them.

_PROPAGATOR = TraceContextTextMapPropagator()


def configure_tracing(service: str, otlp_endpoint: str | None) -> None:
    """Export spans over OTLP/HTTP when an endpoint is set (needs the ``otlp`` extra); else leave them off."""
    if not otlp_endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("tracing export needs the otlp extra: pip install 'washfin[otlp]'") from e
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"washfin-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)


def tracing_enabled() -> bool:
    """True when spans are recorded (an SDK tracer provider is installed), so per-event spans are worth it."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@contextmanager
def traced(name: str, parent: str | None, kind: SpanKind = SpanKind.INTERNAL,
           attributes: dict[str, Any] | None = None) -> Iterator[tuple[Span, str]]:
    """A span continuing the trace of ``parent`` (a traceparent); yields it with the traceparent to pass on.

    When spans are not recorded the trace still travels: the traceparent passed on keeps the parent's
    trace id (or starts a new trace) with a fresh span id.
    """
    context = _PROPAGATOR.extract({"traceparent": parent}) if parent else None
    with trace.get_tracer("washfin").start_as_current_span(name, context=context, kind=kind,
                                                           attributes=attributes) as span:
        ctx = span.get_span_context()
        if ctx.is_valid and span.is_recording():
            onward = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
        else:
            onward = child_traceparent(parent)
        yield span, onward
