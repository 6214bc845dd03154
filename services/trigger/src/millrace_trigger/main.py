from millrace_common.platform.environment import load_settings
from millrace_common.platform.service import serve

from millrace_trigger.bootstrap import build
from millrace_trigger.settings import TriggerSettings


def main() -> None:
    settings = load_settings(TriggerSettings, "millrace-trigger")
    serve(build(settings), settings)
