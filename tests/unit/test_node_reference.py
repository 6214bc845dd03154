"""docs/node-reference.md against the code: its tables of node outputs, trigger payload paths and error
types are the lists in ``millrace_common.language.node_outputs`` and
``millrace_common.contracts.node_errors``, and the producers' own code (the orchestrator's core, the
runner's and the trigger service's pure parts) makes exactly those shapes and only those error types.
tests/e2e/test_node_reference.py checks real runs."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from millrace_common.contracts.messages.records import RecordCreated, RecordDeleted, RecordUpdated
from millrace_common.contracts.messages.run_commands import FireTimer, ResumeRun
from millrace_common.contracts.node_errors import RENAMED_ERROR_TYPES, NodeErrorType
from millrace_common.language.node_outputs import (
    END_OUTPUT_KEY,
    MANUAL_INPUT_KEY,
    NODE_OUTPUT_FIELDS,
    SET_VARIABLE,
    TRIGGER_PAYLOAD_PATHS,
)
from millrace_common.language.workflow import NODE_MODELS, TriggerConfig, TriggerKind, WorkflowDefinition
from millrace_common.language.workflow_validation import validate_definition
from millrace_gateway.domain.webhooks import CallDecision, WebhookCall, WebhookTarget, decide_call
from millrace_node_runner.domain.ai import ChatAnswer, Usage, cached_output, interpret
from millrace_node_runner.domain.http import response_outcome
from millrace_node_runner.domain.inputs import AiAnalysisInput, AiClassificationInput, AiPromptInput
from millrace_node_runner.domain.outcomes import Succeeded
from millrace_orchestrator.domain.decide import template_context
from millrace_orchestrator.domain.state import RunStatus
from millrace_trigger.domain.firings import Candidate, Firing
from millrace_trigger.domain.kafka_messages import KafkaCandidate, consumed, match_message
from millrace_trigger.domain.matching import match_record_event
from millrace_trigger.domain.schedule import CronSchedule, IntervalSchedule, plan_slots, schedule_firings

from tests.support.node_reference import (
    DOCS,
    code_spans,
    documented_error_types,
    documented_outputs,
    documented_trigger_paths,
    table_after,
)
from tests.unit.run_simulation import Simulation

pytestmark = pytest.mark.unit

ROOT = DOCS.parent
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
ERROR_TYPES = {t.value for t in NodeErrorType}


# -- the tables are the code's lists ----------------------------------------------------------------


def test_every_node_type_is_documented_with_the_output_fields_of_the_code():
    documented = documented_outputs()
    assert set(NODE_OUTPUT_FIELDS) == set(NODE_MODELS), "node_outputs.py lacks or invents a node type"
    assert set(documented) == set(NODE_MODELS), "## Outputs lacks or invents a node type"
    assert documented == {node_type: list(fields) for node_type, fields in NODE_OUTPUT_FIELDS.items()}


def test_every_trigger_kind_is_documented_with_the_payload_paths_of_the_code():
    documented = documented_trigger_paths()
    kinds = set(get_args(TriggerKind))
    assert set(TRIGGER_PAYLOAD_PATHS) == kinds
    assert set(documented) == kinds
    assert documented == {kind: set(paths) for kind, paths in TRIGGER_PAYLOAD_PATHS.items()}


def test_the_documented_error_types_are_the_ones_the_code_has():
    documented = documented_error_types()
    assert set(documented) == ERROR_TYPES
    assert all(retryable.startswith(("yes", "no", "5xx")) for retryable in documented.values())


def test_the_runner_docs_name_only_error_types_the_code_has():
    rows = table_after((DOCS / "node-runners.md").read_text(), "## Results")
    named = {name for row in rows for name in code_spans(row[0])}
    assert named and named <= ERROR_TYPES, named - ERROR_TYPES


# -- every error the code makes has one of the types ------------------------------------------------


def _error_type_sites() -> list[tuple[str, ast.expr | None]]:
    """Every place the services make a node error: ``failed(<type>, ...)`` in the runner and
    ``NodeError(type=<type>, ...)`` anywhere, with the expression given as the type. ``failed`` itself
    passes its parameter on, which must be typed ``NodeErrorType``."""
    sites = []
    for source in sorted([*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/common/src/**/*.py")]):
        tree = ast.parse(source.read_text(), str(source))
        passed_on: set[int] = set()
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef) and function.name == "failed":
                first = function.args.args[0]
                assert first.annotation is not None and ast.unparse(first.annotation) == "NodeErrorType"
                passed_on |= {id(call) for call in ast.walk(function)}
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or id(call) in passed_on:
                continue
            where = f"{source.relative_to(ROOT)}:{call.lineno}"
            if call.func.id == "failed":
                sites.append((where, call.args[0] if call.args else None))
            elif call.func.id == "NodeError":
                sites.append((where, next((k.value for k in call.keywords if k.arg == "type"), None)))
    return sites


def test_every_node_error_the_code_makes_has_a_named_error_type():
    sites = _error_type_sites()
    assert len(sites) > 30, "the scan no longer finds where node errors are made"
    unnamed = [
        where
        for where, given in sites
        if not (
            isinstance(given, ast.Attribute)
            and isinstance(given.value, ast.Name)
            and given.value.id == "NodeErrorType"
            and given.attr in NodeErrorType.__members__
        )
    ]
    assert unnamed == [], "node errors must take their type from NodeErrorType (and so from the docs)"


def test_a_submitted_retry_on_may_name_only_error_types():
    def with_retry_on(*names: str) -> dict:
        call = {
            "id": "call",
            "type": "http_request",
            "data": {"name": "Call", "url": "https://x.test", "retry": {"retry_on": list(names)}},
        }
        trigger = {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}}
        return {"nodes": [trigger, call], "edges": [{"id": "e", "source": "start", "target": "call"}]}

    assert validate_definition(with_retry_on("timeout", "http_status", "item_failed")).ok
    assert validate_definition(with_retry_on("*")).ok
    [unknown] = validate_definition(with_retry_on("timeout", "rate_limited")).problems
    assert unknown.pointer == "/nodes/1/data/retry/retry_on"
    assert "'rate_limited' is not an error type" in unknown.message
    for old, new in RENAMED_ERROR_TYPES.items():
        [renamed] = validate_definition(with_retry_on(old)).problems
        assert f"now called '{new}'" in renamed.message
    # A definition stored when any well-formed name was accepted still loads.
    assert WorkflowDefinition.model_validate(with_retry_on("templateerror", "rate_limited"))


# -- the producers make the documented shapes -------------------------------------------------------


def _fields(node_type: str, output: dict, config: dict) -> None:
    """``output`` has exactly the documented fields of its type, placeholders filled from ``config``."""
    expected: list[str] = []
    for field in NODE_OUTPUT_FIELDS[node_type]:
        if field == SET_VARIABLE:
            expected += list(config["variables"])
        elif field == END_OUTPUT_KEY:
            expected += list(config.get("output") or {})
        else:
            expected.append(field)
    assert sorted(output) == sorted(expected), node_type


def test_the_nodes_the_orchestrator_evaluates_put_out_the_documented_fields():
    configs = {
        "start": ("trigger", {"kind": "manual"}),
        "vars": ("set", {"variables": {"greeting": "Hello {{ trigger.name }}", "n": 2}}),
        "check": (
            "condition",
            {"condition": {"field": "vars.n", "operator": "greater_than", "value": 1}},
        ),
        "route": (
            "switch",
            {"cases": [{"name": "many", "condition": {"field": "vars.n", "operator": "equals", "value": 2}}]},
        ),
        "pause": ("wait_delay", {"duration_seconds": 5}),
        "loop": ("for_each", {"items": "{{ trigger.items }}"}),
        "ok": ("approval", {"assignee": {"role": "admin"}, "title": "Fine?"}),
        "done": (
            "end",
            {"output": {"answer": "{{ vars.greeting }}", "size": "{{ nodes.loop.output.count }}"}},
        ),
    }
    nodes = [
        {"id": node_id, "type": node_type, "data": {"name": node_id, **config}}
        for node_id, (node_type, config) in configs.items()
    ]
    body = {"variables": {"doubled": "{{ item * 2 }}"}}
    nodes.append({"id": "each", "type": "set", "parentId": "loop", "data": {"name": "each", **body}})
    chain = [("start", "vars", None), ("vars", "check", None), ("check", "route", "true")]
    chain += [("route", "pause", "case:many"), ("pause", "loop", None), ("loop", "ok", None)]
    chain += [("ok", "done", "approved")]
    edges = [{"id": f"{s}-{t}", "source": s, "target": t, "sourceHandle": h} for s, t, h in chain]
    sim = Simulation(WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges}))
    sim.start({"name": "Ada", "items": [1, 2]})
    pause = sim.next_timer()
    assert pause is not None and pause.purpose == "delay"
    sim.now = pause.fire_at
    sim.send(FireTimer(tenant_id="acme", run_id=sim.run_id, timer_id=pause.timer_id))
    sim.send(
        ResumeRun(
            tenant_id="acme",
            run_id=sim.run_id,
            node_id="ok",
            decision="approved",
            decided_by="u1",
            note="fine",
        )
    )
    assert sim.state.status is RunStatus.COMPLETED
    for node_id, (node_type, config) in configs.items():
        _fields(node_type, sim.state.node(node_id).output, config)
    _fields("set", sim.state.node("each[0]").output, body)
    assert sim.state.node("vars").output == {"greeting": "Hello Ada", "n": 2}
    assert sim.state.node("done").output == {"answer": "Hello Ada", "size": 2}


def test_the_runner_outputs_have_the_documented_fields():
    def answer(content: str) -> ChatAnswer:
        return ChatAnswer(content=content, model="m-1", finish_reason="stop", usage=Usage(12, 3))

    schema = {"type": "object", "properties": {"tone": {"type": "string"}}}
    outcomes = {
        "ai_prompt": interpret(AiPromptInput(prompt="Hi"), answer("Hello")),
        "ai_analysis": interpret(
            AiAnalysisInput(prompt="x", output_schema=schema), answer('{"tone": "calm"}')
        ),
        "ai_classification": interpret(
            AiClassificationInput(text="t", labels=("Sales", "Spam")),
            answer('{"label": "Sales", "confidence": 0.9, "reasoning": "asks for a price"}'),
        ),
        "http_request": response_outcome(
            200,
            {"content-type": "application/json"},
            b'{"ok": true}',
            truncated=False,
            url="https://x.test/",
            now=NOW,
        ),
    }
    for node_type, outcome in outcomes.items():
        assert isinstance(outcome, Succeeded), outcome
        _fields(node_type, outcome.output, {})
        if node_type.startswith("ai_"):
            _fields(node_type, cached_output(outcome.output), {})
    # webhook_out answers through the same exchange as http_request.
    assert NODE_OUTPUT_FIELDS["webhook_out"] == NODE_OUTPUT_FIELDS["http_request"]


def _candidate(kind: str, **config: object) -> Candidate:
    parsed = TriggerConfig.model_validate({"name": "When", "kind": kind, **config})
    return Candidate(uuid.uuid4(), 1, "acme", parsed)


def _trigger_paths(kind: str, data: dict) -> set[str]:
    """The paths under ``trigger`` a run started with ``data`` sees (the orchestrator's template
    context), one level into the groups the docs list paths under."""
    documented = TRIGGER_PAYLOAD_PATHS[kind]
    sim = Simulation(_one_node_workflow(kind)).start(data, kind=kind)
    seen = set()
    for key, value in template_context(sim.state)["trigger"].items():
        path = f"trigger.{key}"
        if isinstance(value, dict) and any(p.startswith(f"{path}.") for p in documented):
            seen |= {f"{path}.{member}" for member in value}
        else:
            seen.add(path)
    return seen


def _one_node_workflow(kind: str) -> WorkflowDefinition:
    config = {"kind": kind}
    if kind == "scheduled":
        config["cron"] = "@hourly"
    if kind == "field_changed":
        config["fields"] = [{"field": "status"}]
    if kind == "kafka":
        config["topic"] = "orders"
    trigger = {"id": "start", "type": "trigger", "data": {"name": "Start", **config}}
    done = {"id": "done", "type": "end", "data": {"name": "Done"}}
    return WorkflowDefinition.model_validate(
        {"nodes": [trigger, done], "edges": [{"id": "e", "source": "start", "target": "done"}]}
    )


def _started(firings: list[Firing]) -> dict:
    [fired] = firings
    assert fired.outcome == "started", fired.reason
    return fired.data


def _webhook_data(decision: CallDecision) -> dict:
    assert decision.start is not None, decision.reason
    return decision.start.trigger.data


def test_the_trigger_payloads_have_the_documented_paths():
    def record_firing(kind: str, event) -> dict:
        config = {"fields": [{"field": "status"}]} if kind == "field_changed" else {}
        return _started(
            match_record_event(
                event, [_candidate(kind, **config)], last_seen=None, now=NOW, max_causation_depth=5
            )
        )

    record = {"tenant_id": "acme", "pipeline_id": "deals", "record_id": "d-1"}
    update = RecordUpdated(**record, data={"status": "won"}, old_data={"status": "open"})
    hook = WebhookTarget(uuid.uuid4(), "acme", 1, _candidate("webhook").config)
    call = WebhookCall(
        delivery_id="d-1",
        content_type="json",
        body={"x": 1},
        headers={},
        query={},
        signature_verified=False,
    )
    hourly = _candidate("scheduled", cron="@hourly")
    plan = plan_slots(
        CronSchedule("@hourly", "UTC"),
        cursor=NOW,
        now=NOW + timedelta(hours=1, seconds=5),
        grace=timedelta(seconds=60),
    )
    payloads = {
        "record_created": record_firing("record_created", RecordCreated(**record, data={"status": "open"})),
        "record_updated": record_firing("record_updated", update),
        "record_deleted": record_firing(
            "record_deleted", RecordDeleted(**record, old_data={"status": "won"})
        ),
        "field_changed": record_firing("field_changed", update),
        "webhook": _webhook_data(decide_call(hook, call, now=NOW)),
        "scheduled": _started(schedule_firings(hourly, plan, now=NOW + timedelta(hours=1, seconds=5))),
        "kafka": _started(
            match_message(
                consumed("orders", 0, 3, b"k", [("h", b"v")], int(NOW.timestamp() * 1000), {"n": 1}),
                [KafkaCandidate(_candidate("kafka", topic="orders"), NOW - timedelta(hours=1))],
                now=NOW,
            )
        ),
    }
    interval = _candidate("scheduled", schedules=[{"name": "poll", "every": 1, "unit": "hours"}])
    interval_data = _started(
        schedule_firings(
            interval,
            plan_slots(
                IntervalSchedule(3600, "UTC"),
                cursor=NOW,
                now=NOW + timedelta(hours=1, seconds=5),
                grace=timedelta(seconds=60),
            ),
            now=NOW + timedelta(hours=1, seconds=5),
        )
    )
    assert _trigger_paths("scheduled", interval_data) == set(TRIGGER_PAYLOAD_PATHS["scheduled"])
    for kind, data in payloads.items():
        assert _trigger_paths(kind, data) == set(TRIGGER_PAYLOAD_PATHS[kind]), kind
    # A manual run's input (as the gateway passes it on) is at the top of ``trigger``.
    manual = {path.replace(MANUAL_INPUT_KEY, "customer") for path in TRIGGER_PAYLOAD_PATHS["manual"]}
    assert _trigger_paths("manual", {"customer": "Ada"}) == manual
    assert set(payloads) | {"manual"} == set(TRIGGER_PAYLOAD_PATHS)
