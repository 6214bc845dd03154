"""The Helm chart (deploy/helm/millrace) as Kubernetes would receive it: `helm template` with the
default values and with deploy/helm/values-production.yaml, parsed, and held to what the services
need. Kubernetes' schemas cannot be fetched here, so the structure is checked instead: the kinds and
their API versions, one Deployment, Service and PodDisruptionBudget per service, the migration Job as
a pre-install/pre-upgrade hook, probes on the HTTP port, resources, pinned images, every MILLRACE_*
variable a setting some service knows, every secret and file the environment names mounted.

Helm is the pinned build of deploy/local/helm_chart.py (`python3 deploy/local/infra.py install
--only helm`, which `make test` runs before this tier)."""

from __future__ import annotations

import base64
import importlib.util
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from millrace_approval.settings import ApprovalSettings
from millrace_common.platform.settings import ServiceSettings
from millrace_gateway.settings import GatewaySettings
from millrace_node_runner.settings import NodeRunnerSettings
from millrace_orchestrator.settings import OrchestratorSettings
from millrace_trigger.settings import TriggerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "trigger", "orchestrator", "node-runner", "approval")
HTTP_PORT = 8080
API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "Secret": "v1",
    "PodDisruptionBudget": "policy/v1",
    "Job": "batch/v1",
    "Ingress": "networking.k8s.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
}


def _helm_chart_module():
    spec = importlib.util.spec_from_file_location("millrace_helm_chart", ROOT / "deploy/local/helm_chart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HELM_CHART = _helm_chart_module()


def merged(base: dict, override: dict) -> dict:
    """Values as Helm merges them: maps key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return out


DEFAULT_VALUES = yaml.safe_load((HELM_CHART.CHART / "values.yaml").read_text())
VALUES = {
    "default": DEFAULT_VALUES,
    "production": merged(DEFAULT_VALUES, yaml.safe_load(HELM_CHART.VALUES_FILES["production"].read_text())),
}


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    if HELM_CHART.installed_version() != HELM_CHART.HELM_VERSION:
        pytest.fail(
            f"helm {HELM_CHART.HELM_VERSION} is missing at {HELM_CHART.HELM}: "
            "`python3 deploy/local/infra.py install --only helm` builds it",
            pytrace=False,
        )
    command = [str(HELM_CHART.HELM), "template", "millrace", str(HELM_CHART.CHART), "--namespace", "millrace"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=HELM_CHART.helm_env(), timeout=120
    )


@cache
def rendered(name: str) -> tuple[dict, ...]:
    values = HELM_CHART.VALUES_FILES[name]
    result = helm_template(*([] if values is None else ["--values", str(values)]))
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(name: str, kind: str) -> list[dict]:
    return [doc for doc in rendered(name) if doc["kind"] == kind]


def pod_specs(name: str) -> list[tuple[str, dict]]:
    specs = [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in objects(name, "Deployment")]
    return specs + [(j["metadata"]["name"], j["spec"]["template"]["spec"]) for j in objects(name, "Job")]


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def known_settings() -> set[str]:
    """The settings of every service (the chart sets only those, not the tools' own variables)."""
    classes = (
        ServiceSettings,
        GatewaySettings,
        TriggerSettings,
        OrchestratorSettings,
        NodeRunnerSettings,
        ApprovalSettings,
    )
    return {f"MILLRACE_{field.upper()}" for settings in classes for field in settings.model_fields}


def entry_points() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for pyproject in [*ROOT.glob("services/*/pyproject.toml"), *ROOT.glob("libs/*/pyproject.toml")]:
        scripts.update(tomllib.loads(pyproject.read_text())["project"].get("scripts", {}))
    return scripts


def quantity(text: str | float) -> float:
    """A Kubernetes quantity as a number (CPU in cores, memory in bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text))
    assert match and (match[2] == "" or match[2] in units), f"not a quantity: {text!r}"
    return float(match[1]) * units.get(match[2], 1)


VALUES_NAMES = pytest.mark.parametrize("values", ["default", "production"])


@VALUES_NAMES
def test_every_object_is_a_kind_the_chart_means_with_its_api_version(values: str):
    for doc in rendered(values):
        assert doc["kind"] in API_VERSIONS, doc["kind"]
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], (doc["kind"], doc["apiVersion"])
        assert doc["metadata"]["name"] and len(doc["metadata"]["name"]) <= 63
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "millrace"
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in rendered(values)]
    assert len(names) == len(set(names)), "two objects of one kind share a name"


@VALUES_NAMES
def test_each_service_has_a_deployment_a_service_and_a_disruption_budget(values: str):
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        components = sorted(
            o["metadata"]["labels"]["app.kubernetes.io/component"] for o in objects(values, kind)
        )
        assert components == sorted(SERVICES), kind
    pods = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["metadata"]["labels"]
        for d in objects(values, "Deployment")
    }
    for deployment in objects(values, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    for kind in ("Service", "PodDisruptionBudget"):
        for obj in objects(values, kind):
            component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            selector = (
                obj["spec"]["selector"] if kind == "Service" else obj["spec"]["selector"]["matchLabels"]
            )
            selected = [name for name, labels in pods.items() if selector.items() <= labels.items()]
            assert selected == [component], (kind, obj["metadata"]["name"], selected)
    for budget in objects(values, "PodDisruptionBudget"):
        assert budget["spec"]["maxUnavailable"] >= 1  # never blocks a drain of a one-replica service


@VALUES_NAMES
def test_replicas_commands_and_rollout_follow_the_values(values: str):
    scripts = entry_points()
    wanted = {name: VALUES[values]["services"][name]["replicas"] for name in SERVICES}
    for deployment in objects(values, "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        assert deployment["spec"]["replicas"] == wanted[component]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == [f"millrace-{component}"]
        assert container["command"][0] in scripts
    if values == "production":
        assert all(count >= 2 for count in wanted.values()), "production runs every service twice or more"


@VALUES_NAMES
def test_probes_ask_the_http_port_for_liveness_and_readiness(values: str):
    for deployment in objects(values, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert ports == {"http": HTTP_PORT} and env["MILLRACE_HTTP_PORT"] == str(HTTP_PORT)
        assert env["MILLRACE_HTTP_HOST"] == "0.0.0.0"
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, (
                deployment["metadata"]["name"],
                probe,
            )
            assert container[probe]["periodSeconds"] > 0 and container[probe]["failureThreshold"] >= 1


@VALUES_NAMES
def test_every_container_has_requests_and_limits_and_a_pinned_image(values: str):
    for owner, spec in pod_specs(values):
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in containers(spec):
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                for bound in ("requests", "limits"):
                    assert resource in resources.get(bound, {}), (owner, container["name"], bound, resource)
                request, limit = resources["requests"][resource], resources["limits"][resource]
                assert 0 < quantity(request) <= quantity(limit), (owner, container["name"], resource)
            repository, _, tag = container["image"].rpartition(":")
            assert repository and "/" not in tag, (owner, container["image"])
            assert tag and tag != "latest", (owner, container["image"])
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_a_latest_tag_is_refused_and_no_tag_means_the_chart_s_app_version():
    refused = helm_template("--set", "image.tag=latest")
    assert refused.returncode != 0
    assert 'image.tag must name a version (not empty, not "latest")' in refused.stderr
    defaulted = helm_template("--set", "image.tag=", "--show-only", "templates/deployment.yaml")
    assert defaulted.returncode == 0, defaulted.stderr
    app_version = yaml.safe_load((HELM_CHART.CHART / "Chart.yaml").read_text())["appVersion"]
    images = {
        c["image"]
        for d in yaml.safe_load_all(defaulted.stdout)
        if d
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"millrace:{app_version}"}


@VALUES_NAMES
def test_every_millrace_variable_is_a_setting_of_some_service(values: str):
    known = known_settings()
    for owner, spec in pod_specs(values):
        for container in containers(spec):
            names = [e["name"] for e in container["env"]]
            assert len(names) == len(set(names)), (owner, container["name"], "a variable set twice")
            unknown = sorted(n for n in names if n.startswith("MILLRACE_") and n not in known)
            assert not unknown, (owner, container["name"], unknown)
            for env in container["env"]:
                assert ("value" in env) != ("valueFrom" in env), env
                assert "value" not in env or isinstance(env["value"], str), env


@VALUES_NAMES
def test_secrets_and_files_the_environment_names_are_there(values: str):
    made = {s["metadata"]["name"]: s for s in objects(values, "Secret")}
    existing = {
        VALUES[values]["postgresql"]["existingSecret"]["name"],
        VALUES[values]["secrets"]["existingSecret"],
        VALUES[values]["kafka"]["sasl"]["passwordSecret"]["name"],
        VALUES[values]["kafka"]["tls"]["caSecret"]["name"],
        VALUES[values]["kafka"]["tls"]["clientCertSecret"]["name"],
    } - {""}
    for owner, spec in pod_specs(values):
        volumes = {v["name"]: v for v in spec["volumes"]}
        for volume in volumes.values():
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                assert secret in existing or {i["key"] for i in volume["secret"]["items"]} <= set(
                    made[secret]["data"]
                ), (owner, volume)
        for container in containers(spec):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert set(mounts.values()) <= set(volumes), (owner, container["name"])
            for env in container["env"]:
                reference = env.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    assert (
                        reference["name"] in existing or reference["key"] in made[reference["name"]]["data"]
                    ), env
                if env["name"].endswith("_FILE"):
                    folder, file = env["value"].rsplit("/", 1)
                    items = volumes[mounts[folder]].get("secret", volumes[mounts[folder]].get("configMap"))[
                        "items"
                    ]
                    assert file in {item["path"] for item in items}, (owner, env)


def test_the_default_values_make_their_secrets_once_and_the_encryption_key_opens():
    (secret,) = objects("default", "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert set(data) == {"database-url", "jwt-secret", "encryption-key"}
    assert data["database-url"].startswith("postgresql+psycopg://")
    Fernet(data["encryption-key"].encode())  # raises unless urlsafe base64 of 32 bytes
    assert len(data["jwt-secret"]) >= 32


def test_production_names_its_own_secrets_and_the_kafka_security():
    assert objects("production", "Secret") == []
    (_, spec), *_ = pod_specs("production")
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MILLRACE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["MILLRACE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["MILLRACE_KAFKA_SASL_PASSWORD_FILE"] and env["MILLRACE_KAFKA_SSL_CA_FILE"]
    assert "MILLRACE_KAFKA_SASL_PASSWORD" not in env  # never the password itself in the pod spec


def test_sasl_without_a_password_is_refused_with_the_setting_to_give():
    result = helm_template("--set", "kafka.securityProtocol=SASL_SSL", "--set", "kafka.sasl.username=u")
    assert result.returncode != 0
    assert "kafka.sasl.password or kafka.sasl.passwordSecret.name is required with SASL" in result.stderr


@VALUES_NAMES
def test_the_migration_job_runs_before_install_and_upgrade(values: str):
    (job,) = objects(values, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    secrets = objects(values, "Secret")
    assert all(
        int(s["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
        for s in secrets
    )
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert [c["command"] for c in containers(spec)] == [["millrace-migrate"], ["millrace-topics"]]
    topics_env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    kafka = VALUES[values]["kafka"]
    assert topics_env["MILLRACE_KAFKA_REPLICATION_FACTOR"] == str(kafka["replicationFactor"])
    assert topics_env["MILLRACE_KAFKA_MIN_INSYNC_REPLICAS"] == str(kafka["minInsyncReplicas"])
    assert all(c["command"][0] in entry_points() for c in containers(spec))


@VALUES_NAMES
def test_prometheus_finds_every_replica(values: str):
    """Pod annotations (a Prometheus discovering pods scrapes each) or a ServiceMonitor over every
    service's endpoints (one target per pod), with the labels the dashboards and rules use."""
    monitors = objects(values, "ServiceMonitor")
    for deployment in objects(values, "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
        annotated = annotations.get("prometheus.io/scrape") == "true"
        if annotated:
            assert annotations["prometheus.io/port"] == str(HTTP_PORT)
            assert annotations["prometheus.io/path"] == "/metrics"
        assert annotated or monitors, deployment["metadata"]["name"]
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        selected = [
            s for s in objects(values, "Service") if selector.items() <= s["metadata"]["labels"].items()
        ]
        assert len(selected) == len(SERVICES)
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/part-of"  # job="millrace", as the rules
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
        assert {
            "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_component"],
            "targetLabel": "service",
        } in endpoint["relabelings"]
    if values == "production":
        assert monitors


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("kafka.securityProtocol=SASL_SSLL", "value must be one of"),
        ("kafka.sasl.mechanism=SCRAM-SHA-1", "value must be one of"),
        ("services.worker.replicas=2", "additional properties 'worker' not allowed"),
        ("settings.kafka_linger_ms=1", "invalid propertyName 'kafka_linger_ms'"),
    ],
)
def test_the_values_schema_refuses_a_misspelt_value(setting: str, reason: str):
    result = helm_template("--set", setting)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr and reason in result.stderr, (
        result.stderr
    )
