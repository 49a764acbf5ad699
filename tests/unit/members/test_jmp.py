"""The JMP service ladders, table by table: every rung, and the boundaries (30 minutes, shared facility,
tank never emptied / emptied untreated / treated at the IPLT, no facility)."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from services.members.domain.jmp import (
    IMPROVED_WATER,
    SurveyInputError,
    classify,
    hygiene_rung,
    sanitation_rung,
    water_rung,
)
from shared.contracts.members import (
    ExcretaManagement,
    HygieneInputs,
    SanitationFacility,
    SanitationInputs,
    WaterInputs,
    WaterSource,
)


def w(source: str, **kw: Any) -> WaterInputs:
    return WaterInputs(source=source, **kw)  # type: ignore[arg-type]


def s(facility: str, **kw: Any) -> SanitationInputs:
    return SanitationInputs(facility=facility, **kw)  # type: ignore[arg-type]


def h(facility: str, **kw: Any) -> HygieneInputs:
    return HygieneInputs(facility=facility, **kw)  # type: ignore[arg-type]


SAFE = {"available_when_needed": True, "free_from_contamination": True}

# -- drinking water ------------------------------------------------------------------------------------------

WATER = [
    # (case, inputs, rung)
    ("piped into dwelling, available, tested clean", w("piped_into_dwelling", **SAFE), "safely_managed"),
    ("piped to yard, available, tested clean", w("piped_to_yard_plot", **SAFE), "safely_managed"),
    ("borehole on premises, available, tested clean", w("tubewell_borehole", on_premises=True, **SAFE), "safely_managed"),
    ("protected well on premises, available, clean", w("protected_dug_well", on_premises=True, **SAFE), "safely_managed"),
    ("rainwater on premises, available, clean", w("rainwater", on_premises=True, **SAFE), "safely_managed"),
    ("packaged water at home, available, clean", w("packaged_water", on_premises=True, **SAFE), "safely_managed"),
    ("on premises but contaminated", w("piped_into_dwelling", available_when_needed=True,
                                       free_from_contamination=False), "basic"),
    ("on premises, quality not tested", w("piped_into_dwelling", available_when_needed=True), "basic"),
    ("on premises but not available when needed", w("piped_into_dwelling", available_when_needed=False,
                                                    free_from_contamination=True), "basic"),
    ("on premises, availability unknown", w("piped_into_dwelling", free_from_contamination=True), "basic"),
    ("on premises, round trip given as 0", w("piped_to_yard_plot", round_trip_minutes=0, **SAFE), "safely_managed"),
    ("public tap, 0 minutes", w("public_tap_standpipe", round_trip_minutes=0), "basic"),
    ("public tap, exactly 30 minutes", w("public_tap_standpipe", round_trip_minutes=30), "basic"),
    ("public tap, 31 minutes", w("public_tap_standpipe", round_trip_minutes=31), "limited"),
    ("off-premises tap, available and clean, 10 minutes", w("public_tap_standpipe", round_trip_minutes=10, **SAFE),
     "basic"),
    ("neighbour's tap, 5 minutes", w("piped_to_neighbour", round_trip_minutes=5), "basic"),
    ("protected spring, 29 minutes", w("protected_spring", on_premises=False, round_trip_minutes=29), "basic"),
    ("protected spring, 45 minutes", w("protected_spring", on_premises=False, round_trip_minutes=45), "limited"),
    ("tanker truck point, 30 minutes", w("tanker_truck", on_premises=False, round_trip_minutes=30), "basic"),
    ("cart with tank, 60 minutes", w("cart_with_small_tank", on_premises=False, round_trip_minutes=60), "limited"),
    ("borehole off premises, 31 minutes", w("tubewell_borehole", on_premises=False, round_trip_minutes=31), "limited"),
    ("unprotected dug well, on premises and clean", w("unprotected_dug_well", on_premises=True, **SAFE), "unimproved"),
    ("unprotected dug well, far", w("unprotected_dug_well", on_premises=False, round_trip_minutes=90), "unimproved"),
    ("unprotected spring", w("unprotected_spring"), "unimproved"),
    ("river", w("surface_water"), "surface_water"),
    ("irrigation canal next to the house", w("surface_water", on_premises=True, **SAFE), "surface_water"),
]


@pytest.mark.parametrize(("inputs", "rung"), [(i, r) for _, i, r in WATER], ids=[c for c, _, _ in WATER])
def test_water_ladder(inputs: WaterInputs, rung: str) -> None:
    assert water_rung(inputs) == rung


def test_every_water_rung_is_covered() -> None:
    assert {r for _, _, r in WATER} == {"safely_managed", "basic", "limited", "unimproved", "surface_water"}


# piped into the dwelling or yard is on premises by definition (no collection trip)
@pytest.mark.parametrize("source", sorted(IMPROVED_WATER - {"piped_into_dwelling", "piped_to_yard_plot"}))
def test_every_improved_source_is_basic_at_30_and_limited_at_31_minutes_off_premises(source: str) -> None:
    kw = {} if source in ("public_tap_standpipe", "piped_to_neighbour") else {"on_premises": False}
    assert water_rung(w(source, round_trip_minutes=30, **kw)) == "basic"
    assert water_rung(w(source, round_trip_minutes=31, **kw)) == "limited"


WATER_ERRORS = [
    ("piped into dwelling said off premises", w("piped_into_dwelling", on_premises=False), "water.on_premises"),
    ("public tap said on premises", w("public_tap_standpipe", on_premises=True), "water.on_premises"),
    ("well, location not said", w("protected_dug_well", round_trip_minutes=10), "water.on_premises"),
    ("off premises, no collection time", w("protected_dug_well", on_premises=False), "water.round_trip_minutes"),
    ("public tap, no collection time", w("public_tap_standpipe"), "water.round_trip_minutes"),
    ("on premises with a trip", w("piped_into_dwelling", round_trip_minutes=15), "water.round_trip_minutes"),
]


@pytest.mark.parametrize(("inputs", "field"), [(i, f) for _, i, f in WATER_ERRORS], ids=[c for c, _, _ in WATER_ERRORS])
def test_inconsistent_water_answers_are_refused_naming_the_field(inputs: WaterInputs, field: str) -> None:
    with pytest.raises(SurveyInputError) as e:
        water_rung(inputs)
    assert e.value.field == field and e.value.reason


def test_every_source_type_is_classified() -> None:
    for source in get_args(WaterSource):
        kw: dict[str, Any] = {"round_trip_minutes": 10}
        if source not in ("piped_into_dwelling", "piped_to_yard_plot", "public_tap_standpipe", "piped_to_neighbour"):
            kw["on_premises"] = False
        elif source in ("piped_into_dwelling", "piped_to_yard_plot"):
            kw = {}
        assert water_rung(w(source, **kw)) in ("basic", "unimproved", "surface_water")


# -- sanitation ----------------------------------------------------------------------------------------------

SANITATION = [
    ("septic tank never emptied (in situ)", s("flush_to_septic_tank", shared=False, excreta="never_emptied"),
     "safely_managed"),
    ("septic tank emptied to the IPLT", s("flush_to_septic_tank", shared=False, excreta="emptied_to_treatment_plant"),
     "safely_managed"),
    ("septic tank emptied, discharged untreated", s("flush_to_septic_tank", shared=False,
                                                    excreta="emptied_discharged_untreated"), "basic"),
    ("septic tank emptied, destination unknown", s("flush_to_septic_tank", shared=False,
                                                   excreta="emptied_destination_unknown"), "basic"),
    ("septic tank, emptying not known", s("flush_to_septic_tank", shared=False, excreta="emptying_unknown"), "basic"),
    ("septic tank, emptying not asked", s("flush_to_septic_tank", shared=False), "basic"),
    ("pit emptied and buried in a covered pit", s("pit_latrine_with_slab", shared=False,
                                                  excreta="emptied_buried_on_site"), "safely_managed"),
    ("flush to pit, never emptied", s("flush_to_pit_latrine", shared=False, excreta="never_emptied"), "safely_managed"),
    ("VIP latrine, never emptied", s("ventilated_improved_pit", shared=False, excreta="never_emptied"), "safely_managed"),
    ("composting toilet, emptied to treatment", s("composting_toilet", shared=False,
                                                  excreta="emptied_to_treatment_plant"), "safely_managed"),
    ("sewer to a treatment plant", s("flush_to_sewer", shared=False, excreta="sewer_to_treatment_plant"),
     "safely_managed"),
    ("sewer without treatment", s("flush_to_sewer", shared=False, excreta="sewer_untreated"), "basic"),
    ("sewer, treatment unknown", s("flush_to_sewer", shared=False, excreta="sewer_treatment_unknown"), "basic"),
    ("flush to an unknown place", s("flush_to_unknown_place", shared=False), "basic"),
    ("shared septic tank emptied to the IPLT", s("flush_to_septic_tank", shared=True,
                                                 excreta="emptied_to_treatment_plant"), "limited"),
    ("shared pit with slab", s("pit_latrine_with_slab", shared=True), "limited"),
    ("shared sewer connection to treatment", s("flush_to_sewer", shared=True, excreta="sewer_to_treatment_plant"),
     "limited"),
    ("flush to an open drain", s("flush_to_open_drain_or_elsewhere", shared=False), "unimproved"),
    ("pit latrine without slab", s("pit_latrine_without_slab", shared=False, excreta="never_emptied"), "unimproved"),
    ("hanging latrine over a fish pond", s("hanging_latrine"), "unimproved"),
    ("bucket latrine, shared", s("bucket_latrine", shared=True), "unimproved"),
    ("no facility", s("no_facility"), "open_defecation"),
    ("no facility, shared said no", s("no_facility", shared=False), "open_defecation"),
]


@pytest.mark.parametrize(("inputs", "rung"), [(i, r) for _, i, r in SANITATION], ids=[c for c, _, _ in SANITATION])
def test_sanitation_ladder(inputs: SanitationInputs, rung: str) -> None:
    assert sanitation_rung(inputs) == rung


def test_every_sanitation_rung_is_covered() -> None:
    assert {r for _, _, r in SANITATION} == {"safely_managed", "basic", "limited", "unimproved", "open_defecation"}


@pytest.mark.parametrize("facility", ["flush_to_septic_tank", "flush_to_pit_latrine", "ventilated_improved_pit",
                                      "pit_latrine_with_slab", "composting_toilet"])
@pytest.mark.parametrize("excreta", ["never_emptied", "emptied_buried_on_site", "emptied_to_treatment_plant",
                                     "emptied_discharged_untreated", "emptied_destination_unknown",
                                     "emptying_unknown", None])
def test_on_site_excreta_management_decides_between_safely_managed_and_basic(facility: str, excreta: str | None) -> None:
    safe = excreta in ("never_emptied", "emptied_buried_on_site", "emptied_to_treatment_plant")
    assert sanitation_rung(s(facility, shared=False, excreta=excreta)) == ("safely_managed" if safe else "basic")
    assert sanitation_rung(s(facility, shared=True, excreta=excreta)) == "limited"


SANITATION_ERRORS = [
    ("improved, shared not said", s("flush_to_septic_tank", excreta="never_emptied"), "sanitation.shared"),
    ("sewer answer for a septic tank", s("flush_to_septic_tank", shared=False, excreta="sewer_untreated"),
     "sanitation.excreta"),
    ("emptying answer for a sewer", s("flush_to_sewer", shared=False, excreta="never_emptied"), "sanitation.excreta"),
    ("emptying answer for an unknown place", s("flush_to_unknown_place", shared=False, excreta="never_emptied"),
     "sanitation.excreta"),
    ("no facility said shared", s("no_facility", shared=True), "sanitation.facility"),
    ("no facility said emptied", s("no_facility", excreta="never_emptied"), "sanitation.facility"),
]


@pytest.mark.parametrize(("inputs", "field"), [(i, f) for _, i, f in SANITATION_ERRORS],
                         ids=[c for c, _, _ in SANITATION_ERRORS])
def test_inconsistent_sanitation_answers_are_refused_naming_the_field(inputs: SanitationInputs, field: str) -> None:
    with pytest.raises(SurveyInputError) as e:
        sanitation_rung(inputs)
    assert e.value.field == field


def test_every_facility_and_answer_combination_gets_a_rung_or_a_reason() -> None:
    for facility in get_args(SanitationFacility):
        for excreta in (*get_args(ExcretaManagement), None):
            for shared in (True, False, None):
                try:
                    assert sanitation_rung(s(facility, shared=shared, excreta=excreta)) in (
                        "safely_managed", "basic", "limited", "unimproved", "open_defecation")
                except SurveyInputError as e:
                    assert e.field.startswith("sanitation.") and e.reason


# -- hygiene -------------------------------------------------------------------------------------------------

HYGIENE = [
    ("fixed, water and soap", h("fixed", water_available=True, soap="soap_or_detergent"), "basic"),
    ("mobile (bucket), water and soap", h("mobile", water_available=True, soap="soap_or_detergent"), "basic"),
    ("fixed, water, no soap", h("fixed", water_available=True, soap="none"), "limited"),
    ("fixed, water, ash only", h("fixed", water_available=True, soap="ash_mud_sand"), "limited"),
    ("fixed, soap, no water", h("fixed", water_available=False, soap="soap_or_detergent"), "limited"),
    ("mobile, neither", h("mobile", water_available=False, soap="none"), "limited"),
    ("no facility", h("none"), "no_facility"),
    ("no facility, soap in the house", h("none", water_available=True, soap="soap_or_detergent"), "no_facility"),
    ("not observed (no permission)", h("not_observed"), None),
]


@pytest.mark.parametrize(("inputs", "rung"), [(i, r) for _, i, r in HYGIENE], ids=[c for c, _, _ in HYGIENE])
def test_hygiene_ladder(inputs: HygieneInputs, rung: str | None) -> None:
    assert hygiene_rung(inputs) == rung


@pytest.mark.parametrize(("inputs", "field"), [
    (h("fixed", soap="soap_or_detergent"), "hygiene.water_available"),
    (h("mobile", water_available=True), "hygiene.soap"),
])
def test_incomplete_hygiene_answers_are_refused(inputs: HygieneInputs, field: str) -> None:
    with pytest.raises(SurveyInputError) as e:
        hygiene_rung(inputs)
    assert e.value.field == field


def test_classify_gives_all_three_rungs() -> None:
    rungs = classify(w("public_tap_standpipe", round_trip_minutes=31), s("flush_to_septic_tank", shared=True),
                     h("none"))
    assert (rungs.water, rungs.sanitation, rungs.hygiene) == ("limited", "limited", "no_facility")
