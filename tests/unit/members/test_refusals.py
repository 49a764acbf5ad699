"""Members-domain refusals no other test reached: the field and reason, and nothing changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.members.domain import organisation as org
from services.members.domain import settings as cfg
from services.members.domain.errors import MemberRuleViolation
from tests.unit.members.test_organisation_and_sessions import a_centre, a_group


def test_a_groups_name_cannot_be_cleared() -> None:
    group, _ = a_group()
    before = repr(group)
    with pytest.raises(MemberRuleViolation, match="cannot be cleared") as e:
        org.change_group(group, {"name": ""}, centre=a_centre())
    assert e.value.field == "name"
    assert repr(group) == before and group.name == "Majelis Mawar"


@pytest.mark.parametrize(("change", "message", "field"), [
    ({"min_tenure_months": -1}, "between 0 and 120 months", "min_tenure_months"),
    ({"min_tenure_months": 121}, "between 0 and 120 months", "min_tenure_months"),
    ({"max_days_overdue": -1}, "between 0 and 365 days", "max_days_overdue"),
    ({"max_days_overdue": 366}, "between 0 and 365 days", "max_days_overdue"),
])
def test_eligibility_thresholds_are_bounded(change: dict[str, int], message: str, field: str) -> None:
    state = cfg.DEFAULT
    with pytest.raises(MemberRuleViolation, match=message) as e:
        cfg.change(state, replace(state, **change))  # type: ignore[arg-type]
    assert e.value.field == field
    assert state == cfg.CooperativeSettings() and state.min_tenure_months == 12 and state.max_days_overdue == 30


def test_thresholds_at_their_bounds_are_accepted() -> None:
    assert cfg.change(cfg.DEFAULT, replace(cfg.DEFAULT, min_tenure_months=120, max_days_overdue=365))
    assert cfg.change(cfg.DEFAULT, replace(cfg.DEFAULT, min_tenure_months=0, max_days_overdue=0))


def test_changing_or_closing_a_group_nobody_formed_is_refused() -> None:
    nobody = org.Group()
    with pytest.raises(MemberRuleViolation, match="^no such group$"):
        org.change_group(nobody, {"name": "Majelis Melati"}, centre=a_centre())
    with pytest.raises(MemberRuleViolation, match="^no such group$"):
        org.close_group(nobody, date(2025, 1, 1), date(2025, 1, 2), active_members=0)
    assert nobody == org.Group() and not nobody.exists


def test_correcting_the_personal_data_of_an_erased_member_is_refused() -> None:
    """Defensive: erasure needs an exited member and ``correct_details`` refuses an exited one first
    (test_an_exited_members_record_is_closed); here a member still active but marked erased by hand.
    A correction of personal data (a name, a NIK, a phone) is refused and decides nothing."""
    from services.members.domain import member as m
    from tests.unit.members.helpers import given
    from tests.unit.members.test_member_commands import DETAILS

    member_id = "3c1d2e4f-0a9b-4c8d-9e7f-6a5b4c3d2e1f"
    registered = given(m.fold, member_id, m.register(m.Member(), member_id, DETAILS, date(2024, 1, 1)))
    erased = replace(registered, personal_data_erased=True)
    assert erased.exists and erased.exited_on is None
    for field in m.PERSONAL_FIELDS:
        with pytest.raises(m.StateConflict, match="^this member's personal data was erased$") as e:
            m.correct_details(erased, {}, date(2024, 2, 1), personal_fields_changed=(field,))
        assert e.value.field is None
    # nothing personal to correct: the rest of the record may still be corrected
    [changed] = m.correct_details(erased, {"village": "Desa Baru"}, date(2024, 2, 1))
    assert changed.payload["changed_fields"] == ["village"]
    assert erased == replace(registered, personal_data_erased=True)
