"""``shared.web.BodyLimit`` on the ASGI messages themselves: a request that declares no body is handed to
the app as it came (nothing to count), a chunked one is counted, a declared one over the limit is refused
before the app runs."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.web import BodyLimit


def _run(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[list[Any], dict[str, Any]]:
    """BodyLimit(max 10 bytes) over an app that reads the whole body and answers 200: what was sent, and
    what the app saw (``receive``/``send``: the callables it got; ``body``: what it read)."""
    seen: dict[str, Any] = {}
    sent: list[Any] = []
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, receive_: Any, send_: Any) -> None:
        seen.update(receive=receive_, send=send_, body=b"")
        more = True
        while more:
            m = await receive_()
            seen["body"] += m.get("body", b"")
            more = m.get("more_body", False)
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": b"ok"})

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodyLimit(app, max_bytes=10).handle(scope, receive, send))
    seen["original"] = (receive, send)
    return sent, seen


def test_a_request_without_a_body_reaches_the_app_unwrapped() -> None:
    sent, seen = _run([(b"accept", b"*/*")], [b""])
    assert (seen["receive"], seen["send"]) == seen["original"]
    assert [m.get("status") for m in sent][0] == 200


def test_a_chunked_body_is_counted_and_refused_past_the_limit() -> None:
    sent, seen = _run([(b"transfer-encoding", b"chunked")], [b"x" * 6, b"x" * 6])
    assert seen["receive"] is not seen["original"][0]
    assert sent[0]["status"] == 413 and b"payload_too_large" in sent[1]["body"]
    sent, seen = _run([(b"transfer-encoding", b"chunked")], [b"x" * 4, b"x" * 4])
    assert sent[0]["status"] == 200 and seen["body"] == b"x" * 8


def test_a_declared_body_over_the_limit_is_refused_before_the_app() -> None:
    sent, seen = _run([(b"content-length", b"11")], [b"x" * 11])
    assert seen == {"original": seen["original"]}  # the app never ran
    assert sent[0]["status"] == 413
    sent, seen = _run([(b"content-length", b"5")], [b"x" * 5])
    assert sent[0]["status"] == 200 and seen["body"] == b"x" * 5
