"""The Docker files as Docker would read them (no Docker engine here): the image builds the
workflow builder in a stage of its own and puts it where the gateway serves it from, every command
the compose file and the Helm chart run is an entry point of the image, every service of the
compose file can be scaled, and Prometheus finds each instance of each. promtool checks the
Prometheus configuration itself (tests/unit/test_metrics_deploy_files.py)."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from millrace_gateway.bootstrap import WEB_DIST

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
SERVICES = ("gateway", "trigger", "orchestrator", "node-runner", "approval")


def stages() -> list[dict]:
    """Each FROM of the Dockerfile with its image, name and the instructions under it."""
    found: list[dict] = []
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), flags=re.IGNORECASE)
            assert match, line
            found.append({"image": match[1], "name": match[2], "steps": []})
        else:
            found[-1]["steps"].append((instruction.upper(), rest.strip()))
    return found


def entry_points() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for pyproject in [*ROOT.glob("services/*/pyproject.toml"), *ROOT.glob("libs/*/pyproject.toml")]:
        scripts.update(tomllib.loads(pyproject.read_text())["project"].get("scripts", {}))
    return scripts


def test_the_image_builds_the_web_app_in_a_node_stage_and_ships_its_build():
    web, *rest = stages()
    assert web["image"].startswith("node:") and web["name"]
    commands = " && ".join(rest for kind, rest in web["steps"] if kind == "RUN")
    assert "npm ci" in commands and "vite build" in commands
    copies = [rest for kind, rest in web["steps"] if kind == "COPY"]
    assert copies[0].split()[:2] == [
        "services/gateway/web/package.json",
        "services/gateway/web/package-lock.json",
    ]
    final = rest[-1]
    assert final["image"].startswith("python:3.11")
    copied = [
        r.split() for kind, r in final["steps"] if kind == "COPY" and r.startswith(f"--from={web['name']} ")
    ]
    assert len(copied) == 1
    _, source, target = copied[0]
    assert source.endswith("/dist")
    workdir = [r for kind, r in final["steps"] if kind == "WORKDIR"][-1]
    assert (Path(workdir) / target) == Path("/app") / WEB_DIST.relative_to(ROOT)
    user = [r for kind, r in final["steps"] if kind == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")


def test_every_base_image_is_pinned_to_a_version():
    images = [stage["image"] for stage in stages()]
    images += [s["image"] for s in COMPOSE["services"].values() if "image" in s and not s.get("build")]
    for image in images:
        _, _, tag = image.rpartition(":")
        assert tag and "/" not in tag and tag != "latest", image


def test_the_build_context_leaves_out_local_builds_and_environments():
    ignored = set((ROOT / "deploy" / "docker" / "Dockerfile.dockerignore").read_text().split())
    assert {".venv", ".cache", ".data", "**/node_modules", "services/gateway/web/dist"} <= ignored


def test_every_command_the_deployments_run_is_an_entry_point_of_the_image():
    scripts = entry_points()
    commands = {f"millrace-{name}" for name in SERVICES} | {"millrace-migrate", "millrace-topics"}
    for service in COMPOSE["services"].values():
        if service.get("image", "").startswith("millrace:"):
            command = service["command"]
            commands |= set(re.findall(r"millrace-[a-z-]+", " ".join(command)))
    assert commands <= set(scripts), sorted(commands - set(scripts))
    for command in commands:
        module, _, function = scripts[command].partition(":")
        assert callable(getattr(importlib.import_module(module), function)), command


def test_every_service_scales_no_fixed_host_port():
    for name in SERVICES:
        service = COMPOSE["services"][name]
        assert "container_name" not in service, name
        for mapping in service.get("ports", []):
            host, _, container = str(mapping).rpartition(":")
            host_port = host.rpartition(":")[2]
            assert re.fullmatch(r"\d+-\d+", host_port), f"{name} publishes the fixed host port {mapping}"
            low, high = map(int, host_port.split("-"))
            assert high > low and container == "8080", mapping
    assert [n for n in SERVICES if COMPOSE["services"][n].get("ports")] == ["gateway", "approval"]
    ranges = [
        str(p).rsplit(":", 1)[0].rpartition(":")[2]
        for n in SERVICES
        for p in COMPOSE["services"][n].get("ports", [])
    ]
    spans = [set(range(int(r.split("-")[0]), int(r.split("-")[1]) + 1)) for r in ranges]
    assert not set.intersection(*spans), "two services' port ranges overlap"


def test_prometheus_finds_every_instance_of_every_service_by_dns():
    (job,) = PROMETHEUS["scrape_configs"]
    assert job["job_name"] == "millrace"
    assert "static_configs" not in job
    (discovery,) = job["dns_sd_configs"]
    assert discovery["type"] == "A"
    assert sorted(discovery["names"]) == sorted(SERVICES)
    port = COMPOSE["x-service"]["environment"]["MILLRACE_HTTP_PORT"]
    assert str(discovery["port"]) == port
    assert {"source_labels": ["__meta_dns_name"], "target_label": "service"} in job["relabel_configs"]
    assert all(name in COMPOSE["services"] for name in discovery["names"])
