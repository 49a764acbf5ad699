"""The sanitation rung after construction and emptying, table by table (``jmp.sanitation_after_works``),
its agreement with reporting's ``sanitation_now`` on every input (the "shared" answer included),
and the member commands the sanitation reaction decides with (each fact recorded once)."""

from __future__ import annotations

from datetime import date
from itertools import product
from typing import Any
from uuid import uuid4

import pytest

from services.members.domain import member as m
from services.members.domain.errors import MemberRuleViolation
from services.members.domain.jmp import SANITATION_LADDER, sanitation_after_works
from services.reporting.indicators.maths import sanitation_now
from shared.contracts.members import SanitationInputs
from tests.unit.members.helpers import given
from tests.unit.members.test_member_commands import DETAILS, TODAY, survey

#: (case, latest survey's rung, that survey's "shared", handed over, emptied to an IPLT) -> (rung, source)
RUNGS: list[tuple[str, Any, Any, bool, bool, tuple[Any, Any]]] = [
    ("no survey, nothing built", None, None, False, False, (None, None)),
    ("no survey, handed over", None, None, True, False, ("basic", "construction")),
    ("no survey, emptied to IPLT", None, None, True, True, ("safely_managed", "emptying")),
    ("receipt without a known handover", None, None, False, True, (None, None)),
    ("open defecation, nothing built", "open_defecation", None, False, False, ("open_defecation", "survey")),
    ("open defecation, handed over", "open_defecation", None, True, False, ("basic", "construction")),
    ("unimproved, handed over", "unimproved", False, True, False, ("basic", "construction")),
    ("unimproved, emptied to IPLT", "unimproved", False, True, True, ("safely_managed", "emptying")),
    ("unimproved, shared, handed over", "unimproved", True, True, False, ("limited", "construction")),
    ("unimproved, shared, emptied", "unimproved", True, True, True, ("limited", "emptying")),
    ("limited (shared), handed over: the survey ties", "limited", True, True, False, ("limited", "survey")),
    ("limited (shared), emptied: the survey ties", "limited", True, True, True, ("limited", "survey")),
    ("basic, handed over: the survey ties", "basic", False, True, False, ("basic", "survey")),
    ("basic, emptied to IPLT", "basic", False, True, True, ("safely_managed", "emptying")),
    ("safely managed, handed over", "safely_managed", False, True, False, ("safely_managed", "survey")),
    ("safely managed, emptied: the survey ties", "safely_managed", False, True, True, ("safely_managed", "survey")),
]


@pytest.mark.parametrize(("surveyed", "shared", "handed", "emptied", "expected"),
                         [r[1:] for r in RUNGS], ids=[r[0] for r in RUNGS])
def test_rung_table(surveyed: Any, shared: Any, handed: bool, emptied: bool, expected: tuple[Any, Any]) -> None:
    assert sanitation_after_works(surveyed, shared, handed, emptied) == expected


@pytest.mark.parametrize(("surveyed", "handed", "emptied"),
                         list(product((None, *SANITATION_LADDER), (False, True), (False, True))))
def test_agrees_with_reporting_whatever_the_survey_says_of_sharing(surveyed: Any, handed: bool, emptied: bool) -> None:
    # reporting's emptying flag is "that septic tank, handed over, emptied to an IPLT": never without the handover;
    # reporting keeps the latest survey's "shared" answer (reporting.members.v2) and follows JMP on it too
    for shared in (None, False, True):
        rung, _ = sanitation_after_works(surveyed, shared, handed, emptied)
        assert rung == sanitation_now(surveyed, handed, handed and emptied, shared), shared


# -- the member aggregate and the reaction's commands ----------------------------------------------------------


def member(*batches: list[Any]) -> tuple[str, list[list[Any]]]:
    mid = str(uuid4())
    return mid, [m.register(m.Member(), mid, dict(DETAILS), TODAY), *batches]


def state_of(mid: str, history: list[list[Any]]) -> m.Member:
    return given(m.fold, mid, *history)


def test_a_handover_is_recorded_once_and_a_water_connection_not_at_all() -> None:
    mid, history = member()
    job = str(uuid4())
    first = m.record_handover(state_of(mid, history), job, "septic_tank", date(2025, 3, 20))
    assert [e.type for e in first] == [m.SANITATION_HANDED_OVER]
    assert first[0].payload == {"member_id": mid, "job_id": job, "kind": "septic_tank", "completed_on": "2025-03-20"}
    history.append(first)
    assert m.record_handover(state_of(mid, history), job, "septic_tank", date(2025, 3, 20)) == []
    assert m.record_handover(state_of(mid, history), str(uuid4()), "water_connection", date(2025, 4, 1)) == []
    state = state_of(mid, history)
    assert state.handed_over_on == date(2025, 3, 20) and state.sanitation() == ("basic", "construction")


def test_an_emptying_is_recorded_once_per_visit_and_counts_for_a_septic_tank_only() -> None:
    mid, history = member()
    tank, toilet, visit = str(uuid4()), str(uuid4()), str(uuid4())
    history.append(m.record_tank_emptied(state_of(mid, history), tank, visit, date(2025, 9, 3)))
    assert m.record_tank_emptied(state_of(mid, history), tank, visit, date(2025, 9, 3)) == []
    assert state_of(mid, history).tank_emptied_on is None  # the handover is not known yet
    history.append(m.record_handover(state_of(mid, history), toilet, "toilet_upgrade", date(2025, 2, 1)))
    history.append(m.record_tank_emptied(state_of(mid, history), toilet, str(uuid4()), date(2025, 5, 1)))
    assert state_of(mid, history).sanitation() == ("basic", "construction")
    history.append(m.record_handover(state_of(mid, history), tank, "septic_tank", date(2025, 3, 20)))
    history.append(m.record_tank_emptied(state_of(mid, history), tank, str(uuid4()), date(2025, 8, 1)))
    state = state_of(mid, history)
    assert state.tank_emptied_on == date(2025, 8, 1) and state.sanitation() == ("safely_managed", "emptying")
    assert state.handed_over_on == date(2025, 3, 20)


def test_follow_up_due_until_a_survey_on_or_after_the_handover() -> None:
    mid, history = member()
    history.append(m.record_survey(state_of(mid, history), survey(date(2025, 1, 20)), TODAY))
    assert state_of(mid, history).follow_up_due is False
    history.append(m.record_handover(state_of(mid, history), str(uuid4()), "septic_tank", date(2025, 3, 20)))
    assert state_of(mid, history).follow_up_due is True
    history.append(m.record_survey(state_of(mid, history), survey(date(2025, 3, 19)), TODAY))
    assert state_of(mid, history).follow_up_due is True  # before the handover: entered late
    shared = SanitationInputs(facility="flush_to_septic_tank", shared=True, excreta="never_emptied")
    history.append(m.record_survey(state_of(mid, history), survey(date(2025, 3, 20), sanitation=shared), TODAY))
    state = state_of(mid, history)
    assert state.follow_up_due is False
    assert state.sanitation() == ("limited", "survey")  # the follow-up found the tank shared


def test_an_unknown_member_is_refused() -> None:
    with pytest.raises(MemberRuleViolation):
        m.record_handover(m.Member(), str(uuid4()), "septic_tank", date(2025, 3, 20))
    with pytest.raises(MemberRuleViolation):
        m.record_tank_emptied(m.Member(), str(uuid4()), str(uuid4()), date(2025, 3, 20))
