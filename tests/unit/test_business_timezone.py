"""One business time-zone setting for every service: "today" is the cooperatives' local date."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.loans.settings import LoansSettings
from services.members.settings import MembersSettings
from services.reporting.settings import ReportingSettings
from services.sanitation.settings import SanitationSettings

ALL = (MembersSettings, LoansSettings, SanitationSettings, ReportingSettings)


@pytest.mark.parametrize("settings", ALL, ids=lambda c: c.__name__)
def test_every_service_reads_its_zone_from_one_setting(settings: type, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = settings.model_config["env_prefix"]
    assert settings().business_timezone == "Asia/Jakarta"
    # UTC+14: for ten hours of every day its date is a day ahead of UTC, a day ahead of Jakarta for seven
    monkeypatch.setenv(f"{prefix}BUSINESS_TIMEZONE", "Pacific/Kiritimati")
    s = settings()
    assert s.business_timezone == "Pacific/Kiritimati"
    before = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert s.business_today() in (before, datetime.now(ZoneInfo("Pacific/Kiritimati")).date())


@pytest.mark.parametrize("settings", ALL, ids=lambda c: c.__name__)
def test_an_unknown_zone_is_refused_with_the_setting_named(settings: type) -> None:
    with pytest.raises(ValidationError, match="business_timezone 'Asia/Atlantis' is not an IANA time zone"):
        settings(business_timezone="Asia/Atlantis")
