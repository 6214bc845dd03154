"""HTTP decisions of the node runner: answers to outcomes, Retry-After, redirects, headers, bodies,
and the signature outgoing webhooks carry."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_node_runner.domain.http import (
    BasicSecret,
    BearerSecret,
    HeaderSecret,
    auth_headers,
    encode_body,
    idempotency_key,
    merge_headers,
    redirect_for,
    response_outcome,
    retry_after_seconds,
    signature_holds,
    webhook_signature,
)
from millrace_node_runner.domain.outcomes import Failed, Succeeded

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def outcome(status: int, body: bytes = b"", **headers: str):
    return response_outcome(status, headers, body, truncated=False, url="http://x.test/", now=NOW)


def test_a_json_answer_becomes_the_output_with_status_and_headers():
    result = outcome(201, b'{"id": 7}', **{"content-type": "application/json; charset=utf-8"})

    assert result == Succeeded(
        {
            "status": 201,
            "headers": {"content-type": "application/json; charset=utf-8"},
            "body": {"id": 7},
            "truncated": False,
            "url": "http://x.test/",
        }
    )


def test_text_answers_and_truncated_json_stay_text():
    assert outcome(200, b"plain", **{"content-type": "text/plain"}).output["body"] == "plain"
    truncated = response_outcome(
        200, {"content-type": "application/json"}, b'{"a": [1, 2', truncated=True, url="u", now=NOW
    )
    assert truncated.output["body"] == '{"a": [1, 2' and truncated.output["truncated"] is True


@pytest.mark.parametrize("depth", [65, 300, 100_000])
def test_json_nested_deeper_than_any_message_may_be_stays_text(depth: int):
    deep = b"[" * depth + b"]" * depth
    result = outcome(200, deep, **{"content-type": "application/json"})
    assert result.output["body"] == deep.decode()


def test_json_nested_within_the_limit_is_parsed():
    nested = b"[" * 64 + b"]" * 64
    assert outcome(200, nested, **{"content-type": "application/json"}).output["body"] != nested.decode()


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_and_too_many_requests_are_retryable(status: int):
    result = outcome(status, b"secret internal detail")

    assert isinstance(result, Failed) and result.error.retryable
    assert "secret internal detail" not in result.error.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_client_errors_are_not_retryable_and_never_echo_the_body(status: int):
    result = outcome(status, b"internal stack trace at 10.0.0.7")

    assert isinstance(result, Failed)
    assert result.error == result.error.model_copy(
        update={"type": "http_status", "message": f"the server answered {status}", "retryable": False}
    )


def test_retry_after_is_honoured_in_seconds_or_as_a_date():
    assert outcome(429, **{"retry-after": "30"}).error.retry_after_seconds == 30
    dated = outcome(503, **{"retry-after": "Sun, 22 Nov 2026 10:02:00 GMT"})
    assert dated.error.retry_after_seconds == 120 and "retry after 120 s" in dated.error.message
    assert outcome(503).error.retry_after_seconds is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        ("  15 ", 15),
        ("999999999", 86400),
        ("Sun, 22 Nov 2026 09:00:00 GMT", 0),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_values(value: str, seconds: float | None):
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    ("method", "status", "to_method", "keeps_body"),
    [
        ("POST", 301, "GET", False),
        ("POST", 302, "GET", False),
        ("PUT", 303, "GET", False),
        ("PUT", 302, "PUT", True),
        ("POST", 307, "POST", True),
        ("PATCH", 308, "PATCH", True),
        ("GET", 301, "GET", True),
    ],
)
def test_redirects_follow_what_browsers_do(method: str, status: int, to_method: str, keeps_body: bool):
    redirect = redirect_for(method, "https://a.test/x/y", status, "../z?q=1")

    assert redirect is not None
    assert (redirect.url, redirect.method, redirect.keeps_body) == (
        "https://a.test/z?q=1",
        to_method,
        keeps_body,
    )
    assert redirect.same_origin


def test_a_redirect_to_another_origin_is_marked_so_credentials_stay_behind():
    assert not redirect_for("GET", "https://a.test/", 302, "http://a.test/").same_origin
    assert not redirect_for("GET", "https://a.test/", 302, "https://b.test/").same_origin
    assert redirect_for("GET", "https://a.test/", 302, "https://a.test:443/other").same_origin
    assert redirect_for("GET", "https://a.test/", 200, "https://b.test/") is None
    assert redirect_for("GET", "https://a.test/", 302, None) is None


def test_credentials_become_headers_and_win_over_the_nodes_own():
    assert auth_headers(BearerSecret(kind="bearer", token="t0k")) == {"Authorization": "Bearer t0k"}
    assert auth_headers(BasicSecret(kind="basic", username="ada", password="pw")) == {
        "Authorization": "Basic YWRhOnB3"
    }
    assert auth_headers(HeaderSecret(kind="header", header_name="X-Api-Key", value="k")) == {"X-Api-Key": "k"}
    merged = merge_headers(
        {"authorization": "Bearer from-node", "Accept": "x"}, {"Authorization": "Bearer stored"}
    )
    assert merged == {"Authorization": "Bearer stored", "Accept": "x"}


def test_bodies_are_encoded_by_their_type():
    assert encode_body("json", {"a": "é", "b": [1]}) == ('{"a":"é","b":[1]}'.encode(), "application/json")
    assert encode_body("form", {"q": "a b", "n": 2, "ok": True}) == (
        b"q=a+b&n=2&ok=true",
        "application/x-www-form-urlencoded",
    )
    assert encode_body("raw", "<xml/>") == (b"<xml/>", "text/plain; charset=utf-8")
    assert encode_body("json", None) == (None, None)


def test_the_idempotency_key_names_run_node_and_attempt():
    run = UUID("6f1c0b7e-0000-4000-8000-000000000001")

    assert idempotency_key(run, "notify", 2) == f"{run}:notify:2"


def test_the_webhook_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"event":"x"}'
    expected = hmac.new(b"shared-secret-123456", b"1700000000." + body, hashlib.sha256).hexdigest()

    assert webhook_signature("shared-secret-123456", 1700000000, body) == f"t=1700000000,v1={expected}"


@given(st.binary(max_size=200), st.text(min_size=16, max_size=40), st.integers(0, 2**31))
def test_a_receiver_accepts_a_fresh_signature_and_nothing_else(body: bytes, secret: str, timestamp: int):
    header = webhook_signature(secret, timestamp, body)

    assert signature_holds(secret, header, body, now=timestamp + 10)
    assert not signature_holds(secret, header, body + b"x", now=timestamp)
    assert not signature_holds(secret + "x", header, body, now=timestamp)
    assert not signature_holds(secret, header, body, now=timestamp + 301)
    assert not signature_holds(secret, "t=nope,v1=00", body, now=timestamp)
