import signal

from millrace_common.platform.environment import load_settings
from millrace_common.platform.service import serve

from millrace_node_runner.bootstrap import build
from millrace_node_runner.settings import NodeRunnerSettings


def main() -> None:
    settings = load_settings(NodeRunnerSettings, "millrace-node-runner")
    try:
        serve(build(settings), settings)
    except SystemExit:
        # Stopped cleanly. Tearing the interpreter down takes a moment (the AI client's modules are
        # many); a repeated SIGTERM in that moment must not turn exit 0 into death by signal.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise
