from millrace_common.platform.service import serve

from millrace_orchestrator.bootstrap import build
from millrace_orchestrator.settings import OrchestratorSettings


def main() -> None:
    settings = OrchestratorSettings()
    serve(build(settings), settings)
