"""The end-to-end bench's way into the running system: a tenant of its own, its workflows made through
the public API, completion times read from the run log, and the tenant's rows removed afterwards."""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from millrace_common.platform.tables import metadata
from sqlalchemy import Engine, create_engine, text

from bench.common import edge, node
from tests.support.api import Account, provision_tenant, token_for
from tests.support.infra import Infra


def definition(trigger: dict, value: str) -> dict:
    """``trigger -> set -> condition -> end`` (one of two ends), the shape the speed targets are stated
    for; ``value`` is the template of the number the condition looks at."""
    at_least_zero = {"field": "vars.n", "operator": "greater_than_or_equals", "value": 0}
    return {
        "nodes": [
            node("start", "trigger", 0, **trigger),
            node("vars", "set", 100, variables={"n": value, "label": f"run {value}"}),
            node("check", "condition", 200, condition=at_least_zero),
            node("done", "end", 300, output={"n": "{{ vars.n }}"}),
            node("negative", "end", 300, output={"refused": "{{ vars.n }}"}),
        ],
        "edges": [edge("start", "vars"), edge("vars", "check"), edge("check", "done", "true")]
        + [edge("check", "negative", "false")],
        "settings": {"max_executions_per_hour": 10_000_000},
    }


@dataclass
class Setup:
    tenant: str
    hook_path: str
    webhook_workflow: str
    record_workflow: str
    pipeline: str
    token: str


def prepare(infra: Infra, namespace: str, gateway: str) -> Setup:
    """A tenant with an admin (straight to the database, as ``millrace-admin`` does), signed in
    through the API, which then creates both workflows and the pipeline and activates them."""
    tenant = f"bench{secrets.token_hex(4)}"
    account: Account = provision_tenant(infra, namespace, tenant)
    token = token_for(gateway, account)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{gateway}/api/v1", headers=headers, timeout=30) as api:

        def created(path: str, body: dict) -> dict:
            answer = api.post(path, json=body)
            if answer.status_code not in (200, 201):
                raise SystemExit(f"POST {path}: {answer.status_code} {answer.text}")
            return answer.json()

        def active_workflow(name: str, body: dict) -> str:
            workflow = created("/workflows", {"name": name, "definition": body})["id"]
            created(f"/workflows/{workflow}/activate", {})
            return workflow

        webhook = active_workflow(
            "bench webhook", definition({"kind": "webhook"}, "{{ trigger.webhook.body.n }}")
        )
        hook_url = api.get(f"/workflows/{webhook}/webhook").raise_for_status().json()["url"]
        pipeline = created("/pipelines", {"id": "bench", "name": "Bench"})["id"]
        records = active_workflow(
            "bench records",
            definition({"kind": "record_created", "pipeline_ids": [pipeline]}, "{{ trigger.record.data.n }}"),
        )
    print(f"tenant {tenant}: webhook workflow {webhook}, record workflow {records}", flush=True)
    return Setup(tenant, urlsplit(hook_url).path, webhook, records, pipeline, token)


def archive(gateway: str, setup: Setup) -> None:
    """Stop both workflows from triggering, through the API as their owner would."""
    headers = {"Authorization": f"Bearer {setup.token}"}
    with httpx.Client(base_url=f"{gateway}/api/v1", headers=headers, timeout=30) as api:
        for workflow in (setup.webhook_workflow, setup.record_workflow):
            api.post(f"/workflows/{workflow}/archive").raise_for_status()


@dataclass(frozen=True)
class Finished:
    status: str
    finished_at: float | None
    started_at: float
    """``runs.started_at`` (Unix seconds): when the run's starter made its StartRun (the gateway,
    once it decided the webhook call; the trigger service, once it matched the record event)."""


class RunLog:
    """Reads the runs table of the namespace's schema (``public`` for the plain namespace)."""

    def __init__(self, infra: Infra, namespace: str) -> None:
        schema = namespace or "public"
        self.engine: Engine = create_engine(
            infra.database_url, connect_args={"options": f"-csearch_path={schema}"}
        )

    def wait(self, run_ids: list[uuid.UUID], timeout: float) -> dict[uuid.UUID, Finished]:
        """Every run's status and end (Unix seconds), polling until all have ended or ``timeout``
        seconds pass without one more ending; runs not in the log yet are absent."""
        found: dict[uuid.UUID, Finished] = {}
        pending = set(run_ids)
        last_progress = time.monotonic()
        while pending and time.monotonic() - last_progress < timeout:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    text("select run_id, status, finished_at, started_at from runs where run_id = any(:ids)"),
                    {"ids": list(pending)},
                ).all()
            ended = 0
            for run_id, status, finished_at, started_at in rows:
                found[run_id] = Finished(
                    status, finished_at.timestamp() if finished_at else None, started_at.timestamp()
                )
                if finished_at is not None:
                    pending.discard(run_id)
                    ended += 1
            if ended:
                last_progress = time.monotonic()
            if pending:
                time.sleep(0.25)
        return found

    def remove_tenant(self, tenant: str) -> int:
        """Delete every row of the tenant (its runs' logs, deliveries, firings, workflows, users and
        the tenant itself) in one transaction, then vacuum the tables it deleted from; returns how
        many rows went. The messages it left in Kafka's topics stay until the topics' retention
        removes them.

        The vacuum is the bench's own cleaning up: a removal leaves 100,000 and more dead rows, and
        autovacuum, which gets to them within its minute's nap, spent 10-15 s of a core on them in the
        phases of the bench's next run, where they are no part of what that run measures."""
        by_run = "run_id in (select run_id from runs where tenant_id = :t)"
        by_workflow = "workflow_id in (select id from workflows where tenant_id = :t)"
        deletes: list[tuple[str, str]] = []  # first what names the tenant only through a run or workflow
        for table in metadata.sorted_tables:
            columns = set(table.columns.keys())
            which = by_workflow if "workflow_id" in columns else by_run if "run_id" in columns else None
            if which and "tenant_id" not in columns:
                deletes.append((table.name, which))
        deletes += [(t.name, "tenant_id = :t") for t in metadata.sorted_tables if "tenant_id" in t.columns]
        removed: dict[str, int] = {}
        with self.engine.begin() as connection:
            for name, condition in deletes:
                statement = text(f"delete from {name} where {condition}")
                removed[name] = connection.execute(statement, {"t": tenant}).rowcount
            tenant_row = connection.execute(text("delete from tenants where id = :t"), {"t": tenant}).rowcount
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for name in sorted(name for name, count in removed.items() if count):
                connection.execute(text(f"vacuum (analyze) {name}"))  # VACUUM runs outside a transaction
        return sum(removed.values()) + tenant_row

    def close(self) -> None:
        self.engine.dispose()


def status_counts(found: dict[uuid.UUID, Finished], sent: int) -> str:
    counts = Counter(f.status for f in found.values())
    if sent > len(found):
        counts["not in the run log"] = sent - len(found)
    return ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "none"
