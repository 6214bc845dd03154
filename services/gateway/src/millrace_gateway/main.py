from millrace_common.platform.service import serve

from millrace_gateway.bootstrap import build
from millrace_gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    serve(build(settings), settings)
