"""The AI usage report (``GET /api/v1/ai/usage``) and the model prices it is priced with, against a real
gateway and PostgreSQL: the ledger rows of two tenants over two months, some written before calls named
their workflow, models with a price and without, a bad month and grouping, and who may read it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from millrace_common.platform.db import create_engine
from millrace_common.platform.tables import ai_token_months, ai_token_usage
from sqlalchemy import insert

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration

DEFINITION = {
    "nodes": [
        {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
        {"id": "end", "type": "end", "data": {"name": "End"}},
    ],
    "edges": [{"id": "a", "source": "start", "target": "end"}],
}
PRICES = {
    "gpt-small": {"prompt_per_million": 0.5, "completion_per_million": 1.5},
    "gpt-big": {"prompt_per_million": 10, "completion_per_million": 30},
}
THIS_MONTH = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
LAST_MONTH = (THIS_MONTH - timedelta(days=1)).replace(day=15)


@dataclass(frozen=True)
class Call:
    tenant_id: str
    workflow_id: str | None
    node_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    at: datetime = THIS_MONTH + timedelta(minutes=1)


def record(infra: Infra, namespace: str, calls: list[Call], budget_counts: dict[str, int]) -> None:
    """The ledger rows the node runner writes per AI call, and each tenant's running total for the month."""

    async def run() -> None:
        engine = create_engine(infra.settings(namespace))
        try:
            async with engine.begin() as connection:
                for call in calls:
                    await connection.execute(
                        insert(ai_token_usage).values(
                            tenant_id=call.tenant_id,
                            run_id=uuid.uuid4(),
                            workflow_id=call.workflow_id,
                            node_id=call.node_id,
                            attempt=1,
                            model=call.model,
                            prompt_tokens=call.prompt_tokens,
                            completion_tokens=call.completion_tokens,
                            total_tokens=call.prompt_tokens + call.completion_tokens,
                            recorded_at=call.at,
                        )
                    )
                for tenant_id, tokens in budget_counts.items():
                    await connection.execute(
                        insert(ai_token_months).values(
                            tenant_id=tenant_id, month=THIS_MONTH.date(), total_tokens=tokens
                        )
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def gateway_only(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    running.start(("gateway",))
    yield running
    running.stop_all()


@dataclass(frozen=True)
class Tenant:
    account: Account
    api: httpx.Client
    workflows: dict[str, str]


def tenant(system: System, prefix: str, *workflow_names: str) -> Tenant:
    account = provision_tenant(system.infra, system.namespace, f"{prefix}{uuid.uuid4().hex[:6]}")
    api = signed_in(system.url("gateway"), account)
    workflows = {}
    for name in workflow_names:
        created = api.post("/api/v1/workflows", json={"name": name, "definition": DEFINITION})
        assert created.status_code == 201, created.text
        workflows[name] = created.json()["id"]
    return Tenant(account, api, workflows)


@pytest.fixture(scope="module")
def acme(gateway_only: System) -> Tenant:
    """Priced gpt-small and gpt-big, an unpriced local model, a budget; calls this month and last."""
    acme = tenant(gateway_only, "usage", "Enrich", "Triage")
    other = tenant(gateway_only, "other", "Elsewhere")
    enrich, triage = acme.workflows["Enrich"], acme.workflows["Triage"]
    a = acme.account.tenant_id
    calls = [
        Call(a, enrich, "classify", "gpt-small", 1000, 500),
        Call(a, enrich, "classify", "gpt-small", 1000, 500),
        Call(a, enrich, "classify[2]", "gpt-small", 1000, 500),  # a for_each item counts for its node
        Call(a, enrich, "agent", "gpt-big", 2_000_000, 1_000_000),
        Call(a, triage, "summarise", "local-llm", 300, 100),
        Call(a, None, "legacy", "gpt-small", 100, 50),  # recorded before calls named their workflow
        Call(a, enrich, "classify", "gpt-small", 7, 3, at=LAST_MONTH),
        Call(other.account.tenant_id, other.workflows["Elsewhere"], "classify", "gpt-small", 999_999, 1),
    ]
    record(
        gateway_only.infra, gateway_only.namespace, calls, {a: 3_005_050, other.account.tenant_id: 1_000_000}
    )
    body = {
        "base_url": "https://llm.example/v1",
        "model": "gpt-small",
        "monthly_token_budget": 10_000_000,
        "model_prices": PRICES,
        "price_currency": "EUR",
    }
    stored = acme.api.put("/api/v1/settings/ai", json=body)
    assert stored.status_code == 200, stored.text
    return acme


def usage(api: httpx.Client, **params: str) -> dict:
    answer = api.get("/api/v1/ai/usage", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_months_usage_is_grouped_by_workflow_node_and_model_and_priced(acme: Tenant):
    report = usage(acme.api)
    enrich, triage = acme.workflows["Enrich"], acme.workflows["Triage"]
    assert report["month"] == f"{THIS_MONTH:%Y-%m}"
    assert report["group_by"] == ["workflow", "node", "model"]
    assert report["currency"] == "EUR" and report["truncated"] is False
    rows = [
        (
            r["workflow_id"],
            r["workflow_name"],
            r["node_id"],
            r["model"],
            r["total_tokens"],
            r["calls"],
            r["cost"],
        )
        for r in report["rows"]
    ]
    assert rows == [
        (enrich, "Enrich", "agent", "gpt-big", 3_000_000, 1, 50.0),
        (enrich, "Enrich", "classify", "gpt-small", 4500, 3, 0.00375),
        (triage, "Triage", "summarise", "local-llm", 400, 1, None),
        (None, None, "legacy", "gpt-small", 150, 1, 0.000125),
    ]
    assert report["rows"][1]["prompt_tokens"] == 3000 and report["rows"][1]["completion_tokens"] == 1500
    assert report["rows"][2]["unpriced_tokens"] == 400 and report["rows"][0]["unpriced_tokens"] == 0
    totals = report["totals"]
    assert (
        totals["prompt_tokens"],
        totals["completion_tokens"],
        totals["total_tokens"],
        totals["calls"],
    ) == (
        2_003_400,
        1_001_650,
        3_005_050,
        6,
    )
    assert totals["cost"] == pytest.approx(50.003875) and totals["unpriced_tokens"] == 400
    assert (totals["workflow_id"], totals["node_id"], totals["model"]) == (None, None, None)
    assert (report["monthly_token_budget"], report["budget_used"], report["budget_left"]) == (
        10_000_000,
        3_005_050,
        6_994_950,
    )


def test_usage_is_grouped_by_what_is_asked(acme: Tenant):
    by_model = usage(acme.api, group_by="model")
    assert by_model["group_by"] == ["model"]
    assert [
        (r["model"], r["total_tokens"], r["cost"], r["workflow_id"], r["node_id"]) for r in by_model["rows"]
    ] == [
        ("gpt-big", 3_000_000, 50.0, None, None),
        ("gpt-small", 4650, 0.003875, None, None),
        ("local-llm", 400, None, None, None),
    ]
    by_workflow = usage(acme.api, group_by="workflow")
    assert [
        (r["workflow_name"], r["total_tokens"], r["cost"], r["unpriced_tokens"]) for r in by_workflow["rows"]
    ] == [
        ("Enrich", 3_004_500, 50.00375, 0),
        ("Triage", 400, None, 400),
        (None, 150, 0.000125, 0),  # the calls recorded before calls named their workflow
    ]
    asked_backwards = usage(acme.api, group_by="model,workflow")
    assert asked_backwards["group_by"] == ["workflow", "model"]
    assert len(asked_backwards["rows"]) == 4 and {r["node_id"] for r in asked_backwards["rows"]} == {None}


def test_another_month_counts_only_its_own_calls(acme: Tenant):
    last = usage(acme.api, month=f"{LAST_MONTH:%Y-%m}")
    assert last["month"] == f"{LAST_MONTH:%Y-%m}"
    assert [(r["node_id"], r["total_tokens"], r["cost"]) for r in last["rows"]] == [
        ("classify", 10, 0.000008)
    ]
    assert last["budget_used"] == 0 and last["budget_left"] == 10_000_000
    empty = usage(acme.api, month="2001-01")
    assert empty["rows"] == [] and empty["totals"]["calls"] == 0 and empty["totals"]["cost"] is None


def test_a_tenant_sees_only_its_own_usage_and_no_budget_without_one(gateway_only: System, acme: Tenant):
    stranger = tenant(gateway_only, "stranger")
    report = usage(stranger.api)
    assert report["rows"] == [] and report["totals"]["total_tokens"] == 0
    assert (report["monthly_token_budget"], report["budget_used"], report["budget_left"]) == (None, 0, None)
    assert report["currency"] == "USD"
    # the other tenant's 1,000,000 tokens of gpt-small are not in acme's report
    assert usage(acme.api, group_by="model")["rows"][1]["total_tokens"] == 4650


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"month": "2025-13"}, "/query/month"),
        ({"month": "last"}, "/query/month"),
        ({"group_by": "run"}, "/query/group_by"),
        ({"group_by": "workflow,tenant"}, "/query/group_by"),
    ],
)
def test_a_bad_month_or_grouping_is_refused_naming_the_parameter(acme: Tenant, params: dict, pointer: str):
    refused = acme.api.get("/api/v1/ai/usage", params=params)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_request"
    assert [e["pointer"] for e in refused.json()["errors"]] == [pointer]


@pytest.mark.parametrize("role", ["editor", "operator", "viewer", "approver"])
def test_only_admins_read_the_usage_report(gateway_only: System, acme: Tenant, role: str):
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.test"
    body = {"email": email, "password": "correct horse battery", "roles": [role]}
    assert acme.api.post("/api/v1/users", json=body).status_code == 201
    with signed_in(
        gateway_only.url("gateway"), Account(acme.account.tenant_id, email, "correct horse battery")
    ) as api:
        refused = api.get("/api/v1/ai/usage")
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert (
            api.put("/api/v1/settings/ai", json={"base_url": "https://x.example", "model": "m"}).status_code
            == 403
        )
    assert httpx.get(f"{gateway_only.url('gateway')}/api/v1/ai/usage", timeout=10).status_code == 401


def test_model_prices_are_kept_when_omitted_cleared_when_empty_and_validated(acme: Tenant):
    settings = acme.api.get("/api/v1/settings/ai").json()
    assert settings["model_prices"] == {k: {kk: float(vv) for kk, vv in v.items()} for k, v in PRICES.items()}
    assert settings["price_currency"] == "EUR"
    base = {"base_url": "https://llm.example/v1", "model": "gpt-small", "monthly_token_budget": 10_000_000}
    kept = acme.api.put("/api/v1/settings/ai", json=base).json()
    assert kept["model_prices"] == settings["model_prices"] and kept["price_currency"] == "EUR"

    bad_bodies = [
        (
            {"model_prices": {"m": {"prompt_per_million": -1, "completion_per_million": 1}}},
            "/body/model_prices/m",
        ),
        ({"model_prices": {"m": {"prompt_per_million": 1}}}, "/body/model_prices/m"),
        (
            {"model_prices": {"m": {"prompt_per_million": 1, "completion_per_million": 1, "x": 1}}},
            "/body/model_prices",
        ),
        (
            {"model_prices": {"m" * 201: {"prompt_per_million": 1, "completion_per_million": 1}}},
            "/body/model_prices",
        ),
        (
            {"model_prices": {"": {"prompt_per_million": 1, "completion_per_million": 1}}},
            "/body/model_prices",
        ),
        (
            {
                "model_prices": {
                    f"m{n}": {"prompt_per_million": 1, "completion_per_million": 1} for n in range(201)
                }
            },
            "/body/model_prices",
        ),
        ({"price_currency": "euro"}, "/body/price_currency"),
    ]
    for extra, pointer in bad_bodies:
        refused = acme.api.put("/api/v1/settings/ai", json={**base, **extra})
        assert refused.status_code == 422, (extra, refused.text)
        assert any(e["pointer"].startswith(pointer) for e in refused.json()["errors"]), refused.json()
    assert acme.api.get("/api/v1/settings/ai").json()["model_prices"] == settings["model_prices"]

    cleared = acme.api.put("/api/v1/settings/ai", json={**base, "model_prices": {}}).json()
    assert cleared["model_prices"] == {}
    unpriced = usage(acme.api, group_by="model")
    assert {r["cost"] for r in unpriced["rows"]} == {None} and unpriced["totals"]["cost"] is None
    restored = acme.api.put("/api/v1/settings/ai", json={**base, "model_prices": PRICES})
    assert restored.status_code == 200
