from millrace_common.platform.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    service_name: str = "orchestrator"
    http_port: int = 18082
