from pathlib import Path

from millrace_common.platform.retention import DEFAULT_RUN_RETENTION_DAYS
from millrace_common.platform.settings import ServiceSettings
from pydantic import Field

from millrace_orchestrator.domain.building import DEFAULT_SUB_WORKFLOW_MAX_DEPTH


class OrchestratorSettings(ServiceSettings):
    service_name: str = "orchestrator"
    http_port: int = 18082
    run_retention_days: float = Field(
        default=DEFAULT_RUN_RETENTION_DAYS,
        gt=0,
        le=3650,
        description="How long a finished run (its events, node log and timers) is kept, for tenants "
        "without a retention of their own (PUT /api/v1/settings/retention)",
    )
    processed_messages_retention_hours: float = Field(
        default=192,
        gt=0,
        description="How long the orchestrator remembers a message it handled, to skip it when Kafka "
        "delivers it again; keep it longer than runs.commands and nodes.results keep messages (Kafka's "
        "default: 7 days). No run is pruned sooner than this after it ended",
    )
    retention_batch_runs: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Finished runs deleted per statement (with all their events: keep the rows per "
        "statement near a thousand)",
    )
    retention_export_dir: Path | None = Field(
        default=None,
        description="Where the runs of tenants that ask for an export before pruning are written (one "
        "JSON Lines file per batch, under a folder per tenant); unset, such tenants' runs are not pruned",
    )
    sub_workflow_max_depth: int = Field(
        default=DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
        ge=1,
        le=100,
        description="How many sub-workflow runs may nest below a top-level run; a sub_workflow node that "
        "would nest deeper fails with sub_workflow_depth_exceeded (sub_workflow_cycle when its workflow "
        "is already in the chain), which bounds a workflow that calls itself",
    )
