"""The node types plugins add: their handlers, built from the factories their declarations name, with
what the runner lends them (:class:`PluginServices`).

A plugin's ``NodeType`` (``millrace_common.language.node_types``) names its handler factory as
``"module:attribute"``; the runner imports it when it starts and calls it once with the services
below, and gets the type's handler: ``async (ExecuteNode) -> Outcome``, run like a built-in handler
(within the node's timeout; a pydantic ``ValidationError`` is the node's ``invalid_input``, any other
exception a retryable ``runner_error``). A plugin imports what it needs through
``millrace_node_runner.plugin_api``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.language.node_types import NodeTypeRegistry

from millrace_node_runner.adapters.http import HttpCaller, OutgoingRequest
from millrace_node_runner.adapters.tenants import TenantConfig
from millrace_node_runner.domain.outcomes import Outcome

NodeHandler = Callable[[ExecuteNode], Awaitable[Outcome]]
Clock = Callable[[], datetime]


class PluginLoadError(Exception):
    """A plugin's handler that cannot be built: the runner does not start with it half installed."""


class GuardedHttp:
    """Outgoing HTTP for plugins, as the built-in HTTP nodes send it: under the tenant's network policy
    (the address guard: private, loopback, link-local and metadata targets refused unless the tenant
    allows them), redirects judged hop by hop, the answer capped, every failure a typed node error."""

    def __init__(self, tenants: TenantConfig, caller: HttpCaller, *, response_cap_ceiling: int) -> None:
        self._tenants = tenants
        self._caller = caller
        self._cap_ceiling = response_cap_ceiling

    async def send(self, tenant_id: str, request: OutgoingRequest) -> Outcome:
        """Send ``request`` for ``tenant_id``; the outcome is the answer (``status``, ``headers``,
        ``body``, ``truncated``, ``url``) or the typed error, as for ``http_request``."""
        capped = replace(request, response_cap_bytes=min(request.response_cap_bytes, self._cap_ceiling))
        return await self._caller.send(capped, await self._tenants.network_policy(tenant_id))


@dataclass(frozen=True)
class PluginServices:
    """What a plugin's handler factory is given."""

    http: GuardedHttp
    clock: Clock


HandlerFactory = Callable[[PluginServices], NodeHandler]


def plugin_handlers(registry: NodeTypeRegistry, services: PluginServices) -> dict[str, NodeHandler]:
    """The handler of every type a plugin added to ``registry``."""
    handlers: dict[str, NodeHandler] = {}
    for node_type in registry.plugins():
        source = registry.sources[node_type.type]
        factory = _factory(node_type.type, str(node_type.handler), source)
        try:
            handler = factory(services)
        except Exception as error:
            raise PluginLoadError(
                f"node type {node_type.type!r} ({source}): its handler factory {node_type.handler} failed "
                f"({type(error).__name__}: {error})"
            ) from error
        if not callable(handler):
            raise PluginLoadError(
                f"node type {node_type.type!r} ({source}): {node_type.handler} gave "
                f"{type(handler).__name__}, not a handler"
            )
        handlers[node_type.type] = handler
    return handlers


def _factory(node_type: str, path: str, source: str) -> HandlerFactory:
    module_name, _, attribute = path.partition(":")
    try:
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise PluginLoadError(
            f"node type {node_type!r} ({source}): its handler factory {path} cannot be imported "
            f"({type(error).__name__}: {error})"
        ) from error
    if not callable(found):
        raise PluginLoadError(f"node type {node_type!r} ({source}): {path} is not callable")
    return found  # type: ignore[return-value]


def missing_handlers(registry: NodeTypeRegistry, handlers: Mapping[str, NodeHandler]) -> list[str]:
    """The types ``registry`` sends to a runner that have no handler here."""
    return [name for name in registry.runner_topics() if name not in handlers]
