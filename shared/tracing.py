"""W3C trace context (``traceparent``): it travels from an HTTP request onto every event the request
causes, through Kafka headers, into the consumers and the events their reactions append."""

from __future__ import annotations

import re
import secrets

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
