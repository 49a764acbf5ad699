"""Dependencies the members routes share: who may read, and the page cursor. Commands take their caller,
cooperative view, metadata and headers from one dependency (``shared/web.py`` ``CommandRequest``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

#: the role aliases are the platform's (``shared/web.py``)
from shared.web import Officer  # noqa: F401

Cursor = Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")]
