"""``ai_agent``: one model turn. The workflow tools' input schemas are read for this turn, the whole
conversation and the tool definitions go to the tenant's endpoint (or the run's stored answer to the
same turn is given again), and the answer comes back with each call it asks for checked."""

from __future__ import annotations

from millrace_common.contracts.messages.node_commands import ExecuteNode

from millrace_node_runner.adapters.tenants import TenantConfig
from millrace_node_runner.adapters.workflow_inputs import WorkflowInputs
from millrace_node_runner.domain.agent import (
    agent_config,
    agent_request,
    turn_key,
    turn_output,
    workflow_tools,
)
from millrace_node_runner.domain.inputs import AiAgentTurnInput
from millrace_node_runner.domain.outcomes import Outcome, Succeeded
from millrace_node_runner.service_layer.ai import AiCalls


class AgentTurns:
    def __init__(self, tenants: TenantConfig, workflows: WorkflowInputs, calls: AiCalls) -> None:
        self._tenants = tenants
        self._workflows = workflows
        self._calls = calls

    async def run(self, command: ExecuteNode) -> Outcome:
        node = AiAgentTurnInput.model_validate(command.input)
        config = agent_config(node)
        configured = await self._tenants.ai_endpoint(command.tenant_id)
        schemas = await self._workflows.input_schemas(command.tenant_id, workflow_tools(config))
        request = agent_request(node, configured.settings, schemas)
        key = turn_key(configured.settings.base_url, request)
        return await self._calls.answer(
            command, configured, request, key, lambda answer: Succeeded(turn_output(answer, config, schemas))
        )
