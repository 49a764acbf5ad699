"""A cooperative's sanitation settings: the SNI 2398:2017 checklist thresholds, the tank capacity rule, the
desludging interval and the IPLT volume tolerance. Defaults are the standard's; each cooperative may
change them (a manager), and every change is an event, so an old inspection can be explained by the
thresholds in force then (the inspection records them too).

Capacity rule (SNI 2398:2017 practice, the sizing method of its predecessor SNI 03-2398-2002):
the tank's working volume (length x width x liquid depth, i.e. depth minus freeboard) must hold

    people x (wastewater per person per day x retention days + sludge per person per year x interval years)

with 20 L/person/day for a separate system (toilet only), 120 L/person/day for a combined one (toilet and
bathing/washing water), 2 days retention and 30 L of sludge per person per year, and the cooperative's
desludging interval as the years of sludge storage. For 5 people on a combined system and a 3-year
interval that is 5 x (240 + 90) L = 1.65 m3: the 1.2 m3 "wet" plus 0.45 m3 "sludge" space of the
standard's table for one household.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.envelope import Envelope, NewEvent

STREAM_TYPE = "sanitation_settings"
#: one settings stream per cooperative (stream identity is tenant + stream id, so one id serves all)
STREAM_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "washfin:sanitation:settings"))
SETTINGS_CHANGED = "sanitation.SettingsChanged"  # internal: never published

Metres = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3)]


class CooperativeSettings(BaseModel):
    """Thresholds of one cooperative. Field names say the unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- SNI 2398:2017 checklist -----------------------------------------------------------------------
    min_compartments: int = Field(default=2, ge=1, le=6, description="Compartments a tank must have")
    min_length_width_ratio: Decimal = Field(default=Decimal("2"), gt=0, le=10, max_digits=4, decimal_places=2)
    max_length_width_ratio: Decimal = Field(default=Decimal("3"), gt=0, le=10, max_digits=4, decimal_places=2)
    min_width_m: Metres = Decimal("0.75")
    min_length_m: Metres = Decimal("1.5")
    min_depth_m: Metres = Field(default=Decimal("1.5"), description="Total inner depth, freeboard included")
    min_freeboard_m: Metres = Field(default=Decimal("0.3"), description="Air space above the liquid")
    min_distance_to_well_m: Metres = Field(default=Decimal("10"), description="From a drinking-water well")
    min_distance_to_building_m: Metres = Decimal("1.5")
    min_distance_to_infiltration_well_m: Metres = Field(default=Decimal("5"),
                                                        description="From a rainwater infiltration well")
    # -- capacity rule ---------------------------------------------------------------------------------
    separate_system_l_per_person_day: int = Field(default=20, ge=1, le=500, description="Toilet water only")
    combined_system_l_per_person_day: int = Field(default=120, ge=1, le=500,
                                                  description="Toilet, bathing and washing water")
    retention_days: Decimal = Field(default=Decimal("2"), gt=0, le=10, max_digits=4, decimal_places=2)
    sludge_l_per_person_year: int = Field(default=30, ge=1, le=200)
    # -- scheduled desludging --------------------------------------------------------------------------
    desludging_interval_years: int = Field(default=3, ge=2, le=5)
    iplt_volume_tolerance_pct: int = Field(default=10, ge=0, le=50,
                                           description="Allowed difference, received vs removed volume")

    @model_validator(mode="after")
    def _ratio_range(self) -> CooperativeSettings:
        if self.min_length_width_ratio > self.max_length_width_ratio:
            raise ValueError("min_length_width_ratio cannot exceed max_length_width_ratio")
        if self.min_freeboard_m >= self.min_depth_m:
            raise ValueError("min_freeboard_m must be less than min_depth_m")
        return self


DEFAULTS = CooperativeSettings()


@dataclass(frozen=True)
class SettingsState:
    settings: CooperativeSettings = DEFAULTS
    version: int = 0


def evolve(state: SettingsState, event: Envelope) -> SettingsState:
    if event.type == SETTINGS_CHANGED:
        return SettingsState(CooperativeSettings.model_validate(event.payload["settings"]), event.version)
    return SettingsState(state.settings, event.version)


def fold(events: Iterable[Envelope], state: SettingsState | None = None) -> SettingsState:
    return reduce(evolve, events, state or SettingsState())


def change(state: SettingsState, new: CooperativeSettings) -> list[NewEvent]:
    """Replace the settings; nothing when they are unchanged. Existing due dates are not moved: a new
    interval applies from the next date computed (handover or acknowledged emptying)."""
    if new == state.settings:
        return []
    return [NewEvent(SETTINGS_CHANGED, {"settings": new.model_dump(mode="json")})]
