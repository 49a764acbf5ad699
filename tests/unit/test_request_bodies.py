"""Every service's request bodies keep the kernel's rules (``shared.schemas.RequestBody``), which they
inherit rather than restate: an unknown field is refused by name, and so is a date outside the business
window."""

from __future__ import annotations

import inspect
from datetime import date

import pytest
from pydantic import ValidationError

from services.loans.api import schemas as loans
from services.members.api import schemas as members
from services.reporting.api import schemas as reporting
from services.sanitation.api import schemas as sanitation
from shared.schemas import RequestBody

#: a response model that reuses a request body's fields and takes what a newer server adds
TOLERANT = {loans.SettingsResponse}
BODIES = sorted((model for module in (loans, members, reporting, sanitation) for model in vars(module).values()
                 if inspect.isclass(model) and issubclass(model, RequestBody) and model.model_fields
                 and model not in TOLERANT), key=lambda m: f"{m.__module__}.{m.__name__}")


def test_every_service_declares_request_bodies() -> None:
    assert {m.__module__ for m in BODIES} == {loans.__name__, members.__name__, reporting.__name__,
                                              sanitation.__name__}
    assert len(BODIES) > 40


@pytest.mark.parametrize("model", BODIES, ids=lambda m: f"{m.__module__.split('.')[1]}.{m.__name__}")
def test_an_unknown_field_is_refused_by_name(model: type[RequestBody]) -> None:
    with pytest.raises(ValidationError) as e:
        model.model_validate({"surely_not_a_field": 1})
    assert any(err["type"] == "extra_forbidden" and err["loc"] == ("surely_not_a_field",)
               for err in e.value.errors())


@pytest.mark.parametrize("model", [m for m in BODIES if any(
    f.annotation in (date, date | None) for f in m.model_fields.values())], ids=lambda m: m.__name__)
def test_a_date_outside_the_business_window_is_refused(model: type[RequestBody]) -> None:
    name = next(n for n, f in model.model_fields.items() if f.annotation in (date, date | None))
    with pytest.raises(ValidationError) as e:
        model.model_validate({name: "2999-01-01"})
    assert any(err["loc"] == (name,) and "business date" in err["msg"] for err in e.value.errors())
