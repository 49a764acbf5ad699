"""docker-compose.yml cannot run here (no Docker engine); this checks it names every service and every
setting the code requires, with no misspelt setting and the pinned Kafka version."""

from __future__ import annotations

import json

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.local.kafka import kafka_version
from tests.deploy.service_settings import SETTINGS, env_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


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
        if k.startswith("MEMBERS_PERSONAL_DATA_"):
            continue  # keys compose takes from .env (compose-env, below): the session's own stand in
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


def test_the_broker_takes_scram_logins_only_and_each_service_has_its_own(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    script = kafka["command"][0]
    assert "listener.security.protocol.map=BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT" in script
    assert "PLAINTEXT:PLAINTEXT" not in script and "PLAINTEXT://" not in script
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in script
    assert "allow.everyone.if.no.acl.found=false" in script and "--add-scram" in script
    # the passwords come from the git-ignored .env, never from the file itself
    assert all(str(v).startswith("${WASHFIN_KAFKA_") for k, v in kafka["environment"].items() if "PASSWORD" in k)
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    setup = compose["services"]["kafka-setup"]
    assert setup["command"] == ["python", "-m", "deploy.local.kafka", "acls"]
    assert setup["environment"]["WASHFIN_KAFKA_SASL_USERNAME"] == "admin"
    for service in SETTINGS:
        spec = compose["services"][service]
        env = spec["environment"]
        assert env["WASHFIN_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["WASHFIN_KAFKA_SASL_USERNAME"] == service
        assert env["WASHFIN_KAFKA_SASL_PASSWORD"] == f"${{WASHFIN_KAFKA_{service.upper()}_PASSWORD:?}}"
        assert spec["depends_on"]["kafka-setup"] == {"condition": "service_completed_successfully"}


def test_compose_env_writes_private_generated_passwords(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env_file = tmp_path / ".env"
    run = [sys.executable, "-m", "deploy.local.kafka", "compose-env", str(env_file)]
    assert subprocess.run(run, cwd=ROOT, capture_output=True).returncode == 0
    assert os.stat(env_file).st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    keys = {k: values.pop(k) for k in ("MEMBERS_PERSONAL_DATA_KEYS", "MEMBERS_PERSONAL_DATA_KEY_ID",
                                       "MEMBERS_PERSONAL_DATA_LOOKUP_KEY")}
    assert set(values) == {f"WASHFIN_KAFKA_{u}_PASSWORD" for u in
                           ("ADMIN", "MEMBERS", "LOANS", "SANITATION", "REPORTING", "CONTROLLER")}
    assert len(set(values.values())) == 6 and all(len(v) >= 24 for v in values.values())
    # the members service's personal-data keys, generated too: they open a vault (compose reads the quoted JSON)
    from services.members.personal_data import Vault

    vault = Vault.from_settings(json.loads(keys["MEMBERS_PERSONAL_DATA_KEYS"].strip("'")),
                                keys["MEMBERS_PERSONAL_DATA_KEY_ID"], keys["MEMBERS_PERSONAL_DATA_LOOKUP_KEY"])
    assert vault.current == keys["MEMBERS_PERSONAL_DATA_KEY_ID"]
    again = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr  # never overwrites the broker's passwords


#: a pinned image: a full release tag (major.minor.patch, a variant after it) and optionally its digest
PINNED = re.compile(r"^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")


def _third_party_images(compose: dict[str, Any]) -> dict[str, str]:
    images = {name: spec["image"] for name, spec in compose["services"].items() if "build" not in spec}
    froms = re.findall(r"^FROM\s+(\S+)", (ROOT / "deploy/Dockerfile").read_text(), flags=re.MULTILINE)
    images.update({f"Dockerfile FROM {i}": image for i, image in enumerate(froms)})
    return images


def test_every_image_not_built_here_is_pinned_to_a_full_release(compose: dict[str, Any]) -> None:
    images = _third_party_images(compose)
    assert set(images) >= {"postgres", "kafka", "Dockerfile FROM 0"}
    loose = {name: image for name, image in images.items()
             if not PINNED.match(image) or ":latest" in image or re.search(r":\d+(-|$)", image)}
    assert not loose, f"images pinned by no full release (deploy/README.md, 'Pinning images'): {loose}"
    # the rule is written where operators look, with the images it names
    rule = (ROOT / "deploy/README.md").read_text().split("### Pinning images", 1)[1].split("\n## ", 1)[0]
    for image in images.values():
        assert f"`{image.split('@')[0]}`" in rule, image


@pytest.mark.parametrize("pattern,pinned", [
    ("postgres:16.4-alpine", True), ("apache/kafka:4.1.1", True), ("python:3.11.10-slim-bookworm", True),
    ("postgres:16.4-alpine@sha256:" + "a" * 64, True), ("postgres:latest", False), ("postgres", False),
    ("postgres:16-alpine", False), ("postgres:16.4-alpine@sha256:abc", False),
], ids=["tag", "namespaced tag", "variant", "tag and digest", "latest", "no tag", "bare major", "short digest"])
def test_the_pinning_rule_tells_pinned_from_floating(pattern: str, pinned: bool) -> None:
    assert (PINNED.match(pattern) is not None and not re.search(r":\d+(-|$)", pattern)
            and ":latest" not in pattern) is pinned


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_each_service_has_a_healthcheck_that_asks_readiness(compose: dict[str, Any], service: str) -> None:
    """The healthcheck's own command, run here against a real HTTP server on the port the service's
    PORT names: exit 0 while /readyz answers 200, non-zero on 503 and with nothing listening."""
    import http.server
    import subprocess
    import sys
    import threading

    spec = compose["services"][service]
    check = spec["healthcheck"]
    test = check["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    assert all(k in check for k in ("interval", "timeout", "retries", "start_period"))
    answer = {"status": 200}
    asked: list[str] = []

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(answer["status"] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def run(port: int) -> int:
        env = {"PATH": "/usr/bin:/bin", "PORT": str(port)}
        return subprocess.run([sys.executable, "-c", test[3]], check=False, env=env, capture_output=True,
                              timeout=60).returncode

    try:
        port = server.server_address[1]
        assert spec["environment"]["PORT"] == "8000"  # the port the command asks inside the container
        assert run(port) == 0
        answer["status"] = 503
        assert run(port) != 0
        assert asked == ["/readyz", "/readyz"]
    finally:
        server.shutdown()
        server.server_close()
    from deploy.local.kafka import free_port

    assert run(free_port()) != 0


def test_reporting_runs_as_an_api_and_a_projector_beside_it(compose: dict[str, Any]) -> None:
    """The same module and settings twice (``REPORTING_ROLE``): the API, with the published port, projects
    nothing; the projector, no port, applies the events with the same database and Kafka principal."""
    api, projector = compose["services"]["reporting"], compose["services"]["reporting-projector"]
    assert api["environment"]["REPORTING_ROLE"] == "api"
    assert projector["environment"]["REPORTING_ROLE"] == "projector"
    assert projector["command"] == api["command"] and "ports" not in projector and api["ports"]
    same = ("REPORTING_DATABASE_URL", "REPORTING_EVENT_SOURCE", "WASHFIN_KAFKA_SASL_USERNAME",
            "WASHFIN_KAFKA_SASL_PASSWORD", "WASHFIN_PLATFORM_DATABASE_URL")
    assert {k: api["environment"][k] for k in same} == {k: projector["environment"][k] for k in same}
    assert projector["healthcheck"] == api["healthcheck"]
