from millrace_common.settings import ServiceSettings


class ApprovalSettings(ServiceSettings):
    service_name: str = "approval"
    http_port: int = 18084
