import { useCallback, useEffect, useState } from "react";
import type { Api } from "../../api/client";
import { between, when } from "../../format";
import type { WorkflowSummary } from "../../model/types";
import type { Schemas } from "../../api/types";
import { Link } from "../../router";
import { BulkRunActions, SelectAllRuns, SelectRun } from "../../components/BulkRunActions";
import type { RunFilter } from "../../model/bulk";
import { ErrorLine, describe } from "./common";

const STATUSES = ["running", "paused", "completed", "failed", "cancelled", "timed_out", "throttled"];
const KINDS = ["manual", "webhook", "schedule", "record"];

type Row = Schemas["RunSummary"];

/** Runs across the tenant's workflows, newest first: filter by status, workflow, trigger kind, time
 * range and text in the trigger's data; more pages by cursor. */
export function AllRuns({ api }: { api: Api }) {
  const [workflows, setWorkflows] = useState<WorkflowSummary[]>([]);
  const [filter, setFilter] = useState({ status: "", workflow: "", kind: "", after: "", before: "", q: "" });
  const [rows, setRows] = useState<Row[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string[]>([]);

  useEffect(() => {
    api
      .listWorkflows("?limit=500")
      .then((page) => setWorkflows(page.items))
      .catch((err) => setError(describe(err)));
  }, [api]);

  const query = useCallback(
    (after: string | null) => {
      const q = new URLSearchParams({ limit: "50" });
      if (filter.status) q.set("status", filter.status);
      if (filter.workflow) q.set("workflow_id", filter.workflow);
      if (filter.kind) q.set("trigger_kind", filter.kind);
      if (filter.after) q.set("started_after", new Date(filter.after).toISOString());
      if (filter.before) q.set("started_before", new Date(filter.before).toISOString());
      if (filter.q.trim()) q.set("q", filter.q.trim());
      if (after) q.set("cursor", after);
      return api.get<Schemas["RunPage"]>(`/runs?${q}`);
    },
    [api, filter],
  );

  const load = useCallback(
    () =>
      query(null)
        .then((page) => {
          setRows(page.items);
          setCursor(page.next_cursor ?? null);
          setError(null);
        })
        .catch((err) => setError(describe(err))),
    [query],
  );

  useEffect(() => {
    const timer = setTimeout(() => void load(), 250);
    return () => clearTimeout(timer);
  }, [load]);

  const names = Object.fromEntries(workflows.map((w) => [w.id, w.name]));
  const set = (key: keyof typeof filter) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
    setFilter({ ...filter, [key]: e.target.value });

  return (
    <section className="page console-page" id="all-runs-page">
      <div className="page-head">
        <h1>Runs</h1>
      </div>
      <div className="filters wrap" role="search">
        <select aria-label="status" id="runs-status" value={filter.status} onChange={set("status")}>
          <option value="">every status</option>
          {STATUSES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <select aria-label="workflow" id="runs-workflow" value={filter.workflow} onChange={set("workflow")}>
          <option value="">every workflow</option>
          {workflows.map((w) => (
            <option key={w.id} value={w.id}>
              {w.name}
            </option>
          ))}
        </select>
        <select aria-label="trigger kind" id="runs-kind" value={filter.kind} onChange={set("kind")}>
          <option value="">every trigger</option>
          {KINDS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
        <label className="inline">
          from
          <input type="datetime-local" id="runs-after" value={filter.after} onChange={set("after")} />
        </label>
        <label className="inline">
          until
          <input type="datetime-local" id="runs-before" value={filter.before} onChange={set("before")} />
        </label>
        <input
          type="search"
          id="runs-q"
          aria-label="search in trigger data"
          placeholder="Search in trigger data"
          value={filter.q}
          onChange={set("q")}
        />
      </div>
      <ErrorLine error={error} />
      <BulkRunActions
        api={api}
        selected={selected}
        filter={bulkFilter(filter)}
        onDone={() => {
          setSelected([]);
          void load();
        }}
      />
      {rows === null ? (
        <p className="empty">Loading…</p>
      ) : rows.length === 0 ? (
        <p className="empty" id="no-runs">
          {Object.values(filter).some(Boolean)
            ? "No run matches these filters."
            : "No runs yet. Activate a workflow and call its trigger, or start a test run from the editor."}
        </p>
      ) : (
        <>
          <table className="list" id="all-runs">
            <thead>
              <tr>
                <SelectAllRuns shown={rows.map((r) => r.run_id)} selected={selected} onChange={setSelected} />
                <th>Run</th>
                <th>Workflow</th>
                <th>Status</th>
                <th>Trigger</th>
                <th>Started</th>
                <th>Duration</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.run_id} data-run-id={r.run_id}>
                  <SelectRun runId={r.run_id} selected={selected} onChange={setSelected} />
                  <td>
                    <Link to={`/runs/${r.run_id}`}>
                      <code>{r.run_id.slice(0, 8)}</code>
                    </Link>
                  </td>
                  <td>
                    <Link to={`/workflows/${r.workflow_id}/runs`}>
                      {names[r.workflow_id] ?? r.workflow_id.slice(0, 8)}
                    </Link>{" "}
                    <span className="muted">v{r.workflow_version}</span>
                  </td>
                  <td>
                    <span className={`badge run-${r.status}`}>{r.status}</span>
                  </td>
                  <td>{r.trigger_kind ?? "—"}</td>
                  <td>{when(r.started_at)}</td>
                  <td>{between(r.started_at, r.finished_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {cursor && (
            <button
              type="button"
              id="runs-more"
              onClick={() =>
                query(cursor)
                  .then((page) => {
                    setRows([...rows, ...page.items]);
                    setCursor(page.next_cursor ?? null);
                  })
                  .catch((err) => setError(describe(err)))
              }
            >
              Load more
            </button>
          )}
        </>
      )}
    </section>
  );
}

/** The page's filters as a bulk operation's: "all matching" acts on exactly the runs the list shows. */
function bulkFilter(filter: {
  status: string;
  workflow: string;
  kind: string;
  after: string;
  before: string;
  q: string;
}): RunFilter {
  return {
    status: filter.status || undefined,
    workflow_id: filter.workflow || undefined,
    trigger_kind: filter.kind || undefined,
    started_after: filter.after ? new Date(filter.after).toISOString() : undefined,
    started_before: filter.before ? new Date(filter.before).toISOString() : undefined,
    q: filter.q.trim() || undefined,
  };
}
