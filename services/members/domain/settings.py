"""A cooperative's own rules for the members service: the B40 rule and the eligibility thresholds.

Defaults (each cooperative may change them):
- B40 by household electricity: a household without a PLN connection, or on the 450 VA or subsidised
  900 VA tariffs, is in the bottom 40 %. Those tariffs are the ones the government subsidises for poor
  and vulnerable households (since 2017 the 900 VA subsidy goes only to households on the social
  registry; other 900 VA households pay the non-subsidised "RTM" tariff and are not counted).
- B40 by income band (for cooperatives that choose it): household monthly income below Rp 3 million.
  A rough household-level equivalent of the bottom 40 % of per-capita expenditure for a household of
  about four in Java; a cooperative that knows better sets its own bands.
- Eligibility for WASH financing: a member for at least 12 months, no financing more than 30 days overdue.
- Groups: a member may be placed in a group code not (yet) registered as a group, unless
  ``require_registered_groups`` is set (cooperatives migrating their books often lack the group list).

The rule in force when a member is registered or corrected decides their B40 flag; changing the rule
later does not rewrite past assessments (the events keep the proxy, so reporting can re-assess).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from functools import reduce
from typing import Literal

from services.members.domain.errors import MemberRuleViolation
from shared.contracts.members import ElectricityClass, IncomeBand
from shared.envelope import Envelope, NewEvent

STREAM_TYPE = "cooperative_settings"
SETTINGS_CHANGED = "members.SettingsChanged"  # internal: not a published contract
#: one settings stream per cooperative (stream identity is (tenant, stream id))
STREAM_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "washfin:members:settings"))

B40Method = Literal["electricity", "income_band"]


@dataclass(frozen=True)
class CooperativeSettings:
    b40_method: B40Method = "electricity"
    b40_electricity: tuple[ElectricityClass, ...] = ("none", "450", "900_subsidised")
    b40_income_bands: tuple[IncomeBand, ...] = ("below_1m", "1m_to_2m", "2m_to_3m")
    min_tenure_months: int = 12
    max_days_overdue: int = 30
    require_registered_groups: bool = False
    version: int = 0

    def as_payload(self) -> dict[str, object]:
        return {
            "b40_method": self.b40_method, "b40_electricity": list(self.b40_electricity),
            "b40_income_bands": list(self.b40_income_bands), "min_tenure_months": self.min_tenure_months,
            "max_days_overdue": self.max_days_overdue, "require_registered_groups": self.require_registered_groups,
        }


DEFAULT = CooperativeSettings()


def evolve(state: CooperativeSettings, event: Envelope) -> CooperativeSettings:
    if event.type == SETTINGS_CHANGED:
        p = event.payload
        return CooperativeSettings(
            b40_method=p["b40_method"], b40_electricity=tuple(p["b40_electricity"]),
            b40_income_bands=tuple(p["b40_income_bands"]), min_tenure_months=p["min_tenure_months"],
            max_days_overdue=p["max_days_overdue"], require_registered_groups=p["require_registered_groups"],
            version=event.version,
        )
    return replace(state, version=event.version)


def fold(events: list[Envelope]) -> CooperativeSettings:
    return reduce(evolve, events, DEFAULT)


def change(state: CooperativeSettings, new: CooperativeSettings) -> list[NewEvent]:
    """Replace the settings; nothing when they are the same."""
    if not 0 <= new.min_tenure_months <= 120:
        raise MemberRuleViolation("between 0 and 120 months", field="min_tenure_months")
    if not 0 <= new.max_days_overdue <= 365:
        raise MemberRuleViolation("between 0 and 365 days", field="max_days_overdue")
    if new.as_payload() == state.as_payload():
        return []
    return [NewEvent(SETTINGS_CHANGED, new.as_payload())]


def b40_by_rule(settings: CooperativeSettings, electricity: ElectricityClass | None,
                income_band: IncomeBand | None) -> bool | None:
    """The B40 flag the cooperative's rule gives, or None when the proxy it uses is unknown."""
    if settings.b40_method == "electricity":
        return None if electricity is None else electricity in settings.b40_electricity
    return None if income_band is None else income_band in settings.b40_income_bands


def assess_b40(settings: CooperativeSettings, electricity: ElectricityClass | None,
               income_band: IncomeBand | None, stated: bool | None) -> bool | None:
    """B40 from the rule when its proxy is known; else the stated flag (a manual assessment).

    A stated flag that contradicts the rule is refused: the rule is the cooperative's definition.
    """
    computed = b40_by_rule(settings, electricity, income_band)
    if computed is None:
        return stated
    if stated is not None and stated != computed:
        proxy = f"electricity {electricity}" if settings.b40_method == "electricity" else f"income band {income_band}"
        raise MemberRuleViolation(
            f"b40 is {str(computed).lower()} for {proxy} under this cooperative's B40 rule; "
            "leave b40 out or correct the proxy", field="b40")
    return computed
