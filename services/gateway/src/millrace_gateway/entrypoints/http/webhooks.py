"""The public webhook receiver: ``POST /hooks/{token}`` starts a run of the workflow behind the token.

Checks come first and store nothing when they fail: the workflow is active with a webhook trigger,
the body is JSON or a form and within the size cap, the signature (when the trigger asks for one) is
right and recent. Then the delivery id is claimed and the call is published to ``webhooks.inbound``;
the caller gets 202 with the run id only once Kafka has acknowledged it (all in-sync replicas,
idempotent producer). If the publish fails the claim rolls back and the caller gets 503, so a retry
is accepted afresh. ``docs/triggers.md`` is the callers' contract.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Path, Request
from millrace_common.json_depth import depth_detail, too_deep
from millrace_common.messages.envelope import utc_now
from millrace_common.messages.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRejected,
    WebhookReceived,
    run_id_for_key,
    verify_signature,
    webhook_idempotency_key,
)
from millrace_common.outbox import Outgoing, enqueue
from millrace_common.secrets import SecretsUnavailable
from millrace_common.tables import credentials, webhook_deliveries, workflow_triggers, workflows
from millrace_common.topics import WEBHOOKS_INBOUND
from millrace_common.workflow import TriggerConfig
from pydantic import BaseModel, JsonValue
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from millrace_gateway.entrypoints.http.deps import EngineDep, NamespaceDep, RelayDep, SecretBoxDep
from millrace_gateway.entrypoints.http.errors import ApiError, body_limit_detail
from millrace_gateway.settings import PRODUCER

MAX_WEBHOOK_BODY_BYTES = 256 * 1024
"""Bodies above this are refused (413): the call travels as one Kafka message and lands in the run."""
MAX_MESSAGE_BYTES = 900 * 1024
MAX_HEADERS = 50
MAX_HEADER_CHARS = 1000
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")
_PRIVATE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", SIGNATURE_HEADER.lower(), "content-length", "host"}
)
_ALTERNATE_DELIVERY_HEADER = "Idempotency-Key"


class WebhookAccepted(BaseModel):
    run_id: UUID
    delivery_id: str
    duplicate: bool = False


def build_router() -> APIRouter:
    """The webhook route: each call is stored with its delivery claim in the gateway's outbox, which
    the gateway's relay publishes to ``webhooks.inbound``."""
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/hooks/{token}",
        status_code=202,
        response_model=WebhookAccepted,
        responses={
            401: {"description": "signature or timestamp missing, malformed, wrong or stale"},
            404: {"description": "no webhook at this address"},
            409: {"description": "the workflow is not active with a webhook trigger"},
            413: {"description": f"body larger than {MAX_WEBHOOK_BODY_BYTES} bytes"},
            415: {"description": "body is neither JSON nor a URL-encoded form"},
        },
    )
    async def receive_webhook(
        token: Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
        request: Request,
        engine: EngineDep,
        namespace: NamespaceDep,
        box: SecretBoxDep,
        relay: RelayDep,
    ) -> WebhookAccepted:
        """Start a run of the workflow behind this address with the posted body (202 with the run id)."""
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        workflows.c.id,
                        workflows.c.tenant_id,
                        workflows.c.status,
                        workflow_triggers.c.workflow_version,
                        workflow_triggers.c.trigger_kind,
                        workflow_triggers.c.config,
                    )
                    .outerjoin(workflow_triggers, workflow_triggers.c.workflow_id == workflows.c.id)
                    .where(workflows.c.webhook_token == token)
                )
            ).first()
        if row is None:
            raise ApiError(404, "not_found", "no webhook at this address")
        if row.status != "active" or row.trigger_kind != "webhook":
            raise ApiError(409, "wrong_state", "the workflow is not active with a webhook trigger")
        config = TriggerConfig.model_validate(row.config)
        content_type = _content_type(request)
        raw = await _body(request)
        verified = await _check_signature(engine, box, row.tenant_id, config, request, raw)
        body = _parse(content_type, raw)
        delivery_id = _delivery_id(request)
        key = webhook_idempotency_key(row.id, delivery_id)
        run_id = run_id_for_key(key)
        now = utc_now()
        message = WebhookReceived(
            tenant_id=row.tenant_id,
            correlation_id=run_id,
            workflow_id=row.id,
            workflow_version=row.workflow_version,
            delivery_id=delivery_id,
            run_id=run_id,
            idempotency_key=key,
            content_type=content_type,
            body=body,
            headers=_headers(request),
            query=_query(request),
            signature_verified=verified,
            received_at=now,
        )
        encoded = message.to_bytes()
        if len(encoded) > MAX_MESSAGE_BYTES:
            # Escaping can grow a body (control characters become \uXXXX); Kafka takes ~1 MB a message.
            raise _too_large()
        async with engine.begin() as connection:
            claimed = (
                await connection.execute(
                    pg_insert(webhook_deliveries)
                    .values(workflow_id=row.id, delivery_id=delivery_id, run_id=run_id, received_at=now)
                    .on_conflict_do_nothing()
                    .returning(webhook_deliveries.c.run_id)
                )
            ).first()
            if claimed is None:
                # Seen before: the first call was answered once its message was stored with the claim.
                return WebhookAccepted(run_id=run_id, delivery_id=delivery_id, duplicate=True)
            # The message is stored with the claim, in one transaction, and the relay publishes it:
            # no request waits for Kafka holding a database connection, and calls are accepted while
            # Kafka is away (they run once it is back).
            await enqueue(
                connection,
                namespace,
                PRODUCER,
                [Outgoing(WEBHOOKS_INBOUND, str(row.id), message, value=encoded)],
            )
        relay.wake()
        return WebhookAccepted(run_id=run_id, delivery_id=delivery_id)

    return router


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


async def _check_signature(
    engine: EngineDep, box: SecretBoxDep, tenant_id: str, config: TriggerConfig, request: Request, raw: bytes
) -> bool:
    """Verify when the trigger requires a signature, or names a secret and the call is signed."""
    signed = SIGNATURE_HEADER in request.headers or TIMESTAMP_HEADER in request.headers
    if config.secret_credential is None or not (config.require_signature or signed):
        return False
    secret = await _hmac_secret(engine, box, tenant_id, config.secret_credential)
    try:
        verify_signature(
            secret,
            timestamp_header=request.headers.get(TIMESTAMP_HEADER),
            signature_header=request.headers.get(SIGNATURE_HEADER),
            body=raw,
            now=utc_now(),
        )
    except SignatureRejected as rejected:
        header = TIMESTAMP_HEADER if "timestamp" in rejected.problem.value else SIGNATURE_HEADER
        raise ApiError(
            401,
            rejected.problem.value,
            str(rejected),
            [{"pointer": f"/header/{header.lower()}", "detail": str(rejected)}],
        ) from rejected
    return True


async def _hmac_secret(engine: EngineDep, box: SecretBoxDep, tenant_id: str, name: str) -> bytes:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(credentials.c.kind, credentials.c.ciphertext).where(
                    credentials.c.tenant_id == tenant_id, credentials.c.name == name
                )
            )
        ).first()
    misconfigured = ApiError(
        503,
        "webhook_misconfigured",
        f"the workflow's signing secret {name!r} is not an hmac credential of its tenant",
    )
    if row is None or row.kind != "hmac":
        raise misconfigured
    try:
        secret = json.loads(box.open(row.ciphertext)).get("secret")
    except (SecretsUnavailable, ValueError, AttributeError) as error:
        raise misconfigured from error
    if not isinstance(secret, str) or not secret:
        raise misconfigured
    return secret.encode()


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
    problem = _unstorable(body)
    if problem:
        raise ApiError(400, "invalid_body", problem, [{"pointer": "/body", "detail": problem}])
    return body


def _unstorable(value: JsonValue) -> str | None:
    """PostgreSQL stores neither NUL characters nor unpaired surrogates, and the run's log is there."""
    stack = [value]
    while stack:
        item = stack.pop()
        texts: list[str] = []
        if isinstance(item, str):
            texts = [item]
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            texts = list(item)
            stack.extend(item.values())
        for text in texts:
            if "\x00" in text:
                return "the body holds a NUL character, which cannot be stored"
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return "the body holds an unpaired surrogate, which cannot be stored"
    return None


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
    problem = _unstorable(query)
    if problem:
        raise ApiError(
            400,
            "invalid_query",
            problem.replace("body", "query string"),
            [{"pointer": "/query", "detail": problem}],
        )
    return query


__all__ = ["MAX_WEBHOOK_BODY_BYTES", "WebhookAccepted", "build_router"]
