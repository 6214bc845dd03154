"""A ``MILLRACE_*`` variable that no service or tool reads stops every process at start, naming the
nearest one that exists; and the one list of known names (``platform/environment.py``, which may not
import the services) is held here against every settings class and every name the code, the
deployment files and the docs use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from millrace_approval.settings import ApprovalSettings
from millrace_common.platform.environment import (
    OTHER_VARIABLES,
    SERVICE_VARIABLES,
    UnknownVariable,
    known_variables,
    load_settings,
    unknown_variables,
)
from millrace_common.platform.settings import ServiceSettings
from millrace_gateway.settings import GatewaySettings
from millrace_node_runner.settings import NodeRunnerSettings
from millrace_orchestrator.settings import OrchestratorSettings
from millrace_trigger.settings import TriggerSettings

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_millrace_environment")]


ROOT = Path(__file__).resolve().parents[2]
SERVICE_SETTINGS = (
    GatewaySettings,
    TriggerSettings,
    OrchestratorSettings,
    NodeRunnerSettings,
    ApprovalSettings,
)
SCANNED = ("libs", "services", "plugins", "tests", "bench", "deploy", "docs")
SUFFIXES = {".py", ".sh", ".md", ".yaml", ".yml", ".toml", ".ts", ".tsx", ".json", ".tpl", ".txt", ".cfg"}
SKIPPED_DIRS = {"node_modules", ".venv", "dist", "__pycache__", ".cache"}
MISSPELT = {"MILLRACE_KAFKA_BOOTSRAP", "MILLRACE_KAFKA_BOOTSTRAPP", "MILLRACE_NO_SUCH_THING"}
"""Names the tests and docs spell wrong on purpose, to show the refusal."""
NAME = re.compile(r"MILLRACE_[A-Z0-9_]*[A-Z0-9]\b(?![_*])")


def variables_of(settings: type[ServiceSettings]) -> set[str]:
    return {f"MILLRACE_{name.upper()}" for name in settings.model_fields}


def names_used() -> dict[str, set[str]]:
    """Every ``MILLRACE_*`` name written in the repository's code, deployment files and docs, and
    where (a name ending in ``_`` or ``_*`` is a family, not a variable)."""
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "CONTRIBUTING.md"]
    for top in SCANNED:
        files += [
            path
            for path in (ROOT / top).rglob("*")
            if path.suffix in SUFFIXES
            and path.is_file()
            and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
        ]
    used: dict[str, set[str]] = {}
    for path in files:
        for name in NAME.findall(path.read_text(errors="replace")):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return used


def test_the_list_of_service_settings_is_every_service_settings_class_beyond_the_common_ones():
    beyond_common = set().union(*(variables_of(s) for s in SERVICE_SETTINGS)) - variables_of(ServiceSettings)
    missing, stale = sorted(beyond_common - SERVICE_VARIABLES), sorted(SERVICE_VARIABLES - beyond_common)
    assert not missing and not stale, (
        f"platform/environment.py SERVICE_VARIABLES: add {missing}, drop {stale}"
    )


def test_every_millrace_variable_the_repository_names_is_known():
    unknown = {name: sorted(where) for name, where in names_used().items() if name not in known_variables()}
    unknown = {name: where for name, where in unknown.items() if name not in MISSPELT}
    assert not unknown, f"read somewhere but not in platform/environment.py: {unknown}"


def test_every_variable_read_outside_the_settings_is_still_named_somewhere_else():
    used = names_used()
    stale = [
        name
        for name in OTHER_VARIABLES
        if not used.get(name, set()) - {"libs/common/src/millrace_common/platform/environment.py"}
    ]
    assert not stale, f"OTHER_VARIABLES lists names nothing uses any more: {stale}"


def test_a_misspelt_variable_is_unknown_and_the_nearest_valid_name_is_offered():
    environ = {"MILLRACE_KAFKA_BOOTSRAP": "kafka:9092", "MILLRACE_NAMESPACE": "prod", "PATH": "/bin"}
    assert unknown_variables(environ, known_variables()) == [
        UnknownVariable("MILLRACE_KAFKA_BOOTSRAP", "MILLRACE_KAFKA_BOOTSTRAP")
    ]
    assert str(unknown_variables(environ, known_variables())[0]) == (
        "MILLRACE_KAFKA_BOOTSRAP is not a Millrace setting; did you mean MILLRACE_KAFKA_BOOTSTRAP?"
    )


def test_a_service_specific_setting_is_known_to_every_service_since_they_share_one_environment():
    environ = {
        "MILLRACE_RUN_RETENTION_DAYS": "30",
        "MILLRACE_AI_CONCURRENCY": "4",
        "MILLRACE_JWT_SECRET": "x",
    }
    assert unknown_variables(environ, known_variables()) == []


def test_names_are_compared_as_pydantic_settings_reads_them_regardless_of_case():
    assert unknown_variables({"millrace_kafka_bootstrap": "k:1"}, known_variables()) == []
    [typo] = unknown_variables({"millrace_kafka_linger": "5"}, known_variables())
    assert typo.nearest == "MILLRACE_KAFKA_LINGER_MS"


def test_a_name_like_no_setting_at_all_is_refused_without_a_suggestion():
    [unknown] = unknown_variables({"MILLRACE_NO_SUCH_THING": "1"}, known_variables())
    assert unknown.nearest is None
    assert str(unknown) == "MILLRACE_NO_SUCH_THING is not a Millrace setting"


def test_loading_settings_with_a_misspelt_variable_exits_and_says_which_and_what_was_meant(
    monkeypatch, capsys
):
    monkeypatch.setenv("MILLRACE_KAFKA_BOOTSTRAPP", "kafka:9092")
    with pytest.raises(SystemExit) as exited:
        load_settings(TriggerSettings, "millrace-trigger")
    assert exited.value.code == 2
    assert "did you mean MILLRACE_KAFKA_BOOTSTRAP?" in capsys.readouterr().err


def test_loading_invalid_settings_exits_with_one_line_per_problem_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("MILLRACE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("MILLRACE_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("MILLRACE_KAFKA_SASL_PASSWORD", "pw")
    with pytest.raises(SystemExit) as exited:
        load_settings(GatewaySettings, "millrace-gateway")
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "millrace-gateway: refusing to start:",
        (
            "  MILLRACE_KAFKA_SECURITY_PROTOCOL is SASL_SSL: set MILLRACE_KAFKA_SASL_MECHANISM "
            "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
        ),
    ]
