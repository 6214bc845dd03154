from millrace_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = 18080

PRODUCER = "gateway"
"""This service's name on the outbox rows it writes."""
