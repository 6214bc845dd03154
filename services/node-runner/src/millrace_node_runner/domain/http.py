"""HTTP requests and answers as decisions: headers, bodies, redirects, signatures, outcomes. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Literal
from urllib.parse import urlencode, urljoin, urlsplit
from uuid import UUID

from millrace_common.contracts.json_depth import too_deep
from millrace_common.contracts.node_errors import NodeErrorType
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from millrace_node_runner.domain.outcomes import Outcome, Succeeded, failed

SIGNATURE_HEADER = "Millrace-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
MAX_RETRY_AFTER_SECONDS = 24 * 3600
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def idempotency_key(run_id: UUID, node_id: str, attempt: int) -> str:
    """The same for a redelivered command, different for each attempt."""
    return f"{run_id}:{node_id}:{attempt}"


# -- credentials ------------------------------------------------------------------------------------


class _Secret(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class BearerSecret(_Secret):
    kind: Literal["bearer"]
    token: str


class BasicSecret(_Secret):
    kind: Literal["basic"]
    username: str
    password: str


class HeaderSecret(_Secret):
    kind: Literal["header"]
    header_name: str
    value: str


class HmacSecret(_Secret):
    kind: Literal["hmac"]
    secret: str


CredentialSecret = Annotated[
    BearerSecret | BasicSecret | HeaderSecret | HmacSecret, Field(discriminator="kind")
]
CREDENTIAL_SECRET: TypeAdapter[CredentialSecret] = TypeAdapter(CredentialSecret)


def auth_headers(secret: BearerSecret | BasicSecret | HeaderSecret) -> dict[str, str]:
    if isinstance(secret, BearerSecret):
        return {"Authorization": f"Bearer {secret.token}"}
    if isinstance(secret, BasicSecret):
        pair = f"{secret.username}:{secret.password}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {secret.header_name: secret.value}


def merge_headers(*layers: dict[str, str]) -> dict[str, str]:
    """Later layers win, compared without case (``authorization`` replaces ``Authorization``)."""
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        for name, value in layer.items():
            merged[name.lower()] = (name, value)
    return dict(merged.values())


# -- bodies -----------------------------------------------------------------------------------------


def compact_json(value: JsonValue) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def encode_body(body_type: str, body: JsonValue) -> tuple[bytes | None, str | None]:
    """The bytes to send and their content type (None when there is no body)."""
    if body is None:
        return None, None
    if body_type == "form":
        assert isinstance(body, dict)
        pairs = [(k, json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in body.items()]
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    if body_type == "raw":
        assert isinstance(body, str)
        return body.encode(), "text/plain; charset=utf-8"
    return compact_json(body), "application/json"


# -- outgoing webhook signatures --------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``: the header receivers check."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_holds(
    secret: str, header: str, body: bytes, now: int, tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields.get("t", [""])[0])
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = webhook_signature(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


# -- redirects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str
    keeps_body: bool
    same_origin: bool


def redirect_for(method: str, url: str, status: int, location: str | None) -> Redirect | None:
    """Where a 3xx answer sends the request: 303 (and 301/302 after a POST) become a GET without a
    body, as browsers do; 307 and 308 repeat the request as it was."""
    if status not in REDIRECT_STATUSES or not location:
        return None
    target = urljoin(url, location.strip())
    if status == 303 or (status in (301, 302) and method == "POST"):
        next_method, keeps_body = ("GET", False) if method != "HEAD" else ("HEAD", False)
    else:
        next_method, keeps_body = method, True
    return Redirect(target, next_method, keeps_body, _origin(target) == _origin(url))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or ""), port


# -- answers ----------------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; capped at a day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), MAX_RETRY_AFTER_SECONDS))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return min(max((moment - now).total_seconds(), 0.0), float(MAX_RETRY_AFTER_SECONDS))


def response_outcome(
    status: int, headers: dict[str, str], body: bytes, *, truncated: bool, url: str, now: datetime
) -> Outcome:
    """2xx and unfollowed 3xx succeed; 5xx and 429 are retryable (with Retry-After when given); other
    4xx are not. Error messages never echo the body: it may come from an internal target."""
    if status >= 500 or status == 429:
        wait = retry_after_seconds(headers.get("retry-after"), now)
        hint = f"; it asked to retry after {wait:g} s" if wait is not None else ""
        return failed(
            NodeErrorType.HTTP_STATUS,
            f"the server answered {status}{hint}",
            retryable=True,
            retry_after_seconds=wait,
        )
    if status >= 400:
        return failed(NodeErrorType.HTTP_STATUS, f"the server answered {status}", retryable=False)
    content_type = headers.get("content-type", "").lower()
    parsed: JsonValue
    if ("/json" in content_type or "+json" in content_type) and not truncated and body and not too_deep(body):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode(errors="replace")
    else:
        # Not JSON, cut short, or nested deeper than any message may be (MAX_JSON_DEPTH): the text.
        parsed = body.decode(errors="replace")
    return Succeeded(
        {"status": status, "headers": headers, "body": parsed, "truncated": truncated, "url": url}
    )
