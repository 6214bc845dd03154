from pydantic import Field

from millrace_common.settings import ServiceSettings


class NodeRunnerSettings(ServiceSettings):
    service_name: str = "node-runner"
    http_port: int = 18083
    concurrency: int = Field(default=32, ge=1, le=1024, description="Nodes executed at once by one process")
    http_response_cap_bytes: int = Field(default=1024 * 1024, ge=1024)
