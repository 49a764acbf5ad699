"""Dependencies the members routes share: who may call, and the headers commands take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query

from shared.tenancy import Principal, Role
from shared.web import require_roles

#: field officers and managers of the cooperative
Officer = Annotated[Principal, Depends(require_roles(Role.FIELD_OFFICER, Role.MANAGER))]
#: managers of the cooperative only
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Retry-safe: the same key returns the first result")]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=40,
                                       description="The version you read: the change applies only if it is "
                                                   "still the current one (else 409)")]
Cursor = Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")]
