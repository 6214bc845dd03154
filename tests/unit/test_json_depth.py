"""JSON nesting counted as a body streams in: exact for JSON split anywhere, linear, no recursion, and
every service's app refuses a body nested too deep with 400 problem JSON before anything parses it."""

from __future__ import annotations

import inspect
import json
import sys

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.contracts.json_depth import MAX_JSON_DEPTH, DepthScanner, too_deep
from millrace_common.platform.problems import install_problem_handlers
from pydantic import BaseModel, JsonValue

pytestmark = pytest.mark.unit


def nested(depth: int, inner: str = "1") -> str:
    """``depth`` levels of alternating arrays and objects around ``inner``."""
    opening = ["[" if level % 2 else f'{{"k{level}": ' for level in range(depth)]
    closing = ["]" if level % 2 else "}" for level in range(depth)]
    return "".join(reversed(opening)) + inner + "".join(closing)


def true_depth(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def scanned(chunks: list[bytes], limit: int = 10_000) -> int:
    scanner = DepthScanner(limit)
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.deepest


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "]]]]]]", "{"]', 1),
        (r'["\"[[[", "\\", [["\\\"]]]"]]]', 3),
        ('{"a\\u005b": "\\\\\\"[", "b": [[]]}', 3),
        ("[" * 1000, 1000),
    ],
)
def test_brackets_in_strings_and_escapes_do_not_count(text, depth):
    assert scanned([text.encode()]) == depth


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ab\u00e9\n', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=3)
    ),
    max_leaves=25,
)


@settings(max_examples=300)
@given(value=JSON, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_the_count_is_exact_wherever_the_text_is_split(value, cuts):
    data = json.dumps(value, ensure_ascii=False).encode()
    positions = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *positions], [*positions, len(data)], strict=True)]
    assert scanned(chunks) == true_depth(value)
    assert scanned([data[i : i + 1] for i in range(len(data))]) == true_depth(value)  # byte by byte


def test_the_limit_is_sixty_four_levels():
    assert not too_deep(nested(MAX_JSON_DEPTH))
    assert too_deep(nested(MAX_JSON_DEPTH + 1))
    assert too_deep("[" * 300) and too_deep(b"[" * 10_000)


@pytest.mark.parametrize(
    "hostile",
    [
        b"[" * 4_000_000,
        b'["' + b"\\" * 4_000_000 + b'"]',
        b'"' * 4_000_001,
        b"[" + b'"x",' * 1_000_000 + b"1]",
        b'["' + b"[" * 4_000_000,
    ],
    ids=["brackets", "escapes", "quotes", "many strings", "unterminated string"],
)
def test_counting_never_recurses(hostile):
    # A recursive counter would need a frame per level: with the interpreter's limit cut to a few
    # frames above the test's own, it would raise RecursionError on the first deep body. (No wall-clock
    # bound here: speeds belong in benchmarks, and this machine is shared.)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 40)
    try:
        for size in (64 * 1024, len(hostile)):  # in chunks as a server reads them, and whole
            scanner = DepthScanner()
            for at in range(0, len(hostile), size):
                scanner.feed(hostile[at : at + size])
    finally:
        sys.setrecursionlimit(limit)


# -- the middleware every service has ---------------------------------------------------------------


class Body(BaseModel):
    data: JsonValue


def app_with_a_body_route() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"ok": "yes"}

    return app


async def post(content: bytes | list[bytes], content_type: str = "application/json") -> httpx.Response:
    transport = httpx.ASGITransport(app=app_with_a_body_route())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        if isinstance(content, list):  # streamed in chunks, without a length

            async def chunks():
                for chunk in content:
                    yield chunk

            return await client.post("/things", content=chunks(), headers={"content-type": content_type})
        return await client.post("/things", content=content, headers={"content-type": content_type})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 2_000, 10_000, 1_000_000])
async def test_a_body_nested_too_deep_is_refused_with_the_reason_and_a_pointer(depth):
    body = ('{"data": ' + nested(depth - 1) + "}").encode()
    for content in (body, [body[i : i + 7] for i in range(0, len(body), 7)]):
        answer = await post(content)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == "invalid_body"
        assert problem["errors"] == [
            {"pointer": "/body", "detail": "JSON nested more than 64 levels deep; the limit is 64"}
        ]
        assert "64 levels" in problem["detail"]


async def test_a_body_at_the_limit_and_other_media_types_pass():
    assert (await post(('{"data": ' + nested(MAX_JSON_DEPTH - 1) + "}").encode())).status_code == 200
    deep = ('{"data": ' + nested(300) + "}").encode()
    assert (await post(deep, "application/vnd.api+json")).status_code == 400
    assert (await post(deep, "Application/JSON; charset=utf-8")).status_code == 400
    # not JSON to FastAPI either: answered as before (the body is not parsed)
    assert (await post(deep, "text/plain")).status_code == 422
