"""Builders of job histories at each stage of the lifecycle, for the domain tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from services.sanitation.domain import contractor as c
from services.sanitation.domain import job as j
from services.sanitation.domain.checklist import JudgedItem, SepticTankFindings
from services.sanitation.domain.settings import DEFAULTS, CooperativeSettings
from tests.unit.sanitation.given import History

JOB = "2a9b8c7d-6e5f-4d3c-9b2a-1f0e9d8c7b6a"
MEMBER = "5b7e2d14-3f8a-4c19-a6d2-9e0c1b4f7a85"
FINANCING = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CERTIFIED, OTHER = "6f1d2c3b-4a59-4e87-9d6c-5b4a39281706", "0c9b8a7f-6e5d-4c3b-8a29-181716151413"
TODAY = date(2026, 6, 30)
ORDERED, ASSIGNED, STARTED = date(2025, 4, 3), date(2025, 4, 5), date(2025, 4, 7)
INSPECTED, REWORKED, REINSPECTED, COMPLETED = date(2025, 4, 20), date(2025, 4, 22), date(2025, 4, 25), date(2025, 4, 28)
D = Decimal


def contractor(cid: str = CERTIFIED, *, certified: bool = True, valid_until: date = date(2027, 1, 31),
               active: bool = True) -> c.Contractor:
    h = History(c.evolve, c.Contractor(), cid).given(c.register(c.Contractor(), cid, date(2024, 1, 10), TODAY))
    if certified:
        h.given(c.certify(h.state, "SNI-001", date(2024, 2, 1), valid_until, TODAY))
    if not active:
        h.given(c.deactivate(h.state, "stopped working", TODAY))
    return h.state  # type: ignore[no-any-return]


def findings(**over: Any) -> SepticTankFindings:
    base: dict[str, Any] = dict(
        household_size=5, leak_test_12h_passed=True, compartments=2, inlet_pipe=True, outlet_pipe=True,
        vent_pipe=True, access_manhole=True, length_m=D("1.6"), width_m=D("0.8"), depth_m=D("1.6"),
        freeboard_m=D("0.3"), system="separate", effluent_treatment="upflow_filter",
        distance_to_well_m=D("12"), distance_to_building_m=D("2"), distance_to_infiltration_well_m=D("6"),
    )
    return SepticTankFindings(**{**base, **over})


FAILING = {"width_m": D("0.7"), "length_m": D("1.6")}  # width under 0.75 m


def judged(kind: str, passed: bool = True) -> dict[str, JudgedItem]:
    from services.sanitation.domain.checklist import JUDGED_CHECKLISTS

    return {code: JudgedItem(passed=passed) for code in JUDGED_CHECKLISTS[kind]}


def ordered(kind: str = "septic_tank", financing: str | None = FINANCING, village: str | None = None) -> History:
    return History(j.evolve, j.ConstructionJob(), JOB).given(
        j.order(j.ConstructionJob(), JOB, MEMBER, kind, financing, ORDERED, village, TODAY))  # type: ignore[arg-type]


def assigned(kind: str = "septic_tank", financing: str | None = FINANCING) -> History:
    h = ordered(kind, financing)
    return h.given(j.assign(h.state, contractor(), ASSIGNED, TODAY))


def started(kind: str = "septic_tank", financing: str | None = FINANCING) -> History:
    h = assigned(kind, financing)
    return h.given(j.start(h.state, STARTED, TODAY))


def inspect(h: History, passed: bool, on: date, settings: CooperativeSettings = DEFAULTS) -> History:
    kind = h.state.kind
    if kind == "septic_tank":
        f = findings() if passed else findings(**FAILING)
        return h.given(j.inspect(h.state, on, f, None, settings, TODAY))
    return h.given(j.inspect(h.state, on, None, judged(kind, passed), settings, TODAY))


def failed(kind: str = "septic_tank", financing: str | None = FINANCING) -> History:
    return inspect(started(kind, financing), False, INSPECTED)


def in_rework(kind: str = "septic_tank") -> History:
    h = failed(kind)
    return h.given(j.rework(h.state, REWORKED, "widened the tank", TODAY))


def passed(kind: str = "septic_tank", financing: str | None = FINANCING) -> History:
    h = in_rework(kind) if financing == FINANCING else inspect(started(kind, financing), False, INSPECTED)
    if h.state.status == "inspection_failed":
        h.given(j.rework(h.state, REWORKED, None, TODAY))
    return inspect(h, True, REINSPECTED)


def completed(kind: str = "septic_tank", on: date = COMPLETED, settings: CooperativeSettings = DEFAULTS,
              pdam: str | None = None) -> History:
    h = passed(kind)
    return h.given(j.complete(h.state, on, pdam, settings, TODAY))
