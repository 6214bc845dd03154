from millrace_common.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    service_name: str = "orchestrator"
    http_port: int = 18082
