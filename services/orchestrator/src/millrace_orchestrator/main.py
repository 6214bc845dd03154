from millrace_common.platform.environment import load_settings
from millrace_common.platform.service import serve

from millrace_orchestrator.bootstrap import build
from millrace_orchestrator.settings import OrchestratorSettings


def main() -> None:
    settings = load_settings(OrchestratorSettings, "millrace-orchestrator")
    serve(build(settings), settings)
