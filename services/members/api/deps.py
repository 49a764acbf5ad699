"""Dependencies the members routes share: who may call, and the headers commands take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

#: the role aliases and command headers are the platform's (``shared/web.py``)
from shared.web import IdempotencyKey, IfMatch, Manager, Officer  # noqa: F401

Cursor = Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")]
