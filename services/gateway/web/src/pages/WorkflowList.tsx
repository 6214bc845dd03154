import { useCallback, useEffect, useState } from "react";
import { ApiError, type Api } from "../api/client";
import type { WorkflowSummary } from "../model/types";
import { Link, navigate } from "../router";
import { percent, when } from "../format";

function versionLabel(w: WorkflowSummary): string {
  return `${w.active_version ? `v${w.active_version}` : "—"} of ${w.latest_version}`;
}

export function WorkflowList({ api }: { api: Api }) {
  const [items, setItems] = useState<WorkflowSummary[] | null>(null);
  const [status, setStatus] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    const query = new URLSearchParams({ limit: "200" });
    if (status) query.set("status", status);
    if (name.trim()) query.set("name", name.trim());
    try {
      setItems((await api.listWorkflows(`?${query}`)).items);
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, [api, status, name]);

  useEffect(() => {
    void load();
  }, [load]);

  const act = async (action: () => Promise<unknown>) => {
    try {
      await action();
      await load();
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 404 && err.code !== "not_found"
          ? "this gateway does not offer that yet"
          : (err as Error).message,
      );
    }
  };

  return (
    <section className="page">
      <div className="page-head">
        <h1>Workflows</h1>
        <div className="filters">
          <input
            placeholder="Search by name"
            aria-label="search"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
          <select aria-label="status filter" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">every status</option>
            <option value="draft">draft</option>
            <option value="active">active</option>
            <option value="paused">paused</option>
            <option value="archived">archived</option>
          </select>
          <button id="new-workflow" type="button" className="primary" onClick={() => navigate("/workflows/new")}>
            New workflow
          </button>
        </div>
      </div>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      {items === null ? (
        <p className="empty">Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty">No workflows yet. Create one to start.</p>
      ) : (
        <table className="list" id="workflows">
          <thead>
            <tr>
              <th>Name</th>
              <th>Status</th>
              <th>Active version</th>
              <th>Trigger</th>
              <th>Last run</th>
              <th>Runs</th>
              <th>Success</th>
              <th>Owner</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((w) => (
              <tr key={w.id} data-workflow-id={w.id}>
                <td>
                  <Link to={`/workflows/${w.id}`}>{w.name}</Link>
                  {w.description && <div className="muted workflow-description">{w.description}</div>}
                </td>
                <td>
                  <span className={`badge status-${w.status}`}>{w.status}</span>
                </td>
                <td>{versionLabel(w)}</td>
                <td>{w.trigger_type ?? w.trigger_kind ?? "—"}</td>
                <td>
                  {when(w.last_run_at)}
                  {w.last_run_status && <span className={`badge run-${w.last_run_status}`}>{w.last_run_status}</span>}
                </td>
                <td>{w.run_count}</td>
                <td>{percent(w.success_rate)}</td>
                <td className="owner" title={w.updated_by_name ? `last saved by ${w.updated_by_name}` : undefined}>
                  {w.created_by_name ?? "—"}
                </td>
                <td className="actions">
                  <Link to={`/workflows/${w.id}/runs`}>Runs</Link>
                  <button
                    type="button"
                    className="small"
                    onClick={() =>
                      act(async () => {
                        const copy = await api.duplicate(w.id);
                        navigate(`/workflows/${copy.id}`);
                      })
                    }
                  >
                    Duplicate
                  </button>
                  {w.status !== "archived" && (
                    <button
                      type="button"
                      className="small danger"
                      onClick={() =>
                        window.confirm(`Archive “${w.name}”? It stops triggering and cannot be changed.`) &&
                        act(() => api.archive(w.id))
                      }
                    >
                      Archive
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
