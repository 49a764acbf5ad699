"""The WHO/UNICEF JMP service ladders for households (SDG 6.1.1, 6.2.1a, 6.2.1b), as a pure function.

Definitions (JMP 2017 SDG baseline and its core questions for household surveys, 2018):

Drinking water (improved sources: piped water, boreholes/tubewells, protected dug wells, protected
springs, rainwater, and packaged or delivered water):
- safely managed: an improved source accessible on premises, available when needed, and free from
  faecal and priority chemical contamination;
- basic: an improved source, collection time not more than 30 minutes for a round trip incl. queuing;
- limited: an improved source, collection time over 30 minutes for a round trip incl. queuing;
- unimproved: an unprotected dug well or unprotected spring;
- surface water: directly from a river, dam, lake, pond, stream, canal or irrigation channel.

Sanitation (improved facilities: flush/pour flush to a piped sewer, septic tank or pit latrine, or to an
unknown place; ventilated improved pit latrines, composting toilets, pit latrines with slabs):
- safely managed: an improved facility not shared with other households, where excreta are safely
  disposed of in situ (contained and never emptied, or emptied and buried in a covered pit) or removed
  and treated off-site (emptied to a treatment plant, or a sewer leading to treatment);
- basic: an improved facility not shared with other households;
- limited: an improved facility shared between two or more households;
- unimproved: pit latrines without a slab or platform, hanging latrines, bucket latrines (and flush
  toilets discharging to an open drain or elsewhere);
- open defecation: no facility (fields, forests, bushes, open bodies of water, beaches, solid waste).

Hygiene:
- basic: a handwashing facility on premises with soap and water available;
- limited: a handwashing facility on premises lacking soap and/or water;
- no facility: no handwashing facility on premises.
Soap means bar, liquid, powder or paste soap or detergent; ash, mud or sand do not count. A household
whose handwashing place was not observed (no permission to see) gets no hygiene rung, as in JMP.

Where a household level criterion is unknown (water quality not tested, availability not asked,
emptying not known), the higher rung is not claimed: a household is classified by what was observed.
Contradictory inputs (a piped-into-dwelling source said to be off premises, a sewer answer for a pit)
are refused with the field at fault, so the events only ever carry consistent surveys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from shared.contracts.members import (
    ExcretaManagement,
    HygieneInputs,
    HygieneRung,
    SanitationFacility,
    SanitationInputs,
    SanitationRung,
    WaterInputs,
    WaterRung,
    WaterSource,
)

#: The round-trip collection time (minutes, queueing included) up to which an improved source is basic.
BASIC_MAX_ROUND_TRIP_MINUTES = 30

IMPROVED_WATER: frozenset[WaterSource] = frozenset({
    "piped_into_dwelling", "piped_to_yard_plot", "piped_to_neighbour", "public_tap_standpipe",
    "tubewell_borehole", "protected_dug_well", "protected_spring", "rainwater", "tanker_truck",
    "cart_with_small_tank", "packaged_water",
})
UNIMPROVED_WATER: frozenset[WaterSource] = frozenset({"unprotected_dug_well", "unprotected_spring"})
#: sources whose location is part of their name: on premises (True) or not (False)
WATER_LOCATION: dict[WaterSource, bool] = {
    "piped_into_dwelling": True, "piped_to_yard_plot": True,
    "piped_to_neighbour": False, "public_tap_standpipe": False,
}

SEWERED: frozenset[SanitationFacility] = frozenset({"flush_to_sewer"})
ON_SITE_IMPROVED: frozenset[SanitationFacility] = frozenset({
    "flush_to_septic_tank", "flush_to_pit_latrine", "ventilated_improved_pit", "pit_latrine_with_slab",
    "composting_toilet",
})
#: improved, but where the excreta go is unknown, so their management cannot be shown to be safe
IMPROVED_UNKNOWN_DESTINATION: frozenset[SanitationFacility] = frozenset({"flush_to_unknown_place"})
IMPROVED_SANITATION = SEWERED | ON_SITE_IMPROVED | IMPROVED_UNKNOWN_DESTINATION
UNIMPROVED_SANITATION: frozenset[SanitationFacility] = frozenset({
    "flush_to_open_drain_or_elsewhere", "pit_latrine_without_slab", "hanging_latrine", "bucket_latrine",
})

SEWER_ANSWERS: frozenset[ExcretaManagement] = frozenset({
    "sewer_to_treatment_plant", "sewer_untreated", "sewer_treatment_unknown",
})
ON_SITE_ANSWERS: frozenset[ExcretaManagement] = frozenset(set(get_args(ExcretaManagement)) - SEWER_ANSWERS)
#: excreta disposed of in situ, or removed and treated off-site
SAFE_ON_SITE: frozenset[ExcretaManagement] = frozenset({
    "never_emptied", "emptied_buried_on_site", "emptied_to_treatment_plant",
})
SAFE_SEWER: frozenset[ExcretaManagement] = frozenset({"sewer_to_treatment_plant"})

assert IMPROVED_WATER.isdisjoint(UNIMPROVED_WATER)
assert set(get_args(WaterSource)) == IMPROVED_WATER | UNIMPROVED_WATER | {"surface_water"}
assert set(get_args(SanitationFacility)) == IMPROVED_SANITATION | UNIMPROVED_SANITATION | {"no_facility"}


class SurveyInputError(ValueError):
    """Survey answers that are missing or contradict each other; ``field`` names the answer at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class JmpRungs:
    water: WaterRung
    sanitation: SanitationRung
    hygiene: HygieneRung | None


def water_rung(w: WaterInputs) -> WaterRung:
    """The drinking-water rung of a household's main drinking-water source."""
    if w.source == "surface_water":
        return "surface_water"
    if w.source in UNIMPROVED_WATER:
        return "unimproved"
    implied = WATER_LOCATION.get(w.source)
    on_premises = w.on_premises if w.on_premises is not None else implied
    if implied is not None and on_premises != implied:
        where = "on premises" if implied else "off premises"
        raise SurveyInputError("water.on_premises", f"{w.source.replace('_', ' ')} is {where} by definition")
    if on_premises is None:
        raise SurveyInputError("water.on_premises", "say whether the source is in the dwelling, yard or plot")
    if on_premises:
        if w.round_trip_minutes:
            raise SurveyInputError("water.round_trip_minutes",
                                   "a source on premises needs no collection trip: leave it empty or 0")
        if w.available_when_needed is True and w.free_from_contamination is True:
            return "safely_managed"
        return "basic"
    if w.round_trip_minutes is None:
        raise SurveyInputError("water.round_trip_minutes",
                               "needed for a source off premises: minutes to go, queue, collect and come back")
    return "basic" if w.round_trip_minutes <= BASIC_MAX_ROUND_TRIP_MINUTES else "limited"


def sanitation_rung(s: SanitationInputs) -> SanitationRung:
    """The sanitation rung of the facility a household usually uses."""
    if s.facility == "no_facility":
        if s.shared or s.excreta is not None:
            raise SurveyInputError("sanitation.facility", "no facility: there is nothing to share or empty")
        return "open_defecation"
    if s.facility in UNIMPROVED_SANITATION:
        return "unimproved"
    if s.shared is None:
        raise SurveyInputError("sanitation.shared", "say whether the facility is shared with other households")
    if s.excreta is not None:
        if s.facility in SEWERED and s.excreta not in SEWER_ANSWERS:
            raise SurveyInputError("sanitation.excreta", "a sewer connection is not emptied: answer sewer_*")
        if s.facility in ON_SITE_IMPROVED and s.excreta not in ON_SITE_ANSWERS:
            raise SurveyInputError("sanitation.excreta", "an on-site facility is not sewered: answer how it is emptied")
        if s.facility in IMPROVED_UNKNOWN_DESTINATION:
            raise SurveyInputError("sanitation.excreta", "the flush goes to an unknown place: leave it empty")
    if s.shared:
        return "limited"
    if s.excreta in SAFE_ON_SITE and s.facility in ON_SITE_IMPROVED:
        return "safely_managed"
    if s.excreta in SAFE_SEWER and s.facility in SEWERED:
        return "safely_managed"
    return "basic"


def hygiene_rung(h: HygieneInputs) -> HygieneRung | None:
    """The hygiene rung of the household's handwashing place; None when it was not observed."""
    if h.facility == "not_observed":
        return None
    if h.facility == "none":
        return "no_facility"
    if h.water_available is None:
        raise SurveyInputError("hygiene.water_available", "say whether water was observed at the place")
    if h.soap is None:
        raise SurveyInputError("hygiene.soap", "say which cleansing agent was observed (or none)")
    return "basic" if h.water_available and h.soap == "soap_or_detergent" else "limited"


def classify(water: WaterInputs, sanitation: SanitationInputs, hygiene: HygieneInputs) -> JmpRungs:
    """All three rungs of one household survey; raises ``SurveyInputError`` on inconsistent answers."""
    return JmpRungs(water_rung(water), sanitation_rung(sanitation), hygiene_rung(hygiene))


# -- the sanitation rung after construction and emptying --------------------------------------------------
# A survey classifies the facility a household uses on the day it is surveyed. The sanitation service's
# events then show what changed without a new survey: a toilet or SNI septic tank handed over to the
# household (sanitation.JobCompleted) is an improved facility; that septic tank emptied, with the sludge
# acknowledged at a treatment plant (sanitation.IpltReceiptAcknowledged), has its excreta removed and
# treated off-site. As in reporting (services/reporting/indicators/maths.py, ``sanitation_now``), the
# household's rung is the higher of its latest survey's and what those events show; a survey that ranks
# as high is the rung's source. Both "basic" and "safely managed" need a facility not shared with other
# households, so when the latest survey says the household shares its facility, construction and emptying
# show no more than "limited" (reporting applies the same rule: it keeps each survey's "shared" answer).

SANITATION_LADDER: tuple[SanitationRung, ...] = ("open_defecation", "unimproved", "limited", "basic",
                                                 "safely_managed")
#: construction jobs that give the household an improved sanitation facility of its own
SANITATION_JOB_KINDS = frozenset({"septic_tank", "toilet_upgrade"})
#: the job kind whose emptying, acknowledged at an IPLT, is "emptied and treated off-site"
EMPTIED_JOB_KIND = "septic_tank"

RungSource = Literal["survey", "construction", "emptying"]


def _rank(rung: str | None) -> int:
    return SANITATION_LADDER.index(rung) if rung in SANITATION_LADDER else -1  # type: ignore[arg-type]


def sanitation_after_works(surveyed: SanitationRung | None, surveyed_shared: bool | None, handed_over: bool,
                           emptied_to_iplt: bool) -> tuple[SanitationRung | None, RungSource | None]:
    """The household's sanitation rung and where it comes from: ``surveyed`` (its latest survey's rung,
    None before any survey) and ``surveyed_shared`` (that survey's answer to "shared with other
    households?"), raised by a sanitation facility handed over (``handed_over``) and by that household's
    septic tank emptied with an acknowledged IPLT receipt (``emptied_to_iplt``, only counted with a
    handover of that tank)."""
    evidence: SanitationRung | None = None
    source: RungSource | None = None
    if handed_over and emptied_to_iplt:
        evidence, source = "safely_managed", "emptying"
    elif handed_over:
        evidence, source = "basic", "construction"
    if evidence is not None and surveyed_shared:
        evidence = "limited"
    if evidence is None or _rank(surveyed) >= _rank(evidence):
        return surveyed, ("survey" if surveyed is not None else None)
    return evidence, source
