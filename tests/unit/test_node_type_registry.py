"""The node type registry: the built-in types registered through it, a package's entry point adding a
type that definitions, the catalog and the runner then know, the declarations it refuses (a name taken
twice, a plugin without a runner class or handler), an unknown type as a clear validation problem, and
the runner's side: handlers built from the factories plugins name, an unknown type as a clear failure.
The example plugin (plugins/chat) is installed in the test environment and is checked here too."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from uuid import uuid4

import pytest
from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.contracts.topics import NODES_READY_HTTP, NODES_READY_OTHER
from millrace_common.language import workflow_nodes
from millrace_common.language.node_types import RUNNER_CLASSES, NodeType, NodeTypeError
from millrace_common.language.workflow import (
    HANDLE_REQUIRED,
    HANDLES,
    NODE_CATEGORIES,
    NODE_MODELS,
    RUNNER_TOPICS,
    NodeConfig,
    WorkflowDefinition,
    load_registry,
    node_catalog,
    node_types,
)
from millrace_common.language.workflow_validation import validate_definition
from millrace_node_runner.adapters.http import HttpCaller, OutgoingRequest
from millrace_node_runner.adapters.network import GuardedClients, SystemResolver
from millrace_node_runner.domain.addresses import TargetPolicy
from millrace_node_runner.domain.outcomes import Failed, Succeeded
from millrace_node_runner.service_layer.executor import NodeExecutor
from millrace_node_runner.service_layer.plugins import (
    GuardedHttp,
    PluginLoadError,
    PluginServices,
    missing_handlers,
    plugin_handlers,
)
from pydantic import Field

pytestmark = pytest.mark.unit

HERE = __name__


class ShoutConfig(NodeConfig):
    text: str = Field(min_length=1)


SHOUT = NodeType(
    type="shout",
    config=ShoutConfig,
    category="Loud",
    runner_class="other",
    outputs=("text",),
    handler=f"{HERE}:shout_handler",
)
TWO = [
    NodeType(type="first_of_two", config=ShoutConfig, category="Loud", runner_class="other", handler="m:f"),
    NodeType(
        type="second_of_two", config=ShoutConfig, category="External", runner_class="http", handler="m:f"
    ),
]
TAKEN = NodeType(type="http_request", config=ShoutConfig, category="X", runner_class="http", handler="m:f")
NO_RUNNER = NodeType(type="no_runner", config=ShoutConfig, category="X", runner_class=None, handler="m:f")
NEW_CLASS = NodeType(type="new_class", config=ShoutConfig, category="X", runner_class="gpu", handler="m:f")
NO_HANDLER = NodeType(type="no_handler", config=ShoutConfig, category="X", runner_class="other")
HANDLED = NodeType(
    type="handled",
    config=ShoutConfig,
    category="X",
    runner_class="other",
    handler="m:f",
    handles=frozenset({"a"}),
)
BAD_NAME = NodeType(type="Shout!", config=ShoutConfig, category="X", runner_class="other", handler="m:f")
NOT_A_CONFIG = NodeType(type="plain", config=dict, category="X", runner_class="other", handler="m:f")  # type: ignore[arg-type]


def declare_two() -> list[NodeType]:
    return TWO


def shout_handler(services: PluginServices):
    async def handle(command: ExecuteNode):
        return Succeeded({"text": str(command.input["text"]).upper()})

    return handle


def entry(attribute: str, name: str | None = None) -> EntryPoint:
    return EntryPoint(name=name or attribute.lower(), value=f"{HERE}:{attribute}", group="millrace.nodes")


@pytest.fixture
def with_shout(monkeypatch: pytest.MonkeyPatch):
    """The process's registry with the ``shout`` plugin installed (and the real ones)."""
    registry = load_registry([entry("SHOUT"), *_installed_entry_points()])
    monkeypatch.setattr(workflow_nodes, "_installed", registry)
    return registry


def _installed_entry_points() -> list[EntryPoint]:
    from importlib.metadata import entry_points

    return list(entry_points(group="millrace.nodes"))


def definition(*nodes: dict) -> dict:
    trigger = {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}}
    edges = [{"id": f"e{i}", "source": "start", "target": n["id"]} for i, n in enumerate(nodes)]
    return {"nodes": [trigger, *nodes], "edges": edges}


# -- the registry -----------------------------------------------------------------------------------


def test_the_built_in_types_are_registered_first_and_the_constants_are_their_views():
    registry = load_registry([])
    assert registry.names == tuple(NODE_MODELS)
    assert all(registry.sources[name] == "built in" for name in registry.names)
    assert registry.categories() == NODE_CATEGORIES
    assert dict(registry.runner_topics()) == RUNNER_TOPICS
    assert {t.type: t.handles for t in registry} == HANDLES
    assert {t.type for t in registry if t.handle_required} == HANDLE_REQUIRED
    assert all(registry.node_model(name) is model for name, model in NODE_MODELS.items())
    assert registry.plugins() == ()
    # the installed registry starts with the same types, whatever plugins follow them
    assert node_types().names[: len(NODE_MODELS)] == tuple(NODE_MODELS)


def test_an_entry_point_adds_a_type_that_definitions_the_catalog_and_the_orchestrator_know(with_shout):
    assert with_shout.get("shout") == SHOUT
    assert with_shout.sources["shout"] == f"plugin shout = {HERE}:SHOUT"
    assert with_shout.runner_topics()["shout"] == NODES_READY_OTHER
    assert with_shout.categories()["Loud"] == ("shout",)

    report = validate_definition(
        definition({"id": "loud", "type": "shout", "data": {"name": "L", "text": "hi"}})
    )
    assert report.ok, report.problems
    node = report.definition.node("loud")
    assert node.type == "shout" and isinstance(node.data, ShoutConfig) and node.data.text == "hi"
    assert type(node).__name__ == "ShoutNode"
    # stored and read back, it is the same definition
    stored = report.definition.model_dump(mode="json", by_alias=True)
    assert WorkflowDefinition.model_validate(stored) == report.definition

    bad = validate_definition(definition({"id": "loud", "type": "shout", "data": {"name": "L", "text": ""}}))
    assert [p.pointer for p in bad.problems] == ["/nodes/1/data/text"]

    listed = {entry["type"]: entry for entry in node_catalog()}
    assert listed["shout"]["category"] == "Loud"
    assert listed["shout"]["schema"]["required"] == ["name", "text"]


def test_an_entry_point_may_declare_several_types_through_a_callable():
    registry = load_registry([entry("declare_two", "two")])
    assert [t.type for t in registry.plugins()] == ["first_of_two", "second_of_two"]
    assert registry.categories()["External"] == (
        "http_request",
        "webhook_out",
        "respond_to_webhook",
        "second_of_two",
    )
    assert registry.runner_topics()["second_of_two"] == NODES_READY_HTTP


def test_a_type_name_registered_twice_is_refused_naming_both():
    with pytest.raises(NodeTypeError) as built_in:
        load_registry([entry("TAKEN")])
    assert "'http_request' is already registered (built in)" in str(built_in.value)
    assert f"plugin taken = {HERE}:TAKEN" in str(built_in.value)

    with pytest.raises(NodeTypeError) as twice:
        load_registry([entry("SHOUT", "a_shout"), entry("SHOUT", "b_shout")])
    assert (
        f"plugin b_shout = {HERE}:SHOUT: the node type 'shout' is already registered (plugin a_shout"
        in str(twice.value)
    )


@pytest.mark.parametrize(
    ("attribute", "says"),
    [
        ("NO_RUNNER", "has no runner class; a plugin's type runs on one of ai, http, record, other, code"),
        ("NEW_CLASS", "names the runner class 'gpu'; the runner classes are ai, http, record, other, code"),
        ("NO_HANDLER", "needs its handler factory as 'module:attribute', not None"),
        ("HANDLED", "a runner's result takes no named handle"),
        ("BAD_NAME", "the node type name 'Shout!' is not"),
        ("NOT_A_CONFIG", "the config of 'plain' is not a NodeConfig model"),
        ("missing_attribute", "cannot be loaded (AttributeError"),
        ("HERE", "declares str, not a NodeType or a list of them"),
    ],
)
def test_a_declaration_that_breaks_a_rule_is_refused_naming_the_plugin(attribute: str, says: str):
    with pytest.raises(NodeTypeError) as refused:
        load_registry([entry(attribute)])
    assert f"plugin {attribute.lower()} = {HERE}:{attribute}" in str(refused.value)
    assert says in str(refused.value)
    assert set(RUNNER_CLASSES) == {"ai", "http", "record", "other", "code"}


def test_an_unknown_type_is_a_validation_problem_that_names_it_and_the_missing_plugin():
    report = validate_definition(definition({"id": "x", "type": "teleport", "data": {"name": "X"}}))
    assert not report.ok
    (problem,) = [p for p in report.problems if p.pointer == "/nodes/1/type"]
    assert problem.message.startswith("unknown node type 'teleport'; the types are trigger, ai_prompt")
    assert "chat_message" in problem.message  # the installed plugin's type is among those listed
    assert "needs its package installed in every service that validates or runs workflows" in problem.message
    with pytest.raises(ValueError, match="teleport"):
        WorkflowDefinition.model_validate(definition({"id": "x", "type": "teleport", "data": {"name": "X"}}))


def test_the_loaded_registry_is_the_one_definitions_and_the_json_schema_use(with_shout):
    schema = WorkflowDefinition.model_json_schema(by_alias=True)
    node_schema = schema["properties"]["nodes"]["items"]
    assert "shout" in node_schema["discriminator"]["mapping"]
    assert "chat_message" in node_schema["discriminator"]["mapping"]


# -- the example plugin, installed ------------------------------------------------------------------


def test_the_example_plugin_is_installed_and_registered_from_its_entry_point():
    registry = node_types()
    chat = registry.get("chat_message")
    assert chat is not None
    assert registry.sources["chat_message"].startswith("plugin chat_message = millrace_node_chat:NODE_TYPE")
    assert chat.runner_topic == NODES_READY_HTTP
    assert chat.handler == "millrace_node_chat.handler:build"
    report = validate_definition(
        definition(
            {
                "id": "tell",
                "type": "chat_message",
                "data": {"name": "Tell", "url": "https://chat.example/hook", "text": "{{ trigger.kind }}"},
            }
        )
    )
    assert report.ok, report.problems
    refused = validate_definition(
        definition(
            {"id": "tell", "type": "chat_message", "data": {"name": "Tell", "url": "ftp://x", "text": "t"}}
        )
    )
    assert [p.pointer for p in refused.problems] == ["/nodes/1/data/url"]


# -- the runner's side ------------------------------------------------------------------------------


def command(node_type: str, **node_input: object) -> ExecuteNode:
    run_id = uuid4()
    return ExecuteNode(
        message_id=uuid4(),
        tenant_id="t1",
        occurred_at=datetime.now(UTC),
        correlation_id=run_id,
        causation_id=uuid4(),
        run_id=run_id,
        workflow_id=uuid4(),
        node_id="tell",
        node_type=node_type,
        attempt=1,
        input=node_input,
        timeout_seconds=5,
    )


class Policies:
    """The tenant configuration the guarded HTTP asks: the default policy (public internet only)."""

    async def network_policy(self, tenant_id: str) -> TargetPolicy:
        return TargetPolicy()


class Recorded:
    def __init__(self) -> None:
        self.sent: list[tuple[str, OutgoingRequest]] = []

    async def send(self, tenant_id: str, request: OutgoingRequest):
        self.sent.append((tenant_id, request))
        return Succeeded({"status": 200, "headers": {}, "body": "ok", "truncated": False, "url": request.url})


def services(http: object) -> PluginServices:
    return PluginServices(http, lambda: datetime.now(UTC))  # type: ignore[arg-type]


async def test_the_runner_builds_each_plugin_handler_from_the_factory_it_names(with_shout):
    handlers = plugin_handlers(with_shout, services(Recorded()))
    assert set(handlers) == {"shout", "chat_message"}
    assert missing_handlers(with_shout, handlers) == list(RUNNER_TOPICS)  # the built-ins are the runner's own
    result = await NodeExecutor(handlers).execute(command("shout", text="hi"))
    assert result.output == {"text": "HI"}


def test_a_handler_that_cannot_be_imported_stops_the_runner_saying_which():
    broken = NodeType(
        type="broken", config=ShoutConfig, category="X", runner_class="other", handler="nowhere:build"
    )
    registry = load_registry([])
    registry = type(registry)(
        {**registry.types, "broken": broken}, {**registry.sources, "broken": "plugin b"}
    )
    with pytest.raises(
        PluginLoadError, match="node type 'broken' \\(plugin b\\): its handler factory nowhere:build"
    ):
        plugin_handlers(registry, services(Recorded()))


async def test_a_type_the_runner_has_no_handler_for_fails_the_node_naming_the_missing_plugin():
    result = await NodeExecutor({}).execute(command("chat_message", text="hi"))
    assert result.error.type == NodeErrorType.UNSUPPORTED_NODE
    assert not result.error.retryable
    assert "no handler for the node type 'chat_message'" in result.error.message
    assert "'millrace.nodes' plugin" in result.error.message


async def test_the_chat_handler_posts_the_message_as_json_without_following_redirects():
    from millrace_node_chat.handler import build

    http = Recorded()
    handler = build(services(http))
    outcome = await handler(
        command(
            "chat_message",
            url="https://chat.example/hook",
            text="Deal won",
            username="Millrace",
            timeout_seconds=9,
        )
    )
    assert outcome == Succeeded({"delivered": True, "status": 200, "body": "ok"})
    ((tenant, request),) = http.sent
    assert tenant == "t1"
    assert (request.method, request.url, request.follow_redirects) == (
        "POST",
        "https://chat.example/hook",
        False,
    )
    assert request.content == b'{"text":"Deal won","username":"Millrace"}'
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"].endswith(":tell:1")


async def test_the_chat_handler_is_held_by_the_address_guard():
    from millrace_node_chat.handler import build

    clients = GuardedClients(SystemResolver(), max_connections=2)
    try:
        caller = HttpCaller(clients, max_redirects=0, clock=lambda: datetime.now(UTC))
        handler = build(services(GuardedHttp(Policies(), caller, response_cap_ceiling=1024)))  # type: ignore[arg-type]
        for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://10.0.0.1/x"):
            outcome = await handler(command("chat_message", url=url, text="hi"))
            assert isinstance(outcome, Failed)
            assert outcome.error.type == NodeErrorType.TARGET_NOT_ALLOWED, outcome.error
    finally:
        await clients.aclose()


async def test_the_chat_handler_refuses_an_input_without_text():
    from millrace_node_chat.handler import build

    result = await NodeExecutor({"chat_message": build(services(Recorded()))}).execute(
        command("chat_message", url="https://chat.example/hook")
    )
    assert result.error.type == NodeErrorType.INVALID_INPUT
    assert "text" in result.error.message


# -- the orchestrator's side ------------------------------------------------------------------------


async def test_a_stored_definition_with_a_type_the_orchestrator_lacks_is_refused_naming_the_plugin():
    from millrace_orchestrator.adapters.run_log import DefinitionCache, UnknownWorkflowVersion

    stored = definition({"id": "x", "type": "teleport", "data": {"name": "X"}})

    class Cursor:
        async def fetchone(self):
            return (stored, None)  # the definition, the workflow's owner

    class Connection:
        async def execute(self, *_: object):
            return Cursor()

    workflow_id = uuid4()
    with pytest.raises(UnknownWorkflowVersion) as refused:  # its message is rejected with this reason
        await DefinitionCache().get(Connection(), workflow_id, 3)  # type: ignore[arg-type]
    assert str(refused.value).startswith(
        f"workflow {workflow_id} version 3 cannot be loaded on this orchestrator: "
        "unknown node type 'teleport'"
    )
    assert "needs its package installed in every service that validates or runs workflows" in str(
        refused.value
    )
