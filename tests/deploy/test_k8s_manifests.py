"""The Kubernetes manifests, the Grafana dashboard and the runbook, checked offline (no cluster here).

- ``deploy/k8s``: every kustomization (the base and each overlay) is rendered by a small pure-Python
  subset of kustomize (the features the overlays use, and only those: an unknown kustomization field
  fails the test), and every rendered object is validated against the Kubernetes JSON schemas of the
  ``kubernetes-validate`` package in strict mode (unknown fields are errors). (It is not compared with
  ``kubectl kustomize``: CI machines have no kubectl, and a test that skips proves nothing.)
  Then what the schemas cannot know: each Deployment runs a real service with settings the code really
  has, probes hit the real health routes, resources and a non-root, read-only security context are set,
  Services, PodDisruptionBudgets and autoscalers select what they mean to, replicas stay within the
  topics' partitions, and the migration Job runs a real CLI verb.
- ``deploy/grafana``: every metric and label a query names is one ``shared/metrics.py`` defines.
- ``docs/operations.md``: every ``washfin ...`` command line names a real verb with real options.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from prometheus_client.metrics import MetricWrapperBase

from deploy.cli import app as cli_app
from shared import metrics as metrics_module
from shared.metrics import metrics_router
from shared.rls import APP, CONTEXT_KEY, READER
from shared.web import health_router
from tests.deploy.service_settings import SETTINGS, env_names

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DASHBOARD = ROOT / "deploy" / "grafana" / "washfin-dashboard.json"
RUNBOOK = ROOT / "docs" / "operations.md"
DEPLOY_README = ROOT / "deploy" / "README.md"

#: services whose API scales on CPU (reporting's load is its consumers)
AUTOSCALED = {"members", "loans", "sanitation"}
#: Deployments that run a service's other role beside its API (``REPORTING_ROLE=projector``) -> the
#: service: the same image and command, no Service in front, one replica in every build
WORKERS = {"reporting-projector": "reporting"}
#: the oldest Kubernetes minor the manifests target, and the newest the validator ships
K8S_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
#: kustomization directory -> the namespace everything lands in
BUILDS = {"base": "washfin", "overlays/dev": "washfin-dev", "overlays/prod": "washfin"}
CONFIG_MAP, SECRET, MIGRATE_JOB = "washfin-config", "washfin-db", "washfin-migrate"
ACL_JOB = "washfin-kafka-acls"
MEMBERS_KEYS = "washfin-members-keys"
KAFKA_SECRET = "washfin-kafka"
PRE_ROLLOUT = ("washfin/phase", "pre-rollout")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass",
                  "CustomResourceDefinition", "PersistentVolume"}


# -- a pure-Python subset of kustomize ---------------------------------------------------------------
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "patches", "replicas", "images"}
#: list fields a strategic merge patch merges item by item, by this key (the rest are replaced)
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort", "envFrom": None}


class KustomizeError(AssertionError):
    pass


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _kustomization(directory: Path) -> dict[str, Any]:
    files = [directory / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")]
    found = [f for f in files if f.exists()]
    if len(found) != 1:
        raise KustomizeError(f"{directory}: expected one kustomization file, found {found}")
    k = yaml.safe_load(found[0].read_text())
    unknown = set(k) - KUSTOMIZATION_FIELDS
    if unknown:
        raise KustomizeError(f"{found[0]}: fields this test cannot render: {sorted(unknown)}")
    return k


def _smp(base: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge: maps merge, null deletes, listed fields merge by key, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if k == "$patch":
                continue
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = _smp(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    key = MERGE_KEYS.get(field)
    if isinstance(base, list) and isinstance(patch, list) and key:
        items = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((i for i, b in enumerate(items) if b.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if match is not None:
                    items.pop(match)
            elif match is None:
                items.append(copy.deepcopy(item))
            else:
                items[match] = _smp(items[match], item)
        return items
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        kind = op["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                node[index] = copy.deepcopy(op["value"])
            elif kind == "remove":
                node.pop(index)
            else:
                raise KustomizeError(f"JSON patch op {kind!r} not supported by this test")
        else:
            if kind in ("replace", "remove") and last not in node:
                raise KustomizeError(f"JSON patch {kind} of missing {op['path']}")
            if kind in ("add", "replace"):
                node[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del node[last]
            else:
                raise KustomizeError(f"JSON patch op {kind!r} not supported by this test")
    return doc


def _matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name", "group", "version"}
    if unknown:
        raise KustomizeError(f"patch target fields this test cannot match: {sorted(unknown)}")
    if "kind" in target and doc["kind"] != target["kind"]:
        return False
    return "name" not in target or re.fullmatch(target["name"], doc["metadata"]["name"]) is not None


def _image_ref(image: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def render(directory: Path) -> list[dict[str, Any]]:
    """What ``kubectl kustomize DIRECTORY`` prints, for the subset of kustomize the manifests use."""
    k = _kustomization(directory)
    docs: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        if not path.exists():
            raise KustomizeError(f"{directory}: resource {entry} does not exist")
        docs += render(path) if path.is_dir() else _load_docs(path)
    for patch in k.get("patches", []):
        unknown = set(patch) - {"path", "patch", "target"}
        if unknown:
            raise KustomizeError(f"{directory}: patch fields this test cannot render: {sorted(unknown)}")
        if "path" in patch:
            if not (directory / patch["path"]).is_file():
                raise KustomizeError(f"{directory}: patch {patch['path']} does not exist")
            body = yaml.safe_load((directory / patch["path"]).read_text())
        else:
            body = yaml.safe_load(patch["patch"])
        if isinstance(body, list):  # JSON 6902
            target = patch.get("target")
            if not target:
                raise KustomizeError(f"{directory}: a JSON patch needs a target")
        else:
            target = patch.get("target") or {"kind": body["kind"], "name": re.escape(body["metadata"]["name"])}
        hits = [i for i, d in enumerate(docs) if _matches(d, target)]
        if not hits:
            raise KustomizeError(f"{directory}: patch {patch.get('path') or target} matches no resource")
        for i in reversed(hits):
            if isinstance(body, list):
                docs[i] = _json6902(docs[i], body)
            elif body.get("$patch") == "delete":
                docs.pop(i)
            else:
                docs[i] = _smp(docs[i], body)
    for image in k.get("images", []):
        for doc in docs:
            spec = _pod_spec(doc)
            for c in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
                name, tag, digest = _image_ref(c["image"])
                if name != image["name"]:
                    continue
                name = image.get("newName", name)
                if "digest" in image:
                    c["image"] = f"{name}@{image['digest']}"
                elif "newTag" in image:
                    c["image"] = f"{name}:{image['newTag']}"
                else:
                    c["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    for rep in k.get("replicas", []):
        workloads = [d for d in docs if d["metadata"]["name"] == rep["name"] and "replicas" in d.get("spec", {})]
        if not workloads:
            raise KustomizeError(f"{directory}: replicas of {rep['name']}: no such workload")
        for workload in workloads:
            workload["spec"]["replicas"] = rep["count"]
    if "namespace" in k:
        for res in docs:
            if res["kind"] == "Namespace":
                res["metadata"]["name"] = k["namespace"]
            elif res["kind"] not in CLUSTER_SCOPED:
                res["metadata"]["namespace"] = k["namespace"]
    keys = [_key(res) for res in docs]
    dupes = {x for x in keys if keys.count(x) > 1}
    if dupes:
        raise KustomizeError(f"{directory}: resources defined twice: {sorted(map(str, dupes))}")
    return docs


@cache
def _built(name: str) -> tuple[str, ...]:
    return tuple(json.dumps(d, sort_keys=True) for d in render(K8S / name))


def built(name: str) -> list[dict[str, Any]]:
    return [json.loads(d) for d in _built(name)]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _key(d: dict[str, Any]) -> tuple[str, str, str]:
    return d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]


# -- the files ---------------------------------------------------------------------------------------
def test_the_kustomizations_are_the_expected_ones() -> None:
    found = {str(p.parent.relative_to(K8S)) for p in K8S.rglob("kustomization.yaml")}
    assert found == set(BUILDS)


def test_every_yaml_file_parses_and_is_used_by_a_kustomization() -> None:
    used: set[Path] = set()
    for name in BUILDS:
        directory = K8S / name
        k = _kustomization(directory)
        used.add(directory / "kustomization.yaml")
        for entry in k.get("resources", []):
            path = (directory / entry).resolve()
            assert path.exists(), f"{name}: resource {entry} does not exist"
            if path.is_file():
                used.add(path)
        for patch in k.get("patches", []):
            if "path" in patch:
                assert (directory / patch["path"]).is_file(), f"{name}: patch {patch['path']} does not exist"
                used.add((directory / patch["path"]).resolve())
    files = {p.resolve() for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml")}
    for f in files:
        _load_docs(f)  # parses
    assert files - used == set(), "YAML files no kustomization uses (a typo in a resources list?)"


def test_a_strict_schema_rejects_an_unknown_field() -> None:
    """The control for the schema tests: strict validation does catch a misspelt field."""
    deployment = copy.deepcopy(by_kind(built("base"), "Deployment")["members"])
    kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_rendered_object_matches_the_kubernetes_schema(build: str, version: str) -> None:
    docs = built(build)
    assert docs
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(map(str, e.path))
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {e.message}")
    assert not errors, f"{build} (Kubernetes {version}):\n" + "\n".join(errors)


# -- what the schemas cannot know ----------------------------------------------------------------------
def cli_only_names() -> set[str]:
    """Variables the operator CLI reads that no service does (where `washfin status` finds /readyz)."""
    source = (ROOT / "deploy" / "cli.py").read_text()
    assert 'f"WASHFIN_{service.upper()}_URL"' in source, "the CLI no longer reads WASHFIN_<SERVICE>_URL"
    return {f"WASHFIN_{s.upper()}_URL" for s in SETTINGS}


def config_env(build: str) -> dict[str, str]:
    """The environment the ConfigMap and the Secret give a pod (the base's placeholders where an
    overlay leaves the Secret to the operator's secret store)."""
    env = dict(by_kind(built(build), "ConfigMap")[CONFIG_MAP]["data"])
    secret = by_kind(built("base"), "Secret")[SECRET]
    env.update(secret.get("stringData", {}))
    return env


def pod_env(build: str, service: str) -> dict[str, str]:
    """What a service's pod sees: the ConfigMap, the Secret, and its container's own env (secretKeyRefs
    resolved against the base's placeholder Secrets)."""
    env = config_env(build)
    secrets = by_kind(built("base"), "Secret")
    [deployment] = [d for d in built(build) if d["kind"] == "Deployment" and d["metadata"]["name"] == service]
    [container] = _pod_spec(deployment)["containers"]  # type: ignore[index]
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]]["stringData"][ref["key"]]
    return env


def partitions(build: str) -> int:
    return int(by_kind(built(build), "ConfigMap")[CONFIG_MAP]["data"]["WASHFIN_KAFKA_TOPIC_PARTITIONS"])


def test_the_secret_holds_placeholders_and_the_overlays_never_apply_them() -> None:
    secret = by_kind(built("base"), "Secret")[SECRET]
    values = secret["stringData"]
    assert set(values) == ({f"{s.upper()}_DATABASE_URL" for s in SETTINGS} | {"WASHFIN_PLATFORM_DATABASE_URL"}
                           | {f"{s.upper()}_REQUEST_DATABASE_URL" for s in SETTINGS} | {"REPORTING_READER_DATABASE_URL"})
    # a request's SQL runs on the service's own request login, never on the owner's nor a shared one (shared/rls.py)
    assert all(values[f"{s.upper()}_REQUEST_DATABASE_URL"].startswith(f"postgresql://washfin_{s}_app:") for s in SETTINGS)
    assert values["REPORTING_READER_DATABASE_URL"].startswith("postgresql://washfin_reporting_reader:")
    for k, v in values.items():
        assert "CHANGE-ME" in v, f"{k} looks like a real credential: the base holds placeholders only"
    assert "secret store" in (K8S / "base" / "secret.yaml").read_text()
    for overlay in ("overlays/dev", "overlays/prod"):
        assert SECRET not in by_kind(built(overlay), "Secret"), f"{overlay} would overwrite the real Secret"
    kafka = by_kind(built("base"), "Secret")[KAFKA_SECRET]["stringData"]
    assert set(kafka) == {*SETTINGS, "admin"} and all(v == "CHANGE-ME" for v in kafka.values())
    for overlay in ("overlays/dev", "overlays/prod"):
        assert KAFKA_SECRET not in by_kind(built(overlay), "Secret"), f"{overlay} would overwrite the Kafka Secret"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_service_logs_in_to_kafka_as_itself_over_tls(build: str) -> None:
    """SASL_SSL with SCRAM-SHA-512 everywhere, no plaintext; each pod gets its own principal's password
    only (a pod of one service holding another's could write that service's topic)."""
    config = by_kind(built(build), "ConfigMap")[CONFIG_MAP]["data"]
    assert config["WASHFIN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["WASHFIN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert not any("SASL_PASSWORD" in k or "SASL_USERNAME" in k for k in config), "credentials are per pod"
    assert "plaintext" not in (K8S / "base" / "configmap.yaml").read_text().lower()
    for d in built(build):
        spec = _pod_spec(d)
        if d["kind"] != "Deployment" or spec is None:
            continue
        [container] = spec["containers"]
        service = container["name"]  # reporting-projector's container is reporting's: the same principal
        assert d["metadata"]["name"] in (service, f"{service}-projector")
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["WASHFIN_KAFKA_SASL_USERNAME"]["value"] == service
        assert env["WASHFIN_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": KAFKA_SECRET, "key": service}
        refs = [f.get("secretRef", {}).get("name") for f in container.get("envFrom", [])]
        assert KAFKA_SECRET not in refs, "the whole Kafka Secret (every service's password) must not reach a pod"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_variable_named_is_a_setting_the_code_has(build: str) -> None:
    known_platform = set().union(*(env_names(c) for c in SETTINGS.values())) | cli_only_names()
    names = set(config_env(build))
    for d in built(build):
        spec = _pod_spec(d)
        for c in (spec or {}).get("containers", []):
            names |= {e["name"] for e in c.get("env", [])}
    for name in names:
        prefix = name.split("_", 1)[0].lower()
        if prefix in SETTINGS:
            assert name in env_names(SETTINGS[prefix]), f"{name}: no such setting in services.{prefix}.settings"
        elif prefix == "washfin":
            assert name in known_platform, f"{name}: no such platform setting"


@pytest.mark.parametrize("service", sorted(SETTINGS))
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_the_settings_parse_as_the_service_reads_them(build: str, service: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = pod_env(build, service)
    prefix = service.upper()
    required = {f"{prefix}_DATABASE_URL", f"{prefix}_HOST", f"{prefix}_PORT", f"{prefix}_EVENT_SOURCE",
                f"{prefix}_LOG_JSON", "WASHFIN_PLATFORM_DATABASE_URL", "WASHFIN_KAFKA_BOOTSTRAP_SERVERS",
                "WASHFIN_KAFKA_TOPIC_PARTITIONS", "WASHFIN_KAFKA_REPLICATION_FACTOR", "WASHFIN_KAFKA_NAMESPACE"}
    assert required <= set(env), f"missing: {required - set(env)}"
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = SETTINGS[service]()
    assert (s.host, s.port, s.event_source, s.log_json) == ("0.0.0.0", 8000, "kafka", True)
    assert s.database_url == env[f"{prefix}_DATABASE_URL"]
    assert s.platform_database_url == env["WASHFIN_PLATFORM_DATABASE_URL"]
    assert s.kafka_bootstrap_servers == env["WASHFIN_KAFKA_BOOTSTRAP_SERVERS"]
    assert s.kafka_topic_partitions == partitions(build)
    kafka = s.kafka_connection()
    assert kafka is not None and kafka.security_protocol == "SASL_SSL" and kafka.username == service
    assert kafka.password == "CHANGE-ME"  # the placeholder: the real one comes from the secret store


def _routes(router: Any) -> set[str]:
    return {r.path for r in router.routes}


def _quantity(q: str | float) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    s = str(q)
    for u, f in units.items():
        if s.endswith(u):
            return float(s[: -len(u)]) * f
    return float(s)


def _check_security(name: str, spec: dict[str, Any]) -> None:
    pod = spec.get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
    dockerfile_user = re.search(r"^USER\s+(\d+)", (ROOT / "deploy" / "Dockerfile").read_text(), re.MULTILINE)
    assert dockerfile_user, "deploy/Dockerfile has no numeric USER"
    assert pod.get("runAsUser") == int(dockerfile_user.group(1)), f"{name}: runAsUser is not the image's user"
    assert spec.get("automountServiceAccountToken") is False, f"{name}: needs no Kubernetes API token"
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}: allowPrivilegeEscalation"
        assert sc.get("readOnlyRootFilesystem") is True, f"{name}/{c['name']}: readOnlyRootFilesystem"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}: capabilities"
        assert sc.get("privileged") in (None, False)
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{name}/{c['name']}: /tmp is not a writable emptyDir"
        res = c.get("resources", {})
        for kind in ("cpu", "memory"):
            req, lim = res.get("requests", {}).get(kind), res.get("limits", {}).get(kind)
            assert req is not None and lim is not None, f"{name}/{c['name']}: {kind} request and limit"
            assert _quantity(req) <= _quantity(lim), f"{name}/{c['name']}: {kind} request above its limit"
        refs = {(next(iter(e)), next(iter(e.values()))["name"]) for e in c.get("envFrom", [])}
        # the ACL Job talks to the brokers only: no database URL reaches it
        expected = {("configMapRef", CONFIG_MAP)} if name == ACL_JOB else {("configMapRef", CONFIG_MAP), ("secretRef", SECRET)}
        # the personal-data keys reach the members pods and the migration Job (which seals), no other pod
        if name in ("members", MIGRATE_JOB):
            expected.add(("secretRef", MEMBERS_KEYS))
        assert refs == expected, f"{name}/{c['name']}: envFrom"


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"{container['name']}: no port named {port}"
    return named[port]


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_deployment_runs_a_real_service_safely(build: str) -> None:
    docs = built(build)
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(SETTINGS) | set(WORKERS)
    config = by_kind(docs, "ConfigMap")[CONFIG_MAP]["data"]
    health, metrics = _routes(health_router()), _routes(metrics_router())
    for deployment, d in deployments.items():
        name = WORKERS.get(deployment, deployment)
        assert (ROOT / "services" / name / "__main__.py").is_file(), f"no service folder services/{name}"
        spec = d["spec"]["template"]["spec"]
        assert len(spec["containers"]) == 1
        c = spec["containers"][0]
        assert c["command"] == ["python", "-m", f"services.{name}"]
        assert _image_ref(c["image"])[0].rsplit("/", 1)[-1] == "washfin", f"{name}: not the washfin image"
        port = int(config[f"{name.upper()}_PORT"])
        assert [p["containerPort"] for p in c["ports"]] == [port]
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path and path in health, f"{name}: {probe}"
            assert _port_number(c, get["port"]) == port, f"{name}: {probe} port"
        if "startupProbe" in c:
            assert c["startupProbe"]["httpGet"]["path"] in health
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics" and "/metrics" in metrics
        assert int(annotations["prometheus.io/port"]) == port
        _check_security(name, spec)
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert 1 <= d["spec"]["replicas"] <= partitions(build), (
            f"{name}: replicas beyond the {partitions(build)} partitions would sit idle as consumers")
        role = {e["name"]: e.get("value") for e in c.get("env", [])}.get("REPORTING_ROLE")
        if name == "reporting":  # its API and its projector, each a Deployment of its own
            assert role == ("projector" if deployment in WORKERS else "api"), deployment
        if deployment in WORKERS:
            assert d["spec"]["replicas"] == 1, f"{deployment}: its Kafka lag row is one process's"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_services_disruption_budgets_and_autoscalers_select_their_deployment(build: str) -> None:
    docs = built(build)
    deployments = {k: v for k, v in by_kind(docs, "Deployment").items() if k not in WORKERS}
    services, pdbs, hpas = by_kind(docs, "Service"), by_kind(docs, "PodDisruptionBudget"), \
        by_kind(docs, "HorizontalPodAutoscaler")
    assert set(services) == set(pdbs) == set(deployments)
    assert set(hpas) == AUTOSCALED
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        container = d["spec"]["template"]["spec"]["containers"][0]
        svc = services[name]["spec"]
        assert svc["selector"].items() <= labels.items(), f"{name}: the Service selects no pod"
        assert [(p["port"], _port_number(container, p["targetPort"])) for p in svc["ports"]] == [(80, 8000)]
        pdb = pdbs[name]["spec"]
        assert pdb["selector"]["matchLabels"].items() <= labels.items()
        if "minAvailable" in pdb:
            assert pdb["minAvailable"] < d["spec"]["replicas"], (
                f"{name}: minAvailable {pdb['minAvailable']} of {d['spec']['replicas']} replicas blocks every drain")
        else:
            assert pdb["maxUnavailable"] >= 1
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert spec["minReplicas"] <= spec["maxReplicas"] <= partitions(build), (
            f"{name}: the autoscaler may add replicas beyond the partitions")
        assert deployments[name]["spec"]["replicas"] == spec["minReplicas"], (
            f"{name}: replicas differ from the autoscaler's minimum: every apply would fight it")
        cpu = [m for m in spec["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
        assert cpu and cpu[0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def _cli_commands() -> dict[str, Any]:
    """'tenant add' -> its click command, for every verb of the operator CLI."""
    root = typer.main.get_command(cli_app)
    out: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, cmd in getattr(group, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            out[path] = cmd
            walk(cmd, path)

    walk(root, "")
    return out


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_the_migration_job_runs_the_real_cli_verb_before_the_rollout(build: str) -> None:
    docs = built(build)
    job = by_kind(docs, "Job")[MIGRATE_JOB]
    spec = job["spec"]["template"]["spec"]
    c = spec["containers"][0]
    script, *verb = c["command"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get(script) == "deploy.cli:cli", f"{script} is not the console script of the CLI"
    assert " ".join(verb) in _cli_commands()
    assert spec["restartPolicy"] == "Never"
    assert c["image"] == by_kind(docs, "Deployment")["members"]["spec"]["template"]["spec"]["containers"][0]["image"]
    _check_security(MIGRATE_JOB, spec)
    # `kubectl apply -k ... -l washfin/phase=pre-rollout` applies the namespace, the config and the Job only
    first = {(d["kind"], d["metadata"]["name"]) for d in docs
             if d["metadata"].get("labels", {}).get(PRE_ROLLOUT[0]) == PRE_ROLLOUT[1]}
    assert {("Job", MIGRATE_JOB), ("Namespace", BUILDS[build]), ("ConfigMap", CONFIG_MAP)} <= first
    assert not {k for k, _ in first} & {"Deployment", "Service", "HorizontalPodAutoscaler"}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_the_kafka_acl_job_applies_the_acls_before_the_rollout_and_only_it_holds_the_admin_password(build: str) -> None:
    docs = built(build)
    job = by_kind(docs, "Job")[ACL_JOB]
    spec = job["spec"]["template"]["spec"]
    [c] = spec["containers"]
    script, *verb = c["command"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get(script) == "deploy.cli:cli", f"{script} is not the console script of the CLI"
    command = _cli_commands().get(verb[0])
    assert command is not None, f"washfin has no verb {verb[0]!r}"
    assert verb[1:] == ["--apply"] and any("--apply" in p.opts for p in command.params)
    assert spec["restartPolicy"] == "Never" and job["metadata"]["labels"][PRE_ROLLOUT[0]] == PRE_ROLLOUT[1]
    assert c["image"] == by_kind(docs, "Deployment")["members"]["spec"]["template"]["spec"]["containers"][0]["image"]
    _check_security(ACL_JOB, spec)
    env = {e["name"]: e for e in c["env"]}
    assert env["WASHFIN_KAFKA_SASL_USERNAME"]["value"] == "admin"
    assert env["WASHFIN_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": KAFKA_SECRET, "key": "admin"}
    # the admin password reaches no other pod
    for d in docs:
        pod = _pod_spec(d)
        if pod is None or d["metadata"]["name"] == ACL_JOB:
            continue
        for container in pod["containers"]:
            keys = [e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})]
            assert {"name": KAFKA_SECRET, "key": "admin"} not in keys, f"{d['metadata']['name']} gets the admin password"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_everything_lands_in_the_builds_namespace(build: str) -> None:
    docs = built(build)
    namespace = BUILDS[build]
    assert list(by_kind(docs, "Namespace")) == [namespace]
    for d in docs:
        if d["kind"] not in CLUSTER_SCOPED:
            assert d["metadata"].get("namespace") == namespace, f"{_key(d)}"


def test_dev_runs_one_small_replica_of_everything() -> None:
    docs, base = built("overlays/dev"), built("base")
    for name, d in by_kind(docs, "Deployment").items():
        assert d["spec"]["replicas"] == 1
        small = d["spec"]["template"]["spec"]["containers"][0]["resources"]
        big = by_kind(base, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]["resources"]
        for part in ("requests", "limits"):
            for kind in ("cpu", "memory"):
                assert _quantity(small[part][kind]) < _quantity(big[part][kind])


def test_prod_pins_the_image_and_runs_more_replicas() -> None:
    docs, base = built("overlays/prod"), built("base")
    for d in [*by_kind(docs, "Deployment").values(), *by_kind(docs, "Job").values()]:
        _, tag, digest = _image_ref(_pod_spec(d)["containers"][0]["image"])  # type: ignore[index]
        assert digest or (tag and tag != "latest"), f"{d['metadata']['name']}: image not pinned"
    for name, d in by_kind(docs, "Deployment").items():
        if name not in WORKERS:
            assert d["spec"]["replicas"] > by_kind(base, "Deployment")[name]["spec"]["replicas"]


def test_the_documented_kubectl_paths_exist() -> None:
    texts = [DEPLOY_README.read_text(), RUNBOOK.read_text(),
             *(p.read_text() for p in K8S.rglob("*.yaml"))]
    paths = {m for t in texts for m in re.findall(r"kubectl (?:apply -k|kustomize|delete -k) ([\w./-]+)", t)}
    assert paths, "the docs say nowhere how to apply the manifests"
    for p in paths:
        assert (ROOT / p / "kustomization.yaml").is_file(), f"documented kustomization {p} does not exist"


# -- the Grafana dashboard ---------------------------------------------------------------------------------
def defined_metrics() -> dict[str, set[str]]:
    """Every sample name shared/metrics.py exposes, with its labels."""
    out: dict[str, set[str]] = {}
    for m in vars(metrics_module).values():
        if not isinstance(m, MetricWrapperBase):
            continue
        labels = set(m._labelnames)
        if m._type == "counter":
            out[f"{m._name}_total"] = labels
        elif m._type == "histogram":
            out[f"{m._name}_bucket"] = labels | {"le"}
            out[f"{m._name}_sum"] = labels
            out[f"{m._name}_count"] = labels
        else:
            out[m._name] = labels
    assert out, "shared/metrics.py defines no metrics"
    return out


PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "inf", "nan"}


def promql_references(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression refers to. Enough PromQL for dashboards: selectors,
    functions, aggregations with by/without, arithmetic and Grafana's $variables."""
    labels: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($__rate_interval, $service)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations

    def matchers(m: re.Match[str]) -> str:
        labels.update(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", m.group(1)))
        return " "

    text = re.sub(r"\{([^}]*)\}", matchers, text)

    def grouping(m: re.Match[str]) -> str:
        labels.update(x.strip() for x in m.group(2).split(",") if x.strip())
        return " "

    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", grouping, text)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][\w:]*", text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_KEYWORDS:
            continue  # a function or an aggregation
        names.add(word)
    return names, labels


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(where, expression, legend) of every query of the dashboard, variables included."""
    dash = json.loads(DASHBOARD.read_text())
    out = []

    def panels(items: list[dict[str, Any]]) -> None:
        for p in items:
            panels(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((f"panel {p['title']!r}", t["expr"], t.get("legendFormat", "")))

    panels(dash["panels"])
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q)
            assert m, f"variable {v['name']}: unexpected query {q}"
            out.append((f"variable {v['name']}", f"{m.group(1)}{{{m.group(2)}=\"\"}}", ""))
    return out


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 36 and dash["title"] and dash["uid"]
    ds = [v for v in dash["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert ds and ds[0]["type"] == "datasource" and ds[0]["query"] == "prometheus"
    ids = []

    def walk(items: list[dict[str, Any]]) -> None:
        for p in items:
            ids.append(p["id"])
            assert {"h", "w", "x", "y"} <= set(p["gridPos"])
            walk(p.get("panels", []))
            if p["type"] != "row":
                assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
                assert p["targets"], p["title"]
                for t in p["targets"]:
                    assert t["datasource"]["uid"] == "${DS_PROMETHEUS}" and t["expr"].strip()

    walk(dash["panels"])
    assert len(ids) == len(set(ids)), "panel ids repeat"


def test_every_metric_and_label_the_dashboard_queries_exists() -> None:
    defined = defined_metrics()
    queried: set[str] = set()
    for where, expr, legend in dashboard_queries():
        names, labels = promql_references(expr)
        assert names, f"{where}: no metric in {expr}"
        unknown = names - set(defined)
        assert not unknown, f"{where}: metrics shared/metrics.py does not define: {unknown} in {expr}"
        available = set().union(*(defined[n] for n in names))
        assert labels <= available, f"{where}: labels {labels - available} not on {names}"
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert legend_labels <= available, f"{where}: legend names labels {legend_labels - available}"
        queried |= names
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in queried}
    every = {re.sub(r"_(bucket|sum|count)$", "", n) for n in defined}
    assert every <= families, f"metrics the dashboard does not show: {every - families}"


def test_the_promql_reader_finds_what_it_should() -> None:
    names, labels = promql_references(
        'histogram_quantile(0.95, sum by (service, le) (rate(washfin_x_bucket{service=~"$service"}[$__rate_interval])))'
        ' / on (service) group_left max(washfin_y) > bool 2')
    assert names == {"washfin_x_bucket", "washfin_y"}
    assert labels == {"service", "le"}


# -- the runbook -------------------------------------------------------------------------------------------
def command_lines(text: str) -> list[str]:
    """Every `washfin ...` invocation in code blocks and inline code of a Markdown text."""
    snippets: list[str] = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.DOTALL):
        snippets += block.splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    snippets += re.findall(r"`([^`\n]+)`", prose)
    out = []
    for s in snippets:
        s = s.split(" #", 1)[0] if not s.lstrip().startswith("#") else ""
        for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", s):
            try:
                tokens = shlex.split(part)
            except ValueError:
                tokens = part.split()
            # the CLI, not the namespace of `kubectl -n washfin` or `kubectl create namespace washfin`, nor the
            # user of `psql -U washfin`
            starts = [i for i, t in enumerate(tokens)
                      if t == "washfin"
                      and (i == 0 or tokens[i - 1] not in ("-n", "--namespace", "namespace", "-U", "--username"))]
            if starts and len(tokens) > starts[0] + 1:  # a bare `washfin` only prints the help
                out.append(shlex.join(tokens[starts[0]:]))
    return out


def check_command(line: str) -> str:
    """The verb ``line`` invokes ('key revoke'); AssertionError unless it is a real invocation of the CLI."""
    tokens = shlex.split(line)[1:]
    asks_help = "--help" in tokens  # `washfin key --help` is fine without a verb or its arguments
    tokens = [t for t in tokens if t != "--help"]
    cmd: Any = typer.main.get_command(cli_app)
    path: list[str] = []
    while True:
        while tokens and tokens[0].startswith("-") and tokens[0] != "-":
            _consume_option(cmd, tokens, path)
        if not _is_group(cmd) or not tokens:
            break
        name = tokens.pop(0)
        assert name in cmd.commands, f"`{line}`: no verb {' '.join([*path, name])!r}"
        cmd = cmd.commands[name]
        path.append(name)
    if asks_help and not tokens:
        return " ".join(path)
    assert not _is_group(cmd), f"`{line}`: {' '.join(path) or 'washfin'} needs a verb"
    leaf_args = list(tokens)
    positional = []
    while tokens:
        if tokens[0].startswith("-") and tokens[0] != "-":
            _consume_option(cmd, tokens, path)
        else:
            positional.append(tokens.pop(0))
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    required = sum(1 for a in arguments if a.required)
    assert required <= len(positional) <= len(arguments), (
        f"`{line}`: {' '.join(path)} takes {required}..{len(arguments)} arguments, got {positional}")
    # and the CLI's own parser agrees (choices such as the role, integers, required values)
    try:
        cmd.make_context(path[-1], leaf_args)
    except Exception as e:  # noqa: BLE001 - typer may vendor click: its exception classes vary
        raise AssertionError(f"`{line}`: {type(e).__name__}: {e}") from None
    return " ".join(path)


def _is_group(cmd: Any) -> bool:
    # typer may vendor its own click: recognise its classes by what they have, not by isinstance
    return isinstance(getattr(cmd, "commands", None), dict)


def _consume_option(cmd: Any, tokens: list[str], path: list[str]) -> None:
    token = tokens.pop(0)
    name, _, value = token.partition("=")
    for p in cmd.params:
        if p.param_type_name == "option" and name in (*p.opts, *p.secondary_opts):
            if not p.is_flag and not value:
                assert tokens, f"option {name} of {' '.join(path) or 'washfin'} needs a value"
                tokens.pop(0)
            return
    raise AssertionError(f"{' '.join(path) or 'washfin'} has no option {name}")


def test_the_command_checker_rejects_what_the_cli_would() -> None:
    check_command("washfin --json key revoke k1 --reason 'leaked on a chat'")
    check_command("washfin --env-file /etc/washfin.env dead-letters show members 12")
    check_command("washfin --help")
    check_command("washfin key issue --help")
    for bad in ("washfin key issue coop-a admin", "washfin key revoke", "washfin key revoke k1 --why x",
                "washfin tenant", "washfin dead-letters show members", "washfin status extra"):
        with pytest.raises(AssertionError):
            check_command(bad)


def test_every_command_in_the_runbook_is_a_real_cli_invocation() -> None:
    text = RUNBOOK.read_text()
    lines = command_lines(text)
    assert len(lines) >= 15, f"the runbook names few commands: {lines}"
    used = {check_command(line) for line in lines}
    for verb in ("tenant add", "tenant list", "tenant suspend", "tenant resume", "key issue", "key list",
                 "key revoke", "migrate", "status", "dead-letters list", "dead-letters show",
                 "dead-letters replay"):
        assert verb in used, f"the runbook never shows `washfin {verb}`"


def test_the_deploy_readme_commands_are_real_too() -> None:
    lines = command_lines(DEPLOY_README.read_text())
    assert lines, "the deploy README shows no washfin command: nothing was checked"
    for line in lines:
        check_command(line)


def test_every_metric_the_docs_name_exists() -> None:
    defined = defined_metrics()
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in defined} | set(defined)
    databases = {f"washfin_{s}" for s in SETTINGS} | {"washfin_platform"}
    databases |= {READER, APP}  # the row-level-security roles (shared/rls.py), named in the runbook's SQL
    databases |= {CONTEXT_KEY, "washfin_verified", "washfin_service"}  # the signed context's table and function
    databases |= {f"washfin_{s}_log" for s in SETTINGS}  # the event-log reading logins (deploy/local/logins.py)
    databases |= {f"washfin_{s}_app" for s in SETTINGS} | {"washfin_reporting_reader"}  # the request logins
    for doc in (RUNBOOK, DEPLOY_README):
        named = set(re.findall(r"\bwashfin_[a-z0-9_]+", doc.read_text())) - databases
        assert named <= families, f"{doc.name} names metrics that do not exist: {named - families}"
    assert set(re.findall(r"\bwashfin_[a-z0-9_]+", RUNBOOK.read_text())) & families, "the runbook names no metric"
