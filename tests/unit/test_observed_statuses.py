"""The check that holds the statuses the tests see against the OpenAPI documents: it finds an
undeclared status, matches the most specific path template, and leaves unknown paths alone."""

from __future__ import annotations

import pytest

from tests.support.observed_statuses import Seen, Undeclared, declared_statuses, undeclared

pytestmark = pytest.mark.unit

DOCUMENT = {
    "paths": {
        "/api/v1/runs/{run_id}": {"get": {"responses": {"200": {}, "404": {}}}},
        "/api/v1/runs/{run_id}/export": {"get": {"responses": {"200": {}}}},
        "/api/v1/runs/bulk": {"post": {"responses": {"200": {}, "409": {}}}},
        "/api/v1/approvals/{rest:path}": {"get": {"responses": {"200": {}}}},
    }
}


def test_a_status_the_operation_does_not_declare_is_found_with_an_example():
    seen = [Seen("GET", "/api/v1/runs/abc", 404), Seen("GET", "/api/v1/runs/abc", 409)]
    assert undeclared(seen, declared_statuses([DOCUMENT])) == [
        Undeclared("GET", "/api/v1/runs/{run_id}", 409, "/api/v1/runs/abc")
    ]


def test_the_most_specific_template_judges_the_answer():
    declared = declared_statuses([DOCUMENT])
    assert undeclared([Seen("GET", "/api/v1/runs/abc/export", 404)], declared) == [
        Undeclared("GET", "/api/v1/runs/{run_id}/export", 404, "/api/v1/runs/abc/export")
    ]
    assert undeclared([Seen("POST", "/api/v1/runs/bulk", 409)], declared) == []
    assert undeclared([Seen("GET", "/api/v1/approvals/a/b", 200)], declared) == []


def test_unknown_paths_and_methods_are_not_judged():
    declared = declared_statuses([DOCUMENT])
    assert (
        undeclared([Seen("GET", "/api/v1/nothing", 404), Seen("DELETE", "/api/v1/runs/x", 405)], declared)
        == []
    )


def test_documents_add_up():
    other = {"paths": {"/api/v1/runs/{run_id}": {"get": {"responses": {"409": {}}}}}}
    assert declared_statuses([DOCUMENT, other])[("GET", "/api/v1/runs/{run_id}")] == {200, 404, 409}


def test_a_declared_range_covers_every_status_of_its_class() -> None:
    document = {"paths": {"/hooks/{token}": {"post": {"responses": {"202": {}, "4XX": {}, "default": {}}}}}}
    declared = declared_statuses([document])
    assert declared[("POST", "/hooks/{token}")] == {202, *range(400, 500)}
    seen = [Seen("POST", "/hooks/abc", 418), Seen("POST", "/hooks/abc", 201)]
    assert [(u.template, u.status) for u in undeclared(seen, declared)] == [("/hooks/{token}", 201)]
