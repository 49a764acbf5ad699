"""Consumer sources are chosen in one place (``shared.runtime``): each consumer names its producers, and a
service whose embedded event source lacks one of their database URLs refuses to start, naming the setting."""

from __future__ import annotations

import pytest

from services.loans.app import build_runtime as loans_runtime
from services.loans.reactions import TrancheRelease
from services.loans.settings import LoansSettings
from services.members.app import build_runtime as members_runtime
from services.members.sanitation_reactions import SanitationWorks
from services.members.settings import MembersSettings
from services.reporting.__main__ import build_runtime as reporting_runtime
from services.reporting.__main__ import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.sanitation.app import build_runtime as sanitation_runtime
from services.sanitation.reactions import TrancheOrdersJob
from services.sanitation.settings import SanitationSettings
from shared.consumer import topics_of
from shared.runtime import MissingSource, Reaction, source_urls
from shared.serve import main

#: nothing listens here: a runtime that tried to open a pool would fail with a connection error instead
NOWHERE = "postgresql://postgres@127.0.0.1:1/nowhere"
ALL = {"members": NOWHERE, "loans": NOWHERE, "sanitation": NOWHERE}


def test_a_consumer_names_its_producers_and_reads_their_topics() -> None:
    rt = loans_runtime(LoansSettings(event_source="embedded", source_database_urls=ALL))
    by_name = {p.name: p for p in rt.projections}
    assert by_name["loans.tranche-release.v1"].sources == ("sanitation",)
    assert topics_of(by_name["loans.tranche-release.v1"]) == ("washfin.sanitation.v1",)
    assert source_urls("loans", {"members": "m", "sanitation": "s", "reporting": "r"}, rt.projections) == {
        "members": "m", "sanitation": "s"}


@pytest.mark.parametrize("build, settings, reaction", [
    (loans_runtime, LoansSettings, TrancheRelease),
    (sanitation_runtime, SanitationSettings, TrancheOrdersJob),
    (members_runtime, MembersSettings, SanitationWorks),
])
def test_a_reaction_is_built_whole_with_the_runtime_it_appends_through(build, settings, reaction) -> None:  # type: ignore[no-untyped-def]
    rt = build(settings(event_source="none"))
    [r] = [p for p in rt.projections if isinstance(p, reaction)]
    assert isinstance(r, Reaction) and r.runtime is rt
    assert not hasattr(r, "bind")


@pytest.mark.parametrize("build, settings, missing", [
    (loans_runtime, LoansSettings, "sanitation"),
    (sanitation_runtime, SanitationSettings, "loans"),
    (reporting_runtime, ReportingSettings, "sanitation"),
])
async def test_a_missing_source_stops_the_start_before_anything_opens(build, settings, missing) -> None:  # type: ignore[no-untyped-def]
    urls = {s: u for s, u in ALL.items() if s != missing}
    rt = build(settings(database_url=NOWHERE, platform_database_url=NOWHERE, event_source="embedded",
                        kafka_bootstrap_servers=None, source_database_urls=urls))
    with pytest.raises(MissingSource) as e:
        await rt.start()
    prefix = rt.service.upper()
    assert e.value.setting == f"{prefix}_SOURCE_DATABASE_URLS"
    assert f"{prefix}_SOURCE_DATABASE_URLS" in str(e.value) and repr(missing) in str(e.value)
    assert "\n" not in str(e.value)
    assert not rt.started  # no pool was opened


async def test_reporting_needs_every_familys_sources_not_only_the_summarys() -> None:
    """Reporting's own summary reads only the members log; its families' builds read loans and sanitation
    too. A reporting service given only the members log used to warn and run without financing figures."""
    rt = reporting_runtime(ReportingSettings(database_url=NOWHERE, platform_database_url=NOWHERE,
                                             event_source="embedded", kafka_bootstrap_servers=None,
                                             source_database_urls={"members": NOWHERE}))
    assert {p for proj in rt.projections for p in proj.sources} == {"members"}
    with pytest.raises(MissingSource, match="'loans'"):
        await rt.start()


def test_no_source_is_needed_without_the_embedded_event_source_or_for_migrate() -> None:
    for source in ("kafka", "none"):
        reporting_runtime(ReportingSettings(event_source=source, source_database_urls={})).check_sources()
    rt = reporting_runtime(ReportingSettings(event_source="embedded", run_consumers=False, source_database_urls={}))
    rt.check_sources()


def test_the_command_line_says_which_setting_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REPORTING_EVENT_SOURCE", "embedded")
    monkeypatch.setenv("REPORTING_SOURCE_DATABASE_URLS", '{"members": "%s", "loans": "%s"}' % (NOWHERE, NOWHERE))
    with pytest.raises(SystemExit) as e:
        main("reporting", ReportingSettings, reporting_app, reporting_runtime, ["serve"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: reporting: setting REPORTING_SOURCE_DATABASE_URLS")
    assert "'sanitation'" in err
