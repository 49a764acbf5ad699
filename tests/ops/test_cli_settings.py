"""The CLI reads every service's settings one way (``deploy.cli.service_settings``): the service's own
``app.SETTINGS`` class from the environment, on the database the settings file names, with the event source
the run command gives the service unless one is set. Reporting's rebuild and export take the same path as
every service's migrate (they once rebuilt reporting's settings from the environment by hand)."""

from __future__ import annotations

import importlib
import os

import pytest

from deploy import cli
from deploy.local.services import SERVICES

URLS = {s: f"postgresql://washfin_{s}:pw@127.0.0.1:5999/{s}" for s in SERVICES}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment as the run command's settings file gives the CLI: the databases, nothing else."""
    prefixes = ("WASHFIN_", "KAFKA_", *(f"{s.upper()}_" for s in SERVICES))
    for k in list(os.environ):
        if k.startswith(prefixes):
            monkeypatch.delenv(k)
    for s, url in URLS.items():
        monkeypatch.setenv(f"{s.upper()}_DATABASE_URL", url)
    return monkeypatch


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_settings_are_its_apps_class_on_the_named_databases(env: pytest.MonkeyPatch,
                                                                          service: str) -> None:
    s = cli.service_settings(service)
    assert type(s) is importlib.import_module(f"services.{service}.app").SETTINGS
    assert s.database_url == URLS[service]
    assert s.event_source == "embedded"
    assert s.source_database_urls == {o: u for o, u in URLS.items() if o != service}


@pytest.mark.parametrize("service", SERVICES)
def test_a_broker_or_the_services_own_setting_chooses_the_source(env: pytest.MonkeyPatch,
                                                                service: str) -> None:
    prefix = service.upper()
    env.setenv("WASHFIN_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    assert cli.service_settings(service).event_source == "kafka"
    env.setenv(f"{prefix}_EVENT_SOURCE", "none")
    env.setenv(f"{prefix}_SOURCE_DATABASE_URLS", '{"loans": "postgresql://elsewhere/loans"}')
    s = cli.service_settings(service)
    assert (s.event_source, s.source_database_urls) == ("none", {"loans": "postgresql://elsewhere/loans"})


def test_reporting_is_read_through_its_app(env: pytest.MonkeyPatch) -> None:
    """What the reporting service's composition root names is what the CLI builds, its own settings read
    from the environment as the service reads them."""
    import services.reporting.app as app

    class Marked(app.SETTINGS):  # type: ignore[misc, valid-type]
        pass

    env.setattr(app, "SETTINGS", Marked)
    env.setenv("REPORTING_REPORT_CACHE_SIZE", "7")
    s = cli.service_settings("reporting")
    assert type(s) is Marked and s.report_cache_size == 7


def test_a_missing_or_malformed_setting_is_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("REPORTING_REPORT_CACHE_SIZE", "-1")
    with pytest.raises(cli.CliError, match="^setting REPORTING_REPORT_CACHE_SIZE: Input should be greater"):
        cli.service_settings("reporting")
    env.delenv("REPORTING_DATABASE_URL")
    with pytest.raises(cli.CliError, match="REPORTING_DATABASE_URL is not set"):
        cli.service_settings("reporting")
