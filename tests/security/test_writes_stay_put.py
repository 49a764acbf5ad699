"""The suite's own guard: ``cooperatives_untouched`` (tests/security/conftest.py) fails a test that writes
in a cooperative it did not make, and no marker may let a test write in a shared one.

The guard compares each cooperative's footprint (events per service, reporting's targets and consents,
status and keys on the platform) before and after every test. Here it is shown to see real writes, made
through the services' APIs in a cooperative that existed before the footprint was taken (as the demo
cooperatives do for every other test), and to pass over the same writes once they are allowed.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.tenancy import Role
from tests.security.conftest import (
    SHARED_COOPERATIVES,
    A,
    B,
    System,
    _cooperatives,
    allowed_writes,
    changed_cooperatives,
    own_cooperative,
)


async def test_a_write_in_a_cooperative_that_existed_before_is_caught(system: System,
                                                                      administrator: dict[str, Any]) -> None:
    """A member registered and a report target set in a cooperative that was there before the footprint
    was taken (the test's own here, so that the suite's guard around this very test stays green): the
    comparison names that cooperative and what changed, and nothing once the cooperative is allowed."""
    coop, _ = await own_cooperative(system, "guard")
    await system.quiet()
    before = await _cooperatives(administrator)
    assert coop.tenant_id in before and A in before and B in before
    r = await system["members"].post("/members", headers=coop.h(Role.FIELD_OFFICER), json={
        "member_number": "GUARD-1", "name": "Penjaga", "sex": "female", "joined_on": "2021-01-04",
        "household_size": 3})
    assert r.status_code == 201, r.text
    await system.quiet()
    after_member = await _cooperatives(administrator)
    changed = changed_cooperatives(before, after_member, set())
    assert list(changed) == [coop.tenant_id], changed
    assert ("members", "events", 1) in changed[coop.tenant_id], changed
    assert changed_cooperatives(before, after_member, {coop.tenant_id}) == {}
    # a table that is not an event log (reporting's targets) is part of the footprint too
    r = await system["reporting"].put("/reports/targets/households", json={"target": 50, "baseline": 1},
                                      headers=coop.h())
    assert r.status_code == 200, r.text
    changed = changed_cooperatives(after_member, await _cooperatives(administrator), set())
    assert list(changed) == [coop.tenant_id], changed
    assert any(entry[:3] == ("reporting", "target", "households") for entry in changed[coop.tenant_id]), changed


async def test_a_cooperative_made_during_the_test_is_the_tests_own(system: System,
                                                                   administrator: dict[str, Any]) -> None:
    """A cooperative that did not exist when the footprint was taken is the test's own: writing in it is
    no change to report (how ``own_cooperative`` lets a test write without a marker)."""
    before = await _cooperatives(administrator)
    coop, ids = await own_cooperative(system, "guard-new", world="members")
    after = await _cooperatives(administrator)
    assert coop.tenant_id not in before and coop.tenant_id in after and len(ids["members"]) == 2
    assert changed_cooperatives(before, after, set()) == {}


@pytest.mark.parametrize("names", [(A,), (B,), ("sec-roles",), ("sec-fuzz", A)])
def test_a_marker_may_not_name_a_shared_cooperative(names: tuple[str, ...]) -> None:
    assert SHARED_COOPERATIVES == {A, B, "sec-roles"}
    with pytest.raises(pytest.fail.Exception, match="writes_in names shared cooperatives"):
        allowed_writes(pytest.mark.writes_in(*names).mark)
    assert allowed_writes(pytest.mark.writes_in("sec-fuzz").mark) == {"sec-fuzz"}
    assert allowed_writes(None) == set()


def test_no_security_test_is_marked_to_write_in_a_shared_cooperative() -> None:
    """Every ``writes_in`` marker left in the suite names a module's own cooperative only."""
    import pathlib
    import re

    here = pathlib.Path(__file__).parent
    marked = {(p.name, m) for p in sorted(here.glob("test_*.py")) if p.name != pathlib.Path(__file__).name
              for m in re.findall(r"@pytest\.mark\.writes_in\(([^)]*)\)", p.read_text())}
    assert marked == {("test_fuzz.py", '"sec-fuzz"')}, marked
