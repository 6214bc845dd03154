from millrace_common.platform.service import serve

from millrace_approval.bootstrap import build
from millrace_approval.settings import ApprovalSettings


def main() -> None:
    settings = ApprovalSettings()
    serve(build(settings), settings)
