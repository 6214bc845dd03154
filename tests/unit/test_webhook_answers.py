"""How a webhook call waits for its run's answer and how the answer is sent: only workflows with a
respond_to_webhook node make calls wait, the workflow's wait is capped by the installation's, and the
answer keeps the node's status, headers and body but never its framing headers."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from millrace_gateway.adapters.webhook_targets import respond_wait_of
from millrace_gateway.entrypoints.http.webhooks import _answer
from millrace_gateway.service_layer.webhook_answers import WebhookAnswer, WebhookAnswers, answer_of

pytestmark = pytest.mark.unit


def definition(*types: str, **settings: object) -> dict:
    return {"nodes": [{"id": t, "type": t, "data": {}} for t in types], "settings": settings}


def test_only_a_workflow_with_a_respond_node_makes_its_calls_wait():
    assert respond_wait_of(definition("trigger", "set", "end")) == 0
    assert respond_wait_of(definition("trigger", "respond_to_webhook")) == 10
    assert (
        respond_wait_of(definition("trigger", "respond_to_webhook", webhook_response_wait_seconds=2.5)) == 2.5
    )


@pytest.mark.parametrize(
    ("workflow", "installation", "waits"), [(10, 30, 10), (60, 30, 30), (10, 0, 0), (0, 30, 0)]
)
def test_the_workflow_s_wait_is_capped_by_the_installation_s(workflow, installation, waits):
    answers = WebhookAnswers(None, None, max_wait_seconds=installation)  # type: ignore[arg-type]
    assert answers.wait_seconds(workflow) == waits


def test_an_answer_keeps_the_node_s_status_headers_and_json_body_and_names_the_run():
    run_id = uuid4()
    sent = _answer(WebhookAnswer(201, {"X-Order": "A-7", "Content-Length": "999"}, {"ok": True}), run_id)
    assert sent.status_code == 201
    assert json.loads(sent.body) == {"ok": True}
    assert sent.headers["x-order"] == "A-7" and sent.headers["x-millrace-run-id"] == str(run_id)
    assert sent.headers["content-length"] == str(len(sent.body))
    assert sent.headers["content-type"] == "application/json"


def test_a_text_body_under_a_text_content_type_is_sent_as_it_is_and_no_body_sends_none():
    text = _answer(WebhookAnswer(200, {"Content-Type": "text/plain"}, "thanks"), uuid4())
    assert text.body == b"thanks" and text.headers["content-type"].startswith("text/plain")
    empty = _answer(WebhookAnswer(204, {}, None), uuid4())
    assert empty.status_code == 204 and empty.body == b""


def test_the_answer_is_read_from_a_webhook_responded_event():
    event = {"type": "webhook.responded", "status": 418, "headers": {"a": 1}, "body": [1, 2]}
    assert answer_of(event) == WebhookAnswer(418, {"a": "1"}, [1, 2])
