from millrace_common.service import serve

from millrace_node_runner.bootstrap import build
from millrace_node_runner.settings import NodeRunnerSettings


def main() -> None:
    settings = NodeRunnerSettings()
    serve(build(settings), settings)
