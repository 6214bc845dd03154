"""Valid workflow definitions to build tests on; each call returns a fresh copy to change at will.

``every_node_type()`` uses each node type once or more, every kind of handle, a for_each body,
templates and conditions, so gateway, UI and orchestrator tests can start from a realistic graph.
"""

from __future__ import annotations

from typing import Any

Definition = dict[str, Any]


def node(
    node_id: str, node_type: str, x: float = 0, y: float = 0, parent: str | None = None, **data: Any
) -> dict:
    built: dict[str, Any] = {"id": node_id, "type": node_type, "position": {"x": x, "y": y}, "data": data}
    if parent is not None:
        built["parentId"] = parent
    return built


def edge(source: str, target: str, handle: str | None = None) -> dict:
    built: dict[str, Any] = {
        "id": f"{source}->{target}" + (f":{handle}" if handle else ""),
        "source": source,
        "target": target,
    }
    if handle is not None:
        built["sourceHandle"] = handle
    return built


def minimal() -> Definition:
    """A manual trigger followed by an end node."""
    return {
        "nodes": [
            node("start", "trigger", name="Start", kind="manual"),
            node("done", "end", 0, 100, name="Done"),
        ],
        "edges": [edge("start", "done")],
    }


def every_node_type() -> Definition:
    """A lead-routing workflow: classify a new lead, then score and approve it, open a ticket, or
    link it to similar leads, and finish with one end node."""
    nodes = [
        node(
            "lead",
            "trigger",
            0,
            0,
            name="New lead",
            kind="record_created",
            pipeline_ids=["leads"],
            conditions={"field": "trigger.record.data.email", "operator": "is_not_empty"},
        ),
        node(
            "classify",
            "ai_classification",
            0,
            100,
            name="Classify",
            text="{{ trigger.record.data.message }}",
            labels=["sales", "support", "spam"],
            timeout_seconds=120,
        ),
        node(
            "route",
            "switch",
            0,
            200,
            name="Route",
            cases=[
                {
                    "name": "sales",
                    "condition": {
                        "field": "nodes.classify.output.label",
                        "operator": "equals",
                        "value": "sales",
                    },
                },
                {
                    "name": "support",
                    "condition": {
                        "field": "nodes.classify.output.label",
                        "operator": "equals",
                        "value": "support",
                    },
                },
            ],
        ),
        node(
            "score",
            "ai_analysis",
            -300,
            300,
            name="Score",
            prompt="Score this lead from 0 to 100: {{ trigger.record.data | json }}",
            output_schema={
                "type": "object",
                "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
                "required": ["score"],
            },
            temperature=0,
            timeout_seconds=120,
        ),
        node(
            "hot",
            "condition",
            -300,
            400,
            name="Hot?",
            condition={
                "and": [
                    {
                        "field": "nodes.score.output.result.score",
                        "operator": "greater_than_or_equals",
                        "value": 80,
                    },
                    {
                        "not": {
                            "field": "trigger.record.data.company",
                            "operator": "matches",
                            "value": "(?i)test",
                        }
                    },
                ]
            },
        ),
        node(
            "approve",
            "approval",
            -450,
            500,
            name="Approve hot lead",
            assignee={"role": "sales_manager"},
            title="Hot lead {{ trigger.record.data.email }}",
            description="Score {{ nodes.score.output.result.score }}",
            deadline_seconds=86_400,
            on_deadline="escalate",
            escalate_to={"user": "head-of-sales@example.test"},
        ),
        node(
            "mark_hot",
            "record_update",
            -450,
            600,
            name="Mark hot",
            pipeline_id="leads",
            record_id="{{ trigger.record.id }}",
            data={"status": "hot"},
        ),
        node(
            "enrich",
            "sub_workflow",
            -450,
            650,
            name="Enrich the lead",
            workflow_id="6f1c2a4e-8d1b-4c55-9a10-2b7e9d3c4f01",
            input={"email": "{{ trigger.record.data.email }}"},
            mode="wait",
        ),
        node(
            "notify_crm",
            "webhook_out",
            -450,
            700,
            name="Tell the CRM",
            url="https://crm.example.test/hooks/hot-lead",
            payload={"lead": "{{ trigger.record.id }}", "score": "{{ nodes.score.output.result.score }}"},
            secret_credential="crm-signing",
        ),
        node(
            "emit_lead",
            "kafka_publish",
            -450,
            800,
            name="Emit the lead",
            topic="crm.leads",
            key="{{ trigger.record.id }}",
            headers={"score": "{{ nodes.score.output.result.score }}"},
            value={"lead": "{{ trigger.record.id }}"},
        ),
        node(
            "follow_up",
            "task_notify",
            -150,
            600,
            name="Follow up",
            assignee={"role": "sales"},
            title="Follow up with {{ trigger.record.data.email }}",
            message="Score: {{ nodes.score.output.result.score }}",
        ),
        node(
            "draft_reply",
            "ai_prompt",
            0,
            300,
            name="Draft a reply",
            system="You answer support questions briefly.",
            prompt="Draft a reply to: {{ trigger.record.data.message }}",
            max_tokens=400,
            timeout_seconds=120,
        ),
        node(
            "ticket",
            "http_request",
            0,
            400,
            name="Open a ticket",
            method="POST",
            url="https://helpdesk.example.test/api/tickets",
            auth={"type": "bearer", "credential": "helpdesk-token"},
            body={
                "subject": "{{ trigger.record.data.email }}",
                "body": "{{ nodes.draft_reply.output.text }}",
            },
            retry={
                "max_attempts": 3,
                "backoff_seconds": 2,
                "retry_on": ["timeout", "connection", "http_status"],
            },
            on_error="error_edge",
        ),
        node(
            "note_failure",
            "set",
            150,
            500,
            name="Note the failure",
            variables={"ticket_failed": True, "reason": "{{ nodes.ticket.error.message }}"},
        ),
        node(
            "similar",
            "record_find",
            300,
            300,
            name="Find similar leads",
            pipeline_id="leads",
            filters={
                "and": [
                    {
                        "field": "data.company",
                        "operator": "equals",
                        "value": "{{ trigger.record.data.company }}",
                    },
                    {"field": "id", "operator": "not_equals", "value": "{{ trigger.record.id }}"},
                ]
            },
            sort=[{"field": "created_at", "direction": "desc"}],
            limit=20,
        ),
        node(
            "each_similar",
            "for_each",
            300,
            400,
            name="For each similar lead",
            items="{{ nodes.similar.output.records }}",
            max_concurrency=5,
            failure_policy="collect",
        ),
        node(
            "link",
            "record_create",
            20,
            40,
            parent="each_similar",
            name="Link the leads",
            pipeline_id="lead-links",
            data={"from": "{{ trigger.record.id }}", "to": "{{ item.id }}", "rank": "{{ index }}"},
        ),
        node(
            "pause", "wait_delay", 20, 120, parent="each_similar", name="Pace the writes", duration_seconds=1
        ),
        node(
            "drop_duplicate",
            "record_delete",
            20,
            200,
            parent="each_similar",
            name="Drop the duplicate",
            pipeline_id="leads",
            record_id="{{ item.id }}",
            on_error="fallback",
            fallback_output={"record": None},
        ),
        node("cool_off", "wait_delay", 300, 600, name="Cool off", until="{{ days_from_now(1) }}"),
        node(
            "tally",
            "code",
            300,
            700,
            name="Tally the similar leads",
            code='def main():\n    return {"linked": nodes["each_similar"]["output"]["count"]}\n',
        ),
        node(
            "await_reply",
            "wait_for_event",
            300,
            650,
            name="Await the reply",
            event="signal",
            signal_name="reply",
            condition={"field": "payload.ok", "operator": "equals", "value": True},
            wait_seconds=3600,
            accept_earlier_events=True,
        ),
        node(
            "answer",
            "respond_to_webhook",
            300,
            700,
            name="Answer",
            status=202,
            headers={"X-Lead": "{{ trigger.record.id }}"},
            body={"lead": "{{ trigger.record.id }}"},
        ),
        node(
            "research",
            "ai_agent",
            200,
            750,
            name="Research the lead",
            task="Find what we know about {{ trigger.record.data.company }} and note it on the lead",
            tools=[
                {"kind": "records", "pipelines": ["leads"], "actions": ["find", "update"]},
                {
                    "kind": "http",
                    "name": "company_lookup",
                    "description": "Look a company up by name",
                    "url_patterns": ["https://companies.example.test/api/*"],
                },
            ],
            max_turns=6,
        ),
        node("done", "end", 0, 800, name="Done", output={"label": "{{ nodes.classify.output.label }}"}),
    ]
    edges = [
        edge("lead", "classify"),
        edge("classify", "route"),
        edge("route", "score", "case:sales"),
        edge("route", "draft_reply", "case:support"),
        edge("route", "similar", "default"),
        edge("score", "hot"),
        edge("hot", "approve", "true"),
        edge("hot", "follow_up", "false"),
        edge("approve", "mark_hot", "approved"),
        edge("approve", "follow_up", "rejected"),
        edge("approve", "follow_up", "timeout"),
        edge("mark_hot", "enrich"),
        edge("enrich", "notify_crm"),
        edge("notify_crm", "emit_lead"),
        edge("emit_lead", "done"),
        edge("follow_up", "research"),
        edge("research", "done"),
        edge("draft_reply", "ticket"),
        edge("ticket", "done"),
        edge("ticket", "note_failure", "error"),
        edge("note_failure", "done"),
        edge("similar", "each_similar"),
        edge("link", "pause"),
        edge("pause", "drop_duplicate"),
        edge("each_similar", "cool_off", "done"),
        edge("cool_off", "tally"),
        edge("tally", "await_reply"),
        edge("await_reply", "answer", "event"),
        edge("await_reply", "done", "timeout"),
        edge("answer", "done"),
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "settings": {
            "max_executions_per_hour": 500,
            "timeout_minutes": 120,
            "retry_count": 1,
            "max_concurrent_runs": 10,
        },
    }
