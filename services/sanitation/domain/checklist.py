"""The inspection checklists, as structured items that each pass or fail.

A septic tank is inspected against SNI 2398:2017. The inspector records what was observed and measured
(``SepticTankFindings``); the dimension, capacity and distance items are *computed* from the measured
values and the cooperative's thresholds, so an inspector cannot pass a tank that measures wrong. The
watertightness, compartments, pipes, manhole and effluent items are observations. The inspection passes
only if every item passes.

A toilet upgrade and a water connection have no SNI checklist; their inspection is a short list of
observations (``JUDGED_CHECKLISTS``), so that every kind of job goes through the same
inspected -> completed lifecycle and a financing's second tranche can follow any passed inspection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.sanitation.domain.errors import RuleViolation
from services.sanitation.domain.settings import CooperativeSettings

SEPTIC_TANK_ITEMS: tuple[str, ...] = (
    "leak_test_12h",
    "two_compartments",
    "inlet_outlet_vent_pipes",
    "access_manhole",
    "capacity_for_household",
    "dimensions",
    "effluent_treatment",
    "distance_to_well",
    "distance_to_building",
    "distance_to_infiltration_well",
)

#: checklists of observations for the kinds without an SNI septic-tank checklist
JUDGED_CHECKLISTS: dict[str, tuple[str, ...]] = {
    "toilet_upgrade": ("water_seal_pan", "connected_to_safe_containment", "no_leaks"),
    "water_connection": ("meter_installed", "water_flows", "no_leaks"),
}

EffluentTreatment = Literal["infiltration_well", "infiltration_field", "upflow_filter", "sanitation_garden",
                            "none", "open_drain"]
#: further treatment of the effluent that SNI 2398:2017 accepts (sumur resapan, bidang resapan, up-flow
#: filter, taman sanita)
ACCEPTED_EFFLUENT_TREATMENT = frozenset({"infiltration_well", "infiltration_field", "upflow_filter",
                                         "sanitation_garden"})

Measure = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3)]
Distance = Annotated[Decimal, Field(ge=0, le=10000, max_digits=8, decimal_places=2)]
NOTE_MAX = 200
#: the published item note holds the computed finding
CONTRACT_NOTE_MAX = 500


class Evidence(BaseModel):
    """The inspector's note and photo for one checklist item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str | None = Field(default=None, max_length=NOTE_MAX)
    photo_ref: str | None = Field(default=None, max_length=200, description="Where the photo is stored")


class JudgedItem(Evidence):
    """One observation item of a toilet-upgrade or water-connection checklist."""

    passed: bool


class SepticTankFindings(BaseModel):
    """What the inspector observed and measured at a septic tank (inner dimensions, metres).

    The distance to a well and to a rainwater infiltration well must be sent: ``null`` states that there
    is no such well near the tank.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    household_size: int = Field(ge=1, le=50, description="People using the toilet (the household)")
    leak_test_12h_passed: bool = Field(description="Water level held for 12 hours: the tank is watertight")
    compartments: int = Field(ge=0, le=10)
    inlet_pipe: bool
    outlet_pipe: bool
    vent_pipe: bool
    access_manhole: bool = Field(description="A manhole the desludging hose can use")
    length_m: Measure = Field(description="Inner length (the longer side)")
    width_m: Measure
    depth_m: Measure = Field(description="Inner depth from the floor to the cover, freeboard included")
    freeboard_m: Annotated[Decimal, Field(ge=0, le=100, max_digits=6, decimal_places=3)] = Field(
        description="Air space between the outlet's liquid level and the cover")
    system: Literal["separate", "combined"] = Field(
        description="separate: toilet water only; combined: bathing and washing water too")
    effluent_treatment: EffluentTreatment
    distance_to_well_m: Distance | None = Field(description="To the nearest drinking-water well; null: none")
    distance_to_building_m: Distance
    distance_to_infiltration_well_m: Distance | None = Field(
        description="To the nearest rainwater infiltration well; null: none")
    evidence: dict[str, Evidence] = Field(default_factory=dict, description="Note and photo per item code")


@dataclass(frozen=True)
class ItemResult:
    """One checklist item's result: the rule's own finding and the inspector's evidence."""

    code: str
    passed: bool
    finding: str | None = None
    note: str | None = None
    photo_ref: str | None = None

    def contract_note(self) -> str | None:
        """The published note: the computed finding only. The inspector's free-text note may name people,
        so it stays in the service (the internal findings event and the API)."""
        text = self.finding
        if text is not None and len(text) > CONTRACT_NOTE_MAX:  # findings are far shorter; kept as a guard
            text = text[: CONTRACT_NOTE_MAX - 1] + "…"
        return text


def m(value: Decimal) -> str:
    """A measure for people: 1.50 -> '1.5', 10 -> '10'."""
    text = format(value.normalize(), "f")
    return text


def working_volume_m3(f: SepticTankFindings) -> Decimal:
    """Liquid volume of the tank: length x width x (depth - freeboard)."""
    return f.length_m * f.width_m * (f.depth_m - f.freeboard_m)


def required_volume_m3(household_size: int, system: str, s: CooperativeSettings) -> Decimal:
    """The capacity rule (see ``settings``): people x (daily flow x retention + yearly sludge x interval)."""
    flow = s.separate_system_l_per_person_day if system == "separate" else s.combined_system_l_per_person_day
    litres = household_size * (flow * s.retention_days + s.sludge_l_per_person_year * s.desludging_interval_years)
    return Decimal(litres) / 1000


def _check_input(f: SepticTankFindings) -> None:
    if f.width_m > f.length_m:
        raise RuleViolation(f"length ({m(f.length_m)} m) is the longer side of the tank, but the width "
                            f"({m(f.width_m)} m) is longer", field="length_m")
    if f.freeboard_m >= f.depth_m:
        raise RuleViolation(f"freeboard ({m(f.freeboard_m)} m) must be less than the depth ({m(f.depth_m)} m)",
                            field="freeboard_m")
    unknown = sorted(set(f.evidence) - set(SEPTIC_TANK_ITEMS))
    if unknown:
        raise RuleViolation(f"evidence for unknown checklist items: {', '.join(unknown)}; the items are "
                            f"{', '.join(SEPTIC_TANK_ITEMS)}", field="evidence")


def _at_least(label: str, value: Decimal, minimum: Decimal, unit: str = " m") -> tuple[bool, str]:
    ok = value >= minimum
    return ok, f"{label} {m(value)}{unit} (min {m(minimum)}{unit}) {'ok' if ok else 'FAIL'}"


def _distance(code: str, what: str, value: Decimal | None, minimum: Decimal) -> tuple[str, bool, str]:
    if value is None:
        return code, True, f"no {what} near the tank"
    ok = value >= minimum
    verdict = "" if ok else ": too close"
    return code, ok, f"{m(value)} m from the {what} (min {m(minimum)} m){verdict}"


def evaluate_septic_tank(f: SepticTankFindings, s: CooperativeSettings) -> list[ItemResult]:
    """Every SNI 2398:2017 item, in checklist order, computed from the findings and the thresholds."""
    _check_input(f)
    results: list[tuple[str, bool, str]] = []

    results.append(("leak_test_12h", f.leak_test_12h_passed,
                    "12-hour leak test passed: watertight" if f.leak_test_12h_passed
                    else "12-hour leak test failed: not watertight"))

    ok = f.compartments >= s.min_compartments
    results.append(("two_compartments", ok, f"{f.compartments} compartment{'s' if f.compartments != 1 else ''} "
                                            f"(min {s.min_compartments})"))

    missing = [name for name, present in (("inlet", f.inlet_pipe), ("outlet", f.outlet_pipe), ("vent", f.vent_pipe))
               if not present]
    results.append(("inlet_outlet_vent_pipes", not missing,
                    "inlet, outlet and vent pipes present" if not missing
                    else f"missing pipe: {', '.join(missing)}"))

    results.append(("access_manhole", f.access_manhole,
                    "access manhole for desludging present" if f.access_manhole
                    else "no access manhole for desludging"))

    working, needed = working_volume_m3(f), required_volume_m3(f.household_size, f.system, s)
    flow = s.separate_system_l_per_person_day if f.system == "separate" else s.combined_system_l_per_person_day
    ok = working >= needed
    results.append(("capacity_for_household", ok,
                    f"working volume {m(working.quantize(Decimal('0.001')))} m3 "
                    f"({m(f.length_m)} x {m(f.width_m)} x {m(f.depth_m - f.freeboard_m)} m) "
                    f"{'holds' if ok else 'is less than'} the {m(needed)} m3 needed for {f.household_size} "
                    f"{'person' if f.household_size == 1 else 'people'} ({f.system} system: {flow} L/day x "
                    f"{m(s.retention_days)} days + {s.sludge_l_per_person_year} L/year x "
                    f"{s.desludging_interval_years} years each)"))

    ratio_ok = s.min_length_width_ratio * f.width_m <= f.length_m <= s.max_length_width_ratio * f.width_m
    ratio = (f.length_m / f.width_m).quantize(Decimal("0.01"))
    checks = [
        (ratio_ok, f"length:width {m(ratio)}:1 ({m(s.min_length_width_ratio)}:1 to "
                   f"{m(s.max_length_width_ratio)}:1) {'ok' if ratio_ok else 'FAIL'}"),
        _at_least("width", f.width_m, s.min_width_m),
        _at_least("length", f.length_m, s.min_length_m),
        _at_least("depth incl. freeboard", f.depth_m, s.min_depth_m),
        _at_least("freeboard", f.freeboard_m, s.min_freeboard_m),
    ]
    results.append(("dimensions", all(ok for ok, _ in checks), "; ".join(text for _, text in checks)))

    treated = f.effluent_treatment in ACCEPTED_EFFLUENT_TREATMENT
    results.append(("effluent_treatment", treated,
                    f"effluent to further treatment: {f.effluent_treatment.replace('_', ' ')}" if treated
                    else f"effluent not treated further ({f.effluent_treatment.replace('_', ' ')})"))

    results.append(_distance("distance_to_well", "drinking-water well", f.distance_to_well_m,
                             s.min_distance_to_well_m))
    results.append(_distance("distance_to_building", "building", f.distance_to_building_m,
                             s.min_distance_to_building_m))
    results.append(_distance("distance_to_infiltration_well", "rainwater infiltration well",
                             f.distance_to_infiltration_well_m, s.min_distance_to_infiltration_well_m))

    assert tuple(code for code, _, _ in results) == SEPTIC_TANK_ITEMS
    out = []
    for code, passed, finding in results:
        ev = f.evidence.get(code, Evidence())
        out.append(ItemResult(code, passed, finding, ev.note, ev.photo_ref))
    return out


def evaluate_judged(kind: str, items: Mapping[str, JudgedItem]) -> list[ItemResult]:
    """A toilet-upgrade or water-connection checklist: every listed item must be answered."""
    codes = JUDGED_CHECKLISTS.get(kind)
    if codes is None:
        raise RuleViolation(f"a {kind} job is inspected with the septic-tank findings, not a list of items",
                            field="items")
    missing = [c for c in codes if c not in items]
    unknown = sorted(set(items) - set(codes))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown: {', '.join(unknown)}")
        raise RuleViolation(f"the {kind} checklist is {', '.join(codes)} ({'; '.join(parts)})", field="items")
    return [ItemResult(c, items[c].passed, None, items[c].note, items[c].photo_ref) for c in codes]


def evaluate(kind: str, septic_tank: SepticTankFindings | None, items: Mapping[str, JudgedItem] | None,
             settings: CooperativeSettings) -> list[ItemResult]:
    """The checklist of a job of ``kind``: septic-tank findings for a septic tank, items otherwise."""
    if kind == "septic_tank":
        if septic_tank is None or items is not None:
            raise RuleViolation("a septic tank is inspected with its measured findings (septic_tank), not a "
                                "list of items", field="septic_tank")
        return evaluate_septic_tank(septic_tank, settings)
    if septic_tank is not None or items is None:
        raise RuleViolation(f"a {kind} job is inspected with the items {', '.join(JUDGED_CHECKLISTS[kind])}",
                            field="items")
    return evaluate_judged(kind, items)
