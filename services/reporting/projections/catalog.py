"""The projection families this code knows, at their current versions."""

from __future__ import annotations

from services.reporting.projections.base import Family
from services.reporting.projections.financing import FinancingProjection
from services.reporting.projections.members import MembersProjection
from services.reporting.projections.products import CatalogueProjection
from services.reporting.projections.sanitation import SanitationProjection

FAMILIES: dict[str, Family] = {f.family: f for f in (MembersProjection(), FinancingProjection(),
                                                     SanitationProjection(), CatalogueProjection())}


def family(name: str) -> Family:
    """A family by name ("financing") or by build name ("reporting.financing.v1", "...v1.r2")."""
    key = name.removeprefix("reporting.").split(".")[0]
    try:
        return FAMILIES[key]
    except KeyError:
        raise LookupError(f"no projection {name!r}: one of {', '.join(sorted(FAMILIES))}") from None
