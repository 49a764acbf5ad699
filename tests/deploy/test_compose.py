"""docker-compose.yml cannot run here (no Docker engine); this checks it names every service and every
setting the code requires, with no misspelt setting and the pinned Kafka version."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from deploy.local.kafka import kafka_version
from services.loans.settings import LoansSettings
from services.members.settings import MembersSettings
from services.reporting.settings import ReportingSettings
from services.sanitation.settings import SanitationSettings
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "members": MembersSettings, "loans": LoansSettings, "sanitation": SanitationSettings,
    "reporting": ReportingSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_names(cls: type[ServiceSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for name, f in cls.model_fields.items():
        if isinstance(f.validation_alias, AliasChoices):
            names |= {c for c in f.validation_alias.choices if isinstance(c, str)}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_every_service_and_the_infrastructure_are_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"postgres", "kafka", *SETTINGS}
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    assert compose["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_service_runs_its_module_with_every_required_setting(compose: dict[str, Any], service: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec = compose["services"][service]
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert (ROOT / spec["build"]["dockerfile"]).exists()
    env = spec["environment"]
    prefix = service.upper()
    required = {f"{prefix}_DATABASE_URL", f"{prefix}_HOST", f"{prefix}_PORT", f"{prefix}_EVENT_SOURCE",
                "WASHFIN_PLATFORM_DATABASE_URL", "WASHFIN_KAFKA_BOOTSTRAP_SERVERS"}
    assert required <= set(env), f"missing: {required - set(env)}"
    assert env[f"{prefix}_EVENT_SOURCE"] == "kafka"
    known = env_names(SETTINGS[service])
    ours = {k for k in env if k.startswith((f"{prefix}_", "WASHFIN_"))}
    assert ours <= known, f"settings the code does not have: {ours - known}"
    # the settings parse as the service would read them from its environment
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    settings = SETTINGS[service]()
    assert settings.database_url == env[f"{prefix}_DATABASE_URL"]
    assert settings.kafka_bootstrap_servers == env["WASHFIN_KAFKA_BOOTSTRAP_SERVERS"]
    assert settings.platform_database_url == env["WASHFIN_PLATFORM_DATABASE_URL"]
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)


def test_every_database_named_is_created(compose: dict[str, Any]) -> None:
    init = (ROOT / "deploy/postgres/init-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)", init))
    for service in SETTINGS:
        for value in compose["services"][service]["environment"].values():
            if str(value).startswith("postgresql://"):
                assert str(value).rsplit("/", 1)[1] in created
