"""The gateway's pure rules: what the trigger index holds of an activated version, what an archived
workflow refuses, how copies are named, merges, run commands, webhook calls and whose tasks a caller
sees; and that a use case's refusal is answered as the same problem details the routes raised before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from millrace_common.language.workflow import TriggerConfig, WorkflowDefinition
from millrace_common.platform.auth import Principal
from millrace_common.platform.permissions import Role
from millrace_common.platform.problems import Problem, install_problem_handlers
from millrace_gateway.adapters.trigger_index import rows_of, trigger_index_rows
from millrace_gateway.domain.records import changed_data
from millrace_gateway.domain.refusals import Archived, FieldProblem, NotFound, Refused, UnknownVersion
from millrace_gateway.domain.runs import CANCELLABLE, RETRYABLE, node_started_at, refuse_unless
from millrace_gateway.domain.tasks import addressee
from millrace_gateway.domain.trigger_index import ANY_PIPELINE, active_trigger
from millrace_gateway.domain.webhooks import takes_calls, unstorable, verifying_secret
from millrace_gateway.domain.workflows import NAME_LIMIT, copy_name, refuse_if_archived
from millrace_gateway.entrypoints.http import errors

from tests.unit.workflow_examples import edge, node

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def definition(**trigger: object) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                node("when", "trigger", name="When", **trigger),
                node("done", "end", 0, 100, name="Done"),
            ],
            "edges": [edge("when", "done")],
            "settings": {"max_executions_per_hour": 42},
        }
    )


def test_a_record_trigger_is_indexed_once_per_pipeline_with_its_config_but_not_its_hourly_limit():
    workflow_id = uuid.uuid4()
    trigger = active_trigger(
        "acme", workflow_id, 3, definition(kind="record_created", pipeline_ids=["deals", "leads"]), NOW
    )
    assert trigger is not None
    index, config = rows_of(trigger)
    assert [(row["pipeline_id"], row["trigger_kind"], row["workflow_version"]) for row in index] == [
        ("deals", "record_created", 3),
        ("leads", "record_created", 3),
    ]
    assert {row["tenant_id"] for row in index} == {"acme"}
    assert config["workflow_id"] == workflow_id
    assert "max_executions_per_hour" not in config, "the hourly limit is the orchestrator's to judge"
    assert config["activated_at"] == NOW
    assert TriggerConfig.model_validate(config["config"]).pipeline_ids == ("deals", "leads")


@pytest.mark.parametrize(
    "trigger",
    [{"kind": "record_updated"}, {"kind": "webhook"}, {"kind": "scheduled", "cron": "*/5 * * * *"}],
)
def test_a_trigger_on_every_pipeline_a_webhook_and_a_schedule_are_indexed_under_the_star(trigger):
    indexed = active_trigger("acme", uuid.uuid4(), 1, definition(**trigger), NOW)
    assert indexed is not None and indexed.pipelines == (ANY_PIPELINE,)


def test_a_manual_trigger_is_not_indexed():
    assert active_trigger("acme", uuid.uuid4(), 1, definition(kind="manual"), NOW) is None
    assert trigger_index_rows("acme", uuid.uuid4(), 1, definition(kind="manual"), NOW) == ([], None)


def test_an_archived_workflow_refuses_what_it_is_asked_with_409_archived():
    refuse_if_archived("paused", "run")
    with pytest.raises(Archived) as refused:
        refuse_if_archived("archived", "be activated")
    assert (refused.value.status, refused.value.code) == (409, "archived")
    assert refused.value.detail == "an archived workflow cannot be activated"


def test_a_copy_is_named_after_its_source_within_the_name_limit():
    assert copy_name("Onboarding") == "Onboarding (copy)"
    long = copy_name("x" * NAME_LIMIT)
    assert len(long) == NAME_LIMIT and long.endswith(" (copy)")


def test_a_merge_sets_the_given_fields_and_a_replace_keeps_only_them():
    old = {"stage": "lead", "owner": "ada"}
    assert changed_data(old, {"stage": "won", "owner": None}, merge=True) == {"stage": "won", "owner": None}
    assert changed_data(old, {"stage": "won"}, merge=True) == {"stage": "won", "owner": "ada"}
    assert changed_data(old, {"stage": "won"}, merge=False) == {"stage": "won"}


def test_cancel_applies_to_running_runs_and_retry_to_failed_ones():
    refuse_unless("running", CANCELLABLE)
    refuse_unless("failed", RETRYABLE)
    with pytest.raises(Refused) as refused:
        refuse_unless("completed", RETRYABLE)
    assert (refused.value.status, refused.value.code) == (409, "wrong_state")
    assert refused.value.detail == "the run is completed; this needs it to be failed"


def test_a_node_evaluated_in_place_started_its_duration_before_it_finished():
    assert node_started_at(NOW, NOW + timedelta(seconds=5), 5000) == NOW
    assert node_started_at(None, NOW, 1500) == NOW - timedelta(milliseconds=1500)
    assert node_started_at(None, None, None) is None


def test_only_an_active_workflow_with_a_webhook_trigger_takes_calls():
    assert takes_calls("active", "webhook")
    assert not takes_calls("paused", "webhook")
    assert not takes_calls("active", "record_created")
    assert not takes_calls("active", None)


def test_a_call_is_checked_when_its_trigger_requires_a_signature_or_it_is_signed():
    required = TriggerConfig.model_validate(
        {"name": "Hook", "kind": "webhook", "require_signature": True, "secret_credential": "hook"}
    )
    optional = TriggerConfig.model_validate({"name": "Hook", "kind": "webhook", "secret_credential": "hook"})
    unsigned = TriggerConfig.model_validate({"name": "Hook", "kind": "webhook"})
    assert verifying_secret(required, signed=False) == "hook"
    assert verifying_secret(optional, signed=True) == "hook"
    assert verifying_secret(optional, signed=False) is None
    assert verifying_secret(unsigned, signed=True) is None


def test_a_body_with_a_nul_or_an_unpaired_surrogate_cannot_be_stored():
    assert unstorable({"a": ["fine", {"b": 1}]}) is None
    assert "NUL" in (unstorable({"a": ["x\x00y"]}) or "")
    assert "surrogate" in (unstorable({"\ud800": 1}) or "")


def test_a_user_sees_tasks_by_id_email_or_role_and_an_api_key_by_role_only():
    subject = uuid.uuid4()
    user = Principal("acme", subject, "user", frozenset({Role.APPROVER, Role.ADMIN}))
    assert addressee(user, "Ada@Acme.test").names == (str(subject), "ada@acme.test")
    assert addressee(user, "Ada@Acme.test").roles == ("admin", "approver")
    key = Principal("acme", subject, "api_key", frozenset())
    assert addressee(key, None).names == (str(subject),) and addressee(key, None).roles == ()


def app_raising(error: Exception) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    errors.install(app, max_body_bytes=1024, webhook_body_bytes=512)

    @app.get("/thing")
    async def thing() -> None:
        raise error

    return TestClient(app)


@pytest.mark.parametrize(
    ("refusal", "problem"),
    [
        (NotFound("workflow"), Problem(404, "not_found", "workflow not found")),
        (
            Archived("an archived workflow cannot run"),
            Problem(409, "archived", "an archived workflow cannot run"),
        ),
        (
            UnknownVersion(7, pointer="/body/version", status=422),
            Problem(
                422,
                "unknown_version",
                "the workflow has no version 7",
                [{"pointer": "/body/version", "detail": "no such version"}],
            ),
        ),
        (
            Refused("pipeline 'p' exists", FieldProblem("/body/id", "taken")),
            Problem(409, "conflict", "pipeline 'p' exists", [{"pointer": "/body/id", "detail": "taken"}]),
        ),
    ],
)
def test_a_refusal_is_answered_as_the_problem_the_routes_raised_before(refusal: Refused, problem: Problem):
    refused = app_raising(refusal).get("/thing")
    raised = app_raising(problem).get("/thing")
    assert refused.status_code == raised.status_code == problem.status
    assert refused.headers["content-type"] == raised.headers["content-type"] == "application/problem+json"
    assert refused.json() == raised.json()
