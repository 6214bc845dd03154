"""The observability files users deploy: Prometheus configuration and rules pass promtool, every
dashboard panel queries the provisioned data source, and docs/metrics.md catalogues every metric
the code defines and every metric the dashboards and rules use.

promtool comes with Debian's prometheus package, which `make test` (deploy/local/infra.py install)
installs when it is missing."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
CATALOGUE = (REPO / "docs" / "metrics.md").read_text()
DEFINED = re.compile(r'(?:Counter|Gauge|Histogram|Summary)\(\s*"(millrace_[a-z0-9_]+)"')
USED = re.compile(r"\bmillrace_[a-z0-9_]+")
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is missing: `python3 deploy/local/infra.py install --only prometheus`", pytrace=False
        )
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def panel_targets() -> list[tuple[str, dict, dict]]:
    return [
        (path.stem, panel, target)
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def test_the_compose_prometheus_configuration_and_its_rules_pass_promtool():
    checked = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout + checked.stderr


def test_the_alert_rules_pass_promtool():
    assert RULE_FILES
    checked = promtool("check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_configuration_make_up_writes_passes_promtool(tmp_path: Path):
    spec = importlib.util.spec_from_file_location(
        "millrace_local_infra", REPO / "deploy" / "local" / "infra.py"
    )
    assert spec is not None and spec.loader is not None
    infra = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = infra
    spec.loader.exec_module(infra)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        infra.prometheus_config(infra.scrape_targets(), scrape_interval="5s", rule_files=RULE_FILES)
    )

    checked = promtool("check", "config", str(config))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    scraped = json.loads(config.read_text().split("\n", 1)[1])["scrape_configs"][0]["static_configs"]
    services = {c["labels"]["service"] for c in scraped}
    assert services == {"gateway", "trigger", "orchestrator", "node-runner", "approval"}
    assert all(t.startswith("127.0.0.1:") for c in scraped for t in c["targets"])


def test_the_issue_s_alerts_are_all_there():
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    wanted = {
        "MillraceRunsStuck",
        "MillraceConsumerLagGrowing",
        "MillraceOutboxBacklogOld",
        "MillraceDeadLettersGrowing",
        "MillraceRunFailureRateSpike",
        "MillraceApprovalsOverdue",
    }
    assert wanted <= alerts


def test_the_four_dashboards_query_the_provisioned_data_source_with_unique_ids():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "millrace.yaml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    boards = [json.loads(path.read_text()) for path in DASHBOARDS]
    names = sorted(path.stem for path in DASHBOARDS)
    assert names == ["ai-and-approvals", "infrastructure", "overview", "runs-and-nodes"]
    assert len({board["uid"] for board in boards}) == len(boards)
    for board in boards:
        panels = board["panels"]
        assert len({p["id"] for p in panels}) == len(panels), board["uid"]
        for panel in panels:
            assert panel["datasource"]["uid"] == uid, (board["uid"], panel["title"])
            assert panel["targets"], (board["uid"], panel["title"])
            assert all(t["expr"].strip() and t["datasource"]["uid"] == uid for t in panel["targets"])


def test_no_panel_or_rule_groups_by_a_run_or_record_id():
    expressions = [t["expr"] for _, _, t in panel_targets()] + [
        rule["expr"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    assert not [e for e in expressions if re.search(r"\b(run_id|record_id|message_id)\b", e)]


def test_the_catalogue_lists_every_metric_the_code_defines():
    sources = [*REPO.glob("libs/*/src/**/*.py"), *REPO.glob("services/*/src/**/*.py")]
    defined = {name for path in sources for name in DEFINED.findall(path.read_text())}
    assert len(defined) > 30
    missing = sorted(name for name in defined if f"`{name}`" not in CATALOGUE)
    assert not missing, f"docs/metrics.md does not describe {missing}"


def test_the_catalogue_lists_every_metric_the_dashboards_and_rules_use():
    texts = [t["expr"] for _, _, t in panel_targets()] + [path.read_text() for path in RULE_FILES]
    used = {HISTOGRAM_SERIES.sub("", name) for text in texts for name in USED.findall(text)}
    missing = sorted(
        name for name in used if f"`{name}`" not in CATALOGUE and f"`{name}_total`" not in CATALOGUE
    )
    assert not missing, f"dashboards or rules use metrics docs/metrics.md does not describe: {missing}"
