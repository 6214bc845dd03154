from millrace_common.settings import ServiceSettings


class TriggerSettings(ServiceSettings):
    service_name: str = "trigger"
    http_port: int = 18081
