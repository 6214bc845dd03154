"""The public webhook receiver: ``POST /hooks/{token}`` starts a run of the workflow behind the token.

Checks come first and store nothing when they fail: the workflow is active with a webhook trigger,
the body is JSON or a form and within the size cap, the signature (when the trigger asks for one) is
right and recent. Then the call's outcome is decided and its delivery id claimed, with the run's
``StartRun`` stored alongside (``service_layer.webhooks``), which the relay publishes to
``runs.commands``; the caller gets 202 with the run id as soon as that is durable. When the workflow
has a ``respond_to_webhook`` node the call first waits, a bounded time, for the run to answer it
(``service_layer.webhook_answers``). ``docs/triggers.md`` is the callers' contract.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Annotated, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from millrace_common.contracts.json_depth import depth_detail, too_deep
from millrace_common.contracts.messages.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRejected,
)
from pydantic import BaseModel, Field, JsonValue

from millrace_gateway.domain.webhooks import WebhookCall, WebhookTarget, call_run_id, unstorable
from millrace_gateway.entrypoints.http.deps import WebhookAnswersDep, WebhooksDep
from millrace_gateway.entrypoints.http.errors import ApiError, body_limit_detail
from millrace_gateway.service_layer.webhook_answers import WebhookAnswer
from millrace_gateway.service_layer.webhooks import AcceptedCall, CallTooLarge, WebhookReceiver

MAX_WEBHOOK_BODY_BYTES = 256 * 1024
"""Bodies above this are refused (413): the call travels as one Kafka message and lands in the run."""
MAX_HEADERS = 50
MAX_HEADER_CHARS = 1000
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")
_PRIVATE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", SIGNATURE_HEADER.lower(), "content-length", "host"}
)
_ALTERNATE_DELIVERY_HEADER = "Idempotency-Key"
# Headers of a run's answer that describe the message's framing: the server sets them for the body
# it sends, and one a node set could contradict it.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"})

router = APIRouter(tags=["webhooks"])


class WebhookAccepted(BaseModel):
    run_id: UUID = Field(description="The run the call names (derived from the delivery id)")
    delivery_id: str
    duplicate: bool = Field(
        default=False, description="The delivery id was accepted before: the run named is that call's"
    )
    outcome: Literal["started", "filtered", "condition_error"] | None = Field(
        default=None,
        description="started: the run starts; filtered or condition_error: the trigger's conditions "
        "let no run start (reason says why). None for a duplicate (the first call's answer holds).",
    )
    reason: str | None = None


@router.post(
    "/hooks/{token}",
    status_code=202,
    response_model=WebhookAccepted,
    responses={
        400: {
            "description": "a body that is not JSON or a form, or nested too deep (invalid_body); a "
            "query with characters that cannot be stored (invalid_query); a bad X-Millrace-Delivery "
            "header (invalid_delivery_id)"
        },
        401: {"description": "signature or timestamp missing, malformed, wrong or stale"},
        404: {"description": "no webhook at this address"},
        409: {"description": "the workflow is not active with a webhook trigger"},
        200: {
            "description": "the run's respond_to_webhook node answered in time: its status, headers "
            "and body (the node may set any status from 200 to 599: the ranges below)"
        },
        "2XX": {"description": "a respond_to_webhook node's answer"},
        "3XX": {"description": "a respond_to_webhook node's answer"},
        "4XX": {"description": "a respond_to_webhook node's answer, or one of the refusals above"},
        "5XX": {"description": "a respond_to_webhook node's answer"},
        413: {"description": f"body larger than {MAX_WEBHOOK_BODY_BYTES} bytes"},
        415: {"description": "body is neither JSON nor a URL-encoded form"},
    },
)
async def receive_webhook(
    token: Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    request: Request,
    webhooks: WebhooksDep,
    answers: WebhookAnswersDep,
) -> WebhookAccepted | Response:
    """Start a run of the workflow behind this address with the posted body (202 with the run id); a
    workflow with a respond_to_webhook node answers with what that node sets, if it does in time."""
    target = await webhooks.target(token)
    content_type = _content_type(request)
    raw = await _body(request)
    try:
        verified = await webhooks.verified(
            target,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=raw,
        )
    except SignatureRejected as rejected:
        header = TIMESTAMP_HEADER if "timestamp" in rejected.problem.value else SIGNATURE_HEADER
        raise ApiError(
            401,
            rejected.problem.value,
            str(rejected),
            [{"pointer": f"/header/{header.lower()}", "detail": str(rejected)}],
        ) from rejected
    body = _parse(content_type, raw)
    delivery_id = _delivery_id(request)
    call = WebhookCall(
        delivery_id=delivery_id,
        content_type=content_type,
        body=body,
        headers=_headers(request),
        query=_query(request),
        signature_verified=verified,
    )
    wait = answers.wait_seconds(target.respond_wait_seconds)
    if wait > 0:
        run_id = call_run_id(target, delivery_id)
        async with answers.awaiting(target.tenant_id, run_id, wait) as pending:
            accepted = await _accept(webhooks, target, call)
            if accepted.outcome == "started":
                answer = await pending.result()
                if answer is not None:
                    return _answer(answer, accepted.run_id)
    else:
        accepted = await _accept(webhooks, target, call)
    return WebhookAccepted(
        run_id=accepted.run_id,
        delivery_id=accepted.delivery_id,
        duplicate=accepted.duplicate,
        outcome=accepted.outcome,
        reason=accepted.reason,
    )


async def _accept(webhooks: WebhookReceiver, target: WebhookTarget, call: WebhookCall) -> AcceptedCall:
    try:
        return await webhooks.accept(target, call)
    except CallTooLarge as error:
        raise _too_large() from error


def _answer(answer: WebhookAnswer, run_id: UUID) -> Response:
    """The run's answer: a string body under a non-JSON content type goes as it is, the rest as JSON."""
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _FRAMING_HEADERS}
    headers = {**kept, "X-Millrace-Run-Id": str(run_id)}
    declared_type = next((v for k, v in answer.headers.items() if k.lower() == "content-type"), None)
    if answer.body is None:
        return Response(status_code=answer.status, headers=headers)
    if isinstance(answer.body, str) and declared_type and "json" not in declared_type.lower():
        return Response(answer.body, status_code=answer.status, headers=headers)
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


def _content_type(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return "json"
    if media_type == "application/x-www-form-urlencoded":
        return "form"
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the body as application/json or application/x-www-form-urlencoded",
        [{"pointer": "/header/content-type", "detail": f"got {media_type or 'none'}"}],
    )


def _too_large() -> ApiError:
    return ApiError(413, "too_large", body_limit_detail("webhook", MAX_WEBHOOK_BODY_BYTES))


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WEBHOOK_BODY_BYTES:
        raise _too_large()
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > MAX_WEBHOOK_BODY_BYTES:
            raise _too_large()
    return bytes(chunks)


def _parse(content_type: str, raw: bytes) -> JsonValue:
    if content_type == "json" and too_deep(raw):
        # Counted without parsing: json.loads and pydantic recurse once per level (and the body is
        # parsed again downstream). Every service's middleware refuses it too, while it is read.
        raise ApiError(
            400,
            "invalid_body",
            f"the body is {depth_detail()}",
            [{"pointer": "/body", "detail": depth_detail()}],
        )
    try:
        text = raw.decode("utf-8")
        if content_type == "json":
            body: JsonValue = json.loads(text)
        else:
            fields = urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
            body = {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
    except (UnicodeDecodeError, ValueError) as error:
        what = "JSON" if content_type == "json" else "a URL-encoded form"
        raise ApiError(
            400,
            "invalid_body",
            f"the body is not valid {what} in UTF-8",
            [{"pointer": "/body", "detail": str(error)}],
        ) from error
    problem = unstorable(body)
    if problem:
        raise ApiError(400, "invalid_body", problem, [{"pointer": "/body", "detail": problem}])
    return body


def _delivery_id(request: Request) -> str:
    given = request.headers.get(DELIVERY_HEADER) or request.headers.get(_ALTERNATE_DELIVERY_HEADER)
    if given is None:
        return str(uuid4())
    if not _DELIVERY_ID.match(given):
        raise ApiError(
            400,
            "invalid_delivery_id",
            f"{DELIVERY_HEADER} is 1 to 200 letters, digits and ._:@/+=-",
            [{"pointer": f"/header/{DELIVERY_HEADER.lower()}", "detail": "not a valid delivery id"}],
        )
    return given


def _headers(request: Request) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in request.headers.items():
        if name in _PRIVATE_HEADERS or len(kept) >= MAX_HEADERS:
            continue
        kept[name] = value[:MAX_HEADER_CHARS]
    return kept


def _query(request: Request) -> dict[str, JsonValue]:
    grouped: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        grouped.setdefault(name, []).append(value)
    query: dict[str, JsonValue] = {
        name: values[0] if len(values) == 1 else list(values) for name, values in grouped.items()
    }
    problem = unstorable(query)
    if problem:
        raise ApiError(
            400,
            "invalid_query",
            problem.replace("body", "query string"),
            [{"pointer": "/query", "detail": problem}],
        )
    return query


__all__ = ["MAX_WEBHOOK_BODY_BYTES", "WebhookAccepted", "router"]
