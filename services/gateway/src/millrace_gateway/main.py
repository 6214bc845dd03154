from millrace_common.platform.environment import load_settings
from millrace_common.platform.service import serve

from millrace_gateway.bootstrap import build
from millrace_gateway.settings import GatewaySettings


def main() -> None:
    settings = load_settings(GatewaySettings, "millrace-gateway")
    serve(build(settings), settings)
