from millrace_common.platform.service import serve

from millrace_trigger.bootstrap import build
from millrace_trigger.settings import TriggerSettings


def main() -> None:
    settings = TriggerSettings()
    serve(build(settings), settings)
