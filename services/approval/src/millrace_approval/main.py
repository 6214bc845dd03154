from millrace_common.platform.environment import load_settings
from millrace_common.platform.service import serve

from millrace_approval.bootstrap import build
from millrace_approval.settings import ApprovalSettings


def main() -> None:
    settings = load_settings(ApprovalSettings, "millrace-approval")
    serve(build(settings), settings)
