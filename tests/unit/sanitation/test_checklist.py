"""The SNI 2398:2017 checklist: each item computed from the findings and the cooperative's thresholds,
boundaries included; the inspection passes only if every item passes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.sanitation.domain.checklist import (
    CONTRACT_NOTE_MAX,
    SEPTIC_TANK_ITEMS,
    Evidence,
    JudgedItem,
    SepticTankFindings,
    evaluate,
    evaluate_judged,
    evaluate_septic_tank,
    required_volume_m3,
    working_volume_m3,
)
from services.sanitation.domain.errors import RuleViolation
from services.sanitation.domain.settings import DEFAULTS, CooperativeSettings

D = Decimal


def findings(**over: Any) -> SepticTankFindings:
    """A tank that passes every item with the default thresholds (5 people, separate system)."""
    base: dict[str, Any] = dict(
        household_size=5, leak_test_12h_passed=True, compartments=2, inlet_pipe=True, outlet_pipe=True,
        vent_pipe=True, access_manhole=True, length_m=D("1.6"), width_m=D("0.8"), depth_m=D("1.6"),
        freeboard_m=D("0.3"), system="separate", effluent_treatment="infiltration_well",
        distance_to_well_m=D("12"), distance_to_building_m=D("2"), distance_to_infiltration_well_m=None,
    )
    return SepticTankFindings(**{**base, **over})


def item(results: list, code: str):  # type: ignore[no-untyped-def,type-arg]
    return next(r for r in results if r.code == code)


def failing(f: SepticTankFindings, s: CooperativeSettings = DEFAULTS) -> list[str]:
    return [r.code for r in evaluate_septic_tank(f, s) if not r.passed]


def test_a_tank_built_to_standard_passes_every_item_in_checklist_order() -> None:
    results = evaluate_septic_tank(findings(), DEFAULTS)
    assert tuple(r.code for r in results) == SEPTIC_TANK_ITEMS
    assert all(r.passed for r in results)
    assert all(r.finding for r in results)


@pytest.mark.parametrize(("length", "width", "depth", "freeboard", "passes", "fails_on"), [
    ("1.6", "0.8", "1.5", "0.3", True, None),         # ratio exactly 2:1, depth exactly 1.5 incl. 0.3
    ("1.5", "0.75", "1.5", "0.3", True, None),        # every minimum exactly
    ("2.25", "0.75", "1.5", "0.3", True, None),       # ratio exactly 3:1
    ("2.26", "0.75", "1.5", "0.3", False, "length:width 3.01:1"),   # just over 3:1
    ("1.59", "0.8", "1.5", "0.3", False, "length:width 1.99:1"),    # just under 2:1
    ("1.5", "1.5", "1.5", "0.3", False, "length:width 1:1"),        # square
    ("2.0", "0.74", "1.5", "0.3", False, "width 0.74 m (min 0.75 m) FAIL"),
    ("1.48", "0.74", "1.5", "0.3", False, "length 1.48 m (min 1.5 m) FAIL"),
    ("1.6", "0.8", "1.49", "0.3", False, "depth incl. freeboard 1.49 m (min 1.5 m) FAIL"),
    ("1.6", "0.8", "1.6", "0.29", False, "freeboard 0.29 m (min 0.3 m) FAIL"),
])
def test_dimensions(length: str, width: str, depth: str, freeboard: str, passes: bool, fails_on: str | None) -> None:
    f = findings(length_m=D(length), width_m=D(width), depth_m=D(depth), freeboard_m=D(freeboard),
                 household_size=1)  # capacity is its own item: keep it passing
    result = item(evaluate_septic_tank(f, DEFAULTS), "dimensions")
    assert result.passed is passes, result.finding
    if fails_on:
        assert fails_on in result.finding and "FAIL" in result.finding
    else:
        assert "FAIL" not in result.finding


@pytest.mark.parametrize(("code", "field", "value", "passes"), [
    ("distance_to_well", "distance_to_well_m", D("10"), True),
    ("distance_to_well", "distance_to_well_m", D("9.99"), False),
    ("distance_to_well", "distance_to_well_m", None, True),                 # no well near the tank
    ("distance_to_building", "distance_to_building_m", D("1.5"), True),
    ("distance_to_building", "distance_to_building_m", D("1.49"), False),
    ("distance_to_building", "distance_to_building_m", D("0"), False),
    ("distance_to_infiltration_well", "distance_to_infiltration_well_m", D("5"), True),
    ("distance_to_infiltration_well", "distance_to_infiltration_well_m", D("4.99"), False),
    ("distance_to_infiltration_well", "distance_to_infiltration_well_m", None, True),
])
def test_distances(code: str, field: str, value: Decimal | None, passes: bool) -> None:
    result = item(evaluate_septic_tank(findings(**{field: value}), DEFAULTS), code)
    assert result.passed is passes
    assert failing(findings(**{field: value})) == ([] if passes else [code])
    if not passes:
        assert "too close" in result.finding


def test_a_distance_must_be_stated_even_when_there_is_no_well() -> None:
    data = findings().model_dump()
    del data["distance_to_well_m"]
    with pytest.raises(ValueError, match="distance_to_well_m"):
        SepticTankFindings(**data)


@pytest.mark.parametrize(("over", "code"), [
    ({"leak_test_12h_passed": False}, "leak_test_12h"),
    ({"compartments": 1}, "two_compartments"),
    ({"compartments": 0}, "two_compartments"),
    ({"inlet_pipe": False}, "inlet_outlet_vent_pipes"),
    ({"outlet_pipe": False}, "inlet_outlet_vent_pipes"),
    ({"vent_pipe": False}, "inlet_outlet_vent_pipes"),
    ({"access_manhole": False}, "access_manhole"),
    ({"effluent_treatment": "none"}, "effluent_treatment"),
    ({"effluent_treatment": "open_drain"}, "effluent_treatment"),
])
def test_each_observed_item_fails_alone(over: dict[str, Any], code: str) -> None:
    assert failing(findings(**over)) == [code]


@pytest.mark.parametrize("treatment", ["infiltration_well", "infiltration_field", "upflow_filter", "sanitation_garden"])
def test_accepted_further_treatment(treatment: str) -> None:
    assert failing(findings(effluent_treatment=treatment)) == []


def test_missing_pipes_are_named() -> None:
    result = item(evaluate_septic_tank(findings(inlet_pipe=False, vent_pipe=False), DEFAULTS), "inlet_outlet_vent_pipes")
    assert result.finding == "missing pipe: inlet, vent"


@pytest.mark.parametrize(("people", "system", "interval", "needed"), [
    (5, "separate", 3, D("0.65")),    # 5 x (20 x 2 + 30 x 3) L
    (5, "combined", 3, D("1.65")),    # 5 x (120 x 2 + 30 x 3) L: SNI's 1.2 m3 wet + 0.45 m3 sludge for 1 household
    (5, "combined", 5, D("1.95")),    # a longer interval stores more sludge
    (5, "combined", 2, D("1.5")),
    (1, "separate", 3, D("0.13")),
    (10, "separate", 3, D("1.3")),
])
def test_capacity_rule(people: int, system: str, interval: int, needed: Decimal) -> None:
    s = CooperativeSettings(desludging_interval_years=interval)
    assert required_volume_m3(people, system, s) == needed


@pytest.mark.parametrize(("people", "system", "dims", "passes"), [
    (5, "separate", ("1.5", "0.75", "1.5", "0.3"), True),     # the smallest SNI tank: 1.35 m3 >= 0.65
    (5, "combined", ("1.5", "0.75", "1.5", "0.3"), False),    # 1.35 m3 < 1.65
    (5, "combined", ("1.6", "0.8", "1.6", "0.3"), True),      # 1.664 m3 >= 1.65
    (20, "separate", ("2.0", "1.0", "1.6", "0.3"), True),     # 2.6 m3 == 20 x 130 L exactly
    (21, "separate", ("2.0", "1.0", "1.6", "0.3"), False),    # one person more
])
def test_capacity_for_household(people: int, system: str, dims: tuple[str, ...], passes: bool) -> None:
    length, width, depth, freeboard = (D(x) for x in dims)
    f = findings(household_size=people, system=system, length_m=length, width_m=width, depth_m=depth,
                 freeboard_m=freeboard)
    result = item(evaluate_septic_tank(f, DEFAULTS), "capacity_for_household")
    assert result.passed is passes, result.finding
    assert f"{people} people" in result.finding and f"{system} system" in result.finding


def test_working_volume_excludes_the_freeboard() -> None:
    assert working_volume_m3(findings(length_m=D("2"), width_m=D("1"), depth_m=D("1.5"), freeboard_m=D("0.3"))) == D("2.4")


def test_thresholds_are_the_cooperatives_settings() -> None:
    strict = CooperativeSettings(min_distance_to_well_m=D("15"), min_compartments=3, min_width_m=D("0.8"))
    assert failing(findings(), strict) == ["two_compartments", "distance_to_well"]
    assert set(failing(findings(width_m=D("0.79"), length_m=D("1.6")), strict)) == {
        "two_compartments", "distance_to_well", "dimensions"}
    lenient = CooperativeSettings(min_distance_to_building_m=D("1"))
    assert failing(findings(distance_to_building_m=D("1.2")), lenient) == []
    assert failing(findings(distance_to_building_m=D("1.2")), DEFAULTS) == ["distance_to_building"]
    # a longer desludging interval needs more sludge space
    f = findings(household_size=8, system="combined", length_m=D("2.4"), width_m=D("1"), depth_m=D("1.5"),
                 freeboard_m=D("0.3"))  # 2.88 m3 working
    assert failing(f, CooperativeSettings(desludging_interval_years=2)) == []      # needs 8 x 300 L = 2.4
    assert failing(f, CooperativeSettings(desludging_interval_years=5)) == ["capacity_for_household"]  # 3.12


@pytest.mark.parametrize(("over", "field"), [
    ({"length_m": D("0.7"), "width_m": D("0.8")}, "length_m"),
    ({"freeboard_m": D("1.6")}, "freeboard_m"),
    ({"freeboard_m": D("2")}, "freeboard_m"),
    ({"evidence": {"roof": Evidence(note="x")}}, "evidence"),
])
def test_impossible_findings_are_refused(over: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleViolation) as e:
        evaluate_septic_tank(findings(**over), DEFAULTS)
    assert e.value.field == field


def test_only_the_computed_finding_is_published_the_inspectors_note_stays_in_the_service() -> None:
    note = "x" * 200  # free text may name people: it never travels in the published note
    f = findings(width_m=D("0.7"), length_m=D("2.26"), depth_m=D("1.49"), freeboard_m=D("0.29"),
                 evidence={c: Evidence(note=note, photo_ref=f"photos/j/{c}.jpg") for c in SEPTIC_TANK_ITEMS})
    results = evaluate_septic_tank(f, DEFAULTS)
    for r in results:
        published = r.contract_note()
        assert published is not None and published == r.finding and len(published) <= CONTRACT_NOTE_MAX
        assert note not in published
        assert r.note == note and r.photo_ref == f"photos/j/{r.code}.jpg"
    assert item(results, "dimensions").finding.count("FAIL") == 4


@given(st.fixed_dictionaries({
    "leak_test_12h_passed": st.booleans(), "compartments": st.integers(0, 4), "inlet_pipe": st.booleans(),
    "vent_pipe": st.booleans(), "access_manhole": st.booleans(),
    "width_m": st.decimals(D("0.5"), D("1.2"), places=2), "ratio": st.decimals(D("1.5"), D("3.5"), places=2),
    "depth_m": st.decimals(D("1.2"), D("2.0"), places=2), "freeboard_m": st.decimals(D("0.1"), D("0.5"), places=2),
    "household_size": st.integers(1, 12), "system": st.sampled_from(["separate", "combined"]),
    "distance_to_well_m": st.one_of(st.none(), st.decimals(D("0"), D("30"), places=2)),
}))
def test_the_inspection_passes_exactly_when_every_item_passes(data: dict[str, Any]) -> None:
    ratio = data.pop("ratio")
    f = findings(**data, length_m=(data["width_m"] * ratio).quantize(D("0.001")))
    results = evaluate("septic_tank", f, None, DEFAULTS)
    ratio_ok = D(2) * f.width_m <= f.length_m <= D(3) * f.width_m
    dims_ok = ratio_ok and f.width_m >= D("0.75") and f.length_m >= D("1.5") and f.depth_m >= D("1.5") \
        and f.freeboard_m >= D("0.3")
    assert item(results, "dimensions").passed is dims_ok
    assert item(results, "capacity_for_household").passed is (working_volume_m3(f) >= required_volume_m3(
        f.household_size, f.system, DEFAULTS))
    assert len(results) == len(SEPTIC_TANK_ITEMS)


# -- the other kinds ----------------------------------------------------------------------------------


def judged(**over: bool) -> dict[str, JudgedItem]:
    codes = ("meter_installed", "water_flows", "no_leaks")
    return {c: JudgedItem(passed=over.get(c, True), note=None, photo_ref=f"p/{c}.jpg") for c in codes}


def test_water_connection_checklist() -> None:
    results = evaluate_judged("water_connection", judged())
    assert [r.code for r in results] == ["meter_installed", "water_flows", "no_leaks"] and all(r.passed for r in results)
    assert [r.code for r in evaluate_judged("water_connection", judged(water_flows=False)) if not r.passed] == ["water_flows"]


def test_toilet_upgrade_checklist_must_be_answered_whole() -> None:
    items = {"water_seal_pan": JudgedItem(passed=True), "no_leaks": JudgedItem(passed=True),
             "roof": JudgedItem(passed=True)}
    with pytest.raises(RuleViolation, match="missing: connected_to_safe_containment; unknown: roof") as e:
        evaluate_judged("toilet_upgrade", items)
    assert e.value.field == "items"


def test_each_kind_is_inspected_with_its_own_checklist() -> None:
    with pytest.raises(RuleViolation, match="septic tank is inspected with its measured findings"):
        evaluate("septic_tank", None, judged(), DEFAULTS)
    with pytest.raises(RuleViolation, match="water_connection job is inspected with the items"):
        evaluate("water_connection", findings(), None, DEFAULTS)
    with pytest.raises(RuleViolation):
        evaluate("toilet_upgrade", None, None, DEFAULTS)


@pytest.mark.parametrize(("over", "message"), [
    ({"desludging_interval_years": 1}, "greater than or equal to 2"),
    ({"desludging_interval_years": 6}, "less than or equal to 5"),
    ({"min_length_width_ratio": D("3.5")}, "cannot exceed"),
    ({"min_freeboard_m": D("1.5")}, "less than min_depth_m"),
    ({"min_width_m": D("0")}, "greater than 0"),
])
def test_settings_are_validated(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CooperativeSettings(**over)


def test_a_septic_tank_is_not_judged_item_by_item() -> None:
    with pytest.raises(RuleViolation, match="a septic_tank job is inspected with the septic-tank findings") as e:
        evaluate_judged("septic_tank", {"no_leaks": JudgedItem(passed=True)})
    assert e.value.field == "items"
