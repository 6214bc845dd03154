import { useCallback, useEffect, useRef, useState } from "react";
import type { Api } from "../api/client";
import { followStream, StreamRefused } from "../api/sse";
import type { RunSummary, Workflow } from "../model/types";
import { Link, navigate } from "../router";
import { between, when } from "../format";
import { BulkRunActions, SelectAllRuns, SelectRun } from "../components/BulkRunActions";

const STATUSES = ["", "running", "completed", "failed", "cancelled"];

/** A workflow's runs, newest first, with a status filter; refreshed as the workflow's event stream
 * reports activity (or every few seconds when no stream is offered). */
export function RunsList({ api, token, workflowId }: { api: Api; token: string; workflowId: string }) {
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [status, setStatus] = useState("");
  const [selected, setSelected] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<"live" | "polling" | "connecting">("connecting");
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);

  const load = useCallback(async () => {
    try {
      setRuns((await api.listRuns(workflowId, status || undefined)).items);
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, [api, workflowId, status]);

  useEffect(() => {
    api
      .getWorkflow(workflowId)
      .then(setWorkflow)
      .catch((err) => setError((err as Error).message));
  }, [api, workflowId]);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setInterval> | null = null;
    const soon = () => {
      if (pending.current) return;
      pending.current = setTimeout(() => {
        pending.current = null;
        void load();
      }, 300);
    };
    followStream({
      url: `/api/v1/workflows/${workflowId}/events`,
      token,
      signal: controller.signal,
      onState: (s) => s === "open" && setLive("live"),
      onMessage: soon,
      finished: () => false,
      reconnectMs: 2000,
    }).catch((err) => {
      if (controller.signal.aborted) return;
      if (err instanceof StreamRefused) {
        setLive("polling");
        timer = setInterval(() => void load(), 2000);
      }
    });
    return () => {
      controller.abort();
      if (timer) clearInterval(timer);
      if (pending.current) clearTimeout(pending.current);
      pending.current = null;
    };
  }, [workflowId, token, load]);

  return (
    <section className="page">
      <div className="page-head">
        <h1>Runs of {workflow ? <Link to={`/workflows/${workflowId}`}>{workflow.name}</Link> : "…"}</h1>
        <div className="filters">
          <span className="muted" id="runs-live">
            {live}
          </span>
          <select
            id="run-status-filter"
            aria-label="status filter"
            value={status}
            onChange={(e) => setStatus(e.target.value)}
          >
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "every status"}
              </option>
            ))}
          </select>
        </div>
      </div>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <BulkRunActions
        api={api}
        selected={selected}
        filter={{ workflow_id: workflowId, status: status || undefined }}
        onDone={() => {
          setSelected([]);
          void load();
        }}
      />
      {runs === null ? (
        <p className="empty">Loading…</p>
      ) : runs.length === 0 ? (
        <p className="empty" id="no-runs">
          No runs{status ? ` with status ${status}` : ""} yet.
        </p>
      ) : (
        <table className="list" id="runs">
          <thead>
            <tr>
              <SelectAllRuns shown={runs.map((r) => r.run_id)} selected={selected} onChange={setSelected} />
              <th>Run</th>
              <th>Status</th>
              <th>Version</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr
                key={r.run_id}
                data-run-id={r.run_id}
                className="clickable"
                onClick={() => navigate(`/runs/${r.run_id}`)}
              >
                <SelectRun runId={r.run_id} selected={selected} onChange={setSelected} />
                <td>
                  <Link to={`/runs/${r.run_id}`}>
                    <code>{r.run_id.slice(0, 8)}</code>
                  </Link>
                </td>
                <td>
                  <span className={`badge run-${r.status}`}>{r.status}</span>
                </td>
                <td>v{r.workflow_version}</td>
                <td>{when(r.started_at)}</td>
                <td>{between(r.started_at, r.finished_at)}</td>
                <td className="muted">{r.error ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
