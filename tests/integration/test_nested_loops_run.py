"""Nested for_each loops through the real gateway and orchestrator, Kafka and PostgreSQL: a workflow
saved with named items three levels deep runs, and every innermost instance rendered the items and
the outer bodies' node outputs of its own iteration."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System
from tests.unit.test_nested_loops import THREE_LEVELS, TWO_LEVELS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(infra: Infra, module_namespace: str) -> Iterator[httpx.Client]:
    running = System(infra, module_namespace)
    try:
        running.start(("gateway", "orchestrator"))
        account = provision_tenant(infra, module_namespace, f"loops{uuid.uuid4().hex[:6]}")
        with signed_in(running.url("gateway"), account) as signed:
            yield signed
    finally:
        running.stop_all()


def finished(api: httpx.Client, definition: dict, data: dict) -> dict:
    created = api.post("/api/v1/workflows", json={"name": "nested", "definition": definition})
    assert created.status_code == 201, created.text
    started = api.post(f"/api/v1/workflows/{created.json()['id']}/runs", json={"input": data})
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{started.json()['run_id']}")
        run = answer.json()
        if answer.status_code == 200 and run["status"] != "running":
            return run
        time.sleep(0.2)
    raise AssertionError(f"the run did not finish: {run}")


def test_two_levels_of_named_items_run_with_the_outer_row_and_its_nodes(api: httpx.Client):
    run = finished(api, TWO_LEVELS, {"rows": [{"name": "a", "cells": [1, 2]}, {"name": "b", "cells": [3]}]})
    assert run["status"] == "completed", run
    outputs = {n["node_id"]: n["output"] for n in run["nodes"]}
    assert outputs["cell_text[0][1]"] == {"text": "hi A:2@1", "row": "a"}
    assert outputs["cell_text[1][0]"] == {"text": "hi B:3@0", "row": "b"}


def test_three_levels_of_loops_run_with_every_enclosing_item_and_body(api: httpx.Client):
    countries = [
        {"code": "NL", "cities": [{"name": "Delft", "streets": ["Markt", "Oude Delft"]}]},
        {
            "code": "BE",
            "cities": [{"name": "Gent", "streets": ["Kouter"]}, {"name": "Luik", "streets": ["Rue"]}],
        },
    ]
    run = finished(api, THREE_LEVELS, {"countries": countries})
    assert run["status"] == "completed", run
    lines = {n["node_id"]: n["output"]["line"] for n in run["nodes"] if n["node_id"].startswith("address[")}
    assert lines == {
        "address[0][0][0]": "Markt, Delft, NL",
        "address[0][0][1]": "Oude Delft, Delft, NL",
        "address[1][0][0]": "Kouter, Gent, BE",
        "address[1][1][0]": "Rue, Luik, BE",
    }
