"""Every setting of every service is documented: its ``MILLRACE_*`` name appears in docs/ or the
README, so a new setting fails here until someone says what it does."""

from __future__ import annotations

from pathlib import Path

import pytest
from millrace_approval.settings import ApprovalSettings
from millrace_common.platform.settings import ServiceSettings
from millrace_gateway.settings import GatewaySettings
from millrace_node_runner.settings import NodeRunnerSettings
from millrace_orchestrator.settings import OrchestratorSettings
from millrace_trigger.settings import TriggerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (
    ServiceSettings,
    GatewaySettings,
    TriggerSettings,
    OrchestratorSettings,
    NodeRunnerSettings,
    ApprovalSettings,
)


def documentation() -> str:
    return "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_every_setting_is_documented(settings: type[ServiceSettings]):
    prefix = settings.model_config.get("env_prefix", "")
    assert prefix == "MILLRACE_"
    text = documentation()
    missing = [
        f"{prefix}{name.upper()}" for name in settings.model_fields if f"{prefix}{name.upper()}" not in text
    ]
    assert not missing, f"documented nowhere under docs/ or in the README: {missing}"
